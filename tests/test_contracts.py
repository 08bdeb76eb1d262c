"""Every kind of features and every hasher keeps its declared contract (features/base.py,
models/base.py): the members exist, and each method takes what the contract says it takes."""

import inspect

import pytest

from semhash.features.base import Features
from semhash.features.patches import PatchFeatures
from semhash.features.pixels import PixelFeatures
from semhash.features.text import TextFeatures
from semhash.models.autoencoder import ConvStackedAutoencoder, StackedAutoencoder
from semhash.models.base import Hasher, Model
from semhash.models.baselines import LSH, PCAH, PCAITQ

FEATURES = [TextFeatures, PatchFeatures, PixelFeatures]
MODELS = [StackedAutoencoder, ConvStackedAutoencoder]
HASHERS = [LSH, PCAH, PCAITQ, *MODELS]


def members(protocol):
    """The methods a protocol declares, with where they come from (its own bases included)."""
    return {name for base in protocol.__mro__ if base not in (object,) and getattr(base, "_is_protocol", False)
            for name, value in vars(base).items() if callable(value) or isinstance(value, classmethod)
            if not name.startswith("_")}


def check_signature(protocol, implementation, name):
    """The implementation takes the protocol's parameters, in order, of the same kind and with the
    same defaults (any it adds have defaults). The protocol's `items` stands for whatever the
    implementation calls the items it reads (texts, images), which are passed by position."""
    wanted = list(inspect.signature(getattr(protocol, name)).parameters.values())
    given = list(inspect.signature(getattr(implementation, name)).parameters.values())
    assert len(given) >= len(wanted), f"{implementation.__name__}.{name}{inspect.signature(getattr(implementation, name))}"
    for want, give in zip(wanted, given):
        assert want.name in ("items", give.name), f"{implementation.__name__}.{name}: {give.name} for {want.name}"
        assert (give.kind, give.default) == (want.kind, want.default), f"{implementation.__name__}.{name}: {give}"
    assert all(extra.default is not inspect.Parameter.empty for extra in given[len(wanted):]), (
        f"{implementation.__name__}.{name} adds a parameter without a default")
    static = isinstance(inspect.getattr_static(protocol, name), classmethod)
    assert isinstance(inspect.getattr_static(implementation, name), classmethod) == static, name


def test_the_contracts_declare_what_an_index_uses():
    assert members(Features) == {"fit", "fit_transform", "transform", "save", "load", "get_params"}
    assert members(Hasher) == {"fit", "fit_encode", "encode"}
    assert members(Model) == {"fit", "fit_encode", "encode", "transform", "save", "load", "get_params"}


@pytest.mark.parametrize("features", FEATURES)
def test_features_keep_the_features_contract(features):
    assert isinstance(features(), Features)
    assert isinstance(features.kind, str) and features.kind
    for name in members(Features):
        check_signature(Features, features, name)


@pytest.mark.parametrize("model", MODELS)
def test_models_keep_the_model_contract(model):
    assert isinstance(model(), Model)
    for name in members(Model):
        check_signature(Model, model, name)


@pytest.mark.parametrize("hasher", HASHERS)
def test_baselines_and_models_keep_the_hasher_contract(hasher):
    instance = hasher(bits=8, seed=3)
    assert isinstance(instance, Hasher) and (instance.bits, instance.seed) == (8, 3)
    for name in members(Hasher):
        check_signature(Hasher, hasher, name)


@pytest.mark.parametrize("baseline", [LSH, PCAH, PCAITQ])
def test_baselines_are_hashers_but_not_stored_models(baseline):
    assert not isinstance(baseline(), Model)  # no transform, save or load: they are not stored with an index


def test_kinds_tell_the_features_apart():
    assert [features.kind for features in FEATURES] == ["text", "patches", "pixels"]
