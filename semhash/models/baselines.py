"""Hashing baselines from ../shared/PROTOCOL.md: LSH, PCAH and PCA-ITQ.

Each learns a linear projection through the training mean and encodes a row as the signs of
its projection: bit set where (x - mean) @ projection > 0. They take dense arrays or scipy
sparse matrices (TF-IDF) and never densify a sparse matrix: the mean is subtracted after
the product; arrays of more than two axes (images) are taken a row an item. Fitted attributes:
`mean_` (n_features,) and `projection_` (n_features, bits).

PCA-ITQ is also a model an index can hold (see `models.selfcheck`): it saves to a folder, loads
without refitting, and gives the real values behind its bits for ranking ties.
"""

from pathlib import Path

import numpy as np

from ..codes.binarize import ITQ_ITERATIONS, pca_itq, principal_components, project
from ..errors import SemhashError

PCA_ITQ_WEIGHTS = "pca_itq.npz"
PCA_ITQ_FORMAT = 1  # the layout of PCA_ITQ_WEIGHTS, recorded in the manifest's model params


def _check_bits(bits):
    if not (isinstance(bits, (int, np.integer)) and bits >= 1):
        raise SemhashError(f"bits must be a positive integer, not {bits!r}")


class _LinearHash:
    """The shared encoder: the signs of (x - mean_) @ projection_."""

    def __init__(self, bits=64, seed=0):
        self.bits = bits
        self.seed = seed

    def projections(self, X):
        """The real values whose signs are the bits of X's codes (rows by bits)."""
        if not hasattr(self, "projection_"):
            raise SemhashError(f"this {type(self).__name__} is not fitted yet; call fit first")
        X = _rows(X)
        if X.shape[1] != len(self.mean_):
            raise SemhashError(f"input has {X.shape[1]} columns but the hash was fitted on {len(self.mean_)}")
        return project(X, self.mean_, self.projection_)

    def encode(self, X):
        """Binary codes (bool array, rows by bits)."""
        return self.projections(X) > 0

    def fit_encode(self, X, y=None):
        return self.fit(X).encode(X)


def _rows(X):
    """X with each item a row: images (items x height x width x channels) flattened."""
    return X.reshape(len(X), -1) if getattr(X, "ndim", 2) > 2 else X


class LSH(_LinearHash):
    """Locality-sensitive hashing: random Gaussian hyperplanes through the training mean."""

    def fit(self, X, y=None):
        _check_bits(self.bits)
        X = _rows(X)
        self.mean_ = np.asarray(X.mean(axis=0), dtype=np.float64).ravel()
        self.projection_ = np.random.default_rng(self.seed).standard_normal((X.shape[1], self.bits))
        return self


class PCAH(_LinearHash):
    """PCA hashing: the signs of the top `bits` principal components."""

    def fit(self, X, y=None):
        _check_bits(self.bits)
        self.mean_, self.projection_ = principal_components(_rows(X), self.bits, self.seed)
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

    arch = "pca-itq"  # how an index's manifest names it (see `autoencoder.load_model`)
    can_reconstruct = False

    def fit(self, X, y=None):
        _check_bits(self.bits)
        self.mean_, components, self.rotation_, self.quantization_loss_ = pca_itq(_rows(X), self.bits, self.n_iter,
                                                                                  self.seed)
        self.projection_ = components @ self.rotation_
        return self

    def get_params(self):
        return {"bits": self.bits, "n_iter": self.n_iter, "seed": self.seed}

    def save(self, folder):
        """Write the mean and the rotated projection as .npz; return the params `load` takes."""
        np.savez(Path(folder) / PCA_ITQ_WEIGHTS, mean=self.mean_, projection=self.projection_)
        return {"arch": self.arch, "format": PCA_ITQ_FORMAT, **self.get_params()}

    @classmethod
    def load(cls, folder, params):
        """The fitted hash from `save`'s folder and params, without refitting."""
        if params.get("format", PCA_ITQ_FORMAT) > PCA_ITQ_FORMAT:
            raise SemhashError(f"{folder} holds a PCA-ITQ model of format {params['format']}, which this semhash "
                               "does not know; upgrade semhash")
        model = cls(**{name: params[name] for name in ("bits", "n_iter", "seed") if name in params})
        with np.load(Path(folder) / PCA_ITQ_WEIGHTS, allow_pickle=False) as arrays:
            model.mean_, model.projection_ = arrays["mean"], arrays["projection"]
        return model
