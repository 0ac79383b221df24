"""Model-card figures of a trained run, on the validation chip, through the exported ONNX models.

Every valid pixel-date of the validation chip is embedded densely with the exported
models (models.runtime, exactly what the plugin runs); the latents/embeddings are then
decoded with the PyTorch decoders for the target frame only, and the central pixel is
compared with the truth:
- S2 autoencoder: MAE per band in reflectance units;
- S1 autoencoder: MAE per band in dB (model scale x 35; values clipped to [-30, 5] dB);
- fusion (the 7-d embedding): the same through the fusion heads, with S1 and with the
  S1-missing path;
- split by the target's position in its date window (centred vs. the first/last five
  dates) and by distance to the raster border (< 7 px: partial windows).
Writes `<run>/evaluation.json` and figures in `models/figures/`.
"""

import json
import os
import shutil
import time

import numpy as np
import torch

from .spec import MODALITIES

FIG_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "figures")


def _decode_centre(decoder, z):
    """latents [P, L] -> centre-pixel reconstruction [P, C] of the target frame."""
    z = torch.from_numpy(np.ascontiguousarray(z, dtype=np.float32))
    out = []
    with torch.no_grad():
        for chunk in torch.split(z, 4096):
            out.append(decoder(chunk, torch.zeros(chunk.shape[0], 1))[:, 0, :, 7, 7].numpy())
    return np.concatenate(out)


def _flat(a, idx):
    """[T, C, H, W] -> [P, C] at pixel-dates idx = (t, y, x) arrays."""
    return a[idx[0], :, idx[1], idx[2]]


def _mae(pred, true, keep):
    err = np.abs(pred - true)[keep]
    return [float(v) for v in err.mean(0)]


def evaluate_run(cfg, models_dir=None, figures=True, max_pixel_dates=None, seed=0):
    """Figures of a trained run; max_pixel_dates subsamples the decoded pixel-dates (tests)."""
    from ..runtime import embed_raster, load_models
    from ..stack import read_stack
    from .checkpoints import load_trained, stage_dir
    from .data import ensure_stacks, speckle_setting
    from .spec import scaled

    models_dir = models_dir or cfg["export"]["out_dir"]
    s2, s1, fm, stats = load_trained(cfg)
    chip = cfg["data"]["val_chips"][0]
    p2, p1 = ensure_stacks(chip, cfg["data"]["stack_dir"], s1_speckle=speckle_setting(cfg))
    a, b = read_stack(p2), read_stack(p1)
    models = load_models(models_dir, threads=1 if max_pixel_dates else None)
    kw = dict(s2_bands=a.bands, s1_values=b.values, s1_bands=b.bands, s1_gap_days=b.s1_gap_days)
    start = time.perf_counter()
    emb, lat = embed_raster(models, a.values, a.dates, return_latents=True, **kw)
    seconds = time.perf_counter() - start
    emb_no_s1 = embed_raster(models, a.values, a.dates, s2_bands=a.bands)
    t_n, _, h, w = a.values.shape
    true2, true1 = scaled(a.values, "S2"), scaled(b.values, "S1")
    valid2 = np.all(np.isfinite(true2), axis=1)
    idx = np.nonzero(valid2)
    if max_pixel_dates and len(idx[0]) > max_pixel_dates:
        pick = np.sort(np.random.default_rng(seed).choice(len(idx[0]), max_pixel_dates, replace=False))
        idx = tuple(i[pick] for i in idx)
    y2, y1 = _flat(true2, idx), _flat(true1, idx)
    m1 = np.all(np.isfinite(y1), axis=1)
    rec2 = _decode_centre(s2.decoder, _flat(lat["s2"], idx))
    rec1 = _decode_centre(s1.decoder, _flat(lat["s1"], idx))

    def heads(e):
        x = torch.from_numpy(np.ascontiguousarray(_flat(e, idx)))
        with torch.no_grad():
            return _decode_centre(s2.decoder, fm.to_s2(x).numpy()), _decode_centre(s1.decoder, fm.to_s1(x).numpy())

    f2, f1 = heads(emb)
    g2, _ = heads(emb_no_s1)
    t, yy, xx = idx
    edge_date = (t < 5) | (t >= t_n - 5)
    border = np.minimum(np.minimum(yy, h - 1 - yy), np.minimum(xx, w - 1 - xx)) < 7
    every = np.ones(len(t), bool)
    s2_bands, s1_bands = MODALITIES["S2"]["bands"], MODALITIES["S1"]["bands"]
    result = {
        "chip": chip, "dates": t_n, "pixels": h * w, "valid_s2_pixel_dates": int(valid2.sum()),
        "evaluated_pixel_dates": int(len(t)),
        "dense_seconds_s2_s1_fusion": seconds, "pixel_dates_per_s": t_n * h * w / seconds,
        "s2_autoencoder_mae_reflectance": dict(zip(s2_bands, _mae(rec2, y2, every))),
        "s1_autoencoder_mae_db": dict(zip(s1_bands, [v * 35 for v in _mae(rec1, y1, m1)])),
        "fusion_s2_mae_reflectance": dict(zip(s2_bands, _mae(f2, y2, every))),
        "fusion_s1_mae_db": dict(zip(s1_bands, [v * 35 for v in _mae(f1, y1, m1)])),
        "fusion_without_s1_s2_mae_reflectance": dict(zip(s2_bands, _mae(g2, y2, every))),
        "s2_autoencoder_mae_by_subset": {
            "interior_centred_dates": float(np.mean(_mae(rec2, y2, ~border & ~edge_date))),
            "first_last_five_dates": float(np.mean(_mae(rec2, y2, edge_date))),
            "border_pixels": float(np.mean(_mae(rec2, y2, border))),
        },
    }
    for key in ("s2_autoencoder_mae_reflectance", "s1_autoencoder_mae_db", "fusion_s2_mae_reflectance",
                "fusion_s1_mae_db", "fusion_without_s1_s2_mae_reflectance"):
        result[key]["mean"] = float(np.mean(list(result[key].values())))
    for stage in ("s2", "s1", "fusion"):
        summary = os.path.join(stage_dir(cfg, stage), "summary.json")
        if os.path.isfile(summary):
            result[f"train_{stage}"] = json.load(open(summary, encoding="utf-8"))
    run_dir = os.path.join(cfg["runs_dir"], cfg["name"])
    with open(os.path.join(run_dir, "evaluation.json"), "w", encoding="utf-8") as handle:
        json.dump(result, handle, indent=1)
    if figures:
        os.makedirs(FIG_DIR, exist_ok=True)
        valid = np.isfinite(true2).all(1).mean((1, 2))
        picks = sorted({0, *[int(i) for i in np.argsort(-valid)[:2]]})
        full = lambda z, dec: _decode_centre(dec, z[picks].transpose(0, 2, 3, 1).reshape(-1, z.shape[1])).reshape(  # noqa: E731
            len(picks), h, w, -1).transpose(0, 3, 1, 2)
        _figure(a, picks, true2[picks], full(lat["s2"], s2.decoder), true1[picks], full(lat["s1"], s1.decoder),
                emb, os.path.join(FIG_DIR, f"{cfg['name']}_reconstruction.png"))
        for stage in ("s2", "s1", "fusion"):
            png = os.path.join(stage_dir(cfg, stage), "loss_curve.png")
            if os.path.isfile(png):
                shutil.copy(png, os.path.join(FIG_DIR, f"{cfg['name']}_{stage}_loss_curve.png"))
    return result


def _rgb(x, bands=(2, 1, 0), gain=3.5):
    img = np.stack([x[b] for b in bands], -1) * gain
    return np.clip(np.nan_to_num(img, nan=0.0), 0, 1)


def _figure(stack, picks, true2, rec2, true1, rec1, emb, path):
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    t_n = emb.shape[0]
    fig, axes = plt.subplots(len(picks), 7, figsize=(14, 2.3 * len(picks)))
    for row, t in enumerate(picks):
        e = emb[t, :3]
        i = row
        e = (e - np.nanpercentile(emb[:, :3], 2, axis=(0, 2, 3))[:, None, None]) / (
            np.nanpercentile(emb[:, :3], 98, axis=(0, 2, 3)) - np.nanpercentile(emb[:, :3], 2, axis=(0, 2, 3)))[:, None, None]
        panels = [(_rgb(true2[i]), "S2 input RGB"), (_rgb(rec2[i]), "S2 reconstruction"),
                  (_rgb(true2[i], (6, 2, 1), 2.0), "S2 input NIR-R-G"), (_rgb(rec2[i], (6, 2, 1), 2.0), "reconstruction"),
                  (np.clip(true1[i, 0], 0, 1), "S1 VV input"), (np.clip(rec1[i, 0], 0, 1), "S1 reconstruction"),
                  (np.clip(np.nan_to_num(e.transpose(1, 2, 0)), 0, 1), "embedding F01-F03")]
        for col, (img, title) in enumerate(panels):
            ax = axes[row, col]
            ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"{title}\n{stack.dates[t]}" if col == 0 else title, fontsize=8)
    fig.suptitle(f"Validation chip: centre-pixel reconstructions (dates {t_n}; black = invalid input)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=70)
    plt.close(fig)
