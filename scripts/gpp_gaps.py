"""How far map embeddings are from what the GPP model was trained on, and what that does to GPP.

    .venv/bin/python scripts/gpp_gaps.py [--run runs/gpp_chip] [--pixels 400]

Reads the validation-chip run of scripts/gpp_chip_figure.py (its S2 stack and its embeddings
with and without Sentinel-1) and, for a random sample of pixels:
- texture gap: the embedding of each pixel's real 15 x 15 px window against the embedding of
  a homogeneous window of that pixel's own spectra (how tower footprints are embedded);
- Sentinel-1 gap: embeddings with Sentinel-1 against those without;
and the median / 95th percentile absolute GPP difference each causes (bundled GPP model).
Prints JSON.
"""

import argparse
import json
import os
import sys

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)


def read_embeddings(path):
    import rasterio

    from models.gpp.predict import read_embeddings_info

    info = read_embeddings_info(path)
    with rasterio.open(path) as data:
        return data.read().reshape(len(info.dates), len(info.features), -1), info


def stats(diff):
    diff = np.abs(diff[np.isfinite(diff)])
    return {"median": round(float(np.median(diff)), 4), "p95": round(float(np.percentile(diff, 95)), 4),
            "n": int(diff.size)}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", default=os.path.join(REPO, "runs", "gpp_chip"))
    parser.add_argument("--pixels", type=int, default=400)
    args = parser.parse_args()
    from models.gpp.footprint import embed_footprint
    from models.gpp.model import load_gpp_model
    from models.gpp.predict import gpp_block, pixel_latitudes, predictable_dates
    from models.runtime import load_models
    from models.stack import read_stack

    s2 = read_stack(os.path.join(args.run, "stack", "s2_stack.tif"))
    real, info = read_embeddings(os.path.join(args.run, "emb_without_s1", "embeddings.vrt"))
    with_s1, _ = read_embeddings(os.path.join(args.run, "emb_with_s1", "embeddings.vrt"))
    models, gpp_model = load_models(threads=2), load_gpp_model()
    pick = np.random.default_rng(0).choice(real.shape[2], args.pixels, replace=False)
    pixels = s2.values.reshape(len(s2.dates), len(s2.bands), -1)[:, :, pick]
    homogeneous = np.full((len(s2.dates), real.shape[1], len(pick)), np.nan, np.float32)
    for k in range(len(pick)):
        ok = np.all(np.isfinite(pixels[:, :, k]), axis=1)
        homogeneous[ok, :, k] = embed_footprint(models, [d for d, o in zip(s2.dates, ok) if o], pixels[ok, :, k])
    mask = predictable_dates(info.dates, gpp_model.window_days, gpp_model.max_gap_days)
    latitudes = pixel_latitudes(info.crs, info.transform, 0, info.height, info.width)[pick]
    gpp = {name: gpp_block(gpp_model, values, info.dates, mask, latitudes)[0]
           for name, values in (("real", real[:, :, pick]), ("homogeneous", homogeneous),
                                ("with_s1", with_s1[:, :, pick]))}
    spread = real[:, :, pick].transpose(0, 2, 1).reshape(-1, real.shape[1])
    spread = spread[np.all(np.isfinite(spread), axis=1)].std(0)
    print(json.dumps({
        "pixels": len(pick), "feature_spread_std": [round(float(v), 3) for v in spread],
        "texture_gap_embedding": [stats(homogeneous[:, f] - real[:, f, pick]) for f in range(real.shape[1])],
        "s1_gap_embedding": [stats(with_s1[:, f, pick] - real[:, f, pick]) for f in range(real.shape[1])],
        "texture_gap_gpp": stats(gpp["homogeneous"] - gpp["real"]),
        "s1_gap_gpp_if_s1_embeddings_were_used": stats(gpp["with_s1"] - gpp["real"])}))


if __name__ == "__main__":
    main()
