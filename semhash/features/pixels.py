"""Pixel features: images as the network takes them, scaled and standardized per channel.

The per-channel mean and deviation are fitted on the indexed images and stored with the
index, so a query image is scaled exactly as the database was.
"""

from pathlib import Path

import numpy as np

from ..errors import SemhashError

PIXELS_FILE = "pixels.npz"


class PixelFeatures:
    """Turns uint8 RGB images (rows, height, width, 3) into float32 arrays of the same shape.

    Pixels are scaled to [0, 1], then each channel is shifted by its mean and divided by
    its standard deviation over the fitted images (`standardize=True`), so that no channel
    dominates the reconstruction loss.
    size: (height, width) that images are read at; stored so queries are read alike.
    Fitted attributes: `mean_` and `std_` (one value a channel), `n_images_`.
    """

    kind = "pixels"

    def __init__(self, size=(32, 32), standardize=True):
        self.size = size
        self.standardize = standardize

    def fit(self, images):
        """Learn each channel's mean and deviation from uint8 images, a chunk at a time."""
        images = checked_images(images, self.size)
        if len(images) == 0:
            raise SemhashError("no images to fit pixel features on; add readable images")
        channels = images.shape[-1]
        total = np.zeros(channels)
        squares = np.zeros(channels)
        for start in range(0, len(images), 4096):
            chunk = images[start : start + 4096].reshape(-1, channels).astype(np.float64) / 255
            total += chunk.sum(axis=0)
            squares += np.square(chunk).sum(axis=0)
        count = images.size // channels
        self.mean_ = (total / count).astype(np.float32)
        self.std_ = np.sqrt(np.maximum(squares / count - np.square(total / count), 0)).astype(np.float32)
        self.std_[self.std_ < 1e-6] = 1.0
        self.n_images_ = len(images)
        return self

    def transform(self, images):
        """Scaled (and standardized) float32 images, shaped as given."""
        images = checked_images(images, self.size)
        scaled = images.astype(np.float32) / 255
        if not self.standardize:
            return scaled
        if not hasattr(self, "mean_"):
            raise SemhashError("these PixelFeatures are not fitted yet; call fit first")
        scaled -= self.mean_
        scaled /= self.std_
        return scaled

    def fit_transform(self, images):
        return self.fit(images).transform(images)

    def inverse_transform(self, rows):
        """uint8 images from rows as `transform` gives them (a model's rebuilding of them, say),
        rounded and clipped to [0, 255]."""
        rows = np.asarray(rows, dtype=np.float32)
        if self.standardize:
            rows = rows * self.std_ + self.mean_
        return np.clip(np.rint(rows * 255), 0, 255).astype(np.uint8)

    def get_params(self):
        return {"type": self.kind, "size": list(self.size), "standardize": self.standardize}

    def save(self, folder):
        """Write the channel statistics to `folder`; return the settings for the manifest."""
        np.savez(Path(folder) / PIXELS_FILE, mean=self.mean_, std=self.std_)
        return {**self.get_params(), "n_images": self.n_images_}

    @classmethod
    def load(cls, folder, settings):
        """Fitted features from `save`'s folder and settings."""
        features = cls(size=tuple(settings["size"]), standardize=settings["standardize"])
        with np.load(Path(folder) / PIXELS_FILE, allow_pickle=False) as arrays:
            features.mean_ = arrays["mean"]
            features.std_ = arrays["std"]
        features.n_images_ = settings["n_images"]
        return features


def checked_images(images, size):
    """`images` as a uint8 array (rows, height, width, channels) at `size`, or a clear error."""
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:3] != tuple(size):
        raise SemhashError(
            f"expected uint8 images shaped (rows, {size[0]}, {size[1]}, channels), got {images.dtype} {images.shape}"
        )
    return images
