"""Embeddings of tower footprint tables: each row as a homogeneous window.

A footprint table gives one mean reflectance spectrum per acquisition, with no spatial
context and no Sentinel-1. Each row is therefore spread over a homogeneous 15 x 15 px
frame (every pixel the footprint mean) and the dates of the table form the time axis,
exactly as a stack of a perfectly homogeneous area would. The embeddings come from the
dense runtime on one 15 x 15 tile (= the tile's single centre pixel with its 7 px halo:
the same numbers as the per-window reference model, see tests/test_gpp_data.py) and the
fusion model's Sentinel-1-missing path (no S1 stack).
"""

import numpy as np

from .towers import CAMEO_S2_BANDS


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
