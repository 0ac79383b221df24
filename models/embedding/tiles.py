"""Tiles of a raster window, and reading a tile with its halo from a CAMEO stack.

Each tile is embedded together with a halo of `halo` pixels (7 for a 15 x 15 window) on
every side; pixels of the halo that fall outside the raster are read as NaN (invalid),
the same rule the per-window reference applies, so results do not depend on tiling.
"""

from dataclasses import dataclass

import numpy as np
from rasterio.errors import RasterioIOError
from rasterio.windows import Window

from ..errors import CameoInputError, first_line


@dataclass(frozen=True)
class Tile:
    """A block of the output grid: rows row..row+height, cols col..col+width (raster pixels)."""

    row: int
    col: int
    height: int
    width: int

    @property
    def pixels(self):
        return self.height * self.width


def tile_grid(window, tile_size):
    """Tiles of at most tile_size x tile_size covering `window` (a rasterio Window), row-major."""
    row0, col0 = int(window.row_off), int(window.col_off)
    height, width = int(window.height), int(window.width)
    return [Tile(row, col, min(tile_size, row0 + height - row), min(tile_size, col0 + width - col))
            for row in range(row0, row0 + height, tile_size)
            for col in range(col0, col0 + width, tile_size)]


def read_with_halo(dataset, tile, halo, bands_per_date):
    """Values [T, C, h + 2 halo, w + 2 halo] float32 of `tile` and its halo; NaN outside.

    `dataset` is an open rasterio dataset of a CAMEO stack (T x C bands, date-major).
    Only the part inside the raster is read; the rest stays NaN.
    """
    top, left = tile.row - halo, tile.col - halo
    height, width = tile.height + 2 * halo, tile.width + 2 * halo
    out = np.full((dataset.count, height, width), np.nan, dtype=np.float32)
    r0, c0 = max(top, 0), max(left, 0)
    r1, c1 = min(top + height, dataset.height), min(left + width, dataset.width)
    if r1 > r0 and c1 > c0:
        try:
            out[:, r0 - top:r1 - top, c0 - left:c1 - left] = dataset.read(
                window=Window(c0, r0, c1 - c0, r1 - r0), out_dtype="float32")
        except RasterioIOError as error:
            first = first_line(error)
            raise CameoInputError(
                f"{dataset.name} is damaged or incomplete: GDAL cannot read it ({first}). "
                "Prepare the stack again with cameo:preparestack.") from error
    return out.reshape(dataset.count // bands_per_date, bands_per_date, height, width)
