"""One table of defaults: the command line builds the models that the Python API builds from the
same call, and its help is made from the table."""

import pytest
from click.testing import CliRunner
from conftest import write_corpus
from test_cli_images import write_png_folder

from semhash import ConvStackedAutoencoder, SemhashError, StackedAutoencoder, defaults
from semhash.cli import cli
from semhash.modality import MODALITIES


class Built(BaseException):
    """Stops `semhash index` once it has made its model, before any training."""


def model_the_cli_builds(monkeypatch, arguments):
    made = {}

    def build(source, features=None, model=None, **kwargs):
        made.update(model=model, features=features)
        raise Built

    monkeypatch.setattr("semhash.index.index.Index.build", build)
    with pytest.raises(Built):
        CliRunner().invoke(cli, ["index", *arguments, "--quiet"], catch_exceptions=False)
    return made["model"], made["features"]


def params(model):
    return model.get_params()


@pytest.mark.parametrize("arguments, kind, arch, features, api", [
    ([], "text", "dense", "text", StackedAutoencoder),
    ([], "images", "dense", "patches", None),
    (["--image-features", "pixels"], "images", "dense", "pixels", None),
    (["--arch", "conv"], "images", "conv", "pixels", ConvStackedAutoencoder),
])
def test_the_cli_builds_the_model_the_python_api_builds(monkeypatch, tmp_path, arguments, kind, arch, features, api):
    folder = write_corpus(tmp_path / "corpus") if kind == "text" else write_png_folder(tmp_path / "photos")
    model, made_features = model_the_cli_builds(monkeypatch, [str(folder), "-o", str(tmp_path / "index"), *arguments])
    assert made_features.kind == features
    assert params(model) == params(defaults.model(kind, arch, features))
    assert {name: params(model)[name] for name in defaults.model_params(kind, arch, features)} == {
        name: list(value) if isinstance(value, tuple) else value
        for name, value in defaults.model_params(kind, arch, features).items()}
    if api is not None:  # the class's own constructor is that row
        assert params(model) == params(api())
    if arch == "conv":  # as measured on CIFAR-10 (docs/RESULTS.md)
        assert [params(model)[name] for name in ("pretrain_epochs", "epochs", "binarize", "neighbour_metric")] == [
            1, 3, "median", "euclidean"]


def test_options_given_are_laid_over_the_defaults(monkeypatch, tmp_path):
    folder = write_png_folder(tmp_path / "photos")
    model, _ = model_the_cli_builds(monkeypatch, [str(folder), "-o", str(tmp_path / "index"), "--epochs", "7",
                                                  "--bits", "32", "--seed", "3"])
    assert params(model) == params(defaults.model("images", "dense", "patches", epochs=7, bits=32, seed=3))


def test_help_states_every_rows_default():
    help_text = " ".join(CliRunner().invoke(cli, ["index", "--help"], terminal_width=1000).output.split())
    for name, option in [("neighbours", "--neighbours"), ("hidden", "--hidden"), ("epochs", "--epochs"),
                         ("code_layer", "--code-layer"), ("sparsity", "--sparsity")]:
        assert defaults.described(name) in help_text, option
    assert defaults.described("neighbours") == "10 for text and images (patches); 0 for images (pixels) and images (conv)"
    assert defaults.described("learning_rate") == "0.001"


def test_an_unknown_pairing_of_model_and_features_is_refused():
    with pytest.raises(SemhashError, match="reads pixels, not patches"):
        defaults.model("images", "conv", "patches")


def test_each_modality_names_options_that_index_takes():
    index_options = {param.name for param in cli.commands["index"].params}
    for modality in MODALITIES.values():
        names = {*modality.options, *modality.source_options, *modality.feature_options}
        assert names <= index_options, modality.name
    text, images = (set(MODALITIES[name].options) for name in ("text", "images"))
    assert not text & images  # an option of one modality alone is refused for the other
