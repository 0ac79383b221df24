"""Whole-engine benchmark of cameo:embed's core: speed and peak memory versus raster size.

    .venv/bin/python benchmarks/bench_embed.py [--sizes 256 512] [--dates 24] [--tile 256]
                                               [--threads 0] [--models-dir DIR] [--workdir DIR]
                                               [--baseline-rev REV] [--repeats 3]

For each size, writes an S2 + S1 stack of size x size px x dates on disk by tiling the
real Belgian chip (prepared with models.stack), then runs models.embedding.embed_stacks
in a fresh process (so its peak RSS is its own) and prints one JSON line per size:
pixel-dates/s over the whole run (reading, embedding, COG and VRT writing), peak RSS,
and the achieved GFLOP/s (MFLOP per pixel-date counted from the ONNX graphs x pixel-dates/s)
next to this machine's float32 matrix-multiply rates measured in the same run
(benchmarks/machine.py: ONNX Runtime, numpy, torch).
With memory bounded by the tile size, peak RSS stays flat as the raster grows.

--baseline-rev REV: the engine at git revision REV (its code and its bundled models,
extracted with `git archive` into a temporary folder) runs on the same stacks, the two
alternating (REV, this tree; then this tree, REV; ...) `--repeats` times each, so both
see the same machine load; prints the medians and their ratio (this tree / REV).
"""

import argparse
import glob
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from machine import matmul_rates  # noqa: E402  (benchmarks/machine.py)
from revisions import (add_side_by_side_arguments, alternating, extract_revision, load_average,  # noqa: E402
                       ratio_of_medians)


def mflop_per_pixel_date(models_dir):
    """MFLOP per pixel-date of the dense models, counted from the ONNX graphs."""
    from models.manifest import MODELS_DIR
    from models.train.cost import dense_cost_per_pixel_date

    return dense_cost_per_pixel_date(models_dir or MODELS_DIR)["total_mflop"]


def prepare_chip(folder):
    """The real Belgian chip's S2 + S1 stacks (prepared once per benchmark run)."""
    from models.sample_data import sample_data_dir
    from models.stack import prepare_stack

    chip = os.path.join(sample_data_dir(), "chips", "belgium_00002806639B424A")
    return prepare_stack(sorted(glob.glob(os.path.join(chip, "S2_*.nc"))), os.path.join(folder, "chip"),
                         s1=sorted(glob.glob(os.path.join(chip, "S1_*.nc")))).outputs()


def build_stacks(folder, prepared, size, n_dates):
    """Tile the prepared chip stacks to size x size px and keep the first n_dates dates."""
    import numpy as np

    from models.stack import read_stack, write_stack

    paths = {}
    for key in ("S2_STACK", "S1_STACK"):
        stack = read_stack(prepared[key])
        reps = -(-size // stack.width)
        values = np.tile(stack.values[:n_dates], (1, 1, reps, reps))[:, :, :size, :size]
        extra = {}
        if stack.s1_gap_days is not None:
            extra["CAMEO_S1_GAP_DAYS"] = ",".join(f"{g:g}" for g in stack.s1_gap_days[:n_dates])
            extra["CAMEO_S1_DATES"] = ",".join(d.isoformat() if d else "" for d in stack.s1_dates[:n_dates])
        paths[key] = write_stack(os.path.join(folder, f"{key.lower()}_{size}.tif"), values,
                                 stack.dates[:n_dates], stack.bands, stack.crs, stack.transform,
                                 stack.modality, **extra)
        del values
    return paths


def peak_rss_mb():
    """This process's own peak resident memory (VmHWM) in MB.

    Not getrusage's ru_maxrss: Linux carries the parent's resident size at fork into the
    child's ru_maxrss across exec, so a child of a parent that has just built a large
    stack would report the parent's memory, not its own."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)  # not Linux


def run_one(args):
    """In the child process: one embedding run, its figures as JSON on stdout (with the
    engine of the tree --repo, this one by default)."""
    if args.repo:
        sys.path[0] = os.path.abspath(args.repo)
    from models.embedding.job import embed_stacks

    started = time.perf_counter()
    run = embed_stacks(args.s2, args.out, s1_path=args.s1, tile_size=args.tile, threads=args.threads or None,
                       models_dir=args.models_dir)
    seconds = time.perf_counter() - started
    print(json.dumps({"pixel_dates": run.pixel_dates, "seconds": round(seconds, 2),
                      "pixel_dates_per_s": round(run.pixel_dates / seconds),
                      "peak_rss_mb": peak_rss_mb(), "ru_maxrss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                      "providers": run.providers}))


def run_child(args, stacks, out, repo=None):
    command = [sys.executable, os.path.abspath(__file__), "--child", "--s2", stacks["S2_STACK"],
               "--s1", stacks["S1_STACK"], "--out", out, "--tile", str(args.tile), "--threads", str(args.threads)]
    if args.models_dir and repo is None:
        command += ["--models-dir", args.models_dir]
    if repo:
        command += ["--repo", repo]
    child = subprocess.run(command, check=True, capture_output=True, text=True)
    shutil.rmtree(out, ignore_errors=True)  # T files of size x size x 7 float32 per run
    return json.loads(child.stdout.strip().splitlines()[-1])


def compare(args, folder, stacks, size, mflop, machine, baseline):
    """Baseline and this tree alternately, `repeats` runs each; one JSON line per run, then the summary."""
    rates = {"baseline": [], "current": []}
    for number, label in alternating(args.repeats):
        load = load_average()
        figures = run_child(args, stacks, os.path.join(folder, f"out_{size}_{label}_{number}"),
                            baseline if label == "baseline" else None)
        rates[label].append(figures["pixel_dates_per_s"])
        print(json.dumps({"size": size, "engine": label, "run": number + 1, "load_avg_before": load, **figures}),
              flush=True)
    medians, ratio = ratio_of_medians(rates)
    achieved = mflop * medians["current"] / 1e3
    print(json.dumps({"size": size, "baseline_rev": args.baseline_rev, "repeats": args.repeats,
                      "median_pixel_dates_per_s": medians, "ratio_of_medians": ratio,
                      "achieved_gflops": round(achieved, 1),
                      "fraction_of_onnxruntime_matmul": round(achieved / machine["onnxruntime"], 3)}), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--dates", type=int, default=24)
    parser.add_argument("--tile", type=int, default=256)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--models-dir", default=None)
    parser.add_argument("--workdir", default=None, help="folder for the temporary stacks (default: the system's; "
                        "created when missing)")
    add_side_by_side_arguments(parser, child_inputs=("s2", "s1"))
    args = parser.parse_args()
    if args.child:
        return run_one(args)
    if args.workdir:
        os.makedirs(args.workdir, exist_ok=True)
    machine = matmul_rates()
    mflop = mflop_per_pixel_date(args.models_dir)
    print(json.dumps({"machine_matmul_gflops": machine, "mflop_per_pixel_date": round(mflop, 3)}), flush=True)
    with tempfile.TemporaryDirectory(prefix="cameo-bench-", dir=args.workdir) as folder:
        baseline = extract_revision(args.baseline_rev, folder) if args.baseline_rev else None
        prepared = prepare_chip(folder)
        for size in args.sizes:
            stacks = build_stacks(folder, prepared, size, args.dates)
            if baseline:
                compare(args, folder, stacks, size, mflop, machine, baseline)
                continue
            figures = run_child(args, stacks, os.path.join(folder, f"out_{size}"))
            figures["achieved_gflops"] = round(mflop * figures["pixel_dates_per_s"] / 1e3, 1)
            print(json.dumps({"size": size, "dates": args.dates, "tile": args.tile, **figures}), flush=True)


if __name__ == "__main__":
    main()
