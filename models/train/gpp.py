"""Training and ONNX export of the GPP regressor (the downstream head of issue 6).

Data comes from issue 6's pipeline as an .npz: `x` [N, window_days, 7] daily embeddings
(linearly interpolated), `y` [N] GPP in g C m-2 d-1 on the window's last day, optionally
`val_x`, `val_y`. GPP is standardised with the method's mean 4.042 and std 4.386; L1 loss,
AdamW. The model (`gpp_small.PaperTransformer`) is the paper's transformer regressor with
last-token pooling; its sizes come from the config's `gpp` section.
"""

import json
import os

import numpy as np
import torch

from .loop import seed_everything
from .gpp_small import PaperTransformer


def build_gpp(cfg):
    g = cfg["gpp"]
    return PaperTransformer(g["inputs"], g["window_days"], g["width"], g["layers"], g["heads"], g["ffn"],
                            g["head_hidden"])


def train_gpp(cfg, npz_path, max_steps=None, out_dir=None):
    g, t = cfg["gpp"], cfg["gpp"]["train"]
    seed_everything(cfg["seed"])
    data = np.load(npz_path)
    x, y = torch.from_numpy(data["x"].astype(np.float32)), torch.from_numpy(data["y"].astype(np.float32))
    ys = (y - g["gpp_mean"]) / g["gpp_std"]
    model = build_gpp(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=t["lr"], weight_decay=t["weight_decay"])
    rng = np.random.default_rng(cfg["seed"])
    steps = max_steps or t["max_steps"]
    losses = []
    for step in range(steps):
        for group in opt.param_groups:
            group["lr"] = t["lr"] * min(1.0, (step + 1) / max(1, t["warmup_steps"]))
        idx = torch.from_numpy(rng.integers(0, len(x), t["batch_size"]))
        loss = (model(x[idx]) - ys[idx]).abs().mean()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), t["grad_clip"])
        opt.step()
        losses.append(float(loss.detach()))
    out_dir = out_dir or os.path.join(cfg["runs_dir"], cfg["name"], "gpp")
    os.makedirs(out_dir, exist_ok=True)
    torch.save({"model": model.state_dict(), "config": json.dumps(cfg)}, os.path.join(out_dir, "best.pt"))
    result = {"steps": steps, "first_loss": losses[0], "last_loss": float(np.mean(losses[-20:])), "dir": out_dir}
    if "val_x" in data:
        model.eval()
        with torch.no_grad():
            pred = model(torch.from_numpy(data["val_x"].astype(np.float32))) * g["gpp_std"] + g["gpp_mean"]
        err = pred.numpy() - data["val_y"]
        result["val_rmse"] = float(np.sqrt(np.mean(err ** 2)))
    return result


def export_gpp(cfg, model, path, metadata=None):
    """GPP regressor -> ONNX: input `embeddings` [N, window_days, 7] -> `gpp` [N] in g C m-2 d-1."""
    import onnx

    g = cfg["gpp"]

    class Wrapped(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, embeddings):
            return self.m(embeddings) * g["gpp_std"] + g["gpp_mean"]

    model.eval()
    with torch.no_grad():
        torch.onnx.export(Wrapped(model), (torch.zeros(2, g["window_days"], g["inputs"]),), path, dynamo=False,
                          opset_version=cfg["export"]["opset"], input_names=["embeddings"], output_names=["gpp"],
                          dynamic_axes={"embeddings": {0: "batch"}, "gpp": {0: "batch"}})
    m = onnx.load(path)
    meta = {"cameo_role": "gpp", "cameo_window_days": str(g["window_days"]), "cameo_inputs": "F01..F07 daily",
            "cameo_units": "g C m-2 d-1", "cameo_gpp_mean": str(g["gpp_mean"]), "cameo_gpp_std": str(g["gpp_std"])}
    meta.update(metadata or {})
    for k, v in meta.items():
        m.metadata_props.add(key=k, value=str(v))
    onnx.save(m, path)
    return path
