"""Image readers on tiny data written in the real formats: CIFAR-10 python and binary versions,
unpacked and archived, and a folder of image files with some damaged ones."""

import io
import os
import pickle
import struct
import tarfile
import types
from pathlib import Path

import numpy as np
import pytest
from conftest import deadline
from numpy._core.multiarray import _reconstruct
from PIL import Image

from semhash.errors import SemhashError
from semhash.sources import images
from semhash.sources.cifar import CifarBinary, CifarPython
from semhash.sources.detect import detect_kind, open_images
from semhash.sources.images import MAX_IMAGE_PIXELS, ImageFolder, read_image
from semhash.sources.originals import parse_image_reference, read_item, read_query_image, read_sources

LABEL_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
BATCHES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
PER_BATCH = 6
# The official python archive holds its members in this order, batches.meta among the batches.
ARCHIVE_ORDER = ["data_batch_4", "test_batch", "data_batch_3", "batches.meta", "data_batch_2", "data_batch_5",
                 "data_batch_1"]


class Python2Pickler(pickle._Pickler):
    """Pickles as Python 2 wrote the CIFAR-10 batches: text and bytes alike as Python 2 `str`
    (SHORT_BINSTRING, BINSTRING), numpy's `_reconstruct` under its old module name."""

    dispatch = pickle._Pickler.dispatch.copy()

    def save_python2_str(self, obj):
        data = obj.encode("latin1") if isinstance(obj, str) else obj
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
        self.memoize(obj)

    dispatch[bytes] = dispatch[str] = save_python2_str

    def save_global(self, obj, name=None):
        if obj is _reconstruct:
            self.write(pickle.GLOBAL + b"numpy.core.multiarray\n_reconstruct\n")
            self.memoize(obj)
        else:
            super().save_global(obj, name)


class UnicodePython2Pickler(Python2Pickler):
    """As Python2Pickler, but text as Python 2 `unicode` (BINUNICODE), so keys load as str."""

    dispatch = Python2Pickler.dispatch.copy()
    dispatch[str] = pickle._Pickler.save_str


def python2_pickle(obj, pickler=Python2Pickler):
    buffer = io.BytesIO()
    pickler(buffer, protocol=2).dump(obj)
    return buffer.getvalue()


# How batches are pickled: as Python 2 did (keys and names load as bytes), with unicode text
# (keys load as str), and as Python 3 re-pickles them (protocol 3, numpy 2's module name).
PICKLINGS = {
    "python2": python2_pickle,
    "unicode": lambda batch: python2_pickle(batch, UnicodePython2Pickler),
    "python3": lambda batch: pickle.dumps(batch, protocol=3),
}


def cifar_rows(pixels):
    """CIFAR-10 rows as the format defines them: 1024 red, 1024 green, then 1024 blue, row-major."""
    return np.concatenate([pixels[..., channel].reshape(len(pixels), 1024) for channel in range(3)], axis=1)


def expected_images(seed=0):
    """{id: (pixels, label)} for every image of the tiny CIFAR-10, and each batch's pixels and labels."""
    rng = np.random.default_rng(seed)
    batches = {name: (rng.integers(0, 256, (PER_BATCH, 32, 32, 3), dtype=np.uint8),
                      rng.integers(0, 10, PER_BATCH).tolist()) for name in BATCHES}
    by_id = {f"{name}/{i}": (pixels[i], LABEL_NAMES[labels[i]])
             for name, (pixels, labels) in batches.items() for i in range(PER_BATCH)}
    return batches, by_id


def write_python_folder(folder, pickling="python2"):
    folder.mkdir(parents=True)
    batches, _ = expected_images()
    dump = PICKLINGS[pickling]
    for name, (pixels, labels) in batches.items():
        batch = {"batch_label": f"batch {name}", "labels": labels, "data": cifar_rows(pixels),
                 "filenames": [f"{name}_{i}.png" for i in range(PER_BATCH)]}
        (folder / name).write_bytes(dump(batch))
    (folder / "batches.meta").write_bytes(dump({"num_cases_per_batch": PER_BATCH, "label_names": LABEL_NAMES,
                                                "num_vis": 3072}))
    return folder


def write_binary_folder(folder):
    folder.mkdir(parents=True)
    batches, _ = expected_images()
    for name, (pixels, labels) in batches.items():
        records = np.concatenate([np.array(labels, dtype=np.uint8)[:, None], cifar_rows(pixels)], axis=1)
        (folder / f"{name}.bin").write_bytes(records.tobytes())
    (folder / "batches.meta.txt").write_text("\n".join(LABEL_NAMES) + "\n\n")
    return folder


def write_archive(folder, archive, order):
    """`folder` as the official archives hold it: its members under the folder's name, in `order`."""
    with tarfile.open(archive, "w:gz") as tar:
        for name in order:
            tar.add(folder / name, arcname=f"{folder.name}/{name}")
    return archive


@pytest.fixture
def cifar(tmp_path):
    """The tiny CIFAR-10 in both versions, unpacked and archived."""
    python_dir = write_python_folder(tmp_path / "py" / "cifar-10-batches-py")
    binary_dir = write_binary_folder(tmp_path / "bin" / "cifar-10-batches-bin")
    binary_order = ["batches.meta.txt"] + [f"{name}.bin" for name in BATCHES]
    return types.SimpleNamespace(
        python_dir=python_dir,
        python_archive=write_archive(python_dir, tmp_path / "cifar-10-python.tar.gz", ARCHIVE_ORDER),
        binary_dir=binary_dir,
        binary_archive=write_archive(binary_dir, tmp_path / "cifar-10-binary.tar.gz", binary_order),
        expected=expected_images()[1],
    )


def read_all(reader):
    """Every image of a pass, as (pixels, ids, labels, sources) concatenated over its batches."""
    batches = list(reader)
    return (np.concatenate([batch.pixels for batch in batches]), sum((batch.ids for batch in batches), []),
            sum((batch.labels for batch in batches), []), sum((batch.sources for batch in batches), []))


def assert_matches_expected(reader, expected, ids):
    pixels, read_ids, labels, _ = read_all(reader)
    assert read_ids == ids
    assert pixels.dtype == np.uint8 and pixels.shape == (len(ids), 32, 32, 3)
    for index, item in enumerate(read_ids):
        np.testing.assert_array_equal(pixels[index], expected[item][0])
        assert labels[index] == expected[item][1]


def ids_of(names):
    return [f"{name}/{i}" for name in names for i in range(PER_BATCH)]


@pytest.mark.parametrize("pickling", sorted(PICKLINGS))
def test_python_batches_give_pixels_ids_labels_and_sources(tmp_path, pickling):
    folder = write_python_folder(tmp_path / "cifar-10-batches-py", pickling)
    reader = CifarPython(folder)
    assert len(reader) == 5 * PER_BATCH and reader.size == (32, 32) and reader.kind == "cifar-python"
    assert_matches_expected(reader, expected_images()[1], ids_of(BATCHES[:5]))
    assert read_all(reader)[3][7] == {"file": str(folder / "data_batch_2"), "position": 1}
    assert reader.describe() == {"kind": "cifar-python", "root": str(folder), "split": "train", "size": [32, 32]}


def test_splits_choose_the_batches(cifar):
    assert_matches_expected(CifarPython(cifar.python_dir, "test"), cifar.expected, ids_of(["test_batch"]))
    assert_matches_expected(CifarBinary(cifar.binary_dir, "all"), cifar.expected, ids_of(BATCHES))
    assert len(CifarPython(cifar.python_dir, "all")) == 6 * PER_BATCH
    with pytest.raises(SemhashError, match="unknown split 'valid'"):
        CifarPython(cifar.python_dir, "valid")


def test_archive_is_read_in_place_whatever_its_order(cifar, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    before = sorted(tmp_path.rglob("*"))
    reader = CifarPython(cifar.python_archive, "all")
    assert reader.root == cifar.python_archive and len(reader) == 6 * PER_BATCH
    ids = ids_of([name for name in ARCHIVE_ORDER if name != "batches.meta"])
    assert_matches_expected(reader, cifar.expected, ids)
    assert read_all(reader)[3][0] == {"archive": str(cifar.python_archive),
                                      "member": "cifar-10-batches-py/data_batch_4", "position": 0}
    assert sorted(tmp_path.rglob("*")) == before


def test_parent_folder_finds_the_batches(cifar):
    assert CifarPython(cifar.python_dir.parent).root == cifar.python_dir
    assert CifarBinary(cifar.binary_dir.parent).root == cifar.binary_dir


def test_binary_version_gives_the_same_images(cifar):
    reader = CifarBinary(cifar.binary_dir)
    assert len(reader) == 5 * PER_BATCH and reader.kind == "cifar-binary"
    assert_matches_expected(reader, cifar.expected, ids_of(BATCHES[:5]))
    assert read_all(reader)[3][0] == {"file": str(cifar.binary_dir / "data_batch_1.bin"), "position": 0}
    archived = CifarBinary(cifar.binary_archive, "test")
    assert len(archived) == PER_BATCH
    assert_matches_expected(archived, cifar.expected, ids_of(["test_batch"]))


def test_binary_batches_of_the_wrong_size_or_labels_are_named(cifar):
    path = cifar.binary_dir / "data_batch_2.bin"
    records = path.read_bytes()
    path.write_bytes(records[:-10])
    with pytest.raises(SemhashError, match=r"data_batch_2\.bin is \d+ bytes, not a whole number of 3073-byte"):
        list(CifarBinary(cifar.binary_dir))
    path.write_bytes(b"\x0c" + records[1:])
    with pytest.raises(SemhashError, match=r"data_batch_2\.bin has label 12, but batches\.meta\.txt names only 10"):
        list(CifarBinary(cifar.binary_dir))


class RunsACommand:
    """What a hostile pickle does: unpickling it calls os.system."""

    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def test_a_pickle_calling_a_forbidden_global_is_refused_unrun(cifar, tmp_path):
    marker = tmp_path / "MARKER"
    (cifar.python_dir / "data_batch_1").write_bytes(
        pickle.dumps({"data": RunsACommand(f"touch {marker}"), "labels": []}, protocol=2))
    with pytest.raises(SemhashError, match=r"refusing to load .*data_batch_1: it asks for posix\.system"):
        list(CifarPython(cifar.python_dir))
    with pytest.raises(SemhashError, match="refusing to load"):
        read_sources([{"file": str(cifar.python_dir / "data_batch_1"), "position": 0}], (32, 32))[0]
    assert not marker.exists()


@pytest.mark.parametrize("damage, message", [
    (lambda data: data[: len(data) // 2], "cannot load .*data_batch_3"),
    (lambda data: np.random.default_rng(1).bytes(500), "cannot load .*data_batch_3"),
    (lambda data: python2_pickle([1, 2, 3]), "data_batch_3 holds a list"),
    (lambda data: python2_pickle({"data": np.zeros((2, 3072), np.uint8)}), "data_batch_3 has no labels"),
    (lambda data: python2_pickle({"data": np.zeros((2, 100), np.uint8), "labels": [0, 1]}),
     r"data_batch_3 holds data of shape \(2, 100\)"),
    (lambda data: python2_pickle({"data": np.zeros((2, 3072)), "labels": [0, 1]}),
     r"data_batch_3 holds float64 data of shape \(2, 3072\), not uint8 rows of 3072 bytes"),
    (lambda data: python2_pickle({"data": [[0] * 3072] * 2, "labels": [0, 1]}),
     r"data_batch_3 holds a list as data, not uint8 rows of 3072 bytes"),
    (lambda data: python2_pickle({"data": np.zeros((2, 3072), np.uint8), "labels": [0]}),
     "data_batch_3 does not hold one whole-number label per image"),
])
def test_damaged_batches_are_named(cifar, damage, message):
    path = cifar.python_dir / "data_batch_3"
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(SemhashError, match=message):
        list(CifarPython(cifar.python_dir))


def test_missing_batches_are_named(cifar, tmp_path):
    (cifar.python_dir / "data_batch_3").unlink()
    with pytest.raises(SemhashError, match=r"lacks data_batch_3;"):
        CifarPython(cifar.python_dir)
    assert len(CifarPython(cifar.python_dir, "test")) == PER_BATCH
    partial = write_archive(cifar.python_dir, tmp_path / "partial.tar.gz", ["batches.meta", "data_batch_1"])
    with pytest.raises(SemhashError, match=r"partial\.tar\.gz lacks data_batch_2, data_batch_3, data_batch_4, data_"):
        list(CifarPython(partial))


def test_damaged_or_foreign_archives_are_named(cifar, tmp_path):
    damaged = tmp_path / "damaged.tar.gz"
    damaged.write_bytes(cifar.python_archive.read_bytes()[:3000])
    with pytest.raises(SemhashError, match=r"cannot read .*damaged\.tar\.gz as a tar archive"):
        list(CifarPython(damaged))
    with pytest.raises(SemhashError, match=r"cannot read .*batches\.meta as a tar archive"):
        CifarPython(cifar.python_dir / "batches.meta")


def rgb_image(width, height, seed):
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8))


@pytest.fixture
def image_folder(tmp_path):
    """Two labelled subfolders of assorted images, one at the top, two damaged files and things to ignore."""
    root = tmp_path / "photos"
    (root / "cats").mkdir(parents=True)
    (root / "dogs").mkdir()
    (root / ".cache").mkdir()
    rgb_image(40, 30, 0).save(root / "cats" / "a.png")
    rgb_image(50, 50, 1).save(root / "cats" / "b.jpg", quality=90)
    Image.fromarray(np.full((20, 20), 90, np.uint8)).save(root / "dogs" / "grey.png")
    clear = np.zeros((20, 20, 4), np.uint8)
    clear[:, :10] = (200, 0, 0, 255)  # left half opaque red, right half transparent
    Image.fromarray(clear, "RGBA").save(root / "dogs" / "alpha.png")
    rgb_image(30, 40, 2).save(root / "top.png")
    (root / "dogs" / "corrupt.png").write_bytes(np.random.default_rng(3).bytes(400))
    whole = io.BytesIO()
    rgb_image(64, 64, 4).save(whole, "JPEG")
    (root / "dogs" / "truncated.jpg").write_bytes(whole.getvalue()[: len(whole.getvalue()) // 2])
    rgb_image(8, 8, 5).save(root / ".cache" / "hidden.png")
    (root / ".hidden.png").write_bytes(b"")
    (root / "notes.txt").write_text("not an image")
    np.savez(root / "arrays.npz", x=np.arange(3))
    (root / "evil.pkl").write_bytes(pickle.dumps(RunsACommand(f"touch {tmp_path / 'MARKER'}")))
    return root


def test_image_folder_reads_images_and_skips_damaged_ones(image_folder):
    warnings = []
    folder = ImageFolder(image_folder, size=(12, 16), on_warning=warnings.append, chunk=2)
    assert len(folder) == 7
    batches = list(folder)
    assert [len(batch.ids) for batch in batches] == [2, 2, 1]
    pixels, ids, labels, sources = read_all(folder)
    assert ids == ["cats/a.png", "cats/b.jpg", "dogs/alpha.png", "dogs/grey.png", "top.png"]
    assert labels == ["cats", "cats", "dogs", "dogs", None]
    assert sources[4] == {"path": str((image_folder / "top.png").absolute())}
    assert pixels.dtype == np.uint8 and pixels.shape == (5, 12, 16, 3)
    grey = pixels[3].astype(int)
    assert (grey[..., 0] == grey[..., 1]).all() and (grey[..., 1] == grey[..., 2]).all()
    alpha = pixels[2].astype(int)
    assert alpha[6, 2, 0] > 150 and alpha[6, 2, 1] < 60 and (alpha[6, -2] > 240).all()  # red, then white
    assert sorted((Path(s.path).name, s.reason) for s in folder.skipped) == [
        ("corrupt.png", "not a readable image: Pillow cannot identify it"), ("truncated.jpg", "truncated image")]
    assert [name for name in ("corrupt.png", "truncated.jpg") if any(name in warning for warning in warnings)] == [
        "corrupt.png", "truncated.jpg"]
    assert not (image_folder.parent / "MARKER").exists()
    assert folder.describe() == {"kind": "image-folder", "root": str(image_folder.absolute()), "size": [12, 16],
                                 "max_pixels": MAX_IMAGE_PIXELS, "follow_links": False}


def test_images_are_cropped_about_the_centre_and_turned_upright(tmp_path):
    stripes = np.zeros((20, 60, 3), np.uint8)
    stripes[:, :20], stripes[:, 20:40], stripes[:, 40:] = (255, 0, 0), (0, 255, 0), (0, 0, 255)
    Image.fromarray(stripes).save(tmp_path / "wide.png")
    centre = read_image(tmp_path / "wide.png", (8, 8))
    assert centre.shape == (8, 8, 3) and (centre[..., 1] > 200).all() and (centre[..., [0, 2]] < 60).all()
    halves = np.zeros((10, 20, 3), np.uint8)
    halves[:5], halves[5:] = (255, 0, 0), (0, 0, 255)  # red above blue, stored sideways
    exif = Image.Exif()
    exif[0x0112] = 6  # display rotated a quarter turn clockwise: the top becomes the right side
    Image.fromarray(halves).save(tmp_path / "sideways.jpg", exif=exif, quality=95)
    upright = read_image(tmp_path / "sideways.jpg", (20, 10)).astype(int)
    assert upright[10, 8, 0] > 200 and upright[10, 1, 2] > 200


def test_passes_are_identical_and_reset_skipped(cifar, image_folder):
    folder = ImageFolder(image_folder)
    for reader in (folder, CifarPython(cifar.python_archive), CifarBinary(cifar.binary_dir)):
        first, second = read_all(reader), read_all(reader)
        np.testing.assert_array_equal(first[0], second[0])
        assert first[1:] == second[1:]
    assert len(folder.skipped) == 2  # the last pass's, not both passes'


def test_detect_kind(cifar, image_folder, tmp_path):
    assert detect_kind(cifar.python_dir) == detect_kind(cifar.python_dir.parent) == "cifar-python"
    assert detect_kind(cifar.python_archive) == "cifar-python"
    assert detect_kind(cifar.binary_dir) == detect_kind(cifar.binary_dir.parent) == "cifar-binary"
    assert detect_kind(cifar.binary_archive) == "cifar-binary"
    assert detect_kind(image_folder) == "image-folder"
    (tmp_path / "docs" / "news").mkdir(parents=True)
    for i in range(3):
        (tmp_path / "docs" / "news" / f"{i}.txt").write_text("text")
    (tmp_path / "docs" / "figure.png").write_bytes(b"")
    assert detect_kind(tmp_path / "docs") == "text"
    with pytest.raises(SemhashError, match="does not exist"):
        detect_kind(tmp_path / "nowhere")
    with tarfile.open(tmp_path / "docs.tar.gz", "w:gz") as tar:
        tar.add(tmp_path / "docs", arcname="docs")
    with pytest.raises(SemhashError, match="docs.tar.gz holds no CIFAR-10 batches"):
        detect_kind(tmp_path / "docs.tar.gz")
    with pytest.raises(SemhashError, match="0.txt is one text file; give --lines"):
        detect_kind(tmp_path / "docs" / "news" / "0.txt")


def test_open_images_picks_the_reader(cifar, image_folder, tmp_path):
    assert isinstance(open_images(cifar.python_archive, split="test"), CifarPython)
    assert isinstance(open_images(cifar.binary_dir.parent), CifarBinary)
    folder = open_images(image_folder, size=(8, 8))
    assert isinstance(folder, ImageFolder) and folder.size == (8, 8)
    with pytest.raises(SemhashError, match="32x32"):
        open_images(cifar.python_dir, size=(16, 16))
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.txt").write_text("text")
    with pytest.raises(SemhashError, match="holds no images"):
        open_images(tmp_path / "docs")


@pytest.mark.parametrize("where", ["python_dir", "python_archive", "binary_dir", "binary_archive"])
def test_sources_and_items_read_back_the_same_pixels(cifar, where, monkeypatch):
    reader = open_images(getattr(cifar, where), split="all")
    pixels, ids, _, sources = read_all(reader)
    chosen = [33, 2, 17, 5, 30]  # across several batches, out of order
    opened = []
    real_open = tarfile.open
    monkeypatch.setattr(tarfile, "open", lambda *args, **kw: opened.append(args) or real_open(*args, **kw))
    for index, read in zip(chosen, read_sources([sources[i] for i in chosen], (32, 32))):
        np.testing.assert_array_equal(read, pixels[index])
    assert len(opened) == ("archive" in where)  # one pass over an archive, however many images
    np.testing.assert_array_equal(read_sources([sources[chosen[0]]], (32, 32))[0], pixels[chosen[0]])
    assert read_sources([sources[0]], (16, 8))[0].shape == (16, 8, 3)
    item = ids.index("test_batch/3")
    np.testing.assert_array_equal(read_item(getattr(cifar, where), "test_batch/3"), pixels[item])


def test_image_references_and_bad_items(cifar):
    assert parse_image_reference(f"{cifar.python_archive}#test_batch/3") == (cifar.python_archive, "test_batch/3")
    assert parse_image_reference(f"{cifar.python_archive}.missing#test_batch/3") is None
    assert parse_image_reference("a cat on a mat") is None
    with pytest.raises(SemhashError, match=r"holds 6 images; give test_batch/0\.\.5"):
        read_item(cifar.python_archive, "test_batch/6")
    with pytest.raises(SemhashError, match="give BATCH/POSITION such as test_batch/17"):
        read_item(cifar.binary_dir, "batch_9/1")


def test_image_folder_sources_read_back(image_folder):
    pixels, _, _, sources = read_all(ImageFolder(image_folder, size=(10, 10)))
    for read, expected in zip(read_sources(sources, (10, 10)), pixels):
        np.testing.assert_array_equal(read, expected)
    with pytest.raises(SemhashError, match=r"cannot read .*corrupt\.png: not a readable image"):
        read_image(image_folder / "dogs" / "corrupt.png", (10, 10))


def test_a_damaged_pickle_is_named_on_one_line():
    """pickle's own message for a persistent id spans two lines (found by test_hostile_inputs)."""
    with pytest.raises(SemhashError, match="cannot load data_batch_1 .*persistent_load") as caught:
        CifarPython.parse_batch(b"P", "data_batch_1")
    assert "\n" not in str(caught.value)


def test_only_regular_files_and_names_in_utf8_are_read_and_links_stay_inside(tmp_path):
    root, elsewhere = tmp_path / "photos", tmp_path / "elsewhere"
    (root / "cats").mkdir(parents=True)
    elsewhere.mkdir()
    rgb_image(8, 8, 0).save(root / "cats" / "a.png")
    rgb_image(8, 8, 1).save(elsewhere / "b.png")
    os.mkfifo(root / "cats" / "fifo.png")
    rgb_image(8, 8, 2).save(os.fsencode(root) + b"/caf\xe9.png")
    (root / "inside.png").symlink_to(root / "cats" / "a.png")
    (root / "out.png").symlink_to(elsewhere / "b.png")
    warnings = []
    folder = ImageFolder(root, size=(8, 8), on_warning=warnings.append)
    with deadline():
        _, ids, _, sources = read_all(folder)
    assert ids == ["cats/a.png", "inside.png"]
    assert sources[1] == {"path": str(root / "cats" / "a.png")}
    assert sorted((os.path.basename(os.fsencode(s.path)), s.reason.split(":")[0]) for s in folder.skipped) == [
        (b"caf\xe9.png", "name not UTF-8"), (b"fifo.png", "not a regular file"), (b"out.png", "link outside the folder")]
    assert any("caf\\xe9.png: name not UTF-8: rename it" in warning for warning in warnings)
    assert any(f"out.png: link outside the folder: it leads to {elsewhere / 'b.png'}" in warning for warning in warnings)
    with deadline():
        assert read_all(ImageFolder(root, size=(8, 8), follow_links=True))[1] == ["cats/a.png", "inside.png", "out.png"]
        with pytest.raises(SemhashError, match=r"cannot read .*fifo\.png: not a regular file: a FIFO"):
            read_query_image(str(root / "cats" / "fifo.png"), (8, 8))


def test_images_over_the_pixel_or_byte_limit_are_skipped_before_decoding(tmp_path, monkeypatch):
    Image.new("1", (8000, 8000)).save(tmp_path / "huge.png")  # 64 megapixels in a few kilobytes
    rgb_image(300, 200, 0).save(tmp_path / "large.png")
    rgb_image(8, 8, 1).save(tmp_path / "small.png")
    decoded = []
    real_fit = images._fit
    monkeypatch.setattr(images, "_fit", lambda image, size: decoded.append(image.size) or real_fit(image, size))
    warnings = []
    folder = ImageFolder(tmp_path, size=(8, 8), on_warning=warnings.append)
    assert read_all(folder)[1] == ["large.png", "small.png"]
    assert [s.reason for s in folder.skipped] == ["too many pixels: 8000x8000, over the limit of 50,000,000"]
    assert any("huge.png: too many pixels: 8000x8000" in warning for warning in warnings)
    assert (8000, 8000) not in decoded
    assert read_all(ImageFolder(tmp_path, size=(8, 8), max_pixels=50_000))[1] == ["small.png"]
    too_big = ImageFolder(tmp_path, size=(8, 8), max_bytes=(tmp_path / "small.png").stat().st_size)
    assert read_all(too_big)[1] == ["small.png"]
    assert sorted(s.reason.split(":")[0] for s in too_big.skipped) == ["too large", "too large"]
    with pytest.raises(SemhashError, match=r"huge\.png: too many pixels: 8000x8000, .*; give a smaller image"):
        read_query_image(str(tmp_path / "huge.png"), (8, 8))


def test_large_jpegs_are_measured_after_drafting(tmp_path):
    rgb_image(800, 800, 0).save(tmp_path / "big.jpg", quality=80)
    assert read_image(tmp_path / "big.jpg", (8, 8), max_pixels=100 * 100).shape == (8, 8, 3)  # drafted to 100x100
    with pytest.raises(SemhashError, match="too many pixels: 400x400"):
        read_image(tmp_path / "big.jpg", (400, 400), max_pixels=100 * 100)  # drafted only to 400x400


class _Calls:
    """Unpickles as `function(*arguments)`."""

    def __init__(self, function, *arguments):
        self.function, self.arguments = function, arguments

    def __reduce__(self):
        return self.function, self.arguments


@pytest.mark.parametrize("data", [
    _Calls(np.ndarray, (100_000, 3072), "B"),  # 300 MB for a pickle of a hundred bytes
    _Calls(_reconstruct, np.ndarray, (100_000, 3072), "B"),
])
def test_a_pickle_cannot_make_numpy_allocate_what_its_bytes_do_not_hold(data):
    hostile = pickle.dumps({b"data": data, b"labels": [0]}, protocol=4)
    assert len(hostile) < 300
    with pytest.raises(SemhashError, match="numpy.ndarray|builds an array"):
        CifarPython.parse_batch(hostile, "data_batch_1")
