"""What a path holds: text files, an image folder, or CIFAR-10 (python or binary version), and the
reader of images for it."""

import itertools
from pathlib import Path

from ..errors import SemhashError
from .cifar import CIFAR_READERS, CIFAR_SIZE, SPLITS, cifar_root, read_members
from .files import walk
from .images import MAX_IMAGE_PIXELS, ImageFolder, image_suffixes
from .lines import format_of

DETECT_SAMPLE = 200
def _member_kind(member):
    """The CIFAR-10 version an archive member belongs to, by its name, or None."""
    for reader in CIFAR_READERS.values():
        if reader.file_in_archive(member) in reader.files(SPLITS["all"]):
            return reader.kind
    return None
def _archive_kind(path):
    """The CIFAR-10 version of an archive, from the first of its members that belongs to one."""
    for member, _ in read_members(path, lambda name: _member_kind(name) is not None):
        return _member_kind(member)
    raise SemhashError(f"{path} holds no CIFAR-10 batches; unpack it and give the folder")
def detect_kind(path):
    """"text", "lines", "image-folder", "cifar-python" or "cifar-binary", for a folder or a file.

    A file of one document a row is told by its suffix (.jsonl, .csv, .tsv, .parquet); an archive
    by its members' names; a folder holding CIFAR-10 batches (itself or in the
    folder the archive unpacks to) by its files; any other folder is an image folder when most of
    its first files with a suffix are images, else text.
    """
    path = Path(path)
    if not path.exists():
        raise SemhashError(f"{path} does not exist; give a folder of documents or images, or a CIFAR-10 archive")
    if path.is_file():
        if format_of(path):
            return "lines"
        if path.suffix.lower() in (".txt", ".md"):
            raise SemhashError(f"{path} is one text file; give --lines to index each of its lines as a document, "
                               "or give the folder it lies in")
        return _archive_kind(path)
    for reader in CIFAR_READERS.values():
        folder = cifar_root(path, reader.folder_name)
        if all((folder / name).is_file() for name in reader.markers):
            return reader.kind
    sample = list(itertools.islice(walk(path, lambda relative: bool(relative.suffix)), DETECT_SAMPLE))
    images = sum(found.path.suffix.lower() in image_suffixes() for found in sample)
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
