import numpy as np
import pytest

from semhash.errors import SemhashError
from semhash.features.pixels import PixelFeatures


def images(rows=20, size=8, seed=0):
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, size=(rows, size, size, 3), dtype=np.uint8)
    pixels[..., 0] //= 4  # a dark red channel, so the channels differ
    return pixels


def test_each_channel_is_standardized_over_the_fitted_images():
    X = PixelFeatures(size=(8, 8)).fit_transform(images())
    assert X.dtype == np.float32 and X.shape == (20, 8, 8, 3)
    np.testing.assert_allclose(X.mean(axis=(0, 1, 2)), 0, atol=1e-5)
    np.testing.assert_allclose(X.std(axis=(0, 1, 2)), 1, atol=1e-4)


def test_without_standardizing_pixels_are_scaled_to_unit_range():
    pixels = images()
    X = PixelFeatures(size=(8, 8), standardize=False).fit_transform(pixels)
    np.testing.assert_allclose(X, pixels / 255, atol=1e-7)


def test_saved_statistics_scale_a_query_as_the_database(tmp_path):
    fitted = PixelFeatures(size=(8, 8)).fit(images())
    settings = fitted.save(tmp_path)
    loaded = PixelFeatures.load(tmp_path, settings)
    query = images(rows=1, seed=1)
    np.testing.assert_array_equal(loaded.transform(query), fitted.transform(query))
    assert settings == {"type": "pixels", "size": [8, 8], "standardize": True, "n_images": 20}


@pytest.mark.parametrize("bad", [np.zeros((2, 8, 8, 3), dtype=np.float32), np.zeros((2, 16, 16, 3), dtype=np.uint8)])
def test_images_of_the_wrong_type_or_size_are_refused(bad):
    with pytest.raises(SemhashError, match="expected uint8 images shaped"):
        PixelFeatures(size=(8, 8)).fit(bad)
