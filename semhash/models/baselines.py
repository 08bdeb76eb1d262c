"""Hashing baselines from ../shared/PROTOCOL.md: LSH, PCAH and PCA-ITQ.

Each learns a linear projection through the training mean and encodes a row as the signs of
its projection: bit set where (x - mean) @ projection > 0. They take dense arrays or scipy
sparse matrices (TF-IDF) and never densify a sparse matrix: the mean is subtracted after
the product. Fitted attributes: `mean_` (n_features,) and `projection_` (n_features, bits).
"""

import numpy as np

from ..errors import SemhashError

CHUNK_ROWS = 4096
# Above this many features PCA runs ARPACK on the implicitly centred matrix; at or below it,
# an eigendecomposition of the covariance (exact and fast when rows far outnumber features).
# A 10,000-term covariance would take 800 MB.
COVARIANCE_MAX_FEATURES = 4096


def _check_bits(bits):
    if not (isinstance(bits, (int, np.integer)) and bits >= 1):
        raise SemhashError(f"bits must be a positive integer, not {bits!r}")


def _project(X, mean, projection):
    """(X - mean) @ projection, a block of rows at a time, without densifying a sparse X."""
    offset = mean @ projection
    projected = np.empty((X.shape[0], projection.shape[1]))
    for start in range(0, X.shape[0], CHUNK_ROWS):
        projected[start : start + CHUNK_ROWS] = X[start : start + CHUNK_ROWS] @ projection - offset
    return projected


def _principal_components(X, n_components, seed):
    """(mean, directions (n_features, n_components)) of X's top principal components.

    Exact solvers only, in float64, so that the codes depend on no randomized approximation
    and a rank too low for the bits shows; each direction's sign makes its largest coordinate
    positive (scikit-learn's convention), so dense and sparse copies of the same data give
    the same codes.
    """
    from sklearn.decomposition import PCA

    n_rows, n_features = X.shape
    limit = min(n_rows - 1, n_features)
    if n_components > limit:
        raise SemhashError(
            f"{n_components} bits need {n_components} principal components, but {n_rows} rows of "
            f"{n_features} features have at most {limit}; use at most {limit} bits or more data"
        )
    arpack = n_features > COVARIANCE_MAX_FEATURES and n_components < n_features
    pca = PCA(n_components, svd_solver="arpack" if arpack else "covariance_eigh", random_state=seed)
    pca.fit(X.astype(np.float64, copy=False))
    variances = pca.explained_variance_
    rank = int(np.count_nonzero(variances > variances[0] * max(X.shape) * np.finfo(np.float64).eps))
    if rank < n_components:
        raise SemhashError(
            f"the training data spans only {rank} dimensions once centred, too few for "
            f"{n_components} bits; use at most {rank} bits"
        )
    return pca.mean_, pca.components_.T


def _signs(projected):
    """The codes of projected rows as -1 and +1, +1 where the bit is set (projection > 0)."""
    return np.where(projected > 0, 1.0, -1.0)


def _quantization_loss(projected):
    """||B - V||^2 for the codes B = sign(V): how far the projected rows V are from their codes."""
    return float(np.sum((_signs(projected) - projected) ** 2))


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
        return _project(X, self.mean_, self.projection_) > 0

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
        self.mean_, self.projection_ = _principal_components(X, self.bits, self.seed)
        return self


class PCAITQ(_LinearHash):
    """PCA then iterative quantization (Gong and Lazebnik, 2011).

    ITQ rotates the top `bits` principal components so that the projected rows V lie close
    to their binary codes: starting from a random orthogonal rotation R (from `seed`), it
    alternates B = sign(VR) with the R that minimizes ||B - VR||^2 (from the SVD of V'B),
    `n_iter` times. Fitted attributes beside the shared ones: `rotation_` (bits, bits) and
    `quantization_loss_` (n_iter + 1,), the loss ||sign(VR) - VR||^2 from the initial rotation
    to the last; it never increases.
    """

    def __init__(self, bits=64, n_iter=50, seed=0):
        super().__init__(bits, seed)
        self.n_iter = n_iter

    def fit(self, X):
        _check_bits(self.bits)
        self.mean_, components = _principal_components(X, self.bits, self.seed)
        projected = _project(X, self.mean_, components)
        rng = np.random.default_rng(self.seed)
        rotation, _ = np.linalg.qr(rng.standard_normal((self.bits, self.bits)))
        rotated = projected @ rotation
        losses = [_quantization_loss(rotated)]
        for _ in range(self.n_iter):
            left, _, right = np.linalg.svd(projected.T @ _signs(rotated))
            rotation = left @ right
            rotated = projected @ rotation
            losses.append(_quantization_loss(rotated))
        self.rotation_ = rotation
        self.quantization_loss_ = np.array(losses)
        self.projection_ = components @ rotation
        return self
