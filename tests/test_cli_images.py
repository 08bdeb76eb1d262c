"""`semhash index` and `semhash query` on image folders and CIFAR-10 batches."""

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import deadline, json_lines, write_corpus
from PIL import Image
from test_images import ARCHIVE_ORDER, RunsACommand, write_archive, write_python_folder

from semhash.cli import cli
from semhash.contact_sheet import default_scale, sheet_size

TINY_IMAGES = ["--bits", "8", "--pretrain-epochs", "2", "--epochs", "4", "--min-steps", "0",
               "--min-pretrain-steps", "0", "--batch-size", "8", "--quiet"]


def write_png_folder(root):
    """The three generated classes as PNG files in label folders, and one corrupt file."""
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 60, size=(36, 16, 16, 3)).astype(np.uint8)
    for i, image in enumerate(pixels):
        label = ("red", "green", "blue")[i % 3]
        image[4:12, 4:12, i % 3] = 250
        (root / label).mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(root / label / f"{i:02d}.png")
    (root / "red" / "broken.png").write_bytes(b"\x89PNG not really")
    return root


@pytest.fixture(scope="module")
def png_index(tmp_path_factory):
    base = tmp_path_factory.mktemp("png")
    folder = write_png_folder(base / "photos")
    result = CliRunner().invoke(cli, ["index", str(folder), "-o", str(base / "index"), "--size", "16",
                                      "--centroids", "16", "--hidden", "32", *TINY_IMAGES])
    assert result.exit_code == 0, result.output
    return folder, base / "index", json_lines(result.stdout)[0]


def test_a_png_folder_indexes_with_the_corrupt_file_skipped(png_index):
    _, _, row = png_index
    assert row["kind"] == "images" and row["documents"] == 36
    assert sum(row["skipped"].values()) == 1


def test_query_by_image_returns_json_lines_and_a_contact_sheet(png_index, tmp_path):
    folder, index, _ = png_index
    sheet = tmp_path / "sheet.png"
    result = CliRunner().invoke(cli, ["query", "--image", str(folder / "green" / "01.png"), "--index", str(index),
                                      "-k", "5", "--grid", str(sheet), "--exact"])
    assert result.exit_code == 0, result.output
    hits = json_lines(result.stdout)
    assert len(hits) == 5 and set(hits[0]) == {"id", "label", "distance", "score", "source"}
    assert hits[0]["id"] == "green/01.png" and hits[0]["distance"] == 0
    assert hits[0]["source"] == {"path": str((folder / "green" / "01.png").resolve())}
    assert [hit["label"] for hit in hits].count("green") >= 3
    with Image.open(sheet) as drawn:
        assert drawn.format == "PNG"
        assert drawn.size == sheet_size((16, 16, 3), 5, default_scale((16, 16, 3)))


def test_an_image_query_imports_neither_tensorflow_nor_scikit_learn(png_index):
    folder, index, _ = png_index
    script = (
        "import sys; from click.testing import CliRunner; from semhash.cli import cli\n"
        f"result = CliRunner().invoke(cli, ['query', '--image', {str(folder / 'red' / '00.png')!r}, "
        f"'--index', {str(index)!r}])\n"
        "assert result.exit_code == 0, result.output\n"
        "print(sorted(name for name in ('tensorflow', 'keras', 'sklearn') if name in sys.modules))"
    )
    ran = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[1])
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == "[]"


def test_like_and_plain_on_an_image_index(png_index):
    _, index, _ = png_index
    result = CliRunner().invoke(cli, ["query", "--like", "blue/02.png", "--index", str(index), "-k", "3", "--plain"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["rank", "dist", "score", "label", "id"] and len(lines) == 4
    assert "blue/02.png" not in result.stdout


@pytest.mark.parametrize("arguments, message", [
    (["query", "some words"], "query it with --image PATH or --like ID"),
    (["query", "--image", "no-such.png"], "no image file"),
    (["query", "--like", "red/missing.png"], "no item"),
])
def test_image_index_misuse_is_explained(png_index, arguments, message):
    _, index, _ = png_index
    result = CliRunner().invoke(cli, [*arguments, "--index", str(index)])
    assert result.exit_code != 0 and message in result.output and "Traceback" not in result.output


def test_the_dense_model_reads_patch_features_by_default(png_index):
    _, index, _ = png_index
    manifest = json_lines(CliRunner().invoke(cli, ["info", str(index)]).stdout)[0]
    assert manifest["features"]["type"] == "patches" and manifest["features"]["n_centroids"] == 16
    assert manifest["model"]["neighbours"] == 10  # neighbours help on patch features
    plain = CliRunner().invoke(cli, ["info", str(index), "--plain"])
    width = manifest["features"]["n_features"]  # the principal axes: no more than the images
    assert width == min(manifest["features"]["components"], manifest["features"]["n_images"]), manifest["features"]
    assert "patch features: 16 k-means centroids" in plain.output and f"{width} -> 32 -> 8" in plain.output


@pytest.mark.parametrize("arguments, message", [
    (["--arch", "conv", "--image-features", "patches"], "the conv model reads pixels"),
    (["--image-features", "pixels", "--centroids", "8"], "centroids only apply to patch features"),
])
def test_image_feature_clashes_are_usage_errors(png_index, tmp_path, arguments, message):
    folder, _, _ = png_index
    result = CliRunner().invoke(cli, ["index", str(folder), "-o", str(tmp_path / "i"), *arguments])
    assert result.exit_code == 2 and message in result.output and not (tmp_path / "i").exists()


def test_pixel_features_rebuild_each_image_alone_and_old_pixel_indexes_open(png_index, tmp_path):
    folder, _, _ = png_index
    index = tmp_path / "pixels"
    built = CliRunner().invoke(cli, ["index", str(folder), "-o", str(index), "--size", "16", "--image-features",
                                     "pixels", "--hidden", "32", *TINY_IMAGES])
    assert built.exit_code == 0, built.output
    manifest = json.loads((index / "manifest.json").read_text())
    assert manifest["features"]["type"] == "pixels" and manifest["model"]["neighbours"] == 0
    data = index / manifest["data"]
    assert (data / "pixels.npz").exists() and not (data / "patches.npz").exists()
    del manifest["features"]["type"]  # as image indexes were written before patch features
    (index / "manifest.json").write_text(json.dumps(manifest))
    result = CliRunner().invoke(cli, ["query", "--image", str(folder / "red" / "00.png"), "--index", str(index)])
    assert result.exit_code == 0, result.output
    assert json_lines(result.stdout)[0]["id"] == "red/00.png"


def test_text_options_are_refused_for_images(png_index, tmp_path):
    folder, _, _ = png_index
    result = CliRunner().invoke(cli, ["index", str(folder), "-o", str(tmp_path / "i"), "--weighting", "tfidf"])
    assert result.exit_code == 2 and "--weighting only apply" in result.output


def test_cifar_archive_with_the_conv_model_and_a_test_image_query(tmp_path):
    python_dir = write_python_folder(tmp_path / "src" / "cifar-10-batches-py")
    archive = write_archive(python_dir, tmp_path / "cifar-10-python.tar.gz", ARCHIVE_ORDER)
    index = tmp_path / "index"
    runner = CliRunner()
    built = runner.invoke(cli, ["index", str(archive), "-o", str(index), "--arch", "conv", "--filters", "4,4",
                                *TINY_IMAGES])
    assert built.exit_code == 0, built.output
    assert json_lines(built.stdout)[0]["documents"] == 30  # the five training batches
    sheet = tmp_path / "sheet.png"
    result = runner.invoke(cli, ["query", "--image", f"{archive}#test_batch/2", "--index", str(index), "-k", "4",
                                 "--grid", str(sheet)])
    assert result.exit_code == 0, result.output
    hits = json_lines(result.stdout)
    assert len(hits) == 4 and all(hit["source"]["archive"] == str(archive.resolve()) for hit in hits)
    with Image.open(sheet) as drawn:
        assert drawn.size == sheet_size((32, 32, 3), 4, default_scale((32, 32, 3)))
    info = runner.invoke(cli, ["info", str(index), "--plain"])
    assert info.exit_code == 0 and "conv" in info.output, info.output


def test_a_hostile_pickle_stops_the_index_with_a_message_and_runs_nothing(tmp_path):
    python_dir = write_python_folder(tmp_path / "cifar-10-batches-py")
    marker = tmp_path / "MARKER"
    (python_dir / "data_batch_2").write_bytes(pickle.dumps({"data": RunsACommand(f"touch {marker}")}, protocol=2))
    result = CliRunner().invoke(cli, ["index", str(python_dir), "-o", str(tmp_path / "index"), *TINY_IMAGES])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "refusing to load" in result.output and "data_batch_2" in result.output
    assert not marker.exists() and not (tmp_path / "index").exists()


def test_image_options_are_refused_for_text(tmp_path):
    corpus = write_corpus(tmp_path / "corpus", per_topic=2)
    result = CliRunner().invoke(cli, ["index", str(corpus), "-o", str(tmp_path / "i"), "--image-features", "pixels",
                                      "--centroids", "8"])
    assert result.exit_code == 2 and "--image-features, --centroids only apply" in result.output


@pytest.mark.parametrize("make", [
    lambda p: os.mkfifo(p),
    lambda p: p.symlink_to(p.parent / "elsewhere.png"),
    lambda p: p.symlink_to("/dev/null"),
    lambda p: p.mkdir(),
])
def test_grid_never_replaces_what_is_not_a_regular_file(png_index, tmp_path, make):
    folder, index, _ = png_index
    (tmp_path / "elsewhere.png").write_bytes(b"keep")
    target = tmp_path / "sheet.png"
    make(target)
    kind = os.lstat(target).st_mode
    result = CliRunner().invoke(cli, ["query", "--image", str(folder / "red" / "00.png"), "--index", str(index),
                                      "--grid", str(target)])
    assert result.exit_code == 2 and "--grid" in result.output and "Traceback" not in result.output
    assert os.lstat(target).st_mode == kind and (tmp_path / "elsewhere.png").read_bytes() == b"keep"


def test_hostile_image_files_are_skipped_named_and_counted(tmp_path):
    folder = write_png_folder(tmp_path / "photos")
    os.mkfifo(folder / "red" / "fifo.png")
    Image.new("1", (8000, 8000)).save(folder / "green" / "huge.png")  # 64 megapixels in a few kilobytes
    Image.new("RGB", (16, 16)).save(os.fsencode(folder) + b"/blue/caf\xe9.png")
    with deadline(300):
        result = CliRunner().invoke(cli, ["index", str(folder), "-o", str(tmp_path / "index"), "--size", "16",
                                          "--image-features", "pixels", "--hidden", "32",
                                          *[arg for arg in TINY_IMAGES if arg != "--quiet"]])
    assert result.exit_code == 0, result.output
    row = json_lines(result.stdout)[0]
    assert row["documents"] == 36 and row["skipped"] == {
        "not a readable image": 1, "not a regular file": 1, "too many pixels": 1, "name not UTF-8": 1}
    assert "huge.png: too many pixels: 8000x8000, over the limit of 50,000,000" in result.stderr
    cifar = CliRunner().invoke(cli, ["index", str(write_python_folder(tmp_path / "cifar-10-batches-py")),
                                     "--follow-links"])
    assert cifar.exit_code == 2 and "--follow-links only apply" in cifar.output
