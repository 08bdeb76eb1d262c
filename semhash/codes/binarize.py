"""Turning real values into bits: a cut at each column's median, PCA and an ITQ rotation, and
the hash centres that supervised codes are trained towards.

A row's bits are set where its centred, projected values are positive. Everything here is
numpy (scikit-learn for PCA), deterministic for a seed, and shared by the autoencoder (which
binarizes its code layer) and the linear baselines (which binarize their input).
"""

import numpy as np

from ..errors import SemhashError

CHUNK_ROWS = 4096
# Above this many features PCA runs ARPACK on the implicitly centred matrix; at or below it,
# an eigendecomposition of the covariance (exact and fast when rows far outnumber features).
# A 10,000-term covariance would take 800 MB.
COVARIANCE_MAX_FEATURES = 4096
ITQ_ITERATIONS = 50  # enough for the loss to settle (Gong and Lazebnik stop at 50)


def median_thresholds(values):
    """Each column's median over the rows: cutting there sets each bit on half of them."""
    return np.median(values, axis=0)


def cut(values, thresholds, rotation):
    """Bits (bool, rows by bits) set where (values - thresholds) @ rotation > 0."""
    return (values - thresholds) @ rotation > 0


def project(X, mean, projection):
    """(X - mean) @ projection, a block of rows at a time, without densifying a sparse X."""
    offset = mean @ projection
    projected = np.empty((X.shape[0], projection.shape[1]))
    for start in range(0, X.shape[0], CHUNK_ROWS):
        projected[start : start + CHUNK_ROWS] = X[start : start + CHUNK_ROWS] @ projection - offset
    return projected


def principal_components(X, n_components, seed, at_most=False):
    """(mean, directions (n_features, n_components)) of X's top principal components.

    Exact solvers only, in float64, so that the codes depend on no randomized approximation
    and a rank too low for the bits shows; each direction's sign makes its largest coordinate
    positive (scikit-learn's convention), so dense and sparse copies of the same data give
    the same codes. at_most: return fewer directions where X spans fewer, instead of refusing.
    """
    from sklearn.decomposition import PCA

    n_rows, n_features = X.shape
    limit = min(n_rows - 1, n_features)
    if at_most:
        n_components = min(n_components, limit)
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
    if rank < n_components and not at_most:
        raise SemhashError(
            f"the training data spans only {rank} dimensions once centred, too few for "
            f"{n_components} bits; use at most {rank} bits"
        )
    return pca.mean_, pca.components_[:rank].T


def signs(projected):
    """The codes of projected rows as -1 and +1, +1 where the bit is set (projection > 0)."""
    return np.where(projected > 0, 1.0, -1.0)


def quantization_loss(projected):
    """||B - V||^2 for the codes B = sign(V): how far the projected rows V are from their codes."""
    return float(np.sum((signs(projected) - projected) ** 2))


def itq_rotation(projected, n_iter, seed):
    """Iterative quantization (Gong and Lazebnik, 2011): the orthogonal rotation R that brings
    the projected rows V close to their binary codes, and the loss ||sign(VR) - VR||^2 at each
    step (n_iter + 1 values, from the initial rotation to the last; it never increases).

    Starting from a random orthogonal rotation (from `seed`), it alternates B = sign(VR) with
    the R that minimizes ||B - VR||^2 (from the SVD of V'B), `n_iter` times.
    """
    bits = projected.shape[1]
    rotation, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((bits, bits)))
    rotated = projected @ rotation
    losses = [quantization_loss(rotated)]
    for _ in range(n_iter):
        left, _, right = np.linalg.svd(projected.T @ signs(rotated))
        rotation = left @ right
        rotated = projected @ rotation
        losses.append(quantization_loss(rotated))
    return rotation, np.array(losses)


def pca_itq(X, bits, n_iter, seed):
    """(mean, components, rotation, losses): X's top `bits` principal components, rotated by ITQ;
    a row's bits are set where (x - mean) @ components @ rotation > 0. SemhashError where X has
    too few rows or too low a rank for the bits."""
    mean, components = principal_components(X, bits, seed)
    rotation, losses = itq_rotation(project(X, mean, components), n_iter, seed)
    return mean, components, rotation, losses


def hash_centres(n_labels, bits, seed=0):
    """One target code per label, 0s and 1s (n_labels, bits), far apart, as central
    similarity quantization (Yuan et al.) chooses them: rows of a Hadamard matrix and their
    complements, any two at least bits/2 apart, where bits is a power of two and there are
    at most 2 * bits labels; otherwise bits drawn at random with `seed`, about bits/2 apart."""
    if bits & (bits - 1) == 0 and n_labels <= 2 * bits:
        from scipy.linalg import hadamard

        matrix = hadamard(bits)
        return (np.vstack([matrix, -matrix])[:n_labels] > 0).astype(np.float32)
    return (np.random.default_rng(seed).random((n_labels, bits)) < 0.5).astype(np.float32)
