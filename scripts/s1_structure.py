"""Does Sentinel-1 add structure or speckle to the embeddings? Roughness inside fields vs across edges.

    .venv/bin/python scripts/s1_structure.py [--run runs/gpp_chip]

Reads the validation-chip run of scripts/gpp_chip_figure.py. For every pair of horizontally
or vertically adjacent pixels on a date, the Sentinel-2 NDVI difference says whether the
pair lies inside a field (|dNDVI| < 0.02) or across an edge (|dNDVI| > 0.15); the mean
|difference| of each embedding feature over those pairs is its roughness there, with and
without Sentinel-1. Speckle raises the inside roughness; detail that follows the fields
raises the edge/inside ratio. Prints JSON (per feature, pooled over all dates).
"""

import argparse
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


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", default=os.path.join(REPO, "runs", "gpp_chip"))
    args = parser.parse_args()
    import rasterio

    from models.stack import read_stack

    s2 = read_stack(os.path.join(args.run, "stack", "s2_stack.tif"))
    red, nir = s2.values[:, s2.bands.index("B04")], s2.values[:, s2.bands.index("B08")]
    d_ndvi = np.abs(pairs((nir - red) / (nir + red)))                       # [T, pairs]
    result = {}
    for name in ("without_s1", "with_s1"):
        with rasterio.open(os.path.join(args.run, f"emb_{name}", "embeddings.vrt")) as data:
            emb = data.read().reshape(len(s2.dates), -1, data.height, data.width)
        d_emb = np.abs(pairs(emb))                                          # [T, F, pairs]
        inside, edge = d_ndvi < 0.02, d_ndvi > 0.15
        rough_in = [float(np.nanmean(d_emb[:, f][inside])) for f in range(emb.shape[1])]
        rough_edge = [float(np.nanmean(d_emb[:, f][edge])) for f in range(emb.shape[1])]
        result[name] = {"inside": [round(v, 4) for v in rough_in], "edge": [round(v, 4) for v in rough_edge],
                        "edge_over_inside": [round(e / i, 2) for e, i in zip(rough_edge, rough_in)],
                        "pairs_inside": int(inside.sum()), "pairs_edge": int(edge.sum())}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
