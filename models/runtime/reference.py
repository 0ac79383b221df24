"""The per-window reference: each point's own 15 x 15 x 11 window cut from the raster and run
through the window-reference model - what the dense path must equal (models/runtime/dense.py).
"""

import numpy as np

from .specs import date_window, day_numbers, preprocess, window_offsets


def embed_windows(models, s2_values, dates, points, **kw):
    """Per-window reference: embeddings [P, E] of points (t, y, x) of a raster [T, C, H, W].

    Cuts each point's own 15 x 15 x 11 window (same date and edge rules as the dense path)
    and runs the window-reference ONNX model on it.
    """
    return models.run("window_reference", window_feeds(models, s2_values, dates, points, **kw))[0]


def _window(values, spec, indices, y, x, halo):
    """Model input [K, C+1, 2h+1, 2h+1] of the window at raster pixel (y, x) over frames
    `indices` (-1 = padding, all zeros): cut from the raw raster [T, C, H, W] (NaN, i.e.
    invalid, outside it) and preprocessed - only the window, never the whole raster."""
    n_bands, height, width = values.shape[1:]
    size = 2 * halo + 1
    out = np.zeros((len(indices), n_bands + 1, size, size), np.float32)
    present = [k for k, i in enumerate(indices) if i >= 0]
    if not present:
        return out
    raw = np.full((len(present), n_bands, size, size), np.nan, np.float32)
    top, left = y - halo, x - halo
    r0, r1 = max(top, 0), min(top + size, height)
    c0, c1 = max(left, 0), min(left + size, width)
    if r1 > r0 and c1 > c0:
        raw[:, :, r0 - top:r1 - top, c0 - left:c1 - left] = values[:, :, r0:r1, c0:c1][[indices[k] for k in present]]
    out[present] = preprocess(raw, spec)
    return out


def window_feeds(models, s2_values, dates, points, *, s2_bands, s1_values=None, s1_bands=None,
                 s1_gap_days=None):
    """The inputs of the window-reference model for points (t, y, x) of a raster."""
    spec2, spec1 = models.s2, models.s1
    spec2.check_bands(s2_bands, "Sentinel-2 stack")
    halo, frames = models.halo, spec2.frames
    s2_values = np.asarray(s2_values, np.float32)
    n_dates = s2_values.shape[0]
    days = day_numbers(dates)
    if s1_values is not None:
        spec1.check_bands(s1_bands, "Sentinel-1 stack")
        s1_raw = np.asarray(s1_values, np.float32)
        gaps = np.zeros(n_dates, np.float32) if s1_gap_days is None else np.asarray(s1_gap_days, np.float32)
        gaps = np.where(np.isfinite(gaps), gaps, 0.0)
    size = 2 * halo + 1
    feeds = {k: [] for k in ("s2_window", "s2_frame_exists", "offsets", "target_index", "s1_window",
                             "s1_frame_exists", "s1_gap_days", "s1_present")}
    n1 = len(spec1.bands) + 1 if spec1 is not None else 3
    for t, y, x in points:
        idx = date_window(t, n_dates, frames)
        indices, pos = idx
        exists = np.asarray([1.0 if i >= 0 else 0.0 for i in indices], np.float32)
        feeds["s2_window"].append(_window(s2_values, spec2, indices, y, x, halo))
        feeds["s2_frame_exists"].append(exists)
        feeds["offsets"].append(window_offsets(days, idx))
        feeds["target_index"].append(pos)
        if s1_values is not None:
            feeds["s1_window"].append(_window(s1_raw, spec1, indices, y, x, halo))
            feeds["s1_frame_exists"].append(exists)
            feeds["s1_gap_days"].append(gaps[t])
            feeds["s1_present"].append(float(np.all(np.isfinite(s1_raw[t, :, y, x]))))
        else:
            feeds["s1_window"].append(np.zeros((frames, n1, size, size), np.float32))
            feeds["s1_frame_exists"].append(np.zeros(frames, np.float32))
            feeds["s1_gap_days"].append(0.0)
            feeds["s1_present"].append(0.0)
    return {k: np.asarray(v, dtype=np.int64 if k == "target_index" else np.float32) for k, v in feeds.items()}
