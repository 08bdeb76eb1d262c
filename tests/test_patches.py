"""Patch features: k-means centroids of whitened patches, triangle activations by grid cell, principal axes."""

import numpy as np
import pytest

from semhash.errors import SemhashError
from semhash.features import patches
from semhash.features.patches import CONTRAST_FLOOR, PatchFeatures


def striped(per_class=12, size=12, seed=0):
    """Two classes that pixels tell apart poorly: stripes across or down, of random greys,
    width and phase, with a little noise. Their patches differ in orientation, whatever the greys."""
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for label in (0, 1):
        for _ in range(per_class):
            width, phase = rng.integers(2, 4), rng.integers(0, 4)
            stripes = ((np.arange(size) + phase) // width) % 2 == 1
            mask = np.broadcast_to(stripes[:, None] if label == 0 else stripes[None, :], (size, size))
            colours = rng.integers(0, 256, (2, 1)) * np.ones((1, 3), dtype=int)  # two greys
            image = np.where(mask[..., None], colours[0], colours[1]) + rng.integers(-5, 5, (size, size, 3))
            images.append(np.clip(image, 0, 255).astype(np.uint8))
            labels.append(label)
    return np.stack(images), np.array(labels)


def naive_description(features, image):
    """The activations of one image by plain loops, as Coates et al. describe them."""
    side, stride = features.patch, features.stride
    tops = range(0, image.shape[0] - side + 1, stride)
    lefts = range(0, image.shape[1] - side + 1, stride)
    k = len(features.centroids_)
    grid = np.zeros((len(tops), len(lefts), k))
    for i, top in enumerate(tops):
        for j, left in enumerate(lefts):
            patch = image[top : top + side, left : left + side].astype(np.float64).ravel()
            patch = (patch - patch.mean()) / np.sqrt(patch.var() + CONTRAST_FLOOR)
            white = (patch - features.patch_mean_) @ features.whitening_
            distances = np.sqrt(((white - features.centroids_) ** 2).sum(axis=1))
            grid[i, j] = np.maximum(distances.mean() - distances, 0)
    if features.grid == 2:  # the quadrants, split as Coates et al. split them
        rows, columns = (len(tops) + 1) // 2, (len(lefts) + 1) // 2
        return np.concatenate([grid[:rows, :columns].sum((0, 1)), grid[:rows, columns:].sum((0, 1)),
                               grid[rows:, :columns].sum((0, 1)), grid[rows:, columns:].sum((0, 1))])
    cuts = [np.array_split(np.arange(n), features.grid) for n in grid.shape[:2]]
    return np.concatenate([grid[rows][:, columns].sum((0, 1)) for rows in cuts[0] for columns in cuts[1]])


@pytest.mark.parametrize("grid", [2, 3])
def test_features_match_the_plain_loops_and_are_standardized(grid):
    images, _ = striped()
    features = PatchFeatures(size=(12, 12), patch=4, stride=2, centroids=10, grid=grid, components=0)
    X = features.fit_transform(images)
    assert X.dtype == np.float32 and X.shape == (24, grid * grid * 10)
    np.testing.assert_allclose(X.mean(axis=0), 0, atol=1e-4)
    assert np.allclose(X.std(axis=0)[features.std_ != 1], 1, atol=1e-3)
    described = X * features.std_ + features.mean_
    for row in (0, 13):
        np.testing.assert_allclose(described[row], naive_description(features, images[row]), rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(features.transform(images), X, atol=1e-4)


@pytest.mark.parametrize("sample", [10, 1000])
def test_rows_are_projected_on_the_principal_axes_of_their_unit_length_sums(monkeypatch, sample):
    """The projection keeps the unit rows' distances (all axes kept here); the axes may come from a sample."""
    monkeypatch.setattr(patches, "AXES_IMAGES", sample)
    images, _ = striped()
    whole = PatchFeatures(size=(12, 12), patch=4, stride=2, centroids=10, components=0).fit(images)
    projected = PatchFeatures(size=(12, 12), patch=4, stride=2, centroids=10, components=200)
    X = projected.fit_transform(images)
    assert X.dtype == np.float32 and X.shape == (24, min(24, sample))
    np.testing.assert_allclose(projected.transform(images), X, atol=1e-4)
    if sample < len(images):
        return
    np.testing.assert_allclose(np.square(X).mean(), 1, rtol=1e-3)
    unit = whole.transform(images)
    unit /= np.linalg.norm(unit, axis=1, keepdims=True)
    np.testing.assert_allclose(_distances(X) * projected.axes_scale_, _distances(unit), atol=1e-3)


def _distances(rows):
    return np.sqrt(((rows[:, None] - rows[None]) ** 2).sum(-1))


def test_patch_features_tell_apart_what_pixels_do_not():
    def nearest_neighbour_accuracy(X, labels):
        distances = _distances(X)
        np.fill_diagonal(distances, np.inf)
        return (labels[distances.argmin(axis=1)] == labels).mean()

    by_patches, by_pixels = [], []
    for seed in range(3):
        images, labels = striped(seed=seed)
        features = PatchFeatures(size=(12, 12), patch=3, stride=1, centroids=16, seed=seed)
        by_patches.append(nearest_neighbour_accuracy(features.fit_transform(images), labels))
        by_pixels.append(nearest_neighbour_accuracy(images.reshape(len(images), -1).astype(np.float32), labels))
    assert np.mean(by_patches) >= 0.85 and np.mean(by_patches) > np.mean(by_pixels) + 0.2


def test_saved_features_describe_a_query_alike_and_a_seed_fixes_them(tmp_path):
    images, _ = striped()
    fitted = PatchFeatures(size=(12, 12), patch=4, centroids=8, seed=3).fit(images)
    settings = fitted.save(tmp_path)
    assert settings["type"] == "patches" and settings["n_centroids"] == 8 and settings["n_images"] == 24
    assert settings["grid"] == 4 and settings["n_features"] == fitted.transform(images[:1]).shape[1]
    loaded = PatchFeatures.load(tmp_path, settings)
    np.testing.assert_array_equal(loaded.transform(images[:1]), fitted.transform(images[:1]))
    again = PatchFeatures(size=(12, 12), patch=4, centroids=8, seed=3).fit(images)
    np.testing.assert_array_equal(again.centroids_, fitted.centroids_)
    other = PatchFeatures(size=(12, 12), patch=4, centroids=8, seed=4).fit(images)
    assert not np.array_equal(other.centroids_, fitted.centroids_)


def test_large_collections_are_sampled_and_small_ones_give_fewer_centroids():
    images, _ = striped()
    sampled = PatchFeatures(size=(12, 12), patch=4, centroids=8, samples=100).fit(images)
    assert len(sampled.centroids_) == 8
    flat = np.full((3, 12, 12, 3), 90, dtype=np.uint8)  # every patch the same
    for components, width in ((0, 4 * 4), (512, 3)):  # 4 x 4 cells of the one centroid; 3 axes for 3 rows
        features = PatchFeatures(size=(12, 12), patch=4, centroids=8, components=components)
        X = features.fit_transform(flat)
        assert len(features.centroids_) == 1 and X.shape == (3, width) and np.isfinite(X).all()


def test_features_saved_before_the_grid_load_as_quadrant_sums(tmp_path):
    images, _ = striped()
    fitted = PatchFeatures(size=(12, 12), patch=4, centroids=8, grid=2, components=0).fit(images)
    settings = fitted.save(tmp_path)
    for key in ("grid", "components", "n_features"):
        del settings[key]
    loaded = PatchFeatures.load(tmp_path, settings)
    assert (loaded.grid, loaded.components) == (2, 0)
    np.testing.assert_array_equal(loaded.transform(images), fitted.transform(images))


@pytest.mark.parametrize("settings, message", [
    ({"patch": 13}, "patch must be"),
    ({"stride": 0}, "stride must be"),
    ({"centroids": 2.5}, "centroids must be"),
    ({"grid": 0}, "grid must be a whole number"),
    ({"grid": 5}, "grid must be at most 4, the patches across an image, not 5"),
    ({"components": -1}, "components must be a whole number, 0 or more"),
])
def test_bad_settings_are_refused(settings, message):
    images, _ = striped(per_class=2)
    with pytest.raises(SemhashError, match=message):
        PatchFeatures(size=(12, 12), **settings).fit(images)


def test_unfitted_empty_or_misshapen_input_is_refused():
    with pytest.raises(SemhashError, match="not fitted"):
        PatchFeatures(size=(12, 12)).transform(np.zeros((1, 12, 12, 3), dtype=np.uint8))
    with pytest.raises(SemhashError, match="no images"):
        PatchFeatures(size=(12, 12)).fit(np.zeros((0, 12, 12, 3), dtype=np.uint8))
    with pytest.raises(SemhashError, match="expected uint8 images"):
        PatchFeatures(size=(12, 12)).fit(np.zeros((2, 8, 8, 3), dtype=np.uint8))
