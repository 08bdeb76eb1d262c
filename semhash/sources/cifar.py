"""CIFAR-10, python or binary version, unpacked or archived: re-iterable, streamed a batch at a time.

The python version's batches are pickles, loaded by an unpickler that allows only what a genuine
batch asks for, so a hostile pickle can neither run code nor make numpy allocate what its bytes
do not hold.
"""

import contextlib
import io
import pickle
import tarfile
import zlib
from pathlib import Path, PurePosixPath

import numpy as np
from numpy._core.multiarray import _reconstruct

from ..errors import SemhashError
from .files import open_regular
from .images import ImageBatch
from .text import snippet

CIFAR_SIZE = (32, 32)
CIFAR_PIXELS = 3 * 32 * 32
CIFAR_RECORD = 1 + CIFAR_PIXELS  # the binary version: a label byte, then the pixels
SPLITS = {"train": tuple(f"data_batch_{i}" for i in range(1, 6)), "test": ("test_batch",)}
SPLITS["all"] = SPLITS["train"] + SPLITS["test"]
ARCHIVE_ERRORS = (tarfile.TarError, OSError, EOFError, zlib.error)
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
def cifar_images(rows):
    """(n, 32, 32, 3) images from CIFAR-10 rows: 1024 red, 1024 green, then 1024 blue, row-major."""
    return np.ascontiguousarray(rows.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
def batch_name(source):
    """How messages name a batch: its file, or its member and archive."""
    return source["file"] if "file" in source else f"{source['member']} in {source['archive']}"
def read_batch_file(path):
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
def read_members(archive, accept):
    """(name, bytes) of each file in `archive` whose name `accept`s, in the archive's order."""
    with _open_archive(archive) as tar:
        for member in tar:
            if member.isfile() and accept(member.name):
                yield member.name, tar.extractfile(member).read()
def cifar_root(path, folder_name):
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
        self.root = cifar_root(path, self.folder_name).resolve()
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
            where = batch_name(source)
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
            rows = self.parse_batch(data, batch_name(source))[0]
            if index >= len(rows):
                raise SemhashError(f"{batch_name(source)} holds {len(rows)} images; give {name}/0..{len(rows) - 1}")
            return cifar_images(rows[index : index + 1])[0]

    def _count(self):
        return sum(len(self.parse_batch(data, batch_name(source))[0])
                   for _, source, data in self._raw(SPLITS[self.split], meta=False))

    def _raw(self, names, meta=True):
        """(file name, source, bytes) of the meta file and the batches of `names`: from a folder
        meta first, then in order; from an archive in the archive's order, in one pass."""
        files = self.files(names, meta)
        if not self.in_archive:
            for file_name in files:
                path = self.root / file_name
                yield file_name, {"file": str(path)}, read_batch_file(path)
            return
        found = set()
        for member, data in read_members(self.root, lambda name: self.file_in_archive(name) in files):
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
                f"{batch_name(source)} has label {bad[0]}, but {self.meta_file} names only "
                f"{len(label_names)} classes; restore both from the original archive"
            )
        return ImageBatch(
            pixels=cifar_images(rows),
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
