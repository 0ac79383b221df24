"""Dense vs per-window embedding speed of the CAMEO ONNX models (models/runtime), same numbers.

    .venv/bin/python benchmarks/bench_model_dense.py [--size 128] [--dates 24] [--windows 256] [--threads 2]

Builds an S2 + S1 stack of size x size px x dates by tiling the real validation chip
(belgium_0000280849BAC91C, prepared through models.stack), runs
- the dense path (models.runtime.embed_raster: frame encoders once per frame, target-query
  temporal attention, fusion) over the whole stack,
- the per-window reference model on `--windows` random pixel-dates,
and prints pixel-dates/s for both, the speed ratio, the max abs difference at the sampled
points, MFLOP per pixel-date counted from the graphs, the achieved GFLOP/s and this
machine's float32 matrix-multiply rates (ONNX Runtime, numpy, torch; benchmarks/machine.py)
measured in the same run.
"""

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from models.runtime import embed_raster, embed_windows, load_models  # noqa: E402

from machine import matmul_rates  # noqa: E402  (benchmarks/machine.py)


def tiled_stack(size, dates, stack_dir="runs/stacks"):
    from models.stack import read_stack
    from models.train.data import ensure_stacks

    p2, p1 = ensure_stacks("belgium_0000280849BAC91C", stack_dir)
    a, b = read_stack(p2), read_stack(p1)
    reps = int(np.ceil(size / a.values.shape[-1]))
    t = min(dates, a.values.shape[0])
    v2 = np.tile(a.values[:t], (1, 1, reps, reps))[:, :, :size, :size]
    v1 = np.tile(b.values[:t], (1, 1, reps, reps))[:, :, :size, :size]
    return v2, v1, a.dates[:t], a.bands, b.bands, b.s1_gap_days[:t]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models-dir", default=None)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--dates", type=int, default=24)
    parser.add_argument("--windows", type=int, default=256)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    models = load_models(args.models_dir, threads=args.threads)
    v2, v1, dates, b2, b1, gaps = tiled_stack(args.size, args.dates)
    kw = dict(s2_bands=b2, s1_values=v1, s1_bands=b1, s1_gap_days=gaps)
    machine = matmul_rates()
    start = time.perf_counter()
    dense = embed_raster(models, v2, dates, **kw)
    dense_s = time.perf_counter() - start
    n_pd = v2.shape[0] * args.size * args.size
    rng = np.random.default_rng(0)
    pts = [(int(rng.integers(len(dates))), int(rng.integers(args.size)), int(rng.integers(args.size)))
           for _ in range(args.windows)]
    start = time.perf_counter()
    win = np.concatenate([embed_windows(models, v2, dates, pts[i:i + 64], **kw) for i in range(0, len(pts), 64)])
    win_s = time.perf_counter() - start
    diff = float(np.abs(np.stack([dense[t, :, y, x] for t, y, x in pts]) - win).max())
    result = {"size": args.size, "dates": len(dates), "pixel_dates": n_pd, "dense_seconds": dense_s,
              "dense_pixel_dates_per_s": n_pd / dense_s, "window_pixel_dates_per_s": len(pts) / win_s,
              "speed_ratio": (n_pd / dense_s) / (len(pts) / win_s), "max_abs_diff_dense_vs_window": diff,
              "machine_matmul_gflops": machine}
    try:
        from models.train.cost import dense_cost_per_pixel_date
        from models.manifest import MODELS_DIR
        cost = dense_cost_per_pixel_date(args.models_dir or MODELS_DIR)
        result["mflop_per_pixel_date"] = cost["total_mflop"]
        result["achieved_gflops"] = cost["total_mflop"] * 1e6 * n_pd / dense_s / 1e9
    except ImportError:  # `onnx` not installed: no graph count
        pass
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
