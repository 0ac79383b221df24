"""Training configurations, read from JSON files in `models/train/configs/`.

A config is a nested dict; `load_config` fills every missing key from `DEFAULTS`
(the `bundled` sizes) so a config file only states what differs, and rejects keys
that DEFAULTS does not know (a typo must not silently fall back to a default).
"""

import copy
import json
import os

CONFIG_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs")

_TRAIN = {
    "batch_size": 32,
    "lr": 1e-3,
    "weight_decay": 1.5e-4,
    "warmup_steps": 100,
    "max_steps": 2000,
    "eval_every": 200,
    "plateau_patience": 3,
    "plateau_factor": 0.5,
    "early_stopping_patience": 6,
    "grad_clip": 1.0,
    "max_minutes": 30.0,
    "val_windows": 512,
    "num_threads": 0,
}

DEFAULTS = {
    "name": "bundled",
    "version": "1.0.0",
    "seed": 42,
    "data": {
        "train_chips": ["belgium_00002806639B424A"],
        "val_chips": ["belgium_0000280849BAC91C"],
        "s1_extra_train_chips": [],
        "stack_dir": "runs/stacks",
        "s1_speckle_filter": "lee",
        "s1_speckle_size": 5,
        "window": 15,
        "frames": 11,
        "block": 20,
        "max_span_days": 200,
        "p_offcentre": 0.3,
        "p_consecutive": 0.3,
        "p_short": 0.05,
        "p_border": 0.1,
        "min_valid_fraction": 0.0,
    },
    "s2": {
        "width": 32, "token_dim": 32, "heads": 4, "temporal_layers": 2, "ffn": 64,
        "latent": 9, "ca_reduction": 4, "decoder_width": 32, "decoder_hidden": 128,
        "loss": {"mae": 0.665, "sam": 0.315, "ssim": 0.02, "centre_weight": 1.75,
                 "context": True},
        "train": dict(_TRAIN),
    },
    "s1": {
        "width": 16, "token_dim": 16, "heads": 2, "temporal_layers": 1, "ffn": 32,
        "latent": 2, "ca_reduction": 4, "decoder_width": 16, "decoder_hidden": 64,
        "loss": {"mae": 1.0, "sam": 0.0, "ssim": 0.0, "centre_weight": 1.5, "context": True},
        "train": dict(_TRAIN),
    },
    "fusion": {
        "width": 32, "heads": 4, "layers": 2, "ffn": 64, "embedding": 7,
        "head_hidden": 32, "p_drop_s1": 0.3, "freeze_encoders": True,
        "loss_s1": 0.5, "loss_s2": 0.5,
        "train": dict(_TRAIN),
    },
    "gpp": {
        "inputs": 7, "window_days": 90, "width": 32, "layers": 2, "heads": 4, "ffn": 64,
        "head_hidden": 16, "gpp_mean": 4.042, "gpp_std": 4.386,
        "train": dict(_TRAIN),
    },
    "export": {"opset": 17, "out_dir": "models/onnx"},
    "runs_dir": "runs",
}


def _merge(base, override, path=""):
    for key, value in override.items():
        where = f"{path}.{key}" if path else key
        if key.startswith("_"):  # comments
            continue
        if key not in base:
            raise KeyError(f"Unknown config key {where!r}; known: {sorted(base)}")
        if isinstance(base[key], dict) and isinstance(value, dict):
            _merge(base[key], value, where)
        else:
            base[key] = value
    return base


def load_config(path_or_name="bundled", overrides=None):
    """Config dict from a JSON file path or the name of a file in CONFIG_DIR."""
    path = path_or_name
    if not os.path.isfile(path):
        path = os.path.join(CONFIG_DIR, f"{path_or_name}.json")
    with open(path, encoding="utf-8") as handle:
        data = json.load(handle)
    config = _merge(copy.deepcopy(DEFAULTS), data)
    if overrides:
        _merge(config, overrides)
    return config


def default_config(overrides=None):
    config = copy.deepcopy(DEFAULTS)
    if overrides:
        _merge(config, overrides)
    return config
