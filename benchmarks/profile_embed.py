"""Where cameo:embed's time goes: seconds in each model, the frame-feature handling, reading and writing.

    .venv/bin/python benchmarks/profile_embed.py [--size 256] [--dates 24] [--tile 256] [--workdir DIR]

Builds the S2 + S1 stack as benchmarks/bench_embed.py does, then runs
models.embedding.embed_stacks once in this process with timers around every ONNX Runtime
call (by role) and the I/O steps, and prints one line per item: seconds and share of the
run's wall time. The per-pixel roles (temporal, fusion) run in `threads` workers at once,
so their seconds are summed over the workers (divide by the thread count for wall time).
"""

import argparse
import collections
import os
import sys
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from bench_embed import build_stacks, prepare_chip  # noqa: E402  (benchmarks/bench_embed.py)


def _timed(owner, name, key, seconds, lock):
    function = getattr(owner, name)

    def wrapper(*args, **kwargs):
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            with lock:
                seconds[key] += time.perf_counter() - started
    setattr(owner, name, wrapper)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--dates", type=int, default=24)
    parser.add_argument("--tile", type=int, default=256)
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args()
    import models.embedding.job as job
    import models.embedding.outputs as outputs
    import models.runtime.dense as dense
    import models.runtime.specs as specs

    seconds, lock = collections.defaultdict(float), threading.Lock()
    run_model = specs.CameoModels.run

    def run(self, role, feeds):
        started = time.perf_counter()
        try:
            return run_model(self, role, feeds)
        finally:
            with lock:
                seconds[f"model {role}"] += time.perf_counter() - started
    specs.CameoModels.run = run
    _timed(job, "read_with_halo", "read tiles", seconds, lock)
    _timed(dense._FrameSlots, "load", "frame features into slots (incl. frame models)", seconds, lock)
    _timed(outputs.EmbeddingWriter, "write", "write tiles", seconds, lock)
    _timed(outputs.EmbeddingWriter, "close", "close raw files", seconds, lock)
    _timed(outputs.EmbeddingWriter, "publish", "publish COGs + VRT", seconds, lock)
    if args.workdir:
        os.makedirs(args.workdir, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="cameo-profile-", dir=args.workdir) as folder:
        stacks = build_stacks(folder, prepare_chip(folder), args.size, args.dates)
        started = time.perf_counter()
        result = job.embed_stacks(stacks["S2_STACK"], os.path.join(folder, "out"), s1_path=stacks["S1_STACK"],
                                  tile_size=args.tile)
        total = time.perf_counter() - started
    print(f"total {total:.2f} s, {result.pixel_dates / total:,.0f} pixel-dates/s, load average {os.getloadavg()}")
    for key, value in sorted(seconds.items(), key=lambda item: -item[1]):
        print(f"{key:50s} {value:8.2f} s  {100 * value / total:5.1f} %")


if __name__ == "__main__":
    main()
