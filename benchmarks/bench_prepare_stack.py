"""Benchmark of `prepare_stack` on a large synthetic input built by tiling the real chip.

Builds, in --workdir, one Sentinel-2 GeoTIFF pair per date (10 m: B02 B03 B04 B08;
20 m: B05 B06 B07 B8A B11 B12 SCL) of --size x --size pixels at 10 m, each tile a copy of
the Belgian chip's data of that date, plus one Sentinel-1 VV/VH GeoTIFF (20 m, dB) per
acquisition in the period. Then runs the command line `python -m models.stack` on them
as a child process and reports wall time, peak RSS of the child (its own VmHWM) and
throughput. Inputs are written uncompressed and tiled; the outputs follow the stack
format (DEFLATE). Memory must not depend on --size (blocks of --block-size pixels).

    .venv/bin/python benchmarks/bench_prepare_stack.py --size 2048 --dates 30

Disk needed: inputs ~ dates * size^2 * 11.5 bytes, outputs up to dates * size^2 * 48 bytes
before compression (10,000 px x 30 dates: 35 GB in, <= 144 GB out), which is why the
full size was not run on the 77 GB development disk.

Measured 2026-11-21 on the 2-core development machine while other jobs kept its load
average at 4-6 (30 dates kept, 154 Sentinel-1 files, block 1024):
  --size 1024: 41.6 s wall, 28.2 s CPU, peak RSS 705 MB, 0.31 GB written (1.5 GB raw)
  --size 3072: 287.7 s wall, 207.2 s CPU, peak RSS 821 MB, 2.7 GB written (13.6 GB raw)
i.e. ~1.0-1.4 M pixel-dates per CPU second; 10,000 x 10,000 x 30 extrapolates to
~2,200 CPU s (~50 min wall at that load). Peak memory is capped by GDAL's cache
(256 MB), at most 48 open inputs and one block's arrays, not by the area.
"""

import argparse
import datetime as dt
import glob
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
import rasterio
from affine import Affine

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from models.sample_data import sample_data_dir  # noqa: E402
from models.stack.sources import GDAL_ENV  # noqa: E402

CHIP = "belgium_00002806639B424A"
B10 = ("B02", "B03", "B04", "B08")
B20 = ("B05", "B06", "B07", "B8A", "B11", "B12", "SCL")
ORIGIN = (400000.0, 5700000.0)


def _read_chip(path, variable):
    with rasterio.Env(**GDAL_ENV), rasterio.open(f"netcdf:{path}:{variable}") as dataset:
        return dataset.read(), [dataset.tags(i) for i in range(1, dataset.count + 1)], dataset.tags()


def _dates(tags_per_band, dataset_tags):
    import re
    units = next(v for k, v in dataset_tags.items() if k.endswith("#units") and "since" in v)
    base = dt.datetime.strptime(re.search(r"since (.+)$", units).group(1), "%Y-%m-%d %H:%M:%S")
    return [(base + dt.timedelta(seconds=float(t["NETCDF_DIM_timestamp"]))).date() for t in tags_per_band]


def _write_tiled(path, chip_stack, names, size, resolution, dtype, nodata, rows_per_write=512):
    """Write a size x size raster whose every chip-sized tile is `chip_stack` [C, h, w]."""
    count, h, w = chip_stack.shape
    profile = dict(driver="GTiff", width=size, height=size, count=count, dtype=dtype, nodata=nodata,
                   crs="EPSG:32631", transform=Affine(resolution, 0, ORIGIN[0], 0, -resolution, ORIGIN[1]),
                   tiled=True, blockxsize=512, blockysize=512, BIGTIFF="IF_SAFER")
    reps_x = -(-size // w)
    with rasterio.open(path, "w", **profile) as dataset:
        for c, name in enumerate(names, start=1):
            dataset.set_band_description(c, name)
        for row in range(0, size, rows_per_write):
            n = min(rows_per_write, size - row)
            rows = (np.arange(row, row + n) % h)
            for c in range(count):
                band = np.tile(chip_stack[c][rows], (1, reps_x))[:, :size].astype(dtype)
                dataset.write(band, c + 1, window=rasterio.windows.Window(0, row, size, n))


def build_inputs(workdir, size, n_dates):
    folder = os.path.join(sample_data_dir(), "chips", CHIP)
    f10 = glob.glob(os.path.join(folder, "S2_L2A_10m_*.nc"))[0]
    f20 = glob.glob(os.path.join(folder, "S2_L2A_20m_*.nc"))[0]
    f1 = glob.glob(os.path.join(folder, "S1_*.nc"))[0]
    arrays10 = {b: _read_chip(f10, b) for b in B10}
    arrays20 = {b: _read_chip(f20, b) for b in B20}
    dates = _dates(arrays20["SCL"][1], arrays20["SCL"][2])
    scl = arrays20["SCL"][0]
    clear = np.isin(scl, (4, 5, 6, 7, 11)).mean(axis=(1, 2))
    # The n clearest dates (all kept at the default threshold), in time order.
    chosen = sorted(np.argsort(-clear)[:n_dates])
    s2_paths = []
    for t in chosen:
        tag = dates[t].strftime("%Y%m%d")
        p10 = os.path.join(workdir, f"S2_{tag}_10m.tif")
        p20 = os.path.join(workdir, f"S2_{tag}_20m.tif")
        _write_tiled(p10, np.stack([arrays10[b][0][t] for b in B10]), B10, size, 10.0, "uint16", 0)
        _write_tiled(p20, np.stack([arrays20[b][0][t] for b in B20]), B20, size // 2, 20.0, "uint16", 0)
        s2_paths += [p10, p20]
    vv, vv_tags, vv_ds = _read_chip(f1, "VV")
    vh, _, _ = _read_chip(f1, "VH")
    s1_dates = _dates(vv_tags, vv_ds)
    first, last = dates[chosen[0]] - dt.timedelta(days=12), dates[chosen[-1]] + dt.timedelta(days=12)
    s1_paths = []
    for i, date in enumerate(s1_dates):
        if not first <= date <= last:
            continue
        path = os.path.join(workdir, f"S1_{date.strftime('%Y%m%d')}.tif")
        if os.path.exists(path):
            continue  # two passes on one day: keep the first
        pair = np.stack([vv[i], vh[i]]).astype("float32") * 1e-4
        pair[np.stack([vv[i], vh[i]]) == 0] = np.nan
        _write_tiled(path, pair, ("VV", "VH"), size // 2, 20.0, "float32", None)
        s1_paths.append(path)
    return s2_paths, s1_paths


def _du(path):
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)


def run_with_peak_rss(command):
    """Run `command`; returns (CompletedProcess-like, the child's own peak RSS in MB).

    The peak is the child's VmHWM, read from /proc while it runs (it only grows). Not
    getrusage's ru_maxrss: Linux carries this parent's resident memory at fork into the
    child's figure across exec, and this parent has just built the inputs."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        child = subprocess.Popen(command, cwd=REPO, stdout=out, stderr=err, text=True)
        peak_kb = 0
        while child.poll() is None:
            try:
                with open(f"/proc/{child.pid}/status") as status:
                    for line in status:
                        if line.startswith("VmHWM:"):
                            peak_kb = max(peak_kb, int(line.split()[1]))
            except (FileNotFoundError, ProcessLookupError, ValueError):
                pass
            time.sleep(0.05)
        out.seek(0)
        err.seek(0)
        done = subprocess.CompletedProcess(command, child.returncode, out.read(), err.read())
    return done, round(peak_kb / 1024.0, 1)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=2048, help="raster side in 10 m pixels")
    parser.add_argument("--dates", type=int, default=30, help="Sentinel-2 dates")
    parser.add_argument("--block-size", type=int, default=1024)
    parser.add_argument("--workdir", default="/tmp/cameo-bench-prepare")
    parser.add_argument("--no-s1", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep inputs and outputs")
    args = parser.parse_args()

    inputs = os.path.join(args.workdir, f"in-{args.size}-{args.dates}")
    output = os.path.join(args.workdir, "out")
    shutil.rmtree(output, ignore_errors=True)
    t0 = time.time()
    if not os.path.isdir(inputs):
        os.makedirs(inputs + ".part", exist_ok=True)
        build_inputs(inputs + ".part", args.size, args.dates)
        os.replace(inputs + ".part", inputs)
    s2 = sorted(glob.glob(os.path.join(inputs, "S2_*.tif")))
    s1 = sorted(glob.glob(os.path.join(inputs, "S1_*.tif")))
    built = time.time() - t0
    command = [sys.executable, "-m", "models.stack", "--s2", *s2, "--output-folder", output, "--quiet",
               "--block-size", str(args.block_size)]
    if not args.no_s1:
        command += ["--s1", *s1]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t1 = time.time()
    done, peak_mb = run_with_peak_rss(command)
    wall = time.time() - t1
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.exit(f"prepare failed: {done.stderr}")
    with open(os.path.join(output, "dates.csv")) as handle:
        kept = sum(1 for _ in handle) - 1
    pixels = args.size * args.size
    report = {
        "size_px": args.size, "s2_dates_in": args.dates, "s2_dates_kept": kept, "s1_files": 0 if args.no_s1 else len(s1),
        "block_size": args.block_size, "input_build_s": round(built, 1),
        "prepare_wall_s": round(wall, 1),
        "prepare_cpu_s": round((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), 1),
        "peak_rss_mb": peak_mb, "ru_maxrss_mb": round(after.ru_maxrss / 1024.0, 1),
        "input_mb": round(_du(inputs) / 1e6, 1), "output_mb": round(_du(output) / 1e6, 1),
        "output_uncompressed_mb": round(pixels * kept * (10 + (0 if args.no_s1 else 2)) * 4 / 1e6, 1),
        "pixel_dates_per_s": round(pixels * kept / wall),
    }
    report["extrapolated_10000px_30dates_wall_s"] = round(wall * (1e8 / pixels) * (30 / max(kept, 1)))
    print(json.dumps(report, indent=1))
    if not args.keep:
        shutil.rmtree(args.workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
