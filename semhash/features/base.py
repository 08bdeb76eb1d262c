"""The contract every kind of features keeps, so that an index can build, store and reload
any of them alike: text (`TextFeatures`), patch features and pixels of images."""

from typing import ClassVar, Protocol, runtime_checkable


@runtime_checkable
class Features(Protocol):
    """Turns items (texts, images) into the rows a model learns codes from.

    `kind` names the type of features (a class attribute). `save` writes what was fitted to a
    folder and returns the settings, JSON-storable, that `load` rebuilds the fitted features
    from; `get_params` gives the constructor's settings.
    """

    kind: ClassVar[str]

    def fit(self, items): ...

    def fit_transform(self, items): ...

    def transform(self, items): ...

    def save(self, folder) -> dict: ...

    @classmethod
    def load(cls, folder, settings): ...

    def get_params(self) -> dict: ...
