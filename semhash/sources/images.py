"""Image files: folders of them read as re-iterable, streamed ImageBatch chunks, and single image
files read as a query or a result is, each cropped and resized alike, within limits."""

import collections
import functools
import hashlib
import io
import struct

import numpy as np
from PIL import Image, ImageOps

from ..errors import SemhashError
from .files import FileTooLarge, FolderSource, NotRegularFile, folder_root, open_regular, printable

ImageBatch = collections.namedtuple("ImageBatch", "pixels ids labels sources hashes", defaults=(None,))
ImageBatch.__doc__ = """A chunk of images: uint8 pixels (n, height, width, 3) in RGB, their ids, labels
(str or None) and JSON-ready sources, from which `read_sources` reads the same images again; for
image files, the sha256 of each file's bytes, by which an index tells a changed file."""
# A file that Pillow cannot decode fails in any of these ways, depending on its format and damage.
IMAGE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, struct.error, Image.DecompressionBombError)
# Images larger than this, once a JPEG is drafted down, are skipped before decoding: 50 megapixels
# is more than a 48-megapixel phone photo, and one decodes into 150 MB of RGB.
DEFAULT_SIZE = (32, 32)  # the side images are resized to, as CIFAR-10's are
MAX_IMAGE_PIXELS = 50_000_000
# Image files larger than this are skipped unread: room for an uncompressed RGBA image of
# MAX_IMAGE_PIXELS (200 MB) and its metadata.
MAX_IMAGE_BYTES = 256 * 2**20
@functools.cache
def image_suffixes():
    """The file suffixes of the formats Pillow can open."""
    return frozenset(suffix for suffix, name in Image.registered_extensions().items() if name in Image.OPEN)
def _fit(image, size):
    """RGB pixels of a Pillow image, cropped about its centre to the aspect of `size` (height,
    width) and resized to it; transparent parts are laid on white."""
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:
        image = Image.alpha_composite(Image.new("RGBA", image.size, "white"), image.convert("RGBA"))
    height, width = size
    return np.asarray(ImageOps.fit(image.convert("RGB"), (width, height), Image.Resampling.LANCZOS))
class TooManyPixels(ValueError):
    """An image with more pixels than the reader's limit, found before it is decoded."""
def _load(path, size, max_pixels=MAX_IMAGE_PIXELS, max_bytes=MAX_IMAGE_BYTES, follow_links=True):
    """(pixels, sha256 of the file's bytes) of one image file at `size`, upright as its EXIF
    orientation says. Only a regular file of at most `max_bytes` is read, and only an image of at
    most `max_pixels` is decoded."""
    with open_regular(path, max_bytes, follow_links) as file:
        data = file.read(max_bytes + 1)
    with Image.open(io.BytesIO(data)) as image:
        image.draft(None, (max(size), max(size)))  # large JPEGs decode at a reduced scale: much faster
        width, height = image.size
        if width * height > max_pixels:
            raise TooManyPixels(f"too many pixels: {width}x{height}, over the limit of {max_pixels:,}")
        return _fit(ImageOps.exif_transpose(image), size), hashlib.sha256(data).hexdigest()


def _reason(error):
    """A short phrase saying why an image could not be read; what comes before any ":" is counted."""
    if isinstance(error, TooManyPixels):
        return str(error)
    if isinstance(error, (NotRegularFile, FileTooLarge)):
        return error.strerror
    if isinstance(error, Image.DecompressionBombError):
        return f"too many pixels: {error}"
    if isinstance(error, Image.UnidentifiedImageError):
        return "not a readable image: Pillow cannot identify it"
    if isinstance(error, OSError) and error.strerror:
        return f"unreadable ({error.strerror})"
    if "truncated" in str(error).lower():
        return "truncated image"
    return f"not a readable image: {error}"
def read_image(path, size, max_pixels=MAX_IMAGE_PIXELS, max_bytes=MAX_IMAGE_BYTES):
    """The pixels (height, width, 3) of one image file, prepared as ImageFolder prepares them."""
    try:
        return _load(path, size, max_pixels, max_bytes)[0]
    except (TooManyPixels, FileTooLarge, Image.DecompressionBombError) as error:
        raise SemhashError(f"cannot read {printable(path)}: {_reason(error)}; give a smaller image") from None
    except IMAGE_ERRORS as error:
        raise SemhashError(
            f"cannot read {printable(path)}: {_reason(error)}; give an image file Pillow can open"
        ) from None
class ImageFolder(FolderSource):
    """The image files under `root`, found recursively: every file with a suffix of a format Pillow
    opens, hidden files and folders left out. A file's id is its path relative to `root`, its label
    its first-level subfolder, if any. Images are cropped about the centre to the aspect of `size`
    (height, width) and resized to it. Files that cannot be decoded, files over `max_bytes`, images
    over `max_pixels` (checked before decoding), names that are not UTF-8 and links out of `root`
    (unless `follow_links`) are skipped, named through `on_warning` and listed in `skipped` after
    each pass."""

    kind = "image-folder"

    def __init__(self, root, size=DEFAULT_SIZE, on_warning=None, chunk=512, max_pixels=MAX_IMAGE_PIXELS,
                 max_bytes=MAX_IMAGE_BYTES, follow_links=False):
        self.root = folder_root(root, "images")
        self.size = tuple(size)
        self.on_warning = on_warning
        self.chunk = chunk
        self.max_pixels = max_pixels
        self.max_bytes = max_bytes
        self.follow_links = follow_links
        self.skipped = []

    def accepts(self, relative):
        """Whether a file at the path `relative` to the root has the suffix of an image format."""
        return relative.suffix.lower() in image_suffixes()

    def __iter__(self):
        self.skipped = []
        chunk = []
        for path, target, problem in self._found():
            if problem is not None:
                self._skip(path, problem)
                continue
            try:
                chunk.append((path, *_load(target, self.size, self.max_pixels, self.max_bytes, follow_links=False)))
            except IMAGE_ERRORS as error:
                self._skip(path, _reason(error))
                continue
            if len(chunk) == self.chunk:
                yield self._batch(chunk)
                chunk = []
        if chunk:
            yield self._batch(chunk)

    def describe(self):
        """What a manifest records about where the images came from."""
        return {"kind": self.kind, "root": str(self.root.resolve()), "size": list(self.size),
                "max_pixels": self.max_pixels, "follow_links": self.follow_links}

    def _batch(self, chunk):
        relatives = [path.relative_to(self.root) for path, _, _ in chunk]
        return ImageBatch(
            pixels=np.stack([pixels for _, pixels, _ in chunk]),
            ids=[relative.as_posix() for relative in relatives],
            labels=[relative.parts[0] if len(relative.parts) > 1 else None for relative in relatives],
            sources=[{"path": str(path.resolve())} for path, _, _ in chunk],
            hashes=[digest for _, _, digest in chunk],
        )
def fit_pixels(pixels, size):
    """`pixels` at `size`, resized as image files are when they differ."""
    return pixels if pixels.shape[:2] == tuple(size) else _fit(Image.fromarray(pixels), size)
