"""What the analyses read from an embeddings.vrt: the chosen dates, pixels, example locations.

The VRT's metadata is read by `models.gpp.predict.read_embeddings_info`, pixels by the
block reader of `models.embedding.rgb`, and points/polygons become pixels as in
cameo:predictgpp's time-series table: one way to do each of these in CAMEO.
"""

import datetime
import os

import numpy as np
import rasterio

from ..embedding.rgb import read_pixels, row_blocks
from ..errors import CameoInputError
from ..gpp.predict import feature_cells
from ..gpp.predict import read_embeddings_info
from ..progress import check_cancelled

# Bytes of float32 values read at once: a block's rows are chosen to stay below this.
BLOCK_BYTES = 64 * 2**20

__all__ = ["BLOCK_BYTES", "block_windows", "feature_cells", "open_embeddings", "pixels_at",
           "read_embeddings_info", "read_pixels", "select_dates"]


def _parse_date(text, what):
    try:
        return datetime.date.fromisoformat(text.strip())
    except ValueError as error:
        raise CameoInputError(f"{what} {text.strip()!r} is not a date of the form YYYY-MM-DD.") from error


def select_dates(info, text, what="DATES"):
    """Indexes into info.dates chosen by `text`: empty = all dates; 'YYYY-MM-DD' one date;
    'YYYY-MM-DD,YYYY-MM-DD,...' those dates; 'YYYY-MM-DD/YYYY-MM-DD' every date in that
    range (inclusive). A date the stack lacks, or a range holding none, is refused."""
    text = (text or "").strip()
    name = os.path.basename(info.path)
    span = f"{len(info.dates)} dates from {info.dates[0]} to {info.dates[-1]}"
    if not text:
        return list(range(len(info.dates)))
    if "/" in text:
        start, _, end = text.partition("/")
        first, last = _parse_date(start, what), _parse_date(end, what)
        chosen = [t for t, d in enumerate(info.dates) if first <= d <= last]
        if not chosen:
            raise CameoInputError(
                f"No date of {name} lies between {first} and {last}: it holds {span}. Give a range "
                "that overlaps them, or leave the dates empty for all.")
        return chosen
    chosen = []
    for part in text.split(","):
        day = _parse_date(part, what)
        if day not in info.dates:
            raise CameoInputError(
                f"Date {day} is not in {name}, which holds {span}: give dates of the stack as "
                "YYYY-MM-DD (several comma-separated, or a range FIRST/LAST), or leave it empty for all.")
        chosen.append(info.dates.index(day))
    return sorted(set(chosen))


def band_indexes(info, dates):
    """1-based bands of the chosen date indexes, date-major (all features of a date together)."""
    n = len(info.features)
    return [t * n + f + 1 for t in dates for f in range(n)]


def open_embeddings(path):
    """(EmbeddingStackInfo, open rasterio dataset) of an embeddings.vrt written by cameo:embed."""
    info = read_embeddings_info(path)
    return info, rasterio.open(path)


def block_windows(info, n_bands, budget=None):
    """Full-width row windows whose float32 values over n_bands stay below `budget` bytes
    (default BLOCK_BYTES)."""
    budget = BLOCK_BYTES if budget is None else budget
    rows = max(1, budget // max(1, info.width * n_bands * 4))
    return row_blocks(info.height, rows)


def pixels_at(dataset, bands, cells, progress=None, rows=64):
    """float32 [len(cells), len(bands)]: the values at (row, col) cells, read row block by row block."""
    cells = np.asarray(cells, dtype=np.int64).reshape(-1, 2)
    out = np.full((len(cells), len(bands)), np.nan, np.float32)
    for block in row_blocks(dataset.height, rows):
        inside = np.flatnonzero((cells[:, 0] >= block.row_off) & (cells[:, 0] < block.row_off + block.height))
        if not len(inside):
            continue
        check_cancelled(progress)
        pixels, _ = read_pixels(dataset, bands, block)
        out[inside] = pixels[(cells[inside, 0] - block.row_off) * dataset.width + cells[inside, 1]]
    return out


def located_features(info, points, polygons, what):
    """[(feature id, [(row, col), ...])] of the points/polygons on the stack; none there is refused."""
    if not points and not polygons:
        raise CameoInputError(f"The {what} layer has no features with a geometry: give points or polygons.")
    found = feature_cells(info, points, polygons)
    if not found:
        raise CameoInputError(
            f"None of the {len(points or []) + len(polygons or [])} {what} lies on the embeddings "
            f"{os.path.basename(info.path)}: they are outside its extent. Check the layer and its CRS, or give "
            "features inside the raster.")
    return found
