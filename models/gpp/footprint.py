"""Embeddings of tower footprint tables: each row as a homogeneous window.

A footprint table gives one mean reflectance spectrum per acquisition, with no spatial
context and no Sentinel-1. Each row is therefore spread over a homogeneous 15 x 15 px
frame (every pixel the footprint mean) and the dates of the table form the time axis,
exactly as a stack of a perfectly homogeneous area would. The embeddings come from the
dense runtime on one 15 x 15 tile (= the tile's single centre pixel with its 7 px halo:
the same numbers as the per-window reference model, see tests/test_gpp_data.py) and the
fusion model's Sentinel-1-missing path (no S1 stack).
"""

import datetime

import numpy as np

from .series import WINDOW_DAYS, daily_series, day_numbers
from .sun import toa_radiation_days
from .towers import CAMEO_S2_BANDS, read_footprint


def homogeneous_tile(values, halo=7):
    """[T, C] spectra -> [T, C, 2 halo + 1, 2 halo + 1] constant frames."""
    size = 2 * halo + 1
    values = np.asarray(values, np.float32)
    return np.ascontiguousarray(np.broadcast_to(values[:, :, None, None], values.shape + (size, size)))


def embed_footprint(models, dates, values):
    """Embeddings [T, E] float32 of footprint rows (dates ascending, values [T, 10] reflectance)."""
    from ..runtime import embed_tile

    tile = homogeneous_tile(values, models.halo)
    emb = embed_tile(models, tile, list(dates), s2_bands=CAMEO_S2_BANDS)
    return emb[:, :, 0, 0]


def tower_windows(models, footprint_path, latitude, years=None):
    """Every day (of the years, default: all) with a complete window of a footprint table's
    embeddings: days, x [N, 90, 7], ra (top-of-atmosphere radiation), nirv (daily-interpolated)."""
    fp = read_footprint(footprint_path)
    emb = embed_footprint(models, fp.dates, fp.values)
    obs = day_numbers(fp.dates)
    if years is None:
        first, last = int(obs[0]), int(obs[-1])
    else:
        first, last = datetime.date(years[0], 1, 1).toordinal(), datetime.date(years[1], 12, 31).toordinal()
    start = first - WINDOW_DAYS + 1
    daily = daily_series(obs, emb, start, last).astype(np.float32)
    nirv = daily_series(obs, fp.nirv[:, None], start, last)[:, 0]
    ok = np.isfinite(daily).all(1)
    filled = np.concatenate([[0], np.cumsum(ok)])
    days = np.arange(first, last + 1)
    i = days - start
    complete = filled[i + 1] - filled[i + 1 - WINDOW_DAYS] == WINDOW_DAYS
    days, i = days[complete], i[complete]
    x = np.stack([daily[k - WINDOW_DAYS + 1:k + 1] for k in i]) if len(i) else np.zeros((0, WINDOW_DAYS, 7))
    return {"days": days, "x": x.astype(np.float32), "ra": toa_radiation_days(latitude, days).astype(np.float32),
            "nirv": nirv[i].astype(np.float32), "rows": len(fp.dates), "dropped": fp.dropped}
