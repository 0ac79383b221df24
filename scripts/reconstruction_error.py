"""Distribution of the Sentinel-2 reconstruction error (cameo:embed RECONSTRUCTION_ERROR) on the chips.

    .venv/bin/python scripts/reconstruction_error.py [--out runs/reconstruction_error] [--models DIR]

Prepares the training chip (belgium_00002806639B424A) and the validation chip
(belgium_0000280849BAC91C), embeds each with Sentinel-1 and the reconstruction error, and
prints JSON: per chip the number of pixel-dates with an error value and its median, 90th,
99th percentile and maximum (reflectance), plus the share above 0.05.
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
    return error[np.isfinite(error)]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=os.path.join(REPO, "runs", "reconstruction_error"))
    parser.add_argument("--models", default=None, help="models folder (default: bundled)")
    args = parser.parse_args()
    if os.path.exists(args.out):
        raise SystemExit(f"{args.out} exists: remove it or give another --out")
    result = {}
    for role, chip in CHIPS.items():
        e = chip_errors(chip, os.path.join(args.out, role), args.models)
        result[role] = {"chip": chip, "pixel_dates": int(e.size), "median": round(float(np.median(e)), 4),
                        "p90": round(float(np.percentile(e, 90)), 4), "p99": round(float(np.percentile(e, 99)), 4),
                        "max": round(float(e.max()), 4), "share_above_0.05": round(float(np.mean(e > 0.05)), 4)}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
