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


def _decode_centre(decoder, latent):
    """latent [T, L, H, W] -> centre-pixel reconstruction [T, C, H, W] of the target frame."""
    t, l, h, w = latent.shape
    z = torch.from_numpy(np.ascontiguousarray(latent.transpose(0, 2, 3, 1).reshape(-1, l)))
    out = []
    with torch.no_grad():
        for chunk in torch.split(z, 8192):
            rec = decoder(chunk, torch.zeros(chunk.shape[0], 1))
            out.append(rec[:, 0, :, 7, 7].numpy())
    c = out[0].shape[-1]
    return np.concatenate(out).reshape(t, h, w, c).transpose(0, 3, 1, 2)


def _mae(pred, true, mask):
    err = np.abs(pred - true)
    return [float(err[:, c][mask].mean()) for c in range(pred.shape[1])]


def evaluate_run(cfg, models_dir=None, figures=True):
    from ..runtime import embed_raster, load_models
    from ..stack import read_stack
    from .cli import load_trained
    from .data import ensure_stacks
    from .loop import stage_dir
    from .spec import scaled

    models_dir = models_dir or cfg["export"]["out_dir"]
    s2, s1, fm, stats = load_trained(cfg)
    chip = cfg["data"]["val_chips"][0]
    p2, p1 = ensure_stacks(chip, cfg["data"]["stack_dir"])
    a, b = read_stack(p2), read_stack(p1)
    models = load_models(models_dir)
    kw = dict(s2_bands=a.bands, s1_values=b.values, s1_bands=b.bands, s1_gap_days=b.s1_gap_days)
    start = time.perf_counter()
    emb, lat = embed_raster(models, a.values, a.dates, return_latents=True, **kw)
    seconds = time.perf_counter() - start
    emb_no_s1 = embed_raster(models, a.values, a.dates, s2_bands=a.bands)
    t_n, _, h, w = a.values.shape
    true2, true1 = scaled(a.values, "S2"), scaled(b.values, "S1")
    m2 = np.all(np.isfinite(true2), axis=1)
    m1 = np.all(np.isfinite(true1), axis=1)
    rec2 = _decode_centre(s2.decoder, lat["s2"])
    rec1 = _decode_centre(s1.decoder, lat["s1"])

    def heads(e):
        x = torch.from_numpy(np.ascontiguousarray(e.transpose(0, 2, 3, 1).reshape(-1, e.shape[1])))
        with torch.no_grad():
            z2, z1 = fm.to_s2(x).numpy(), fm.to_s1(x).numpy()
        r = lambda z: z.reshape(t_n, h, w, -1).transpose(0, 3, 1, 2)  # noqa: E731
        return _decode_centre(s2.decoder, r(z2)), _decode_centre(s1.decoder, r(z1))

    f2, f1 = heads(emb)
    g2, _ = heads(emb_no_s1)
    # position of each date in its window; border distance of each pixel
    edge_dates = np.zeros(t_n, bool)
    edge_dates[:5], edge_dates[-5:] = True, True
    yy, xx = np.mgrid[0:h, 0:w]
    border = (np.minimum(np.minimum(yy, h - 1 - yy), np.minimum(xx, w - 1 - xx)) < 7)[None].repeat(t_n, 0)
    centre_dates = ~edge_dates[:, None, None].repeat(h, 1).repeat(w, 2)
    s2_bands, s1_bands = MODALITIES["S2"]["bands"], MODALITIES["S1"]["bands"]
    result = {
        "chip": chip, "dates": t_n, "pixels": h * w, "valid_s2_pixel_dates": int(m2.sum()),
        "dense_seconds_s2_s1_fusion": seconds, "pixel_dates_per_s": t_n * h * w / seconds,
        "s2_autoencoder_mae_reflectance": dict(zip(s2_bands, _mae(rec2, true2, m2))),
        "s1_autoencoder_mae_db": dict(zip(s1_bands, [v * 35 for v in _mae(rec1, true1, m1)])),
        "fusion_s2_mae_reflectance": dict(zip(s2_bands, _mae(f2, true2, m2))),
        "fusion_s1_mae_db": dict(zip(s1_bands, [v * 35 for v in _mae(f1, true1, m1)])),
        "fusion_without_s1_s2_mae_reflectance": dict(zip(s2_bands, _mae(g2, true2, m2))),
        "s2_autoencoder_mae_by_subset": {
            "interior_centred_dates": float(np.mean(_mae(rec2, true2, m2 & ~border & centre_dates))),
            "first_last_five_dates": float(np.mean(_mae(rec2, true2, m2 & ~centre_dates))),
            "border_pixels": float(np.mean(_mae(rec2, true2, m2 & border))),
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
        _figure(a, true2, rec2, f2, true1, rec1, emb, os.path.join(FIG_DIR, f"{cfg['name']}_reconstruction.png"))
        for stage in ("s2", "s1", "fusion"):
            png = os.path.join(stage_dir(cfg, stage), "loss_curve.png")
            if os.path.isfile(png):
                shutil.copy(png, os.path.join(FIG_DIR, f"{cfg['name']}_{stage}_loss_curve.png"))
    return result


def _rgb(x, bands=(2, 1, 0), gain=3.5):
    img = np.stack([x[b] for b in bands], -1) * gain
    return np.clip(np.nan_to_num(img, nan=0.0), 0, 1)


def _figure(stack, true2, rec2, f2, true1, rec1, emb, path):
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    t_n = true2.shape[0]
    valid = np.isfinite(true2).all(1).mean((1, 2))
    picks = [int(i) for i in np.argsort(-valid)[:3]]
    picks = sorted(set(picks[:2] + [0]))
    fig, axes = plt.subplots(len(picks), 6, figsize=(13, 2.3 * len(picks)))
    for row, t in enumerate(picks):
        e = emb[t, :3]
        e = (e - np.nanpercentile(emb[:, :3], 2, axis=(0, 2, 3))[:, None, None]) / (
            np.nanpercentile(emb[:, :3], 98, axis=(0, 2, 3)) - np.nanpercentile(emb[:, :3], 2, axis=(0, 2, 3)))[:, None, None]
        panels = [(_rgb(true2[t]), "S2 input RGB"), (_rgb(rec2[t]), "S2 autoencoder"), (_rgb(f2[t]), "via 7-d embedding"),
                  (np.clip(true1[t, 0], 0, 1), "S1 VV input"), (np.clip(rec1[t, 0], 0, 1), "S1 autoencoder"),
                  (np.clip(e.transpose(1, 2, 0), 0, 1), "embedding F01-F03")]
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
