"""Distributed embedding benchmark: 1 vs N workers, and the wall time of one Sentinel-2 tile.

    .venv/bin/python benchmarks/bench_distributed.py [--size 256] [--tile 128] [--dates 24]
                                                     [--workers 1 2] [--single] [--models-dir DIR]
                                                     [--baseline-rev REV] [--repeats 3]

Builds an S2 + S1 stack of size x size px x dates by tiling the real Belgian chip
(as benchmarks/bench_embed.py does), then runs `python -m models.distributed embed`
with an embedded LocalCluster of 1, 2, ... workers (1 thread, 1 ONNX Runtime thread
each) and prints one JSON line per run: wall time (including the cluster start), the
run's own figures, and the speed-up over 1 worker. With --single it also runs the
single-process engine (embed_stacks, ONNX Runtime's default threads) for comparison.

Models: the bundled ones (models/onnx) when present, else tiny random-weight models
exported on the fly (needs torch; figures then say "tiny").

The last line estimates, from the measured per-tile compute cost with 1 worker, the
wall time of one Sentinel-2 tile (10980 x 10980 px, 24 dates) on N workers:
max(tiles x cost / N, the client's copying of tiles into the per-date files) + publishing
the COGs (serial, at the end), each scaled from the measured 1-worker run by pixel-dates.

--baseline-rev REV: instead, the Dask runner of git revision REV (its code and bundled
models, benchmarks/revisions.py) and this tree's run alternately, --repeats times each,
with the first --workers count; prints the medians of the compute seconds per tile task
and their ratio (REV / this tree: the speed-up per tile).
"""

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.join(REPO, "benchmarks"))
S2_TILE_PX, S2_TILE_DATES = 10980, 24


def models_for_bench(folder, models_dir):
    from models.manifest import MODELS_DIR
    from models.runtime import MODEL_FILES

    if models_dir:
        return models_dir, "given"
    if all(os.path.isfile(os.path.join(MODELS_DIR, name)) for name in MODEL_FILES.values()):
        return None, "bundled"
    sys.path.insert(0, os.path.join(REPO, "tests"))
    from models.train.export import export_models
    from train_helpers import tiny_models

    cfg, s2, s1, fusion, stats = tiny_models()
    out = os.path.join(folder, "tiny-models")
    export_models(cfg, s2, s1, fusion, stats, out, training_summary="tiny random weights (benchmark)")
    return out, "tiny"


def run_distributed(stacks, out, workers, tile, models_dir, repo=REPO):
    command = [sys.executable, "-m", "models.distributed", "embed", "--s2", stacks["S2_STACK"],
               "--s1", stacks["S1_STACK"], "--out", out, "--tile-size", str(tile), "--workers", str(workers),
               "--no-progress"]
    if models_dir:
        command += ["--models-dir", models_dir]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=repo, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr}")
    return wall, json.loads(done.stdout.strip().splitlines()[-1])


def run_single(stacks, out, tile, models_dir):
    code = ("import json, sys, time; from models.embedding.job import embed_stacks; t = time.perf_counter(); "
            f"r = embed_stacks({stacks['S2_STACK']!r}, {out!r}, s1_path={stacks['S1_STACK']!r}, "
            f"tile_size={tile}, models_dir={models_dir!r}); "
            "print(json.dumps({'seconds': time.perf_counter() - t, 'pixel_dates': r.pixel_dates}))")
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    return time.perf_counter() - started, json.loads(done.stdout.strip().splitlines()[-1])


def compare(args, folder, stacks, models_dir, baseline):
    """The two Dask runners alternately; compute seconds per tile task, medians and ratio."""
    from revisions import alternating, load_average, ratio_of_medians

    per_tile = {"baseline": [], "current": []}
    workers = args.workers[0]
    for number, label in alternating(args.repeats):
        out = os.path.join(folder, f"out-{label}-{number}")
        repo, models = (baseline, None) if label == "baseline" else (REPO, models_dir)
        wall, summary = run_distributed(stacks, out, workers, args.tile, models, repo)
        shutil.rmtree(out, ignore_errors=True)
        per_tile[label].append(summary["compute_seconds"] / summary["tiles"])
        print(json.dumps({"engine": label, "run": number + 1, "workers": workers, "wall_seconds": round(wall, 2),
                          "load_avg": load_average(),
                          "compute_seconds_per_tile": round(per_tile[label][-1], 3),
                          **{k: summary[k] for k in ("tiles", "seconds", "compute_seconds", "pixel_dates_per_s")}}),
              flush=True)
    medians, ratio = ratio_of_medians(per_tile, higher_is_better=False)
    print(json.dumps({"baseline_rev": args.baseline_rev, "repeats": args.repeats, "size": args.size,
                      "tile": args.tile, "dates": args.dates, "workers": workers,
                      "median_compute_seconds_per_tile": {k: round(v, 3) for k, v in medians.items()},
                      "speedup_per_tile": ratio}), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--tile", type=int, default=128)
    parser.add_argument("--dates", type=int, default=24)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--single", action="store_true", help="also run the single-process engine")
    parser.add_argument("--models-dir")
    parser.add_argument("--baseline-rev", default=None, help="git revision to compare with, side by side")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each runner with --baseline-rev")
    args = parser.parse_args()
    from bench_embed import build_stacks, prepare_chip
    from revisions import extract_revision

    with tempfile.TemporaryDirectory(prefix="cameo-bench-dist-") as folder:
        models_dir, which = models_for_bench(folder, args.models_dir)
        stacks = build_stacks(folder, prepare_chip(folder), args.size, args.dates)
        if args.baseline_rev:
            return compare(args, folder, stacks, models_dir, extract_revision(args.baseline_rev, folder))
        common = {"size": args.size, "dates": args.dates, "tile": args.tile, "models": which,
                  "cpu_count": os.cpu_count()}
        results = {}
        for workers in args.workers:
            load = os.getloadavg()[0]
            wall, summary = run_distributed(stacks, os.path.join(folder, f"out-{workers}"), workers, args.tile,
                                            models_dir)
            results[workers] = (wall, summary)
            base = results[min(results)][0]
            print(json.dumps({**common, "workers": workers, "wall_seconds": round(wall, 2),
                              "speedup_vs_first": round(base / wall, 2), "load_avg_1min_before": load,
                              **{k: summary[k] for k in ("tiles", "seconds", "compute_seconds", "write_seconds",
                                                         "publish_seconds", "pixel_dates_per_s")}}), flush=True)
        if args.single:
            load = os.getloadavg()[0]
            wall, single = run_single(stacks, os.path.join(folder, "out-single"), args.tile, models_dir)
            print(json.dumps({**common, "engine": "single-process embed_stacks", "wall_seconds": round(wall, 2),
                              "seconds": round(single["seconds"], 2), "load_avg_1min_before": load}), flush=True)
        wall, summary = results[min(results)]
        pixel_dates = summary["pixel_dates"]
        per_pixel_date = summary["compute_seconds"] / pixel_dates
        copy_per_pixel_date = summary["write_seconds"] / pixel_dates
        publish_per_pixel_date = summary["publish_seconds"] / pixel_dates
        target = S2_TILE_PX * S2_TILE_PX * S2_TILE_DATES
        n_tiles = math.ceil(S2_TILE_PX / args.tile) ** 2
        compute = per_pixel_date * target
        copy, publish = copy_per_pixel_date * target, publish_per_pixel_date * target
        # Tasks run in parallel while the client copies finished tiles; publishing comes after.
        estimate = {str(n): round((max(compute / n, copy) + publish) / 3600, 2) for n in (1, 2, 8, 32, 128)}
        print(json.dumps({"estimate": "one Sentinel-2 tile, 10980 x 10980 px, 24 dates", "models": which,
                          "tasks": n_tiles, "tile": args.tile,
                          "compute_seconds_per_tile_task": round(compute / n_tiles, 2),
                          "compute_cpu_hours": round(compute / 3600, 2),
                          "client_copy_hours": round(copy / 3600, 2),
                          "client_publish_hours": round(publish / 3600, 2),
                          "wall_hours_by_workers": estimate}), flush=True)


if __name__ == "__main__":
    main()
