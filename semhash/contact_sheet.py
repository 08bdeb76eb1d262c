"""A PNG showing a query image and its nearest images, captioned, so results can be judged by eye."""

import math
import os
import stat
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .errors import SemhashError

COLUMNS = 10
MARGIN = 8  # around the sheet and between tiles
CAPTION_HEIGHT = 14  # Pillow's default font is 10 px
MIN_TILE = 64  # the default scale enlarges tiles to at least this many pixels a side
MIN_CELL_WIDTH = 80  # room for a caption such as "d=12 automobile" under a narrow tile


def default_scale(tile_shape):
    """The smallest whole factor that makes a tile at least MIN_TILE pixels a side."""
    return max(1, math.ceil(MIN_TILE / min(tile_shape[:2])))


def _cell(tile_shape, scale):
    """(width, height) of one tile's cell: the enlarged tile and its caption beneath."""
    height, width = tile_shape[:2]
    return max(width * scale, MIN_CELL_WIDTH), height * scale + CAPTION_HEIGHT


def sheet_size(tile_shape, n_results, scale):
    """(width, height) of the sheet: the query alone on the first row, then the results in rows
    of up to COLUMNS, each tile `scale` times its size with its caption beneath."""
    cell_width, cell_height = _cell(tile_shape, scale)
    columns = max(1, min(n_results, COLUMNS))
    rows = 1 + math.ceil(n_results / COLUMNS)
    return MARGIN + columns * (cell_width + MARGIN), MARGIN + rows * (cell_height + MARGIN)


def _fitted(caption, font, width):
    """`caption`, shortened with an ellipsis to fit `width` pixels."""
    while caption and font.getlength(caption) > width:
        caption = caption[:-2] + "…" if len(caption) > 1 else ""
    return caption


def check_output(path):
    """Raise SemhashError unless `path` is a new file or a regular one to replace: a PNG is renamed
    into place, which would replace a symlink, a FIFO or a device node instead of writing through it."""
    path = Path(path)
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        if not path.parent.is_dir():
            raise SemhashError(f"cannot write {path}: {path.parent} is not a folder; give a path in an existing folder") from None
        return
    except OSError as error:
        raise SemhashError(f"cannot write {path}: {error.strerror}; give another path") from None
    if not stat.S_ISREG(mode):
        what = "a symlink" if stat.S_ISLNK(mode) else "a folder" if stat.S_ISDIR(mode) else "not a regular file"
        raise SemhashError(f"{path} is {what}; give the path of a new or regular PNG file")


def write_png(image, path):
    """Write the PIL `image` to `path` through a temporary file beside it, so a reader never sees half a PNG."""
    check_output(path)
    temporary = None
    try:
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp",
                                         delete=False) as file:
            temporary = Path(file.name)
            image.save(file, format="PNG")
        umask = os.umask(0)
        os.umask(umask)
        temporary.chmod(0o666 & ~umask)  # as a plain open() would have made it, not mkstemp's 0600
        os.replace(temporary, path)
    except OSError as error:
        raise SemhashError(
            f"cannot write {path}: {error.strerror or error}; give a path in a folder you can write to"
        ) from None
    finally:
        if temporary is not None:
            temporary.unlink(missing_ok=True)  # gone already once it has replaced `path`


def contact_sheet(query, results, path, scale=None):
    """Write a PNG of the `query` image (captioned "query") alone on the first row, then the
    `results`, (pixels, caption) pairs in rank order, in rows of up to COLUMNS. Every image is
    uint8 (height, width, 3) of the query's shape, enlarged `scale` times with nearest-neighbour
    (by default just enough to make tiles at least MIN_TILE pixels a side).

    Returns the (width, height) written, which is `sheet_size(query.shape, len(results), scale)`.
    """
    query = np.asarray(query)
    tiles = [(query, "query")] + [(np.asarray(pixels), caption) for pixels, caption in results]
    for pixels, caption in tiles:
        if pixels.dtype != np.uint8 or pixels.shape != query.shape or pixels.ndim != 3 or pixels.shape[2] != 3:
            raise SemhashError(f"the image captioned {caption!r} is {pixels.dtype} {pixels.shape}, not uint8 "
                               f"(height, width, 3) as the query {query.shape}; read every image as uint8 RGB "
                               f"at the query's size")
    scale = scale or default_scale(query.shape)
    size = sheet_size(query.shape, len(results), scale)
    cell_width, cell_height = _cell(query.shape, scale)
    tile_height, tile_width = query.shape[0] * scale, query.shape[1] * scale
    sheet = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    for index, (pixels, caption) in enumerate(tiles):
        row, column = (1 + (index - 1) // COLUMNS, (index - 1) % COLUMNS) if index else (0, 0)
        left = MARGIN + column * (cell_width + MARGIN)
        top = MARGIN + row * (cell_height + MARGIN)
        tile = Image.fromarray(pixels).resize((tile_width, tile_height), Image.Resampling.NEAREST)
        sheet.paste(tile, (left + (cell_width - tile_width) // 2, top))
        text = _fitted(str(caption), font, cell_width)
        caption_left = left + (cell_width - font.getlength(text)) / 2
        draw.text((caption_left, top + tile_height + 2), text, fill="black", font=font)
    write_png(sheet, Path(path))
    return size
