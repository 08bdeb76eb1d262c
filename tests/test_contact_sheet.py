"""Contact sheets: their exact size, where the tiles go, and safe writing."""

import os

import numpy as np
import pytest
from PIL import Image

from semhash.contact_sheet import contact_sheet, default_scale, sheet_size
from semhash.errors import SemhashError


def tiles(n, shape=(32, 32, 3), seed=0):
    rng = np.random.default_rng(seed)
    return [(rng.integers(0, 256, shape, dtype=np.uint8), f"d={i} automobile") for i in range(n)]


def test_sheet_size_follows_tile_count_and_scale():
    # 32 px tiles at scale 2 sit in 80x78 cells (the caption needs 80 px across) with 8 px margins;
    # the query has the first row to itself and 3 results fill one more row.
    assert sheet_size((32, 32, 3), 3, 2) == (8 + 3 * 88, 8 + 2 * 86)
    assert sheet_size((32, 32, 3), 0, 2) == (88 + 8, 8 + 86)
    assert sheet_size((32, 32, 3), 25, 2) == (8 + 10 * 88, 8 + 4 * 86)
    assert sheet_size((8, 8, 3), 1, 8) == (8 + 88, 8 + 2 * 86)
    assert sheet_size((10, 30, 3), 2, 3) == (8 + 2 * 98, 8 + 2 * 52)
    assert default_scale((8, 8, 3)) == 8 and default_scale((32, 32, 3)) == 2 and default_scale((100, 70, 3)) == 1


@pytest.mark.parametrize("shape, n_results, scale", [((32, 32, 3), 12, None), ((8, 8, 3), 3, 4), ((16, 24, 3), 0, 1)])
def test_sheet_is_written_at_its_size(tmp_path, shape, n_results, scale):
    query = tiles(1, shape, seed=1)[0][0]
    path = tmp_path / "sheet.png"
    size = contact_sheet(query, tiles(n_results, shape), path, scale=scale)
    assert size == sheet_size(shape, n_results, scale or default_scale(shape))
    with Image.open(path) as written:
        assert written.format == "PNG" and written.size == size
    assert [p.name for p in tmp_path.iterdir()] == ["sheet.png"]
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def test_query_tile_is_enlarged_pixel_for_pixel(tmp_path):
    query = np.zeros((8, 8, 3), np.uint8)
    query[0, 0] = (255, 0, 0)
    contact_sheet(query, tiles(2, (8, 8, 3)), tmp_path / "sheet.png", scale=8)
    with Image.open(tmp_path / "sheet.png") as written:
        sheet = np.asarray(written.convert("RGB"))
    left = 8 + (80 - 64) // 2  # the query's tile, centred in the first cell
    assert (sheet[8 : 8 + 8, left : left + 8] == (255, 0, 0)).all()
    assert (sheet[8 : 8 + 8, left + 8 : left + 16] == 0).all()
    assert (sheet[0, :] == 255).all()  # white margin


def test_unwritable_destination_is_named(tmp_path):
    path = tmp_path / "missing" / "sheet.png"
    with pytest.raises(SemhashError, match=f"cannot write {path}"):
        contact_sheet(tiles(1)[0][0], tiles(1), path)


def test_results_must_match_the_query(tmp_path):
    with pytest.raises(SemhashError, match="'d=0 automobile' is uint8 \\(16, 16, 3\\).*; read every image as uint8 RGB"):
        contact_sheet(tiles(1)[0][0], tiles(1, (16, 16, 3)), tmp_path / "sheet.png")
    grey = (np.zeros((8, 8), dtype=np.uint8), "grey")
    with pytest.raises(SemhashError, match="'query' is uint8 \\(8, 8\\)"):
        contact_sheet(grey[0], [grey], tmp_path / "sheet.png")
