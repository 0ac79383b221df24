"""Dense, exact embedding of stack tiles with the CAMEO ONNX models.

Conventions (they are also written into every model's metadata):
- Window: 15 x 15 px x 11 dates; the target is the central pixel of the target date.
- Dates: the window of date t is the 11 nearest dates in the stack's date order, i.e.
  the consecutive run start..start+10 with start = clamp(t - 5, 0, T - 11), so the
  target is off-centre for the first and last five dates. Every frame carries its day
  offset to the target date. With fewer than 11 dates the missing frames are padding
  (frame_exists = 0) and are masked out of attention.
- Space: pixels outside the raster are invalid (NaN), exactly like clouds; the halo of
  a tile at the raster border is therefore filled with NaN. A pixel-date is valid when
  all its bands are finite.
- Invalid pixels are filled with 0 after normalisation (the training mean) and get
  validity channel 0 - a value that does not depend on the window, so dense == window.
- S1 for a pixel-date is "present" when its S1 bands at that pixel and date are finite;
  otherwise the fusion model takes its S1-missing path (as when no S1 stack is given).
"""

import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from ..errors import CameoInputError, first_line
from ..manifest import MODELS_DIR, verified_model_path
from ..progress import check_cancelled

MODEL_FILES = {
    "s2_frame": "cameo_s2_frame.onnx",
    "s2_temporal": "cameo_s2_temporal.onnx",
    "s1_frame": "cameo_s1_frame.onnx",
    "s1_temporal": "cameo_s1_temporal.onnx",
    "fusion": "cameo_fusion.onnx",
    "window_reference": "cameo_window_reference.onnx",
    "s2_reconstruction": "cameo_s2_reconstruction.onnx",
}
# Loaded when present: exports without the training decoders (tiny test models) lack them.
OPTIONAL_ROLES = ("s2_reconstruction",)


@dataclass
class ModalitySpec:
    """How raw stack values of one modality become model input (from ONNX metadata)."""
    modality: str
    bands: list
    units: str
    clip_min: float
    clip_max: float
    add: float
    multiply: float
    mean: np.ndarray
    std: np.ndarray
    fill: float
    window: int
    frames: int
    halo: int
    feature_channels: int
    latent_dim: int
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_metadata(cls, meta):
        try:
            scaling = json.loads(meta["cameo_scaling"])
            spec = cls(
                modality=meta["cameo_modality"], bands=json.loads(meta["cameo_bands"]),
                units=meta["cameo_input_units"],
                clip_min=float(scaling["clip_min"]), clip_max=float(scaling["clip_max"]),
                add=float(scaling["add"]), multiply=float(scaling["multiply"]),
                mean=np.asarray(json.loads(meta["cameo_norm_mean"]), dtype=np.float32),
                std=np.asarray(json.loads(meta["cameo_norm_std"]), dtype=np.float32),
                fill=float(meta["cameo_invalid_fill"]), window=int(meta["cameo_window"]),
                frames=int(meta["cameo_frames"]), halo=int(meta["cameo_halo"]),
                feature_channels=int(meta["cameo_feature_channels"]),
                latent_dim=int(meta["cameo_latent_dim"]), extra=dict(meta))
            spec._validate()
            return spec
        except (KeyError, ValueError, TypeError, AttributeError) as error:
            problem = f"lacks {error}" if isinstance(error, KeyError) else f"has a garbled entry ({error})"
            raise CameoInputError(
                f"The ONNX model's metadata {problem}: it is not a CAMEO "
                "modality model of this version. Use the models shipped with the plugin.") from error

    def _validate(self):
        """Values the runtime relies on (ValueError names the first one that is wrong)."""
        if not (isinstance(self.bands, list) and self.bands and all(isinstance(b, str) for b in self.bands)):
            raise ValueError("cameo_bands (a JSON list of band names)")
        if self.mean.shape != (len(self.bands),) or self.std.shape != (len(self.bands),):
            raise ValueError("cameo_norm_mean / cameo_norm_std (one number per band)")
        if not (np.all(np.isfinite(self.mean)) and np.all(np.isfinite(self.std)) and np.all(self.std > 0)):
            raise ValueError("cameo_norm_mean / cameo_norm_std (finite, std > 0)")
        if self.halo < 0 or self.window != 2 * self.halo + 1 or self.frames < 1:
            raise ValueError("cameo_window / cameo_halo / cameo_frames (window = 2 halo + 1, frames >= 1)")

    def check_bands(self, bands, what):
        bands = [str(b) for b in bands]
        if bands != self.bands:
            missing = [b for b in self.bands if b not in bands]
            detail = f"missing {', '.join(missing)}" if missing else "same bands in another order or extra bands"
            raise CameoInputError(
                f"The {what} has bands {', '.join(bands)} but the {self.modality} model expects "
                f"{', '.join(self.bands)} in this order ({detail}). Prepare the stack with "
                "cameo:preparestack so that it carries exactly these bands.")


def preprocess(values, spec):
    """Raw stack values [..., C, H, W] (NaN invalid) -> [..., C+1, H, W] float32 model input."""
    values = np.asarray(values, dtype=np.float32)
    valid = np.all(np.isfinite(values), axis=-3, keepdims=True)
    scaled = (np.clip(values, spec.clip_min, spec.clip_max) + np.float32(spec.add)) * np.float32(spec.multiply)
    shape = (-1, 1, 1)
    norm = (scaled - spec.mean.reshape(shape)) / spec.std.reshape(shape)
    norm = np.where(valid, norm, np.float32(spec.fill)).astype(np.float32)
    return np.concatenate([norm, valid.astype(np.float32)], axis=-3)


def date_window(t, n_dates, frames=11):
    """(indices [frames] with -1 for padding, target position) of date t's window."""
    if n_dates >= frames:
        start = min(max(t - frames // 2, 0), n_dates - frames)
        return list(range(start, start + frames)), t - start
    return list(range(n_dates)) + [-1] * (frames - n_dates), t


def _day_numbers(dates):
    out = []
    for d in dates:
        if hasattr(d, "toordinal"):
            out.append(float(d.toordinal()))
        else:
            out.append(float(np.datetime64(str(d), "D").astype(np.int64)))
    return np.asarray(out, dtype=np.float64)


def window_offsets(days, idx):
    """Day offsets [frames] of the window idx (padding -> 0) relative to its target."""
    indices, pos = idx
    t = indices[pos]
    return np.asarray([days[i] - days[t] if i >= 0 else 0.0 for i in indices], dtype=np.float32)


class CameoModels:
    """The loaded ONNX sessions and their metadata."""

    def __init__(self, sessions, metadata, workers=1):
        self.sessions = sessions
        self.metadata = metadata
        self.workers = max(1, int(workers))  # pixel chunks run at once by embed_tile
        self.s2 = ModalitySpec.from_metadata(metadata["s2_frame"])
        self.s1 = ModalitySpec.from_metadata(metadata["s1_frame"]) if "s1_frame" in metadata else None
        fusion = metadata["fusion"]
        try:
            self.output_names = [str(n) for n in json.loads(fusion["cameo_output_names"])]
            self.embedding_dim = int(fusion["cameo_embedding_dim"])
            self.version = fusion["cameo_model_version"]
            self.name = fusion["cameo_model_name"]
        except (KeyError, ValueError, TypeError) as error:
            problem = f"lacks {error}" if isinstance(error, KeyError) else f"has a garbled entry ({error})"
            raise CameoInputError(
                f"The metadata of {MODEL_FILES['fusion']} {problem}: it is not a CAMEO fusion "
                "model of this version. Use the models shipped with the plugin.") from error
        for role, meta in metadata.items():
            if meta.get("cameo_model_version") != self.version or meta.get("cameo_model_name") != self.name:
                raise CameoInputError(
                    f"{MODEL_FILES[role]} is model {meta.get('cameo_model_name')} "
                    f"{meta.get('cameo_model_version')}, the others are {self.name} {self.version}: "
                    "the model files come from different exports. Reinstall the CAMEO plugin.")

    @property
    def halo(self):
        return self.s2.halo

    def run(self, role, feeds):
        return self.sessions[role].run(None, feeds)


# Per-pixel models (temporal encoders, fusion) are chains of tiny ops on [pixels, <= 12, <= 161]
# tensors: ONNX Runtime's intra-op threads mostly wait on each other there. They run with one
# thread each, and the engine runs several pixel chunks at once instead (sessions are
# thread-safe). Frame models are convolutions over whole tiles and use the intra-op threads.
PER_PIXEL_ROLES = ("s2_temporal", "s1_temporal", "fusion")


def default_workers():
    """CPU cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def session_options(threads, spinning):
    """ONNX Runtime options: `threads` intra-op threads (None: its default), no busy-waiting
    unless `spinning`."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    if threads:
        options.intra_op_num_threads = int(threads)
        options.inter_op_num_threads = 1
    if not spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


def load_models(models_dir=None, threads=None, providers=None, verify=True, roles=None, spinning=None):
    """Load (and by default verify against SHA256SUMS) the CAMEO ONNX models.

    threads: CPU threads to use (default: all cores this process may use) - the intra-op
    threads of the frame models and the number of pixel chunks the per-pixel models run
    at once; spinning: False stops idle worker threads from busy-waiting (better on a
    shared CPU; default: off when `threads` is given)."""
    import onnxruntime

    models_dir = models_dir or MODELS_DIR
    roles = roles or [role for role, name in MODEL_FILES.items()
                      if role not in OPTIONAL_ROLES or os.path.isfile(os.path.join(models_dir, name))]
    if spinning is None:
        spinning = not threads
    available = onnxruntime.get_available_providers()
    providers = providers or [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]
    on_cpu = providers[0] == "CPUExecutionProvider"
    workers = int(threads) if threads else default_workers()
    sessions, metadata = {}, {}
    for role in roles:
        name = MODEL_FILES[role]
        path = verified_model_path(name, models_dir) if verify else os.path.join(models_dir, name)
        per_pixel = role in PER_PIXEL_ROLES and on_cpu
        options = session_options(1 if per_pixel else threads, spinning and not per_pixel)
        try:
            session = onnxruntime.InferenceSession(path, options, providers=providers)
        except Exception as error:  # noqa: BLE001 - onnxruntime raises several types
            first = first_line(error)
            raise CameoInputError(
                f"{path} is not a readable ONNX model ({first}). Use the models shipped with the plugin, "
                "or a folder exported by models/train.") from error
        sessions[role] = session
        metadata[role] = dict(session.get_modelmeta().custom_metadata_map)
    return CameoModels(sessions, metadata, workers=workers if on_cpu else 1)


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
    days = _day_numbers(dates)
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
    days = _day_numbers(dates)
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
