"""Patch features: images described by the small patterns they are made of, learned from them.

A single unsupervised layer in the manner of Coates, Lee and Ng ("An analysis of single-layer
networks in unsupervised feature learning", 2011): small patches are cut from the indexed
images, normalized for brightness and contrast, whitened, and clustered by k-means. An image
is then described by how near each of its patches lies to each centroid ("triangle"
activation), summed over each cell of a grid laid over the image. Each row of these sums is
standardized, scaled to unit length and projected on its principal axes. Nothing is pretrained
elsewhere: the centroids and the axes are learned from the indexed images alone and stored with
the index.

On CIFAR-10, exact Euclidean search over these features (800 centroids, a 4 x 4 grid, 512 axes)
scores .357 mAP@1000, against .325 summed over quadrants and standardized (the features before
the grid) and .215 over pixels (docs/RESULTS.md): a patch's nearest centroids say "edge at this
angle" or "green texture" whatever the exact pixel values.
"""

from pathlib import Path

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..errors import SemhashError
from ..progress import progress_bar
from .pixels import checked_images

PATCHES_FILE = "patches.npz"
CONTRAST_FLOOR = 10.0  # added to each patch's variance (pixel values 0-255), as Coates et al. do
CHUNK_VALUES = 1 << 25  # activations held at once while describing images (128 MB of float32)
# The column statistics and principal axes are found on a seeded sample of at most this many
# images: on CIFAR-10, axes from 10,000 of the 50,000 images keep exact search's .357 mAP@1000.
AXES_IMAGES = 10_000


class PatchFeatures:
    """Turns uint8 RGB images (rows, height, width, 3) into float32 rows of `components` values.

    size: (height, width) that images are read at. patch: the side of the square patches;
    stride: the step between patches when describing an image. centroids: the k of k-means.
    grid: the activations are summed over grid x grid cells of the image (2: its quadrants).
    components: each row of sums is standardized, scaled to unit length, and projected on its
    first `components` principal axes, scaled so that a value's mean square is 1. 0 keeps the
    standardized sums themselves, grid x grid x centroids columns (as indexes made before the
    grid have them). samples: patches drawn from the fitted images to learn the whitening and
    the centroids. whitening: the ZCA regularizer added to each eigenvalue of the patches'
    covariance. (Measured on CIFAR-10, exact Euclidean mAP@1000: quadrants .325, quadrants at
    unit length .336, a 4 x 4 grid at unit length .356, and projected on 512 axes .357.)

    Fitted attributes: `patch_mean_`, `whitening_` (the ZCA matrix), `centroids_`,
    `mean_` and `std_` (of each column of sums), `axes_mean_`, `axes_` and `axes_scale_` (the
    projection; empty with components 0), `n_images_`.
    """

    kind = "patches"

    def __init__(self, size=(32, 32), patch=6, stride=2, centroids=800, grid=4, components=512, samples=400_000,
                 whitening=0.1, seed=0, verbose=False):
        self.size = size
        self.patch = patch
        self.stride = stride
        self.centroids = centroids
        self.grid = grid
        self.components = components
        self.samples = samples
        self.whitening = whitening
        self.seed = seed
        self.verbose = verbose

    def _check_params(self):
        if not (isinstance(self.patch, int) and 1 <= self.patch <= min(self.size)):
            raise SemhashError(f"patch must be a whole number between 1 and the image side {min(self.size)}, "
                               f"not {self.patch!r}")
        for name in ("stride", "centroids", "samples", "grid"):
            value = getattr(self, name)
            if not (isinstance(value, int) and value >= 1):
                raise SemhashError(f"{name} must be a whole number, 1 or more, not {value!r}")
        if not (isinstance(self.components, int) and self.components >= 0):
            raise SemhashError(f"components must be a whole number, 0 or more, not {self.components!r}")
        positions = (min(self.size) - self.patch) // self.stride + 1
        if self.grid > positions:
            raise SemhashError(f"grid must be at most {positions}, the patches across an image, not {self.grid}")

    def fit(self, images):
        self.fit_transform(images)
        return self

    def fit_transform(self, images):
        """Learn whitening and centroids from patches of the images, then describe them all."""
        from sklearn.cluster import KMeans

        images = checked_images(images, self.size)
        self._check_params()
        if len(images) == 0:
            raise SemhashError("no images to fit patch features on; add readable images")
        side = self.patch
        windows = sliding_window_view(images, (side, side), axis=(1, 2))  # rows, top, left, channel, side, side
        positions = np.prod(windows.shape[:3])
        if positions <= self.samples:  # a small collection: every patch it has
            drawn = np.arange(positions)
        else:
            drawn = np.random.default_rng(self.seed).integers(0, positions, self.samples)
        chosen = np.unravel_index(drawn, windows.shape[:3])
        patches = _normalized(windows[chosen].transpose(0, 2, 3, 1).reshape(len(drawn), -1))
        self.patch_mean_ = patches.mean(axis=0)
        values, vectors = np.linalg.eigh(np.cov(patches - self.patch_mean_, rowvar=False))
        self.whitening_ = (vectors / np.sqrt(np.maximum(values, 0) + self.whitening) @ vectors.T).astype(np.float32)
        patches = (patches - self.patch_mean_) @ self.whitening_
        # A small collection may hold fewer distinct patches than centroids; a large one is
        # sampled at random, where repeats are too rare to matter (and costly to count).
        distinct = len(np.unique(patches, axis=0)) if positions <= self.samples else len(patches)
        kmeans = KMeans(min(self.centroids, distinct), n_init=1, max_iter=10, random_state=self.seed)
        self.centroids_ = kmeans.fit(patches).cluster_centers_.astype(np.float32)
        del patches
        self.n_images_ = len(images)
        if not self.components:
            sums = self._sums(images, "patch features")
            self._fit_columns(sums)
            return self._finished(sums)
        sample = images
        if len(images) > AXES_IMAGES:
            sample = images[np.sort(np.random.default_rng(self.seed).choice(len(images), AXES_IMAGES, replace=False))]
        sums = self._sums(sample, "patch features (sample)")
        self._fit_columns(sums)
        rows = self._unit_rows(sums)
        del sums
        self._fit_axes(rows)
        return self._described(images, "patch features")

    def _fit_columns(self, sums):
        self.mean_ = sums.mean(axis=0)
        self.std_ = sums.std(axis=0)
        self.std_[self.std_ < 1e-6] = 1.0

    def _fit_axes(self, rows):
        """The first `components` principal axes of the unit rows (a seeded randomized SVD)."""
        from sklearn.utils.extmath import randomized_svd

        self.axes_mean_ = rows.mean(axis=0)
        rows -= self.axes_mean_
        n_axes = min(self.components, *rows.shape)
        _, _, axes = randomized_svd(rows, n_axes, n_iter=4, random_state=self.seed)
        self.axes_ = axes.astype(np.float32)
        projected = rows @ self.axes_.T
        self.axes_scale_ = np.float32(np.sqrt(np.square(projected).mean()) or 1.0)

    def transform(self, images):
        """Standardized float32 rows, one an image."""
        if not hasattr(self, "centroids_"):
            raise SemhashError("these PatchFeatures are not fitted yet; call fit first")
        images = checked_images(images, self.size)
        label = "patch features" if len(images) > 1 else None
        return self._described(images, label) if self.components else self._finished(self._sums(images, label))

    def _finished(self, sums):
        sums -= self.mean_
        sums /= self.std_
        return sums

    def _unit_rows(self, sums):
        rows = self._finished(sums)
        rows /= np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)
        return rows

    def _described(self, images, progress_label):
        """The projected rows of the images, a chunk at a time, so no chunk's sums outlive it."""
        chunk = max(1, CHUNK_VALUES // (self.grid * self.grid * len(self.centroids_)))
        out = np.empty((len(images), len(self.axes_)), dtype=np.float32)
        starts = range(0, len(images), chunk)
        with progress_bar(progress_label, starts, show=bool(self.verbose and progress_label)) as bar:
            for start in bar:
                rows = self._unit_rows(self._sums(images[start : start + chunk], None))
                rows -= self.axes_mean_
                out[start : start + len(rows)] = rows @ self.axes_.T / self.axes_scale_
        return out

    def _sums(self, images, progress_label):
        """Each image's triangle activations summed over the cells of its grid, a chunk at a time."""
        side, stride = self.patch, self.stride
        windows = sliding_window_view(images, (side, side), axis=(1, 2))[:, ::stride, ::stride]
        height, width = windows.shape[1:3]
        centroids = self.centroids_
        squared_centroids = np.square(centroids).sum(axis=1)
        chunk = max(1, CHUNK_VALUES // (height * width * len(centroids)))
        cells = [(slice(*_cell(top, height, self.grid)), slice(*_cell(left, width, self.grid)))
                 for top in range(self.grid) for left in range(self.grid)]
        out = np.empty((len(images), len(cells) * len(centroids)), dtype=np.float32)
        starts = range(0, len(images), chunk)
        with progress_bar(progress_label, starts, show=bool(self.verbose and progress_label)) as bar:
            for start in bar:
                part = windows[start : start + chunk]
                patches = _normalized(part.transpose(0, 1, 2, 4, 5, 3).reshape(-1, side * side * 3))
                patches = (patches - self.patch_mean_) @ self.whitening_
                distances = np.square(patches).sum(axis=1, keepdims=True) - 2 * (patches @ centroids.T)
                distances += squared_centroids
                np.sqrt(np.maximum(distances, 0, out=distances), out=distances)
                active = np.maximum(distances.mean(axis=1, keepdims=True) - distances, 0, out=distances)
                active = active.reshape(len(part), height, width, len(centroids))
                out[start : start + len(part)] = np.concatenate(
                    [active[:, rows, columns].sum(axis=(1, 2)) for rows, columns in cells], axis=1
                )
        return out

    def get_params(self):
        return {"type": self.kind, "size": list(self.size), "patch": self.patch, "stride": self.stride,
                "centroids": self.centroids, "grid": self.grid, "components": self.components,
                "samples": self.samples, "whitening": self.whitening, "seed": self.seed}

    def save(self, folder):
        """Write the whitening, centroids, column statistics and axes; return the manifest's settings."""
        axes = {"axes_mean": self.axes_mean_, "axes": self.axes_, "axes_scale": self.axes_scale_} if self.components else {}
        np.savez(Path(folder) / PATCHES_FILE, patch_mean=self.patch_mean_, whitening=self.whitening_,
                 centroids=self.centroids_, mean=self.mean_, std=self.std_, **axes)
        width = len(self.axes_) if self.components else self.grid * self.grid * len(self.centroids_)
        return {**self.get_params(), "n_centroids": len(self.centroids_), "n_features": width,
                "n_images": self.n_images_}

    @classmethod
    def load(cls, folder, settings):
        """Fitted features from `save`'s folder and settings. Settings written before the grid (no
        "grid" or "components") describe quadrant sums, standardized: grid 2, components 0."""
        features = cls(size=tuple(settings["size"]), patch=settings["patch"], stride=settings["stride"],
                       centroids=settings["centroids"], grid=settings.get("grid", 2),
                       components=settings.get("components", 0), samples=settings["samples"],
                       whitening=settings["whitening"], seed=settings["seed"])
        with np.load(Path(folder) / PATCHES_FILE, allow_pickle=False) as arrays:
            features.patch_mean_ = arrays["patch_mean"]
            features.whitening_ = arrays["whitening"]
            features.centroids_ = arrays["centroids"]
            features.mean_ = arrays["mean"]
            features.std_ = arrays["std"]
            if features.components:
                features.axes_mean_ = arrays["axes_mean"]
                features.axes_ = arrays["axes"]
                features.axes_scale_ = arrays["axes_scale"][()]
        features.n_images_ = settings["n_images"]
        return features


def _cell(number, positions, grid):
    """(start, stop) of cell `number` of `grid` along a side of `positions` patches."""
    return -(-number * positions // grid), -(-(number + 1) * positions // grid)


def _normalized(patches):
    """float32 patches (rows of pixel values 0-255), each shifted to mean 0 and scaled by its
    contrast, so that a patch is described by its pattern, not its brightness."""
    patches = patches.astype(np.float32)
    patches -= patches.mean(axis=1, keepdims=True)
    patches /= np.sqrt(np.square(patches).mean(axis=1, keepdims=True) + CONTRAST_FLOOR)
    return patches
