"""Run the CAMEO ONNX models over Sentinel-2 (+ Sentinel-1) stack tiles (numpy + onnxruntime).

All preprocessing (band order, scaling, clipping, normalisation, invalid fill, window,
frames, halo) is read from the ONNX metadata; nothing about the inputs is hard-coded
here. Models are checked against the sha256 manifest before use.

    models = load_models()                          # models/onnx, verified
    emb = embed_raster(models, s2.values, s2.dates, s2_bands=s2.bands,
                       s1_values=s1.values, s1_bands=s1.bands, s1_gap_days=s1.s1_gap_days)
    # emb: [T, 7, H, W] float32, F01..F07 per date

- specs.py: the model contract (file names, metadata, preprocessing, date windows) and
  `open_session` / `load_models`, the one way any CAMEO model file is opened;
- dense.py: `embed_tile`, one tile with its 7-pixel halo ([T, C, H+14, W+14], NaN =
  invalid, NaN outside the raster), which models/embedding tiles and writes;
- reference.py: the per-window reference the dense path must equal.
"""

from .dense import embed_raster, embed_tile
from .reference import embed_windows, window_feeds
from .specs import (MODEL_FILES, OPTIONAL_ROLES, CameoModels, ModalitySpec, date_window, day_numbers, default_workers,
                    load_models, open_session, preprocess, session_options)

__all__ = ["CameoModels", "ModalitySpec", "MODEL_FILES", "OPTIONAL_ROLES", "date_window", "day_numbers", "embed_raster",
           "embed_tile", "default_workers", "embed_windows", "load_models", "open_session", "preprocess",
           "session_options", "window_feeds"]
