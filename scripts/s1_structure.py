"""Does Sentinel-1 add structure or speckle to the embeddings? Before/after the speckle fix.

    .venv/bin/python scripts/s1_structure.py [--before-models DIR] [--chip NAME] [--date D]
                                             [--out runs/s1_structure] [--figure PATH]

For each setting - `after`: the bundled models on stacks prepared with the default
Sentinel-1 speckle filter; `before` (with --before-models): other models (e.g. the
previous export, `git show REV:models/onnx/...`) on stacks prepared without it - the chip
is embedded with and without Sentinel-1. For every pair of horizontally or vertically
adjacent pixels on a date, the Sentinel-2 NDVI difference says whether the pair lies
inside a field (|dNDVI| < 0.02) or across an edge (|dNDVI| > 0.15); the mean |difference|
of each embedding feature over those pairs is its roughness there. Speckle raises the
inside roughness; detail that follows the fields raises the edge/inside ratio. Also the
per-feature median |with S1 - without S1|. Prints JSON (pooled over all dates) and draws
the seven features on `--date` for every setting (figure).
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


def pairs(a):
    """Differences of horizontally and vertically adjacent pixels of [..., H, W], flattened."""
    return np.concatenate([(a[..., :, 1:] - a[..., :, :-1]).reshape(*a.shape[:-2], -1),
                           (a[..., 1:, :] - a[..., :-1, :]).reshape(*a.shape[:-2], -1)], axis=-1)


def embeddings(chip, out, models_dir, speckle):
    """(S2 stack, {"without_s1", "with_s1"}: [T, 7, H, W]) for one setting."""
    import rasterio

    from models.embedding.job import embed_stacks
    from models.sample_data import sample_data_dir
    from models.stack import prepare_stack, read_stack

    folder = os.path.join(sample_data_dir(), "chips", chip)
    stacks = prepare_stack(sorted(glob.glob(os.path.join(folder, "S2_*.nc"))), os.path.join(out, "stack"),
                           s1=sorted(glob.glob(os.path.join(folder, "S1_*.nc"))), s1_speckle_filter=speckle)
    s2 = read_stack(stacks.s2_stack)
    result = {}
    for name, s1 in (("without_s1", None), ("with_s1", stacks.s1_stack)):
        run = embed_stacks(stacks.s2_stack, os.path.join(out, f"emb_{name}"), s1_path=s1, models_dir=models_dir)
        with rasterio.open(run.index_path) as data:
            result[name] = data.read().reshape(len(s2.dates), -1, data.height, data.width)
    return s2, result


def roughness(s2, emb):
    red, nir = s2.values[:, s2.bands.index("B04")], s2.values[:, s2.bands.index("B08")]
    d_ndvi = np.abs(pairs((nir - red) / (nir + red)))                       # [T, pairs]
    inside, edge = d_ndvi < 0.02, d_ndvi > 0.15
    out = {"pairs_inside": int(inside.sum()), "pairs_edge": int(edge.sum())}
    for name, values in emb.items():
        d = np.abs(pairs(values))                                           # [T, F, pairs]
        rough_in = [float(np.nanmean(d[:, f][inside])) for f in range(values.shape[1])]
        rough_edge = [float(np.nanmean(d[:, f][edge])) for f in range(values.shape[1])]
        out[name] = {"inside": [round(v, 4) for v in rough_in], "edge": [round(v, 4) for v in rough_edge],
                     "edge_over_inside": [round(e / i, 2) for e, i in zip(rough_edge, rough_in)]}
    diff = np.abs(emb["with_s1"] - emb["without_s1"])
    out["median_abs_with_minus_without"] = [round(float(np.nanmedian(diff[:, f])), 4) for f in range(diff.shape[1])]
    out["feature_std_without_s1"] = [round(float(np.nanstd(emb["without_s1"][:, f])), 3) for f in range(diff.shape[1])]
    return out


def draw(settings, date, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [(label, name, s2, emb) for label, (s2, emb) in settings.items() for name in ("without_s1", "with_s1")]
    fig, axes = plt.subplots(len(rows), 7, figsize=(14, 2.1 * len(rows)))
    axes = np.atleast_2d(axes)
    for i, (label, name, s2, emb) in enumerate(rows):
        t = s2.dates.index(date)
        for f in range(7):
            reference = settings[label][1]["without_s1"][t, f]   # one colour scale per setting and feature
            lo, hi = np.nanpercentile(reference, [2, 98])
            axes[i, f].imshow(emb[name][t, f], vmin=lo, vmax=hi, cmap="viridis")
            axes[i, f].set_xticks([])
            axes[i, f].set_yticks([])
            if i == 0:
                axes[i, f].set_title(f"F0{f + 1}", fontsize=9)
        axes[i, 0].set_ylabel(f"{label}\n{name.replace('_', ' ')}", fontsize=8)
    fig.suptitle(f"Embeddings on {date.isoformat()}, with and without Sentinel-1", fontsize=10)
    fig.savefig(path, dpi=70)
    plt.close(fig)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before-models", help="models folder of the 'before' setting (stacks without speckle filter)")
    parser.add_argument("--chip", default="belgium_00002806639B424A")
    parser.add_argument("--date", default="2018-06-30")
    parser.add_argument("--out", default=os.path.join(REPO, "runs", "s1_structure"))
    parser.add_argument("--figure", default=os.path.join(REPO, "models", "figures", "s1_embedding_maps.png"))
    args = parser.parse_args()
    if os.path.exists(args.out):
        raise SystemExit(f"{args.out} exists: remove it or give another --out")
    settings = {}
    if args.before_models:
        settings["before (no speckle filter)"] = embeddings(args.chip, os.path.join(args.out, "before"),
                                                            args.before_models, "none")
    settings["after (bundled, Lee 5x5)"] = embeddings(args.chip, os.path.join(args.out, "after"), None, "lee")
    draw(settings, datetime.date.fromisoformat(args.date), args.figure)
    print(json.dumps({"chip": args.chip, **{label: roughness(*value) for label, value in settings.items()}}))


if __name__ == "__main__":
    main()
