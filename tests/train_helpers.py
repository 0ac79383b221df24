"""Tiny models and synthetic stacks for the training/runtime tests (fast on 2 CPU cores)."""

import datetime

import numpy as np

TINY = {
    "s2": {"width": 8, "token_dim": 8, "heads": 2, "temporal_layers": 2, "ffn": 16, "decoder_width": 8,
           "decoder_hidden": 16},
    "s1": {"width": 4, "token_dim": 4, "heads": 1, "temporal_layers": 1, "ffn": 8, "decoder_width": 4,
           "decoder_hidden": 8},
    "fusion": {"width": 8, "heads": 2, "layers": 1, "ffn": 16, "head_hidden": 8},
}

S2_BANDS = ["B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12"]
S1_BANDS = ["VV", "VH"]


def tiny_models(seed=0):
    import torch

    from models.train.config import default_config
    from models.train.model import FusionModel, ModalityAutoencoder

    torch.manual_seed(seed)
    cfg = default_config(TINY)
    s2 = ModalityAutoencoder(10, cfg["s2"]).eval()
    s1 = ModalityAutoencoder(2, cfg["s1"]).eval()
    fusion = FusionModel(cfg["fusion"], cfg["s2"], cfg["s1"]).fusion.eval()
    stats = {"S2": {"mean": [0.05 + 0.02 * i for i in range(10)], "std": [0.03 + 0.01 * i for i in range(10)]},
             "S1": {"mean": [0.55, 0.35], "std": [0.08, 0.07]}}
    return cfg, s2, s1, fusion, stats


def synthetic_stack(n_dates=13, height=20, width=18, seed=0, invalid=0.2):
    rng = np.random.default_rng(seed)
    s2 = rng.uniform(0.0, 0.5, (n_dates, 10, height, width)).astype(np.float32)
    s2[np.broadcast_to((rng.random((n_dates, height, width)) < invalid)[:, None], s2.shape)] = np.nan
    s1 = rng.uniform(-25.0, 0.0, (n_dates, 2, height, width)).astype(np.float32)
    if n_dates > 3:
        s1[3] = np.nan                      # a date without S1
    steps = rng.integers(2, 15, n_dates)
    dates = [datetime.date(2018, 1, 1) + datetime.timedelta(days=int(d)) for d in np.cumsum(steps)]
    gaps = rng.uniform(0, 3, n_dates).astype(np.float32)
    if n_dates > 3:
        gaps[3] = np.nan
    return s2, s1, dates, gaps
