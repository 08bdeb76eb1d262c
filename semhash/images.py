"""Image corpora, CIFAR-10 (python or binary version, unpacked or archived) or folders of image
files: re-iterable, streamed in ImageBatch chunks; and single images read back for queries."""

import collections
import contextlib
import functools
import io
import itertools
import pickle
import struct
import tarfile
import zlib
from pathlib import Path, PurePosixPath

import numpy as np
from numpy._core.multiarray import _reconstruct
from PIL import Image, ImageOps

from .corpus import Skipped, snippet
from .errors import SemhashError
from .files import FileTooLarge, NotRegularFile, folder_root, open_regular, printable, walk

ImageBatch = collections.namedtuple("ImageBatch", "pixels ids labels sources")
ImageBatch.__doc__ = """A chunk of images: uint8 pixels (n, height, width, 3) in RGB, their ids, labels
(str or None) and JSON-ready sources, from which `read_sources` reads the same images again."""

CIFAR_SIZE = (32, 32)
CIFAR_PIXELS = 3 * 32 * 32
CIFAR_RECORD = 1 + CIFAR_PIXELS  # the binary version: a label byte, then the pixels
SPLITS = {"train": tuple(f"data_batch_{i}" for i in range(1, 6)), "test": ("test_batch",)}
SPLITS["all"] = SPLITS["train"] + SPLITS["test"]
# A file that Pillow cannot decode fails in any of these ways, depending on its format and damage.
IMAGE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, struct.error, Image.DecompressionBombError)
ARCHIVE_ERRORS = (tarfile.TarError, OSError, EOFError, zlib.error)
DETECT_SAMPLE = 200
# Images larger than this, once a JPEG is drafted down, are skipped before decoding: 50 megapixels
# is more than a 48-megapixel phone photo, and one decodes into 150 MB of RGB.
MAX_IMAGE_PIXELS = 50_000_000
# Image files larger than this are skipped unread: room for an uncompressed RGBA image of
# MAX_IMAGE_PIXELS (200 MB) and its metadata.
MAX_IMAGE_BYTES = 256 * 2**20


class _ArrayType:
    """Stands for numpy.ndarray in a batch's pickle, where it is only ever handed to
    `_reconstruct`: called itself, it would allocate whatever shape a hostile pickle names."""

    def __init__(self, *args, **kwargs):
        raise pickle.UnpicklingError("the pickle calls numpy.ndarray, which a CIFAR-10 batch never does")


def _empty_array(subtype, shape, dtype):
    """numpy's `_reconstruct` as a genuine pickle calls it: an empty array whose state (shape and
    bytes) follows in the pickle, so its size is bounded by the file's. Any other call would
    allocate whatever shape a hostile pickle names."""
    if subtype is not _ArrayType or tuple(shape) != (0,):
        raise pickle.UnpicklingError("the pickle builds an array in a way a CIFAR-10 batch never does")
    return _reconstruct(np.ndarray, (0,), dtype)


# The only globals a CIFAR-10 python batch needs: its `data` is a pickled numpy array.
PICKLE_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _empty_array,  # as the original batches name it
    ("numpy._core.multiarray", "_reconstruct"): _empty_array,  # as numpy 2 names it
    ("numpy", "ndarray"): _ArrayType,
    ("numpy", "dtype"): np.dtype,
}


class _BatchUnpickler(pickle.Unpickler):
    """Unpickles a CIFAR-10 batch, refusing every global a genuine batch never asks for."""

    def __init__(self, data, where):
        super().__init__(io.BytesIO(data), encoding="bytes")
        self.where = where

    def find_class(self, module, name):
        try:
            return PICKLE_GLOBALS[module, name]
        except KeyError:
            raise SemhashError(
                f"refusing to load {self.where}: it asks for {module}.{name}, which a CIFAR-10 batch "
                "never does; it is not a genuine CIFAR-10 batch, so delete or replace it"
            ) from None


def _text(value):
    """A key or name as str: Python 2 pickles give bytes when loaded with encoding="bytes"."""
    return value.decode("latin1") if isinstance(value, bytes) else value


def _unpickle(data, where):
    """The dict a python-version batch or batches.meta holds, with str keys."""
    try:
        loaded = _BatchUnpickler(data, where).load()
    except SemhashError:
        raise
    except Exception as error:  # damage shows as EOFError, UnpicklingError, ValueError, TypeError...
        raise SemhashError(
            f"cannot load {where} ({type(error).__name__}: {snippet(str(error))}); it is damaged or not a "
            "CIFAR-10 batch: restore it from the original archive"
        ) from None
    if not isinstance(loaded, dict):
        raise SemhashError(
            f"{where} holds a {type(loaded).__name__}, not the dict of a CIFAR-10 batch; "
            "restore it from the original archive"
        )
    return {_text(key): value for key, value in loaded.items()}


def _checked_rows(rows, labels, where):
    """`rows` and `labels` if they are a batch's: uint8 (n, 3072) and n ints; else SemhashError."""
    if not (isinstance(rows, np.ndarray) and rows.dtype == np.uint8 and rows.ndim == 2
            and rows.shape[1] == CIFAR_PIXELS):
        if not isinstance(rows, np.ndarray):
            what = f"a {type(rows).__name__} as data"
        elif rows.dtype != np.uint8:
            what = f"{rows.dtype} data of shape {rows.shape}"
        else:
            what = f"data of shape {rows.shape}"
        raise SemhashError(
            f"{where} holds {what}, not uint8 rows of {CIFAR_PIXELS} bytes; "
            "it is not a CIFAR-10 batch: restore it from the original archive"
        )
    if not (isinstance(labels, list) and len(labels) == len(rows)
            and all(isinstance(label, int) for label in labels)):
        raise SemhashError(
            f"{where} does not hold one whole-number label per image; "
            "it is not a CIFAR-10 batch: restore it from the original archive"
        )
    return rows, labels


def _cifar_images(rows):
    """(n, 32, 32, 3) images from CIFAR-10 rows: 1024 red, 1024 green, then 1024 blue, row-major."""
    return np.ascontiguousarray(rows.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))


def _where(source):
    """How messages name a batch: its file, or its member and archive."""
    return source["file"] if "file" in source else f"{source['member']} in {source['archive']}"


def _read_file(path):
    try:
        with open_regular(path) as file:
            return file.read()
    except OSError as error:
        raise SemhashError(f"cannot read {path}: {error.strerror}; check the path and its permissions") from None


@contextlib.contextmanager
def _open_archive(archive):
    """The tar `archive` opened as a stream: read front to back once, nothing unpacked to disk."""
    try:
        with tarfile.open(archive, "r|*") as tar:
            yield tar
    except ARCHIVE_ERRORS as error:
        raise SemhashError(
            f"cannot read {archive} as a tar archive ({error}); give a folder, "
            "or a CIFAR-10 .tar.gz that is not damaged"
        ) from None


def _read_members(archive, accept):
    """(name, bytes) of each file in `archive` whose name `accept`s, in the archive's order."""
    with _open_archive(archive) as tar:
        for member in tar:
            if member.isfile() and accept(member.name):
                yield member.name, tar.extractfile(member).read()


def _cifar_root(path, folder_name):
    """The folder of batches: `path`, or `folder_name` inside it as the archive unpacks."""
    inner = path / folder_name
    return inner if inner.is_dir() else path


class _Cifar:
    """What both versions of CIFAR-10 share: batches found in a folder or an archive, splits,
    label names from the meta file, and passes that stream one batch at a time."""

    kind = None
    folder_name = None  # the folder the official archive unpacks to
    suffix = None  # of batch files
    meta_file = None
    markers = ()  # the files that identify a folder of this version
    version = None
    size = CIFAR_SIZE

    def __init__(self, path, split="train"):
        if split not in SPLITS:
            raise SemhashError(f"unknown split {split!r}; give train, test or all")
        path = Path(path)
        if not path.exists():
            raise SemhashError(f"{path} does not exist; give the CIFAR-10 folder or its archive")
        self.root = _cifar_root(path, self.folder_name).resolve()
        self.split = split
        self.in_archive = self.root.is_file()
        self.skipped = []
        self._length = None
        if self.in_archive:
            with _open_archive(self.root):  # reads no further than the first member's header
                pass
        else:
            missing = [name for name in self.files(SPLITS[split]) if not (self.root / name).is_file()]
            if missing:
                raise SemhashError(
                    f"{self.root} lacks {', '.join(missing)}; a CIFAR-10 {self.version} folder holds "
                    f"{', '.join(self.files(SPLITS['all']))}: unpack the original archive again"
                )

    @classmethod
    def files(cls, names, meta=True):
        """The file names of the batches `names`, after the meta file's if `meta`."""
        return [cls.meta_file] * meta + [name + cls.suffix for name in names]

    @classmethod
    def file_in_archive(cls, member):
        """The file name of an archive member in this version's layout, or None outside it."""
        member = PurePosixPath(member)
        return member.name if member.parent.name in (cls.folder_name, "") else None

    def __len__(self):
        """The number of images in the split, counted once per reader."""
        if self._length is None:
            self._length = self._count()
        return self._length

    def __iter__(self):
        self.skipped = []
        label_names, waiting = None, []
        for file_name, source, data in self._raw(SPLITS[self.split]):
            where = _where(source)
            if file_name == self.meta_file:
                label_names = self.parse_meta(data, where)
            else:
                waiting.append((file_name.removesuffix(self.suffix), source, *self.parse_batch(data, where)))
            if label_names is not None:  # an archive may hold batches before batches.meta
                for waiting_batch in waiting:
                    yield self._batch(*waiting_batch, label_names)
                waiting = []

    def describe(self):
        """What a manifest records about where the images came from."""
        return {"kind": self.kind, "root": str(self.root), "split": self.split, "size": list(self.size)}

    def read_item(self, item_id):
        """The pixels of one image named as BATCH/POSITION, e.g. "test_batch/17"."""
        name, _, position = item_id.partition("/")
        if name not in SPLITS["all"] or not position.isdecimal():
            raise SemhashError(
                f"{self.root} has no image {item_id!r}; give BATCH/POSITION such as test_batch/17, "
                f"with BATCH one of {', '.join(SPLITS['all'])}"
            )
        index = int(position)
        for _, source, data in self._raw([name], meta=False):
            rows = self.parse_batch(data, _where(source))[0]
            if index >= len(rows):
                raise SemhashError(f"{_where(source)} holds {len(rows)} images; give {name}/0..{len(rows) - 1}")
            return _cifar_images(rows[index : index + 1])[0]

    def _count(self):
        return sum(len(self.parse_batch(data, _where(source))[0])
                   for _, source, data in self._raw(SPLITS[self.split], meta=False))

    def _raw(self, names, meta=True):
        """(file name, source, bytes) of the meta file and the batches of `names`: from a folder
        meta first, then in order; from an archive in the archive's order, in one pass."""
        files = self.files(names, meta)
        if not self.in_archive:
            for file_name in files:
                path = self.root / file_name
                yield file_name, {"file": str(path)}, _read_file(path)
            return
        found = set()
        for member, data in _read_members(self.root, lambda name: self.file_in_archive(name) in files):
            file_name = self.file_in_archive(member)
            if file_name in found:
                raise SemhashError(f"{self.root} holds {file_name} twice; give an archive with one of each")
            found.add(file_name)
            yield file_name, {"archive": str(self.root), "member": member}, data
        missing = [name for name in files if name not in found]
        if missing:
            raise SemhashError(
                f"{self.root} lacks {', '.join(missing)}; it is not a complete CIFAR-10 "
                f"{self.version} archive: download it again"
            )

    def _batch(self, name, source, rows, labels, label_names):
        """One batch file's images as an ImageBatch, labelled by name."""
        bad = [label for label in labels if not 0 <= label < len(label_names)]
        if bad:
            raise SemhashError(
                f"{_where(source)} has label {bad[0]}, but {self.meta_file} names only "
                f"{len(label_names)} classes; restore both from the original archive"
            )
        return ImageBatch(
            pixels=_cifar_images(rows),
            ids=[f"{name}/{position}" for position in range(len(rows))],
            labels=[label_names[label] for label in labels],
            sources=[{**source, "position": position} for position in range(len(rows))],
        )


class CifarPython(_Cifar):
    """CIFAR-10's python version: `cifar-10-batches-py/` (or a folder holding it, or
    `cifar-10-python.tar.gz`), its batches Python 2 pickles loaded with a restricted unpickler."""

    kind = "cifar-python"
    folder_name = "cifar-10-batches-py"
    suffix = ""
    meta_file = "batches.meta"
    markers = ("data_batch_1", "batches.meta")
    version = "python-version"

    @staticmethod
    def parse_batch(data, where):
        """(rows, labels) of a batch file's bytes: uint8 (n, 3072) and n ints."""
        batch = _unpickle(data, where)
        missing = [key for key in ("data", "labels") if key not in batch]
        if missing:
            raise SemhashError(
                f"{where} has no {' or '.join(missing)}; it is not a CIFAR-10 batch: "
                "restore it from the original archive"
            )
        return _checked_rows(batch["data"], batch["labels"], where)

    @staticmethod
    def parse_meta(data, where):
        """The class names, in label order, from the bytes of batches.meta."""
        names = _unpickle(data, where).get("label_names")
        if not (isinstance(names, list) and names and all(isinstance(name, (str, bytes)) for name in names)):
            raise SemhashError(f"{where} holds no label_names; restore batches.meta from the original archive")
        return [_text(name) for name in names]


class CifarBinary(_Cifar):
    """CIFAR-10's binary version: `cifar-10-batches-bin/` (or a folder holding it, or
    `cifar-10-binary.tar.gz`): records of a label byte and 3072 pixel bytes."""

    kind = "cifar-binary"
    folder_name = "cifar-10-batches-bin"
    suffix = ".bin"
    meta_file = "batches.meta.txt"
    markers = ("data_batch_1.bin",)
    version = "binary-version"

    def _count(self):
        if self.in_archive:
            return super()._count()
        files = self.files(SPLITS[self.split], meta=False)
        return sum((self.root / name).stat().st_size // CIFAR_RECORD for name in files)

    @staticmethod
    def parse_batch(data, where):
        """(rows, labels) of a batch file's bytes: uint8 (n, 3072) and n ints."""
        if not data or len(data) % CIFAR_RECORD:
            raise SemhashError(
                f"{where} is {len(data)} bytes, not a whole number of {CIFAR_RECORD}-byte CIFAR-10 "
                "records; it is truncated or not a binary batch: restore it from the original archive"
            )
        records = np.frombuffer(data, dtype=np.uint8).reshape(-1, CIFAR_RECORD)
        return records[:, 1:], records[:, 0].tolist()

    @staticmethod
    def parse_meta(data, where):
        """The class names, in label order, from the bytes of batches.meta.txt: one a line."""
        names = [line.strip() for line in data.decode("utf-8", errors="replace").splitlines() if line.strip()]
        if not names:
            raise SemhashError(f"{where} names no classes; restore batches.meta.txt from the original archive")
        return names


CIFAR_READERS = {reader.kind: reader for reader in (CifarPython, CifarBinary)}


@functools.cache
def _image_suffixes():
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
    """The pixels of one image file at `size`, upright as its EXIF orientation says. Only a regular file
    of at most `max_bytes` is opened, and only an image of at most `max_pixels` is decoded."""
    with open_regular(path, max_bytes, follow_links) as file, Image.open(file) as image:
        image.draft(None, (max(size), max(size)))  # large JPEGs decode at a reduced scale: much faster
        width, height = image.size
        if width * height > max_pixels:
            raise TooManyPixels(f"too many pixels: {width}x{height}, over the limit of {max_pixels:,}")
        return _fit(ImageOps.exif_transpose(image), size)


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
        return _load(path, size, max_pixels, max_bytes)
    except (TooManyPixels, FileTooLarge, Image.DecompressionBombError) as error:
        raise SemhashError(f"cannot read {printable(path)}: {_reason(error)}; give a smaller image") from None
    except IMAGE_ERRORS as error:
        raise SemhashError(
            f"cannot read {printable(path)}: {_reason(error)}; give an image file Pillow can open"
        ) from None


class ImageFolder:
    """The image files under `root`, found recursively: every file with a suffix of a format Pillow
    opens, hidden files and folders left out. A file's id is its path relative to `root`, its label
    its first-level subfolder, if any. Images are cropped about the centre to the aspect of `size`
    (height, width) and resized to it. Files that cannot be decoded, files over `max_bytes`, images
    over `max_pixels` (checked before decoding), names that are not UTF-8 and links out of `root`
    (unless `follow_links`) are skipped, named through `on_warning` and listed in `skipped` after
    each pass."""

    kind = "image-folder"

    def __init__(self, root, size=CIFAR_SIZE, on_warning=None, chunk=512, max_pixels=MAX_IMAGE_PIXELS,
                 max_bytes=MAX_IMAGE_BYTES, follow_links=False):
        self.root = folder_root(root, "images")
        self.size = tuple(size)
        self.on_warning = on_warning
        self.chunk = chunk
        self.max_pixels = max_pixels
        self.max_bytes = max_bytes
        self.follow_links = follow_links
        self.skipped = []

    def _found(self):
        """What a walk of the folder finds: the image files, and what it will skip, sorted."""
        return sorted(walk(self.root, lambda relative: relative.suffix.lower() in _image_suffixes(),
                           self.follow_links))

    def paths(self):
        """The candidate image files, sorted."""
        return [found.path for found in self._found()]

    def __len__(self):
        """The number of candidate files, counting those that will turn out unreadable."""
        return len(self.paths())

    def __iter__(self):
        self.skipped = []
        chunk = []
        for path, target, problem in self._found():
            if problem is not None:
                self._skip(path, problem)
                continue
            try:
                chunk.append((path, _load(target, self.size, self.max_pixels, self.max_bytes, follow_links=False)))
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
        return {"kind": self.kind, "root": str(self.root.resolve()), "size": list(self.size)}

    def _skip(self, path, reason):
        self.skipped.append(Skipped(str(path), reason))
        if self.on_warning is not None:
            self.on_warning(f"skipped {printable(path)}: {reason}")

    def _batch(self, chunk):
        relatives = [path.relative_to(self.root) for path, _ in chunk]
        return ImageBatch(
            pixels=np.stack([pixels for _, pixels in chunk]),
            ids=[relative.as_posix() for relative in relatives],
            labels=[relative.parts[0] if len(relative.parts) > 1 else None for relative in relatives],
            sources=[{"path": str(path.resolve())} for path, _ in chunk],
        )


def _member_kind(member):
    """The CIFAR-10 version an archive member belongs to, by its name, or None."""
    for reader in CIFAR_READERS.values():
        if reader.file_in_archive(member) in reader.files(SPLITS["all"]):
            return reader.kind
    return None


def _archive_kind(path):
    """The CIFAR-10 version of an archive, from the first of its members that belongs to one."""
    for member, _ in _read_members(path, lambda name: _member_kind(name) is not None):
        return _member_kind(member)
    raise SemhashError(f"{path} holds no CIFAR-10 batches; unpack it and give the folder")


def detect_kind(path):
    """"text", "image-folder", "cifar-python" or "cifar-binary", for a folder or an archive.

    An archive is told by its members' names; a folder holding CIFAR-10 batches (itself or in the
    folder the archive unpacks to) by its files; any other folder is an image folder when most of
    its first files with a suffix are images, else text.
    """
    path = Path(path)
    if not path.exists():
        raise SemhashError(f"{path} does not exist; give a folder of documents or images, or a CIFAR-10 archive")
    if path.is_file():
        return _archive_kind(path)
    for reader in CIFAR_READERS.values():
        folder = _cifar_root(path, reader.folder_name)
        if all((folder / name).is_file() for name in reader.markers):
            return reader.kind
    sample = list(itertools.islice(walk(path, lambda relative: bool(relative.suffix)), DETECT_SAMPLE))
    images = sum(found.path.suffix.lower() in _image_suffixes() for found in sample)
    return "image-folder" if images * 2 > len(sample) else "text"


def open_images(path, kind=None, split="train", size=CIFAR_SIZE, on_warning=None, max_pixels=MAX_IMAGE_PIXELS,
                follow_links=False):
    """The reader for the images at `path`, of `kind` or of the kind detected there; `split` applies
    to CIFAR-10, `size`, `on_warning`, `max_pixels` and `follow_links` to image folders (CIFAR-10
    images are always 32x32)."""
    kind = kind or detect_kind(path)
    if kind == ImageFolder.kind:
        return ImageFolder(path, size=size, on_warning=on_warning, max_pixels=max_pixels, follow_links=follow_links)
    if kind == "text":
        raise SemhashError(f"{path} holds no images; give a folder of image files or CIFAR-10 batches")
    if kind not in CIFAR_READERS:
        raise SemhashError(f"unknown kind of images {kind!r}; give {', '.join([ImageFolder.kind, *CIFAR_READERS])}")
    if tuple(size) != CIFAR_SIZE:
        raise SemhashError(f"CIFAR-10 images are 32x32; leave the image size at 32x32 for {path}")
    return CIFAR_READERS[kind](path, split)


def parse_image_reference(text):
    """(path, item id) for "ARCHIVE_OR_FOLDER#BATCH/POSITION" naming one CIFAR-10 image, when the
    part before the last "#" exists; else None."""
    location, mark, item_id = str(text).rpartition("#")
    if mark and location and Path(location).exists():
        return Path(location), item_id
    return None


def read_item(path, item_id):
    """The pixels of one CIFAR-10 image, e.g. read_item("cifar-10-python.tar.gz", "test_batch/17")."""
    kind = detect_kind(path)
    if kind not in CIFAR_READERS:
        raise SemhashError(f"{path} holds no CIFAR-10 batches; give BATCH/POSITION only after a CIFAR-10 path")
    return CIFAR_READERS[kind](path, "all").read_item(item_id)


def _fit_pixels(pixels, size):
    """`pixels` at `size`, resized as image files are when they differ."""
    return pixels if pixels.shape[:2] == tuple(size) else _fit(Image.fromarray(pixels), size)


def read_sources(sources, size):
    """The pixels (height, width, 3) at `size` of each source a reader produced, in order; each
    batch file and each archive is read once, however many of its images are asked for."""
    pixels = [None] * len(sources)
    wanted = collections.defaultdict(lambda: collections.defaultdict(list))  # archive -> batch -> indices
    for index, source in enumerate(sources):
        if "path" in source:
            pixels[index] = read_image(source["path"], size)
        elif "file" in source:
            wanted[None][source["file"]].append(index)
        elif "archive" in source and "member" in source:
            wanted[source["archive"]][source["member"]].append(index)
        else:
            raise SemhashError(f"cannot read image source {source!r}: it names no path, file or archive")
    for archive, batches in wanted.items():
        if archive is None:
            found = ((file, {"file": file}, _read_file(file)) for file in batches)
        else:
            found = ((member, {"archive": archive, "member": member}, data)
                     for member, data in _read_members(archive, lambda name: name in batches))
        missing = set(batches)
        for batch, source, data in found:
            missing.discard(batch)
            reader = CifarBinary if batch.endswith(CifarBinary.suffix) else CifarPython
            rows = reader.parse_batch(data, _where(source))[0]
            for index in batches[batch]:
                position = sources[index].get("position")
                if not (isinstance(position, int) and 0 <= position < len(rows)):
                    raise SemhashError(
                        f"{_where(source)} holds {len(rows)} images, none at position {position!r}; "
                        "the index was built from other data: rebuild it"
                    )
                pixels[index] = _fit_pixels(_cifar_images(rows[position : position + 1])[0], size)
        if missing:
            raise SemhashError(
                f"{archive} lacks {', '.join(sorted(missing))}; the index was built from other data: rebuild it"
            )
    return pixels


def read_source(source, size):
    """The pixels (height, width, 3) at `size` of one source a reader produced."""
    return read_sources([source], size)[0]


def read_query_image(text, size, max_pixels=MAX_IMAGE_PIXELS):
    """The pixels at `size` of a query given as an image file or as ARCHIVE_OR_FOLDER#BATCH/POSITION."""
    reference = parse_image_reference(text)
    if reference is not None:
        return _fit_pixels(read_item(*reference), size)
    path = Path(text)
    if not path.exists():
        raise SemhashError(f"no image file {path}; give an image file, or a CIFAR-10 image as ARCHIVE#test_batch/17")
    return read_image(path, size, max_pixels)
