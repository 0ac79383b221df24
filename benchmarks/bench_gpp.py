"""Benchmark of cameo:predictgpp's engine against the embedding it follows (target: GPP <= 10 % of it).

    .venv/bin/python benchmarks/bench_gpp.py [--size 512] [--dates 24] [--embed-size 512] [--threads 0]
                                             [--models-dir DIR] [--gpp-model FILE]
                                             [--baseline-rev REV] [--repeats 3]

Builds a size x size px x dates S2 + S1 stack by tiling the real Belgian chip (prepared with
models.stack at the default 0.5 valid fraction; `dates` dates picked evenly over the chip's
58 so the stack spans its 15 months), embeds it with models.embedding.embed_stacks (timed),
then maps GPP from the embeddings with models.gpp.predict.predict_gpp (timed). With
--embed-size smaller than --size, the embedding is timed at that size and its output tiled
to size x size for GPP (GPP's cost does not depend on the values). Prints one JSON line:
seconds and pixel-dates/s of both steps (all stack pixel-dates; GPP also per predicted date).
The embedding is made without Sentinel-1: GPP of embeddings made with Sentinel-1 adds one
Sentinel-2-only embedding pass (the path the GPP model was trained on), measured as such.

--baseline-rev REV: both steps also run with the code and bundled models of git revision
REV (benchmarks/revisions.py), alternating with this tree, --repeats times each, on the
same stacks; prints the medians and the ratios (this tree / REV) of both steps' pixel-dates/s.
"""

import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(1, os.path.join(REPO, "benchmarks"))


def build(folder, size, n_dates):
    import numpy as np

    from models.sample_data import sample_data_dir
    from models.stack import prepare_stack, read_stack, write_stack

    chip = os.path.join(sample_data_dir(), "chips", "belgium_00002806639B424A")
    prepared = prepare_stack(sorted(glob.glob(os.path.join(chip, "S2_*.nc"))), os.path.join(folder, "chip"),
                             s1=sorted(glob.glob(os.path.join(chip, "S1_*.nc")))).outputs()
    paths = {}
    for key in ("S2_STACK", "S1_STACK"):
        stack = read_stack(prepared[key])
        pick = np.unique(np.linspace(0, len(stack.dates) - 1, n_dates).round().astype(int))
        reps = -(-size // stack.width)
        values = np.tile(stack.values[pick], (1, 1, reps, reps))[:, :, :size, :size]
        extra = {}
        if stack.s1_gap_days is not None:
            extra["CAMEO_S1_GAP_DAYS"] = ",".join(f"{g:g}" for g in stack.s1_gap_days[pick])
            extra["CAMEO_S1_DATES"] = ",".join(stack.s1_dates[i].isoformat() if stack.s1_dates[i] else ""
                                               for i in pick)
        paths[key] = write_stack(os.path.join(folder, f"{key.lower()}_{size}.tif"), values,
                                 [stack.dates[i] for i in pick], stack.bands, stack.crs, stack.transform,
                                 stack.modality, **extra)
    return paths


def tile_embeddings(run, folder, size):
    """Tile an embeddings output to size x size px (a new embeddings.vrt with the same tags)."""
    import numpy as np
    import rasterio

    from models.embedding.outputs import EmbeddingWriter

    with rasterio.open(run.index_path) as data:
        tags = data.tags()
        values = data.read().reshape(len(run.dates), -1, data.height, data.width)
        crs, transform = data.crs, data.transform
    reps = -(-size // values.shape[-1])
    features = tags["CAMEO_FEATURES"].split(",")
    keep = {k: v for k, v in tags.items() if k not in ("CAMEO_DATES", "CAMEO_FEATURES")}
    os.makedirs(folder, exist_ok=True)
    writer = EmbeddingWriter(folder, run.dates, features, crs, transform, size, size, keep)
    for t in range(len(run.dates)):
        writer.write(t, np.tile(values[t], (1, reps, reps))[:, :size, :size], 0, 0)
    return writer.publish()[1]


def run_steps(args):
    """In the child process (engine of the tree --repo): embed, then GPP; figures as JSON."""
    sys.path[0] = os.path.abspath(args.repo or REPO)
    from models.embedding.job import embed_stacks
    from models.gpp.predict import predict_gpp

    embed_size = args.embed_size or args.size
    threads = args.threads or None
    folder = args.out
    started = time.perf_counter()
    run = embed_stacks(args.s2, os.path.join(folder, "emb"), threads=threads, models_dir=args.models_dir)
    embed_seconds = time.perf_counter() - started
    index = run.index_path
    if embed_size != args.size:
        index = tile_embeddings(run, os.path.join(folder, "emb_tiled"), args.size)
    started = time.perf_counter()
    gpp = predict_gpp(index, os.path.join(folder, "gpp"), model_path=args.gpp_model, threads=threads)
    gpp_seconds = time.perf_counter() - started
    predicted = len(gpp.predicted_dates) * args.size * args.size
    print(json.dumps({
        "size": args.size, "dates": len(run.dates), "embed_size": embed_size,
        "embed_seconds": round(embed_seconds, 1),
        "embed_pixel_dates_per_s": round(run.pixel_dates / embed_seconds),
        "gpp_seconds": round(gpp_seconds, 1),
        "gpp_pixel_dates_per_s": round(gpp.pixel_dates / gpp_seconds),
        "gpp_predicted_dates": len(gpp.predicted_dates),
        "gpp_predicted_pixel_dates_per_s": round(predicted / gpp_seconds),
        "gpp_seconds_per_embed_seconds_same_size": round(
            gpp_seconds / (embed_seconds * (args.size / embed_size) ** 2), 3)}), flush=True)


def run_child(args, s2, out, repo=None):
    command = [sys.executable, os.path.abspath(__file__), "--child", "--s2", s2, "--out", out,
               "--size", str(args.size), "--embed-size", str(args.embed_size or args.size),
               "--threads", str(args.threads)]
    if repo is None:
        command += [f"--{k}={v}" for k, v in (("models-dir", args.models_dir), ("gpp-model", args.gpp_model)) if v]
    else:
        command += ["--repo", repo]
    child = subprocess.run(command, check=True, capture_output=True, text=True)
    shutil.rmtree(out, ignore_errors=True)
    return json.loads(child.stdout.strip().splitlines()[-1])


def compare(args, folder, s2, baseline):
    from revisions import alternating, load_average, ratio_of_medians

    rates = {k: {"baseline": [], "current": []} for k in ("embed_pixel_dates_per_s", "gpp_pixel_dates_per_s",
                                                          "gpp_seconds_per_embed_seconds_same_size")}
    for number, label in alternating(args.repeats):
        figures = run_child(args, s2, os.path.join(folder, f"run_{label}_{number}"),
                            baseline if label == "baseline" else None)
        for key in rates:
            rates[key][label].append(figures[key])
        print(json.dumps({"engine": label, "run": number + 1, "load_avg": load_average(), **figures}), flush=True)
    summary = {"baseline_rev": args.baseline_rev, "repeats": args.repeats}
    for key in rates:
        medians, ratio = ratio_of_medians(rates[key])
        summary[key] = {"median": medians, "ratio": ratio}
    print(json.dumps(summary), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--embed-size", type=int, default=None)
    parser.add_argument("--dates", type=int, default=24)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--models-dir", default=None)
    parser.add_argument("--gpp-model", default=None)
    from revisions import add_side_by_side_arguments, extract_revision

    add_side_by_side_arguments(parser, child_inputs=("s2",))
    args = parser.parse_args()
    if args.child:
        return run_steps(args)

    with tempfile.TemporaryDirectory(prefix="cameo-bench-gpp-") as folder:
        baseline = extract_revision(args.baseline_rev, folder) if args.baseline_rev else None
        stacks = build(folder, args.embed_size or args.size, args.dates)
        if baseline:
            return compare(args, folder, stacks["S2_STACK"], baseline)
        print(json.dumps(run_child(args, stacks["S2_STACK"], os.path.join(folder, "run"))), flush=True)


if __name__ == "__main__":
    main()
