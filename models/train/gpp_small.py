"""GPP regressors the bundled light-use-efficiency model (gpp_lue.py) is compared with.

- `BinnedMLP` (the previous bundled recipe): the 90-day window averaged into 9 consecutive
  10-day bins per feature, flattened (63 values) and mapped by a 2-layer MLP (63 -> 32 -> 1);
  no sun, no positivity.
- `PaperTransformer`: the paper's transformer regressor with the `paper` config's `gpp` sizes
  (7 -> 96, learned position embedding over the 90 days, 3 pre-norm layers, 8 heads, FFN 192,
  last-token pooling, head 96 -> 48 -> 1), with batched matmul attention.

Both are wrapped in `Standardised`: inputs standardised with training-set per-feature mean
and std, outputs de-standardised with the method's GPP mean 4.042 and std 4.386 (g C m-2
d-1). models/train/gpp_experiment.py trains them in the same splits and with the same
daily/monthly losses as the bundled model (gpp_lue.fit_on_parts); `fit` trains on daily
windows only, and `train_on_windows` is the `gpp` stage of `python -m models.train` (the
transformer with the config's `gpp` sizes on an .npz of daily windows).
"""

import json
import math
import os

import numpy as np
import torch
from torch import nn

from .loop import seed_everything

GPP_MEAN, GPP_STD = 4.042, 4.386

SMALL = {"kind": "binned_mlp", "bins": 9, "hidden": 32, "lr": 3e-3, "weight_decay": 1e-3,
         "batch_size": 32, "steps": 2000, "warmup_steps": 100, "grad_clip": 1.0}
PAPER = {"kind": "transformer", "width": 96, "layers": 3, "heads": 8, "ffn": 192, "head_hidden": 48,
         "lr": 1e-4, "weight_decay": 1.5e-4, "batch_size": 16, "steps": 1000, "warmup_steps": 100,
         "grad_clip": 1.0}


class BinnedMLP(nn.Module):
    """[B, window, F] -> [B]: mean over `bins` consecutive bins of the window, then an MLP."""

    def __init__(self, inputs, window_days=90, bins=9, hidden=32):
        super().__init__()
        if window_days % bins:
            raise ValueError("window_days must be a multiple of bins")
        self.bins, self.per_bin = bins, window_days // bins
        self.mlp = nn.Sequential(nn.Linear(bins * inputs, hidden), nn.GELU(), nn.Linear(hidden, 1))

    def forward(self, x):
        b = x.reshape(x.shape[0], self.bins, self.per_bin, x.shape[-1]).mean(2)
        return self.mlp(b.flatten(1)).squeeze(-1)


class _Block(nn.Module):
    def __init__(self, width, heads, ffn):
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.norm2 = nn.LayerNorm(width)
        self.ffn = nn.Sequential(nn.Linear(width, ffn), nn.GELU(), nn.Linear(ffn, width))

    def forward(self, x):
        b, s, w = x.shape
        q, k, v = self.qkv(self.norm1(x)).reshape(b, s, 3, self.heads, w // self.heads).permute(2, 0, 3, 1, 4)
        attn = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(w // self.heads), dim=-1)   # [b, h, s, s]
        x = x + self.proj((attn @ v).transpose(1, 2).reshape(b, s, w))
        return x + self.ffn(self.norm2(x))


class PaperTransformer(nn.Module):
    """[B, window, F] -> [B]: the paper's transformer regressor (last-token pooling)."""

    def __init__(self, inputs, window_days=90, width=96, layers=3, heads=8, ffn=192, head_hidden=48):
        super().__init__()
        self.proj = nn.Linear(inputs, width)
        self.pos = nn.Parameter(torch.zeros(window_days, width))
        nn.init.normal_(self.pos, std=0.02)
        self.blocks = nn.ModuleList(_Block(width, heads, ffn) for _ in range(layers))
        self.norm = nn.LayerNorm(width)
        self.head = nn.Sequential(nn.Linear(width, head_hidden), nn.GELU(), nn.Linear(head_hidden, 1))

    def forward(self, x):
        h = self.proj(x) + self.pos
        for block in self.blocks:
            h = block(h)
        return self.head(self.norm(h[:, -1])).squeeze(-1)


class Standardised(nn.Module):
    """Raw window [B, window, F] -> GPP in g C m-2 d-1 (the exported graph)."""

    def __init__(self, core, mean, std):
        super().__init__()
        self.core = core
        self.register_buffer("mean", torch.as_tensor(np.asarray(mean, np.float32)))
        self.register_buffer("std", torch.as_tensor(np.asarray(std, np.float32)))

    def standardised(self, x):
        return self.core((x - self.mean) / self.std)

    def forward(self, x):
        return self.standardised(x) * GPP_STD + GPP_MEAN


def build(spec, inputs, window_days=90):
    if spec["kind"] == "binned_mlp":
        return BinnedMLP(inputs, window_days, spec["bins"], spec["hidden"])
    if spec["kind"] == "transformer":
        return PaperTransformer(inputs, window_days, spec["width"], spec["layers"], spec["heads"], spec["ffn"],
                                spec["head_hidden"])
    raise ValueError(f"unknown GPP model kind {spec['kind']}")


def fit(spec, x, y, seed=42, threads=1, window_days=90):
    """Train on windows x [N, window, F] and GPP y [N] (g C m-2 d-1) -> Standardised module (eval)."""
    torch.set_num_threads(threads)
    seed_everything(seed)
    x = np.asarray(x, np.float32)
    flat = x.reshape(-1, x.shape[-1])
    mean, std = flat.mean(0), flat.std(0) + 1e-6
    model = Standardised(build(spec, x.shape[-1], window_days), mean, std)
    xt = torch.from_numpy(x)
    yt = torch.from_numpy(((np.asarray(y, np.float32) - GPP_MEAN) / GPP_STD).astype(np.float32))
    opt = torch.optim.AdamW(model.parameters(), lr=spec["lr"], weight_decay=spec["weight_decay"])
    rng = np.random.default_rng(seed)
    model.train()
    for step in range(spec["steps"]):
        for group in opt.param_groups:
            group["lr"] = spec["lr"] * min(1.0, (step + 1) / max(1, spec["warmup_steps"]))
        idx = torch.from_numpy(rng.integers(0, len(xt), spec["batch_size"]))
        loss = (model.standardised(xt[idx]) - yt[idx]).abs().mean()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), spec["grad_clip"])
        opt.step()
    model.eval()
    return model


def predict(model, x, batch=512):
    out = []
    with torch.no_grad():
        for i in range(0, len(x), batch):
            out.append(model(torch.from_numpy(np.asarray(x[i:i + batch], np.float32))).numpy())
    return np.concatenate(out) if out else np.zeros(0, np.float32)


def macs_per_window(spec, inputs=7, window_days=90):
    """Multiply-adds of one window in the exported graph (dense layers and attention; elementwise
    ops ignored). The BinnedMLP is exported folded: one 630 -> 32 layer (20 k) instead of
    binning + 63 -> 32 (2.7 k multiply-adds), because one GEMM runs faster than the small ops."""
    if spec["kind"] == "binned_mlp":
        return window_days * inputs * spec["hidden"] + 2 * spec["hidden"]
    w, s, f = spec["width"], window_days, spec["ffn"]
    per_layer = s * (3 * w * w + w * w + 2 * w * f) + 2 * s * s * w
    return s * inputs * w + spec["layers"] * per_layer + w * spec["head_hidden"] + spec["head_hidden"]


def train_on_windows(cfg, npz_path, max_steps=None, out_dir=None):
    """The transformer regressor with cfg["gpp"]'s sizes and training settings, fitted (`fit`) on
    an .npz of `x` [N, window_days, 7] daily embeddings and `y` [N] GPP (g C m-2 d-1) on each
    window's last day (optional `val_x`, `val_y`: scored as RMSE); weights saved in
    `<runs_dir>/<name>/gpp/best.pt`. Returns a summary dict."""
    g, t = cfg["gpp"], cfg["gpp"]["train"]
    spec = {"kind": "transformer", **{k: g[k] for k in ("width", "layers", "heads", "ffn", "head_hidden")},
            **{k: t[k] for k in ("lr", "weight_decay", "batch_size", "warmup_steps", "grad_clip")},
            "steps": max_steps or t["max_steps"]}
    data = np.load(npz_path)
    model = fit(spec, data["x"], data["y"], seed=cfg["seed"], threads=torch.get_num_threads(),
                window_days=g["window_days"])
    out_dir = out_dir or os.path.join(cfg["runs_dir"], cfg["name"], "gpp")
    os.makedirs(out_dir, exist_ok=True)
    torch.save({"model": model.state_dict(), "config": json.dumps(cfg)}, os.path.join(out_dir, "best.pt"))
    result = {"steps": spec["steps"], "dir": out_dir}
    if "val_x" in data:
        err = predict(model, data["val_x"]) - data["val_y"]
        result["val_rmse"] = float(np.sqrt(np.mean(err ** 2)))
    return result
