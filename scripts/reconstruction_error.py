"""Distribution of the Sentinel-2 reconstruction error (cameo:embed RECONSTRUCTION_ERROR) on the chips.

    .venv/bin/python scripts/reconstruction_error.py [--out runs/reconstruction_error] [--models DIR]

Prepares the training chip (belgium_00002806639B424A) and the validation chip
(belgium_0000280849BAC91C), embeds each with Sentinel-1 and the reconstruction error, and
prints JSON: per chip the number of pixel-dates with an error value and its median, 90th,
99th percentile and maximum (reflectance), plus the share above 0.05. Draws the validation
chip's true colour and error map on four dates (--figure).
"""

import argparse
import glob
import json
import os
import sys

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
CHIPS = {"training": "belgium_00002806639B424A", "validation": "belgium_0000280849BAC91C"}
DATES = ["2018-12-12", "2019-04-21", "2019-06-20", "2019-07-30"]


def chip_errors(chip, out, models_dir):
    import rasterio

    from models.embedding.job import embed_stacks
    from models.sample_data import sample_data_dir
    from models.stack import prepare_stack

    folder = os.path.join(sample_data_dir(), "chips", chip)
    stacks = prepare_stack(sorted(glob.glob(os.path.join(folder, "S2_*.nc"))), os.path.join(out, "stack"),
                           s1=sorted(glob.glob(os.path.join(folder, "S1_*.nc"))))
    run = embed_stacks(stacks.s2_stack, os.path.join(out, "emb"), s1_path=stacks.s1_stack,
                       models_dir=models_dir, reconstruction_error=True)
    with rasterio.open(run.error_index_path) as data:
        error = data.read()
    return error, stacks.s2_stack


def draw(error, s2_path, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from models.stack import read_stack

    stack = read_stack(s2_path)
    dates = [d.isoformat() for d in stack.dates]
    fig, axes = plt.subplots(2, len(DATES), figsize=(2.6 * len(DATES), 5.4))
    for j, date in enumerate(DATES):
        t = dates.index(date)
        rgb = stack.values[t][[stack.bands.index(b) for b in ("B04", "B03", "B02")]].transpose(1, 2, 0)
        axes[0, j].imshow(np.clip(np.nan_to_num(rgb) / 0.15, 0, 1))
        axes[0, j].set_title(f"{date} S2 true colour", fontsize=8)
        image = axes[1, j].imshow(error[t], vmin=0, vmax=0.05, cmap="magma")
        axes[1, j].set_title(f"error, median {np.nanmedian(error[t]):.4f}", fontsize=8)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(image, ax=axes[1, :].tolist(), shrink=0.8, label="S2 reconstruction error (reflectance)")
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=os.path.join(REPO, "runs", "reconstruction_error"))
    parser.add_argument("--models", default=None, help="models folder (default: bundled)")
    parser.add_argument("--figure", default=os.path.join(REPO, "models", "figures", "reconstruction_error.png"))
    args = parser.parse_args()
    if os.path.exists(args.out):
        raise SystemExit(f"{args.out} exists: remove it or give another --out")
    result = {}
    for role, chip in CHIPS.items():
        error, s2_path = chip_errors(chip, os.path.join(args.out, role), args.models)
        if role == "validation":
            draw(error, s2_path, args.figure)
        e = error[np.isfinite(error)]
        result[role] = {"chip": chip, "pixel_dates": int(e.size), "median": round(float(np.median(e)), 4),
                        "p90": round(float(np.percentile(e, 90)), 4), "p99": round(float(np.percentile(e, 99)), 4),
                        "max": round(float(e.max()), 4), "share_above_0.05": round(float(np.mean(e > 0.05)), 4)}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
