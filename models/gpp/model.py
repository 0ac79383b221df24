"""The GPP ONNX model: loading (manifest-checked when bundled), metadata, batched runs.

Contract of a CAMEO GPP model (written by models/train/gpp_lue.py, metadata format 2):
inputs `bins` float32 [N, E, bins] (per feature F01..F07, the means over consecutive
window_days / bins days of its daily, linearly interpolated values in the window, oldest
first) and
`radiation` float32 [N] (the last day's top-of-atmosphere radiation, MJ m-2 d-1,
models.gpp.sun) -> outputs `gpp` float32 [N],
GPP on the window's last day in g C m-2 d-1, and `aoa_features` [N, K] for the area of
applicability. Metadata: cameo_role = gpp, cameo_metadata_format = 2, cameo_window_days, cameo_bins,
cameo_inputs (JSON list), cameo_units, cameo_max_gap_days, cameo_embedding_model_name and
cameo_embedding_model_version (the embedding models whose outputs it was trained on),
optionally cameo_used_bins (JSON list: the bins the outputs depend on; the runtime feeds
zeros for the others, default: all bins), and the AOA (models.gpp.aoa: cameo_aoa_*).
"""

import json
import os
from dataclasses import dataclass

import numpy as np

from ..errors import CameoInputError
from ..manifest import MODELS_DIR, verified_model_path
from ..runtime.specs import open_session
from .aoa import AreaOfApplicability

GPP_MODEL_FILE = "cameo_gpp.onnx"
EXPORTER = "python -m models.train.gpp_experiment --export (models/train/gpp_lue.py)"
CHUNK = 8192  # pixel-dates per ONNX call (inputs are 63 bin means each)


@dataclass
class GPPModel:
    session: object
    path: str
    metadata: dict
    window_days: int
    inputs: list
    units: str
    max_gap_days: int
    embedding_model: tuple  # (name, version)
    aoa: AreaOfApplicability
    bins: int
    used_bins: list  # the bins the outputs depend on (the others may be fed as zeros)

    def run(self, bins, radiation, chunk=CHUNK):
        """(GPP [N], AOA dissimilarity index [N]) of window bin means [N, E, bins] and radiation [N].

        Fixed-size chunks, so results do not depend on N."""
        windows = np.asarray(bins, np.float32)
        radiation = np.asarray(radiation, np.float32)
        n = len(windows)
        gpp = np.empty(n, np.float32)
        features = None
        for start in range(0, n, chunk):
            part, ra = windows[start:start + chunk], radiation[start:start + chunk]
            m = len(part)
            if m < chunk:
                part = np.concatenate([part, np.zeros((chunk - m,) + part.shape[1:], np.float32)])
                ra = np.concatenate([ra, np.zeros(chunk - m, np.float32)])
            g, f = self.session.run(None, {"bins": np.ascontiguousarray(part), "radiation": ra})
            if features is None:
                features = np.empty((n, f.shape[1]), np.float32)
            gpp[start:start + m], features[start:start + m] = g[:m], f[:m]
        if n == 0:
            return gpp, np.zeros(0, np.float32)
        return gpp, self.aoa.dissimilarity(features)


def load_gpp_model(path=None, threads=None, verify=True):
    """The bundled GPP model (checked against models/onnx/SHA256SUMS) or the ONNX file `path`."""
    if path is None:
        path = verified_model_path(GPP_MODEL_FILE, MODELS_DIR) if verify else os.path.join(MODELS_DIR, GPP_MODEL_FILE)
    elif not os.path.isfile(path):
        raise CameoInputError(f"GPP model {path} does not exist.")
    session, meta = open_session(path, "gpp", threads, fix=f"Give a model exported by {EXPORTER}.")
    if meta.get("cameo_role") != "gpp":
        raise CameoInputError(f"{os.path.basename(path)} is not a CAMEO GPP model (its metadata has no "
                              f"cameo_role = gpp): give a model exported by {EXPORTER}.")
    if meta.get("cameo_metadata_format") != "2":
        raise CameoInputError(f"{os.path.basename(path)} is a GPP model of an older CAMEO (no radiation input "
                              f"and no area of applicability): re-train and export it with {EXPORTER}.")
    try:
        bins = int(meta["cameo_bins"])
        used_bins = json.loads(meta.get("cameo_used_bins", "null")) or list(range(bins))
        if not all(isinstance(b, int) and 0 <= b < bins for b in used_bins):
            raise ValueError("cameo_used_bins")
        model = GPPModel(session, path, meta, int(meta["cameo_window_days"]), json.loads(meta["cameo_inputs"]),
                         meta["cameo_units"], int(meta["cameo_max_gap_days"]),
                         (meta["cameo_embedding_model_name"], meta["cameo_embedding_model_version"]),
                         AreaOfApplicability.from_metadata(meta), bins, used_bins)
    except (KeyError, ValueError, TypeError) as error:
        raise CameoInputError(f"The GPP model {os.path.basename(path)} lacks or garbles the metadata "
                              f"{error}: re-export it with {EXPORTER}.") from error
    return model


def check_embedding_model(gpp_model, name, version, features, what):
    """Refuse embeddings made by other models than the GPP model was trained on."""
    expected_name, expected_version = gpp_model.embedding_model
    if (name, version) != (expected_name, expected_version):
        raise CameoInputError(
            f"{what} was made by embedding model {name or 'unknown'} {version or ''}".rstrip()
            + f", but the GPP model was trained on embeddings of {expected_name} {expected_version}: "
            "the numbers mean different things. Recompute the embeddings with cameo:embed and the "
            "bundled models (or give the GPP model trained for those embeddings).")
    if list(features) != list(gpp_model.inputs):
        raise CameoInputError(f"{what} has features {', '.join(features)}; the GPP model needs "
                              f"{', '.join(gpp_model.inputs)}.")
