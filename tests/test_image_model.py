"""The dense and convolutional autoencoders on small generated images."""

import numpy as np
import pytest

from semhash.errors import SemhashError
from semhash.features.pixels import PixelFeatures
from semhash.models.autoencoder import ConvStackedAutoencoder, StackedAutoencoder, load_model

TINY = {"bits": 8, "pretrain_epochs": 2, "epochs": 4, "min_steps": 0, "min_pretrain_steps": 0, "batch_size": 8}


def class_images(per_class=16, size=16, seed=0):
    """Three classes: a red square, a green horizontal bar, a blue vertical bar, on noise."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 60, size=(3 * per_class, size, size, 3)).astype(np.uint8)
    labels = np.repeat(np.arange(3), per_class)
    for image, label in zip(pixels, labels):
        top, left = rng.integers(0, size // 2, size=2)
        if label == 0:
            image[top : top + 6, left : left + 6, 0] = 250
        elif label == 1:
            image[top : top + 3, :, 1] = 250
        else:
            image[:, left : left + 3, 2] = 250
    return PixelFeatures(size=(size, size)).fit_transform(pixels), labels


@pytest.fixture(scope="module")
def data():
    return class_images()


@pytest.fixture(scope="module", params=["dense", "conv"])
def fitted(request, data):
    X, _ = data
    if request.param == "dense":
        return StackedAutoencoder(hidden=(32,), output_loss="mse", binarize="median", neighbour_metric="euclidean",
                                  keep_decoder=True, **TINY).fit(X)
    return ConvStackedAutoencoder(filters=(4, 8), **TINY).fit(X)


def test_codes_are_binary_and_balanced(fitted, data):
    X, _ = data
    bits = fitted.encode(X)
    assert bits.dtype == bool and bits.shape == (len(X), 8)
    np.testing.assert_allclose(bits.mean(axis=0), 0.5, atol=0.05)


def test_training_lowers_the_reconstruction_loss(fitted):
    assert fitted.history_["loss_after_finetuning"] < fitted.history_["loss_before_finetuning"]
    for losses in fitted.history_["pretrain"]:
        assert losses[-1] < losses[0]


def test_numpy_inference_matches_the_keras_encoder(fitted, data):
    X, _ = data
    keras_input = X.reshape(len(X), -1) if fitted.arch == "dense" else X  # the dense encoder takes pixel vectors
    np.testing.assert_allclose(fitted.transform(X), fitted.encoder_.predict(keras_input, verbose=0), atol=1e-5)


def test_codes_of_the_same_class_are_nearer(fitted, data):
    X, labels = data
    bits = fitted.encode(X).astype(int)
    distances = (bits[:, None, :] != bits[None, :, :]).sum(axis=2)
    same = labels[:, None] == labels[None, :]
    off_diagonal = ~np.eye(len(X), dtype=bool)
    assert distances[same & off_diagonal].mean() < distances[~same].mean() - 0.5


def test_saved_model_loads_by_its_architecture(fitted, data, tmp_path):
    X, _ = data
    params = fitted.save(tmp_path)
    assert params["arch"] == fitted.arch
    loaded = load_model(tmp_path, params)
    assert type(loaded) is type(fitted)
    np.testing.assert_array_equal(loaded.encode(X), fitted.encode(X))


def test_conv_model_refuses_sides_that_pooling_cannot_halve():
    X = np.zeros((8, 12, 12, 3), dtype=np.float32)
    with pytest.raises(SemhashError, match="divide by 8"):
        ConvStackedAutoencoder(filters=(2, 2, 2), **TINY).fit(X)


def test_conv_model_refuses_flat_rows():
    with pytest.raises(SemhashError, match="height, width, channels"):
        ConvStackedAutoencoder(**TINY).fit(np.zeros((8, 48), dtype=np.float32))


def test_the_kept_decoder_rebuilds_images_as_training_measured(fitted, data, tmp_path):
    X, _ = data
    rebuilt = fitted.reconstruct(X)
    assert rebuilt.shape == X.shape
    # Keras scored the unrolled network (noise off) by the mean squared error against what it rebuilds
    # (X, or X mixed with its neighbours): the numpy decoder must meet the same loss.
    targets = fitted._targets(X)
    targets = X if targets is None else targets
    assert np.mean(np.square(rebuilt - targets)) == pytest.approx(fitted.history_["loss_after_finetuning"], rel=1e-3)
    loaded = load_model(tmp_path, fitted.save(tmp_path))
    assert (tmp_path / "decoder.npz").is_file()
    np.testing.assert_allclose(loaded.reconstruct(X), rebuilt, atol=1e-5)


def test_without_a_kept_decoder_nothing_is_stored_and_the_codes_are_the_same(data, tmp_path):
    X, _ = data
    settings = {"hidden": (32,), "output_loss": "mse", "binarize": "median", "neighbour_metric": "euclidean",
                "members": 1, **TINY}  # one autoencoder either way: members keep no decoder
    kept = StackedAutoencoder(keep_decoder=True, **settings).fit(X)
    plain = StackedAutoencoder(**settings).fit(X)
    np.testing.assert_array_equal(kept.encode(X), plain.encode(X))
    loaded = load_model(tmp_path, plain.save(tmp_path))
    assert not (tmp_path / "decoder.npz").exists() and not loaded.can_reconstruct
    with pytest.raises(SemhashError, match="kept no decoder"):
        loaded.reconstruct(X)


def test_pixel_features_invert_to_the_images():
    pixels = np.random.default_rng(0).integers(0, 256, size=(5, 8, 8, 3)).astype(np.uint8)
    features = PixelFeatures(size=(8, 8)).fit(pixels)
    np.testing.assert_array_equal(features.inverse_transform(features.transform(pixels)), pixels)
