"""Hashing baselines from ../shared/PROTOCOL.md: LSH, PCAH and PCA-ITQ.

Each learns a linear projection through the training mean and encodes a row as the signs of
its projection: bit set where (x - mean) @ projection > 0. They take dense arrays or scipy
sparse matrices (TF-IDF) and never densify a sparse matrix: the mean is subtracted after
the product. Fitted attributes: `mean_` (n_features,) and `projection_` (n_features, bits).
"""

import numpy as np

from ..codes.binarize import ITQ_ITERATIONS, pca_itq, principal_components, project
from ..errors import SemhashError


def _check_bits(bits):
    if not (isinstance(bits, (int, np.integer)) and bits >= 1):
        raise SemhashError(f"bits must be a positive integer, not {bits!r}")


class _LinearHash:
    """The shared encoder: the signs of (x - mean_) @ projection_."""

    def __init__(self, bits=64, seed=0):
        self.bits = bits
        self.seed = seed

    def encode(self, X):
        """Binary codes (bool array, rows by bits)."""
        if not hasattr(self, "projection_"):
            raise SemhashError(f"this {type(self).__name__} is not fitted yet; call fit first")
        if X.shape[1] != len(self.mean_):
            raise SemhashError(f"input has {X.shape[1]} columns but the hash was fitted on {len(self.mean_)}")
        return project(X, self.mean_, self.projection_) > 0

    def fit_encode(self, X):
        return self.fit(X).encode(X)


class LSH(_LinearHash):
    """Locality-sensitive hashing: random Gaussian hyperplanes through the training mean."""

    def fit(self, X):
        _check_bits(self.bits)
        self.mean_ = np.asarray(X.mean(axis=0), dtype=np.float64).ravel()
        self.projection_ = np.random.default_rng(self.seed).standard_normal((X.shape[1], self.bits))
        return self


class PCAH(_LinearHash):
    """PCA hashing: the signs of the top `bits` principal components."""

    def fit(self, X):
        _check_bits(self.bits)
        self.mean_, self.projection_ = principal_components(X, self.bits, self.seed)
        return self


class PCAITQ(_LinearHash):
    """PCA then iterative quantization (Gong and Lazebnik, 2011; see `binarize.itq_rotation`).

    ITQ rotates the top `bits` principal components so that the projected rows V lie close
    to their binary codes, `n_iter` times from a random rotation (from `seed`). Fitted
    attributes beside the shared ones: `rotation_` (bits, bits) and `quantization_loss_`
    (n_iter + 1,), the loss ||sign(VR) - VR||^2 from the initial rotation to the last; it
    never increases.
    """

    def __init__(self, bits=64, n_iter=ITQ_ITERATIONS, seed=0):
        super().__init__(bits, seed)
        self.n_iter = n_iter

    def fit(self, X):
        _check_bits(self.bits)
        self.mean_, components, self.rotation_, self.quantization_loss_ = pca_itq(X, self.bits, self.n_iter, self.seed)
        self.projection_ = components @ self.rotation_
        return self
