"""Dense, exact embedding of stack tiles: each frame's spatial features computed once per
tile and shared by every date whose window holds the frame, then the per-pixel temporal
and fusion models over fixed-size pixel chunks (conventions: models/runtime/specs.py).
"""

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..errors import CameoInputError
from ..progress import check_cancelled
from .specs import date_window, day_numbers, preprocess


class _FrameSlots:
    """Frame features of one modality, computed once per frame and kept in 11 slots (frame i
    in slot i % 11), chunk-major and channel-major: every array is [chunks, slots, ..., size],
    so the inputs of one pixel chunk - the window's 11 frames of a piece - are one contiguous
    block that ONNX Runtime reads in place, with no per-date gather, and a frame's features
    [F, pixels] (as the frame model writes them) go in without a transpose. A date's window
    is 11 consecutive frames, so it fills the slots exactly once (in rotated order: attention
    does not depend on the order of the frames; offsets and validity are given in slot order)."""

    def __init__(self, models, role, spec, values, size, pixels):
        self.models, self.role, self.spec, self.values = models, role, spec, values
        self.size, self.pixels = size, pixels
        d, layers = int(spec.extra["cameo_token_dim"]), int(spec.extra["cameo_temporal_layers"])
        self.d, self.layers, slots = d, layers, spec.frames
        self.chunks = -(-pixels // size)
        shape = (self.chunks, slots)
        self.token = np.zeros(shape + (d, size), np.float32)                  # the frame's query token
        self.kv = [np.zeros(shape + (d, size), np.float32) for _ in range(2 * layers)]  # key_0, value_0, ...
        self.valid = np.zeros(shape + (size,), np.float32)                    # window validity
        self.held = [None] * slots                                            # frame index per slot

    def _store(self, array, slot, columns):
        """Channel-major columns [..., pixels] into array[:, slot] (the columns after the last
        pixel stay 0)."""
        for chunk, start in enumerate(range(0, self.pixels, self.size)):
            stop = min(start + self.size, self.pixels)
            array[chunk, slot, ..., :stop - start] = columns[..., start:stop]

    def load(self, t):
        """Make sure frame t is in its slot."""
        slot = t % len(self.held)
        if self.held[slot] == t:
            return
        x = preprocess(self.values[t:t + 1], self.spec)
        f = self.models.run(self.role, {"frames": x})[0][0]
        f = f.reshape(f.shape[0], -1)                                          # [F, H*W]
        d = self.d
        self._store(self.token, slot, f[:d])
        for piece, array in enumerate(self.kv):
            self._store(array, slot, f[d * (1 + piece):d * (2 + piece)])
        self._store(self.valid, slot, f[-1])
        self.held[slot] = t

    def window(self, indices, days, t):
        """(slot offsets [K], slot of the target) for the window `indices` of date t; padding
        frames (-1) are in no slot: their slots stay zero (validity 0)."""
        offsets = np.zeros(len(self.held), np.float32)
        for i in indices:
            if i >= 0:
                self.load(i)
                offsets[i % len(self.held)] = days[i] - days[t]
        return offsets, t % len(self.held)

    def feeds(self, chunk, offsets, target):
        feeds = {"query": self.token[chunk, target], "frame_valid": self.valid[chunk], "offsets": offsets}
        for layer in range(self.layers):
            feeds[f"key_{layer}"] = self.kv[2 * layer][chunk]
            feeds[f"value_{layer}"] = self.kv[2 * layer + 1][chunk]
        return feeds


class _DateJob:
    """Everything the per-pixel models need for one target date; `run` does one pixel chunk.

    Chunks always have exactly `size` pixels (the last one is zero-padded): ONNX Runtime's
    kernels round differently for other shapes (vector tails), and a pixel's numbers must
    not depend on the tiling. Chunks are independent, so several run at once.
    """

    def __init__(self, models, slots2, slots1, window2, window1, present, gap, out, latents):
        self.models, self.size = models, slots2.size
        self.slots2, self.slots1 = slots2, slots1
        self.window2, self.window1 = window2, window1                           # (offsets, target slot)
        self.present, self.gap = present, gap                                   # [chunks, size], [1]
        self.out, self.latents = out, latents                                   # [E, P], (s2 [L, P], s1 [L, P])

    def run(self, chunk):
        start = chunk * self.size
        stop = min(start + self.size, self.out.shape[1])
        z2 = self.models.run("s2_temporal", self.slots2.feeds(chunk, *self.window2))[0]      # [L, size]
        if self.slots1 is not None:
            z1 = self.models.run("s1_temporal", self.slots1.feeds(chunk, *self.window1))[0]
            present = self.present[chunk]
        else:
            z1 = np.zeros((2 if self.models.s1 is None else self.models.s1.latent_dim, self.size), np.float32)
            present = np.zeros(self.size, np.float32)
        e = self.models.run("fusion", {"s2_latent": z2, "s1_latent": z1, "s1_present": present,
                                       "s1_gap_days": self.gap})[0]                          # [E, size]
        n = stop - start
        self.out[:, start:stop] = e[:, :n]
        if self.latents is not None:
            self.latents[0][:, start:stop] = z2[:, :n]
            self.latents[1][:, start:stop] = z1[:, :n]


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
    slots2 = _FrameSlots(models, "s2_frame", spec2, s2_values, size, h * w)
    slots1 = _FrameSlots(models, "s1_frame", models.s1, s1_values, size, h * w) if use_s1 else None
    out = np.empty((n_dates, models.embedding_dim, h * w), np.float32)
    if return_latents:
        l1 = models.s1.latent_dim if models.s1 is not None else 2
        latents = (np.empty((n_dates, spec2.latent_dim, h * w), np.float32),
                   np.empty((n_dates, l1, h * w), np.float32))
    present = np.zeros((slots2.chunks * size), np.float32)
    with ThreadPoolExecutor(models.workers) as pool:
        for t in range(n_dates):
            check_cancelled(progress)
            indices = date_window(t, n_dates, frames)[0]
            window2 = slots2.window(indices, days, t)
            window1, gap = None, np.zeros(1, np.float32)
            if use_s1:
                window1 = slots1.window(indices, days, t)
                centre = s1_values[t, :, halo:halo + h, halo:halo + w]
                present[:h * w] = np.all(np.isfinite(centre), axis=0).reshape(-1)
                gap = gaps[t:t + 1]
            job = _DateJob(models, slots2, slots1, window2, window1, present.reshape(-1, size), gap,
                           out[t], (latents[0][t], latents[1][t]) if return_latents else None)
            for _ in pool.map(job.run, range(slots2.chunks)):  # re-raises a chunk's error
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
