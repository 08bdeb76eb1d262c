"""The contracts of what learns binary codes: every `Hasher` fits on rows and encodes rows as
bits; a `Model` (the autoencoders) also gives real-valued codes and is stored with an index."""

from typing import Protocol, runtime_checkable


@runtime_checkable
class Hasher(Protocol):
    """Learns `bits`-long binary codes from rows, deterministically for a `seed`: the linear
    baselines (LSH, PCAH, PCA-ITQ) and the models alike."""

    bits: int
    seed: int

    def fit(self, X): ...

    def fit_encode(self, X): ...

    def encode(self, X):
        """Binary codes: a bool array, rows by `bits`."""


@runtime_checkable
class Model(Hasher, Protocol):
    """A hasher that can learn from labels too, gives real-valued codes, and is stored with an
    index: `save` writes the fitted weights to a folder and returns the params, JSON-storable,
    that `load` rebuilds the fitted model from (without training, so without TensorFlow)."""

    def fit(self, X, y=None): ...

    def fit_encode(self, X, y=None): ...

    def transform(self, X): ...

    def save(self, folder) -> dict: ...

    @classmethod
    def load(cls, folder, params): ...

    def get_params(self) -> dict: ...
