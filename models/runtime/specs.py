"""The CAMEO model contract: file names, metadata, preprocessing, date windows, sessions.

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

import contextlib
import json
import os
from dataclasses import dataclass, field

import numpy as np

from ..errors import CameoInputError, first_line
from ..manifest import MODELS_DIR, verified_model_path

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


def day_numbers(dates):
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
        self._check_pixel_layout()
        for role, meta in metadata.items():
            if meta.get("cameo_model_version") != self.version or meta.get("cameo_model_name") != self.name:
                raise CameoInputError(
                    f"{MODEL_FILES[role]} is model {meta.get('cameo_model_name')} "
                    f"{meta.get('cameo_model_version')}, the others are {self.name} {self.version}: "
                    "the model files come from different exports. Reinstall the CAMEO plugin.")

    def _check_pixel_layout(self):
        """The per-pixel graphs must take the channel-major inputs the dense path feeds."""
        for role in ("s2_temporal", "s1_temporal", "fusion"):
            if role in self.sessions and self.metadata[role].get("cameo_pixel_layout") != PIXEL_LAYOUT:
                raise CameoInputError(
                    f"{MODEL_FILES[role]} has the per-pixel layout of an older CAMEO "
                    f"({self.metadata[role].get('cameo_pixel_layout', '1')}, this version runs {PIXEL_LAYOUT}): "
                    "convert the folder with `python -m models.train.reexport FOLDER`, or use the models "
                    "shipped with the plugin.")

    @property
    def halo(self):
        return self.s2.halo

    def run(self, role, feeds):
        return self.sessions[role].run(None, feeds)


# The per-pixel graphs' input layout the dense path feeds (models.train.export writes it):
# "3" = channel-major temporal and fusion graphs, [..., channels, pixels].
PIXEL_LAYOUT = "3"

# Per-pixel models (temporal encoders, fusion) are chains of tiny ops on [pixels, <= 12, <= 161]
# tensors: ONNX Runtime's intra-op threads mostly wait on each other there. They run with one
# thread each, and the engine runs several pixel chunks at once instead (sessions are
# thread-safe). Frame models are convolutions over whole tiles and use the intra-op threads.
# The GPP model (two small GEMMs per pixel-date) runs between numpy steps that use the cores:
# spinning intra-op threads took them away (its AOA search ran 5.7x slower beside them).
PER_PIXEL_ROLES = ("s2_temporal", "s1_temporal", "fusion", "gpp")


def default_workers():
    """CPU cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


@contextlib.contextmanager
def single_threaded_blas():
    """numpy's BLAS at one thread inside the block: for engines that run their own threads,
    whose BLAS threads would otherwise oversubscribe the cores (several times slower on a
    busy machine). Through threadpoolctl (installed with scikit-learn) when it is there."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


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


def open_session(path, role, threads=None, spinning=None, providers=None,
                 fix="Use the models shipped with the plugin, or a folder exported by models/train."):
    """(ONNX Runtime session, metadata dict) of the model file `path` in `role`.

    Per-pixel roles on the CPU get one intra-op thread (see PER_PIXEL_ROLES); the others
    `threads` (None: ONNX Runtime's default). spinning: let idle threads busy-wait
    (default: only when `threads` is not given). An unreadable file is a CameoInputError
    naming the file, ONNX Runtime's first line and `fix`."""
    import onnxruntime

    providers = providers or ["CPUExecutionProvider"]
    if spinning is None:
        spinning = not threads
    per_pixel = role in PER_PIXEL_ROLES and providers[0] == "CPUExecutionProvider"
    options = session_options(1 if per_pixel else threads, spinning and not per_pixel)
    try:
        session = onnxruntime.InferenceSession(path, options, providers=providers)
    except Exception as error:  # noqa: BLE001 - onnxruntime raises several types
        raise CameoInputError(f"{path} is not a readable ONNX model ({first_line(error)}). {fix}") from error
    return session, dict(session.get_modelmeta().custom_metadata_map)


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
    available = onnxruntime.get_available_providers()
    providers = providers or [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]
    on_cpu = providers[0] == "CPUExecutionProvider"
    workers = int(threads) if threads else default_workers()
    sessions, metadata = {}, {}
    for role in roles:
        name = MODEL_FILES[role]
        path = verified_model_path(name, models_dir) if verify else os.path.join(models_dir, name)
        sessions[role], metadata[role] = open_session(path, role, threads, spinning, providers)
    return CameoModels(sessions, metadata, workers=workers if on_cpu else 1)
