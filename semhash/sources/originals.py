"""Images read back from what an index records of them (a file, or a CIFAR-10 archive, batch and
position), and query images given as a file or as ARCHIVE#BATCH/POSITION."""

import collections
from pathlib import Path

from ..errors import SemhashError
from .cifar import CIFAR_READERS, CifarBinary, CifarPython, batch_name, cifar_images, read_batch_file, read_members
from .detect import detect_kind
from .images import MAX_IMAGE_PIXELS, fit_pixels, read_image


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
            found = ((file, {"file": file}, read_batch_file(file)) for file in batches)
        else:
            found = ((member, {"archive": archive, "member": member}, data)
                     for member, data in read_members(archive, lambda name: name in batches))
        missing = set(batches)
        for batch, source, data in found:
            missing.discard(batch)
            reader = CifarBinary if batch.endswith(CifarBinary.suffix) else CifarPython
            rows = reader.parse_batch(data, batch_name(source))[0]
            for index in batches[batch]:
                position = sources[index].get("position")
                if not (isinstance(position, int) and 0 <= position < len(rows)):
                    raise SemhashError(
                        f"{batch_name(source)} holds {len(rows)} images, none at position {position!r}; "
                        "the index was built from other data: rebuild it"
                    )
                pixels[index] = fit_pixels(cifar_images(rows[position : position + 1])[0], size)
        if missing:
            raise SemhashError(
                f"{archive} lacks {', '.join(sorted(missing))}; the index was built from other data: rebuild it"
            )
    return pixels
def read_query_image(text, size, max_pixels=MAX_IMAGE_PIXELS):
    """The pixels at `size` of a query given as an image file or as ARCHIVE_OR_FOLDER#BATCH/POSITION."""
    reference = parse_image_reference(text)
    if reference is not None:
        return fit_pixels(read_item(*reference), size)
    path = Path(text)
    if not path.exists():
        raise SemhashError(f"no image file {path}; give an image file, or a CIFAR-10 image as ARCHIVE#test_batch/17")
    return read_image(path, size, max_pixels)
