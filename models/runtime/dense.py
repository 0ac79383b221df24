"""Dense, exact embedding of stack tiles: each frame's spatial features computed once per
tile and shared by every date whose window holds the frame, then the per-pixel temporal
and fusion models over fixed-size pixel chunks (conventions: models/runtime/specs.py).
"""

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..errors import CameoInputError
from ..progress import check_cancelled
from .specs import date_window, day_numbers, preprocess, window_offsets


class _FrameCache:
    """Frame features of one modality, computed once per frame (and turned pixel-major,
    [H*W, F], once) and dropped when no window needs them any more."""

    def __init__(self, models, role, spec, values):
        self.models, self.role, self.spec, self.values = models, role, spec, values
        self.cache = {}

    def get(self, t):
        if t not in self.cache:
            x = preprocess(self.values[t:t + 1], self.spec)
            f = self.models.run(self.role, {"frames": x})[0][0]                # [F, H, W]
            self.cache[t] = np.ascontiguousarray(f.reshape(f.shape[0], -1).T)   # [H*W, F]
        return self.cache[t]

    def drop_before(self, t):
        for key in [k for k in self.cache if k < t]:
            del self.cache[key]


def _pixel_rows(array, start, stop, size):
    """Rows start:stop of a pixel-major array, zero-padded to exactly `size` rows."""
    part = array[start:stop]
    if stop - start < size:
        pad = np.zeros((size - (stop - start),) + part.shape[1:], part.dtype)
        part = np.concatenate([part, pad])
    return part


class _DateJob:
    """Everything the per-pixel models need for one target date; `run` does one pixel chunk.

    Chunks always have exactly `size` pixels (the last one is zero-padded): ONNX Runtime's
    kernels round differently for other shapes (vector tails), and a pixel's numbers must
    not depend on the tiling. Chunks are independent, so several run at once.
    """

    def __init__(self, models, size, idx, offsets, frames2, frames1, present, gap, out, latents):
        self.models, self.size = models, size
        self.indices, self.pos = idx
        self.offsets = offsets[None]                                            # [1, K]
        self.exists = np.asarray([[1.0 if i >= 0 else 0.0 for i in self.indices]], dtype=np.float32)
        self.frames2, self.frames1 = frames2, frames1                           # K x [P, F] or None
        self.present, self.gap = present, gap                                   # [P], [1]
        self.out, self.latents = out, latents                                   # [E, P], (s2 [L, P], s1 [L, P])

    def _temporal(self, role, frames, start, stop):
        """Latents [1, size, L] of the chunk from the window's frame features."""
        first = next(f for f in frames if f is not None)
        features = np.zeros((1, self.size, len(frames), first.shape[1]), np.float32)  # [1, size, K, F]
        for k, frame in enumerate(frames):
            if frame is not None:
                features[0, :stop - start, k] = frame[start:stop]
        query = np.ascontiguousarray(features[:, :, self.pos])
        return self.models.run(role, {"query": query, "features": features,
                                      "frame_exists": self.exists, "offsets": self.offsets})[0]

    def run(self, start):
        stop = min(start + self.size, self.out.shape[1])
        z2 = self._temporal("s2_temporal", self.frames2, start, stop)
        if self.frames1 is not None:
            z1 = self._temporal("s1_temporal", self.frames1, start, stop)
            present = _pixel_rows(self.present, start, stop, self.size)[None]
        else:
            z1 = np.zeros((1, self.size, 2 if self.models.s1 is None else self.models.s1.latent_dim), np.float32)
            present = np.zeros((1, self.size), np.float32)
        e = self.models.run("fusion", {"s2_latent": z2, "s1_latent": z1, "s1_present": present,
                                       "s1_gap_days": self.gap})[0]
        n = stop - start
        self.out[:, start:stop] = e[0, :n].T
        if self.latents is not None:
            self.latents[0][:, start:stop] = z2[0, :n].T
            self.latents[1][:, start:stop] = z1[0, :n].T


def embed_tile(models, s2_values, dates, *, s2_bands, s1_values=None, s1_bands=None, s1_gap_days=None,
               progress=None, max_pixels_per_run=1024, return_latents=False):
    """Embeddings [T, E, H, W] of one tile given with its halo: s2_values [T, C, H+2h, W+2h].

    NaN marks invalid values, including the halo outside the raster. `dates` are the T
    stack dates (datetime.date or ISO strings) in ascending order; `s1_gap_days` [T]
    the S1-S2 gaps (NaN or None where there is no S1). The per-pixel models run on
    chunks of exactly `max_pixels_per_run` pixels, `models.workers` chunks at once.
    """
    spec2, halo = models.s2, models.halo
    s2_values = np.asarray(s2_values, dtype=np.float32)
    if s2_values.ndim != 4:
        raise CameoInputError(f"S2 tile must be [dates, bands, rows, cols], got shape {s2_values.shape}.")
    spec2.check_bands(s2_bands, "Sentinel-2 stack")
    n_dates, _, hh, ww = s2_values.shape
    if len(dates) != n_dates:
        raise CameoInputError(f"{len(dates)} dates given for a stack of {n_dates} dates.")
    h, w = hh - 2 * halo, ww - 2 * halo
    if h < 1 or w < 1:
        raise CameoInputError(f"Tile {hh}x{ww} is smaller than its 2 x {halo} px halo.")
    days = day_numbers(dates)
    if np.any(np.diff(days) <= 0):
        raise CameoInputError("Stack dates must be unique and ascending.")
    use_s1 = s1_values is not None
    if use_s1:
        if models.s1 is None:
            raise CameoInputError("A Sentinel-1 stack was given but no Sentinel-1 model is loaded.")
        s1_values = np.asarray(s1_values, dtype=np.float32)
        models.s1.check_bands(s1_bands, "Sentinel-1 stack")
        if s1_values.shape[0] != n_dates or s1_values.shape[2:] != s2_values.shape[2:]:
            raise CameoInputError(
                f"Sentinel-1 tile shape {s1_values.shape} does not match the Sentinel-2 tile "
                f"{s2_values.shape} (same dates and grid needed).")
        gaps = np.zeros(n_dates, np.float32) if s1_gap_days is None else np.asarray(s1_gap_days, np.float32)
        gaps = np.where(np.isfinite(gaps), gaps, 0.0).astype(np.float32)
    frames, size = spec2.frames, int(max_pixels_per_run)
    c2 = _FrameCache(models, "s2_frame", spec2, s2_values)
    c1 = _FrameCache(models, "s1_frame", models.s1, s1_values) if use_s1 else None
    out = np.empty((n_dates, models.embedding_dim, h * w), np.float32)
    if return_latents:
        l1 = models.s1.latent_dim if models.s1 is not None else 2
        latents = (np.empty((n_dates, spec2.latent_dim, h * w), np.float32),
                   np.empty((n_dates, l1, h * w), np.float32))
    starts = range(0, h * w, size)
    with ThreadPoolExecutor(models.workers) as pool:
        for t in range(n_dates):
            check_cancelled(progress)
            idx = date_window(t, n_dates, frames)
            first = min(i for i in idx[0] if i >= 0)
            c2.drop_before(first)
            frames2 = [c2.get(i) if i >= 0 else None for i in idx[0]]
            frames1, present, gap = None, None, np.zeros(1, np.float32)
            if use_s1:
                c1.drop_before(first)
                frames1 = [c1.get(i) if i >= 0 else None for i in idx[0]]
                centre = s1_values[t, :, halo:halo + h, halo:halo + w]
                present = np.all(np.isfinite(centre), axis=0).reshape(-1).astype(np.float32)
                gap = gaps[t:t + 1]
            job = _DateJob(models, size, idx, window_offsets(days, idx), frames2, frames1, present, gap,
                           out[t], (latents[0][t], latents[1][t]) if return_latents else None)
            for _ in pool.map(job.run, starts):  # re-raises a chunk's error
                pass
            if progress is not None:
                progress.setProgress(100.0 * (t + 1) / n_dates)
    out = out.reshape(n_dates, -1, h, w)
    if return_latents:
        return out, {"s2": latents[0].reshape(n_dates, -1, h, w), "s1": latents[1].reshape(n_dates, -1, h, w)}
    return out


def _pad(values, halo):
    if values is None:
        return None
    values = np.asarray(values, dtype=np.float32)
    return np.pad(values, ((0, 0), (0, 0), (halo, halo), (halo, halo)), constant_values=np.nan)


def embed_raster(models, s2_values, dates, *, s2_bands, s1_values=None, s1_bands=None, s1_gap_days=None, **kw):
    """Embeddings [T, E, H, W] of a whole raster [T, C, H, W] (outside = invalid)."""
    halo = models.halo
    return embed_tile(models, _pad(s2_values, halo), dates, s2_bands=s2_bands, s1_values=_pad(s1_values, halo),
                      s1_bands=s1_bands, s1_gap_days=s1_gap_days, **kw)
