"""GPP maps of the validation chip for the model card: models/figures/gpp_validation_chip.png.

    .venv/bin/python scripts/gpp_chip_figure.py [--out runs/gpp_chip]

Prepares belgium_0000280849BAC91C (Belgian cropland, 2018-08 .. 2019-11; never seen in
training), embeds it with and without Sentinel-1 (bundled models), maps GPP from both, and
draws four dates: Sentinel-2 true colour, GPP (pixels outside the area of applicability
greyed, as in QGIS) from the embeddings with and without Sentinel-1. Prints the figures the
model card quotes (JSON): value range, percentiles, seasonal medians, share outside the AOA.
"""

import argparse
import datetime
import glob
import json
import os
import sys

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
DATES = ["2018-12-12", "2019-04-21", "2019-06-20", "2019-07-30"]


def maps(out):
    import rasterio

    from models.embedding.job import embed_stacks
    from models.gpp.predict import predict_gpp
    from models.sample_data import sample_data_dir
    from models.stack import prepare_stack, read_stack

    chip = os.path.join(sample_data_dir(), "chips", "belgium_0000280849BAC91C")
    stacks = prepare_stack(sorted(glob.glob(os.path.join(chip, "S2_*.nc"))), os.path.join(out, "stack"),
                           s1=sorted(glob.glob(os.path.join(chip, "S1_*.nc"))))
    result = {"stack": read_stack(stacks.s2_stack)}
    for name, s1 in (("with_s1", stacks.s1_stack), ("without_s1", None)):
        emb = embed_stacks(stacks.s2_stack, os.path.join(out, f"emb_{name}"), s1_path=s1)
        run = predict_gpp(emb.index_path, os.path.join(out, f"gpp_{name}"))
        with rasterio.open(run.index_path) as data:
            values = data.read()
        result[name] = (run.dates, values[0::2], values[1::2], run.aoa_threshold)
    return result


def summary(dates, gpp, di, threshold):
    finite = gpp[np.isfinite(gpp)]
    medians = {d.isoformat(): round(float(np.nanmedian(g)), 2) for d, g in zip(dates, gpp) if np.isfinite(g).any()}
    return {"min": float(finite.min()), "p99": float(np.percentile(finite, 99)), "max": float(finite.max()),
            "outside_aoa": float(np.mean(di[np.isfinite(di)] > threshold)), "aoa_threshold": threshold,
            "max_winter_median": max(v for k, v in medians.items() if int(k[5:7]) in (12, 1, 2)),
            "june_july_medians": [v for k, v in medians.items() if int(k[5:7]) in (6, 7)], "medians": medians}


def draw(result, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stack = result["stack"]
    fig, axes = plt.subplots(3, len(DATES), figsize=(2.6 * len(DATES), 8))
    for j, text in enumerate(DATES):
        date = datetime.date.fromisoformat(text)
        rgb = stack.values[stack.dates.index(date)][[2, 1, 0]].transpose(1, 2, 0)
        axes[0, j].imshow(np.clip(np.nan_to_num(rgb) / 0.15, 0, 1))
        axes[0, j].set_title(f"{text} S2 true colour", fontsize=8)
        for i, name in enumerate(("without_s1", "with_s1"), start=1):
            dates, gpp, di, threshold = result[name]
            t = dates.index(date)
            image = axes[i, j].imshow(gpp[t], vmin=0, vmax=15, cmap="viridis")
            grey = np.where(di[t] > threshold, 1.0, np.nan)
            axes[i, j].imshow(grey, cmap="gray", vmin=0, vmax=2, alpha=0.75)
            axes[i, j].set_title(f"GPP {'with' if name == 'with_s1' else 'without'} S1, "
                                 f"median {np.nanmedian(gpp[t]):.1f}", fontsize=8)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(image, ax=axes[1:, :].ravel().tolist(), shrink=0.6, label="GPP (g C m-2 d-1); grey: outside AOA")
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=os.path.join(REPO, "runs", "gpp_chip"))
    parser.add_argument("--figure", default=os.path.join(REPO, "models", "figures", "gpp_validation_chip.png"))
    args = parser.parse_args()
    if os.path.exists(args.out):
        raise SystemExit(f"{args.out} exists: remove it or give another --out")
    result = maps(args.out)
    draw(result, args.figure)
    print(json.dumps({name: summary(*result[name]) for name in ("with_s1", "without_s1")}))


if __name__ == "__main__":
    main()
