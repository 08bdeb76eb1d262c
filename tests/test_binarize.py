"""Turning real values into bits: median cuts, PCA with ITQ, hash centres."""

import numpy as np

from semhash.codes import binarize


def test_median_thresholds_set_each_bit_on_half_the_rows():
    values = np.random.default_rng(0).normal(size=(100, 6)) * np.arange(1, 7) + np.arange(6)
    bits = binarize.cut(values, binarize.median_thresholds(values), np.eye(6))
    assert bits.dtype == bool and bits.shape == (100, 6)
    np.testing.assert_array_equal(bits.mean(axis=0), 0.5)


def test_itq_rotation_is_orthogonal_and_lowers_the_quantization_loss():
    projected = np.random.default_rng(1).normal(size=(300, 8)) * np.linspace(3, 1, 8)
    rotation, losses = binarize.itq_rotation(projected, n_iter=20, seed=0)
    np.testing.assert_allclose(rotation.T @ rotation, np.eye(8), atol=1e-10)
    assert len(losses) == 21 and np.all(np.diff(losses) <= 1e-9 * losses[0])
    assert losses[-1] == binarize.quantization_loss(projected @ rotation)
    again, _ = binarize.itq_rotation(projected, n_iter=20, seed=0)
    np.testing.assert_array_equal(again, rotation)


def test_pca_itq_codes_are_the_signs_of_the_rotated_components():
    X = np.random.default_rng(2).normal(size=(200, 12)) + 4
    mean, components, rotation, _ = binarize.pca_itq(X, 4, binarize.ITQ_ITERATIONS, seed=0)
    assert mean.shape == (12,) and components.shape == (12, 4) and rotation.shape == (4, 4)
    projected = binarize.project(X, mean, components)
    np.testing.assert_allclose(projected, (X - mean) @ components, atol=1e-10)
    np.testing.assert_array_equal(binarize.cut(X, mean, components @ rotation), projected @ rotation > 0)


def test_hash_centres_are_far_apart():
    def distances(centres):
        pairs = (centres[:, None, :] != centres[None, :, :]).sum(axis=2)
        return pairs[np.triu_indices(len(centres), 1)]

    hadamard = binarize.hash_centres(20, 16)
    assert hadamard.shape == (20, 16) and set(np.unique(hadamard)) == {0.0, 1.0}
    assert distances(hadamard).min() >= 8  # rows of a Hadamard matrix and their complements
    assert distances(binarize.hash_centres(32, 16)).min() == 8
    drawn = binarize.hash_centres(40, 16, seed=3)  # more labels than 2 x bits: drawn at random, seeded
    np.testing.assert_array_equal(drawn, binarize.hash_centres(40, 16, seed=3))
    assert len(np.unique(drawn, axis=0)) == 40
    assert binarize.hash_centres(5, 24).shape == (5, 24)  # bits not a power of two
