"""Per-pixel GPP maps from an embeddings stack (the engine of cameo:predictgpp).

For every pixel, the embedding series of the stack (NaN = no embedding that date) is
linearly interpolated to daily values (gaps up to the model's `cameo_max_gap_days`), and the
GPP model gets the 10-day means of the 90-day window ending on each stack date and that
day's top-of-atmosphere radiation at the pixel's latitude (the means are computed exactly
as weights on the observations: `series.bin_weights`). A pixel-date gets no data (NaN)
when any day of its window has no value: the first 89 days of the stack, gaps between the
pixel's valid dates longer than the maximum gap, and pixels without embeddings. Embeddings
made with Sentinel-1 are mapped from the Sentinel-2-only embedding of their S2 stack (the
path the model was trained on).

Outputs (written into a hidden staging folder and moved into place when complete, like
the embeddings): `gpp_YYYY-MM-DD.tif` (float32, cloud-optimised, NaN nodata; band 1 `GPP`
in g C m-2 d-1, band 2 `AOA_DI`, the area-of-applicability dissimilarity index, with the
threshold in the metadata item CAMEO_AOA_THRESHOLD) per stack date, `gpp.vrt` listing all
dates (bands 'YYYY-MM-DD GPP', 'YYYY-MM-DD AOA_DI', tag CAMEO_DATES), and optionally a CSV
table of GPP time series at points or over polygons.
"""

import collections
import csv
import datetime
import os
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from ..errors import CameoInputError
from ..progress import NullProgress, check_cancelled
from ..rasterio_io import STAGING_PREFIX, DatedRasterWriter, atomic_output, check_output_folder, read_dated_index
from ..runtime.specs import default_workers, single_threaded_blas
from ..staging import report_swept
from .model import check_embedding_model, load_gpp_model
from .series import bin_weights, day_numbers
from .sun import day_of_year, toa_radiation

GPP_INDEX_NAME = "gpp.vrt"
UNITS = "g C m-2 d-1"
TABLE_FIELDS = ["id", "date", "gpp_g_c_m2_d", "pixels", "aoa_di", "outside_aoa_pixels"]
BANDS = ["GPP", "AOA_DI"]


@dataclass
class GPPRun:
    index_path: str
    files: list
    dates: list
    predicted_dates: list
    pixel_dates: int
    seconds: float
    table_path: str = None
    aoa_threshold: float = float("nan")

    @property
    def pixel_dates_per_second(self):
        return self.pixel_dates / self.seconds if self.seconds > 0 else float("inf")


@dataclass
class EmbeddingStackInfo:
    path: str
    dates: list
    features: list
    model_name: str
    model_version: str
    width: int
    height: int
    crs: object
    transform: object
    s1_stack: str = "none"
    s2_stack_path: str = ""


def read_embeddings_info(path):
    """Dates, features and model of an embeddings.vrt (or a per-date-band raster with its tags)."""
    import rasterio

    if not path or not os.path.exists(path):
        raise CameoInputError(f"Embeddings {path} not found: give the embeddings.vrt written by cameo:embed.")
    try:
        with rasterio.open(path) as ds:
            tags = ds.tags()
            count, width, height, crs, transform = ds.count, ds.width, ds.height, ds.crs, ds.transform
    except rasterio.errors.RasterioIOError as error:
        raise CameoInputError(f"{path} is not a readable raster ({error}).") from error
    name = os.path.basename(path)
    index = read_dated_index(tags, count)
    if index is None or index.single_date or "CAMEO_FEATURES" not in tags:
        raise CameoInputError(
            f"{name} is not a CAMEO embedding stack (no CAMEO_DATES / CAMEO_FEATURES metadata): give the "
            "embeddings.vrt that cameo:embed writes, with all its dates.")
    try:
        dates = [datetime.date.fromisoformat(d) for d in index.dates if d]
    except ValueError as error:
        raise CameoInputError(f"{name}: garbled CAMEO_DATES metadata ({error}).") from error
    features = index.names
    if count != len(dates) * len(features):
        raise CameoInputError(f"{name} has {count} bands, not {len(dates)} dates x {len(features)} features: "
                              "it is not a complete cameo:embed output.")
    if any(b <= a for a, b in zip(dates, dates[1:])):
        raise CameoInputError(f"{name}: the dates are not unique and ascending.")
    return EmbeddingStackInfo(path, dates, features, tags.get("CAMEO_MODEL_NAME", ""),
                              tags.get("CAMEO_MODEL_VERSION", ""), width, height, crs, transform,
                              tags.get("CAMEO_S1_STACK", "none"), _stack_path(path, tags))


def _stack_path(embeddings_path, tags):
    """The S2 stack the embeddings were made from: its recorded path, else the name beside the folder."""
    recorded = tags.get("CAMEO_S2_STACK_PATH", "")
    if recorded and os.path.isfile(recorded):
        return recorded
    name = tags.get("CAMEO_S2_STACK", "")
    folder = os.path.dirname(os.path.abspath(embeddings_path))
    for candidate in (os.path.join(folder, name), os.path.join(os.path.dirname(folder), name)):
        if name and os.path.isfile(candidate):
            return candidate
    return recorded


def predictable_dates(dates, window_days, max_gap):
    """bool per stack date: its window can be complete (stack-level coverage rule)."""
    days = day_numbers(dates)
    ok = np.zeros(len(days), bool)
    for t, day in enumerate(days):
        start = day - window_days + 1
        if start < days[0]:
            continue
        inside = days[(days >= start) & (days <= day)]
        before = days[days < start]
        points = np.concatenate([before[-1:], inside])
        ok[t] = bool(len(points) and points[0] <= start and np.all(np.diff(points) <= max_gap))
    return ok


def check_dates(dates, window_days, max_gap, what):
    """One clear error when no stack date can get GPP; returns the predictable mask."""
    if len(dates) < 2:
        raise CameoInputError(
            f"{what} has {len(dates)} date: GPP needs a {window_days}-day window of embeddings, i.e. a stack "
            f"of dates covering at least {window_days} days. Embed a longer time series.")
    days = day_numbers(dates)
    span = int(days[-1] - days[0]) + 1
    if span < window_days:
        raise CameoInputError(
            f"{what} covers {span} days ({dates[0]} .. {dates[-1]}), less than the GPP model's "
            f"{window_days}-day window: no date can get GPP. Embed a longer time series.")
    ok = predictable_dates(dates, window_days, max_gap)
    if not ok.any():
        gaps = np.diff(days)
        i = int(np.argmax(gaps))
        raise CameoInputError(
            f"{what} has date gaps longer than the GPP model's window (e.g. {int(gaps[i])} days between "
            f"{dates[i]} and {dates[i + 1]}; at most {max_gap} days can be interpolated): no date gets a "
            f"complete {window_days}-day window. Add the missing dates (a lower minimum valid fraction in "
            "cameo:preparestack keeps more dates) or split the stack.")
    return ok


def gpp_writer(folder, dates, crs, transform, width, height, tags):
    """Per-date GPP GeoTIFFs (bands GPP, AOA_DI) + gpp.vrt: the dated-raster writer with GPP's names."""
    return DatedRasterWriter(folder, dates, BANDS, crs, transform, width, height, tags, prefix="gpp",
                             index_name=GPP_INDEX_NAME, band_units={1: UNITS},
                             band_tags={1: {"UNITS": UNITS}, 2: {"UNITS": "dimensionless (AOA dissimilarity index)"}})


def check_gpp_output_folder(folder, table_path=None):
    check_output_folder(folder, "GPP rasters", names=(GPP_INDEX_NAME,), pattern="gpp_*.tif")
    if table_path:
        parent = os.path.dirname(os.path.abspath(table_path))
        if not os.path.isdir(parent) or not os.access(parent, os.W_OK):
            raise CameoInputError(f"Cannot write the table {table_path}: its folder does not exist or is "
                                  "not writable.")


def pixel_latitudes(crs, transform, row, height, width):
    """Latitude (degrees north) of the centres of rows row..row+height-1, all columns: [height * width].

    Through GDAL's PROJ (rasterio.warp), which finds its data wherever GDAL and QGIS do."""
    from rasterio.warp import transform as reproject_points

    cols, rows = np.meshgrid(np.arange(width) + 0.5, np.arange(row, row + height) + 0.5)
    x, y = transform * (cols.ravel(), rows.ravel())
    _, lat = reproject_points(crs, "EPSG:4326", np.asarray(x, np.float64), np.asarray(y, np.float64))
    return np.asarray(lat, np.float64)


def gpp_block(model, values, dates, predict_mask, latitudes, progress=None):
    """(GPP, AOA_DI) [T, P] (NaN = no data) of embedding values [T, E, P] at latitudes [P].

    Pixels are grouped by which dates they have an embedding for; per group, the window bin
    means of every predicted date are one small matrix product (series.bin_weights), exactly
    the means of the daily-interpolated series."""
    days = day_numbers(dates)
    n_dates, n_feat, n_pix = values.shape
    # Only the bin means the outputs depend on are computed (from the first to the last of them,
    # so that they are one slice); the others stay 0, which the model ignores.
    used = slice(min(model.used_bins), max(model.used_bins) + 1)
    gpp = np.full((n_dates, n_pix), np.nan, np.float32)
    di = np.full((n_dates, n_pix), np.nan, np.float32)
    targets = np.flatnonzero(predict_mask)
    if len(targets) == 0 or n_pix == 0:
        return gpp, di
    valid = np.all(np.isfinite(values), axis=1)                                  # [T, P]
    patterns, group = np.unique(np.packbits(valid, axis=0), axis=1, return_inverse=True)
    filled = np.where(valid[:, None, :], values, np.float32(0.0))                # [T, E, P]
    radiation = toa_radiation(latitudes[None, :], day_of_year(days[targets])[:, None])  # [targets, P]
    for g in range(patterns.shape[1]):
        check_cancelled(progress)
        pixels = np.flatnonzero(group == g)
        pattern = valid[:, pixels[0]]
        if pattern.sum() == 0:
            continue
        weights, complete = bin_weights(days, pattern, days[targets], model.window_days, model.bins,
                                        model.max_gap_days)
        flat = (filled if len(pixels) == n_pix else filled[:, :, pixels]).reshape(n_dates, -1)  # [T, E p]
        bins = np.zeros((len(pixels), n_feat, model.bins), np.float32)
        for r in np.flatnonzero(complete):
            # the dates a window's used bins weigh are a few consecutive ones: a product over those only
            w = weights[r, used]                                                  # [used, T]
            weighed = np.flatnonzero(np.any(w != 0, axis=0))
            dates_used = slice(weighed[0], weighed[-1] + 1)
            means = w[:, dates_used].astype(np.float32) @ flat[dates_used]        # [used, E p]
            bins[:, :, used] = means.reshape(-1, n_feat, len(pixels)).transpose(2, 1, 0)
            gpp[targets[r], pixels], di[targets[r], pixels] = model.run(bins, radiation[r, pixels])
    return gpp, di


def feature_cells(info, points, polygons):
    """[(id, [(row, col), ...])] pixel lists of points (x, y) and polygons (WKT) in the stack CRS."""
    from rasterio.transform import rowcol

    found = []
    for fid, (x, y) in points or []:
        row, col = rowcol(info.transform, x, y)
        if 0 <= row < info.height and 0 <= col < info.width:
            found.append((fid, [(int(row), int(col))]))
    if polygons:
        from rasterio.features import geometry_mask
        from shapely import wkt
        from shapely.geometry import mapping

        for fid, text in polygons:
            geom = wkt.loads(text)
            inside = ~geometry_mask([mapping(geom)], (info.height, info.width), info.transform, all_touched=False)
            if not inside.any():  # small polygon: the pixel under its centroid
                c = geom.representative_point()
                row, col = rowcol(info.transform, c.x, c.y)
                if 0 <= row < info.height and 0 <= col < info.width:
                    inside[row, col] = True
            cells = [tuple(map(int, rc)) for rc in np.argwhere(inside)]
            if cells:
                found.append((fid, cells))
    return found


def s2_only_embeddings(info, s2_stack, staging_parent, models_dir, threads, progress):
    """The Sentinel-1-free embeddings of the extent of `info`, computed from the S2 stack into a
    hidden folder (removed by the caller): the GPP model was trained on that path."""
    import tempfile

    from ..embedding.job import embed_stacks

    if not s2_stack or not os.path.isfile(s2_stack):
        raise CameoInputError(
            f"These embeddings include Sentinel-1, and GPP is computed from the Sentinel-2-only embedding "
            f"(the model was trained without Sentinel-1), but the Sentinel-2 stack {s2_stack or ''} was not "
            "found: give it as S2_STACK (the s2_stack.tif the embeddings were made from).")
    folder = tempfile.mkdtemp(prefix=STAGING_PREFIX + "s2only-", dir=staging_parent)
    left, top = info.transform.c, info.transform.f
    bounds = (left, top + info.transform.e * info.height, left + info.transform.a * info.width, top)
    progress.pushInfo("These embeddings include Sentinel-1; the GPP model was trained on Sentinel-2-only "
                      "embeddings (tower footprints have no Sentinel-1), so GPP is computed from the "
                      f"Sentinel-2-only embedding of {os.path.basename(s2_stack)} (one more embedding pass).")
    run = embed_stacks(s2_stack, os.path.join(folder, "embeddings"), bounds=bounds, threads=threads,
                       models_dir=models_dir, progress=NullProgress())
    made = read_embeddings_info(run.index_path)
    if (made.model_name, made.model_version) != (info.model_name, info.model_version) or \
            (made.width, made.height) != (info.width, info.height):
        raise CameoInputError(
            f"The embedding models ({made.model_name} {made.model_version}) are not those of the embeddings "
            f"({info.model_name} {info.model_version}), or {os.path.basename(s2_stack)} does not cover them: "
            "give the embedding models folder (MODELS) and the S2 stack the embeddings were made with.")
    return folder, run.index_path


def _table_rows(locations, dates, sums):
    for fid, _ in locations:
        for t, date in enumerate(dates):
            c = int(sums["count"][fid][t])
            yield [fid, date.isoformat(), f"{sums['gpp'][fid][t] / c:.6g}" if c else "", c,
                   f"{sums['di'][fid][t] / c:.4g}" if c else "", int(sums["outside"][fid][t])]


def predict_gpp(embeddings_path, output_folder, *, model_path=None, points=None, polygons=None,
                table_path=None, s2_stack=None, models_dir=None, threads=None, block_rows=64, progress=None):
    """GPP rasters (bands GPP and AOA_DI) for every date of an embeddings stack; returns a GPPRun.

    points: [(id, (x, y))] and polygons: [(id, wkt)] in the stack's CRS for the table
    (CSV at table_path: id, date, gpp_g_c_m2_d (mean over the polygon's pixels with data),
    pixels (how many had data), aoa_di (their mean dissimilarity index), outside_aoa_pixels).
    s2_stack: the Sentinel-2 stack of embeddings made with Sentinel-1 (default: the stack named
    in their metadata, beside the embeddings' folder or at its recorded path), embedded with
    the models in models_dir (default: the bundled ones)."""
    progress = progress or NullProgress()
    info = read_embeddings_info(embeddings_path)
    model = load_gpp_model(model_path, threads=threads)
    what = os.path.basename(embeddings_path)
    check_embedding_model(model, info.model_name, info.model_version, info.features, what)
    mask = check_dates(info.dates, model.window_days, model.max_gap_days, what)
    if (points or polygons) and not table_path:
        raise CameoInputError("Points or polygons were given but no table to write their GPP into.")
    locations = feature_cells(info, points, polygons) if (points or polygons) else []
    if (points or polygons) and not locations:
        raise CameoInputError("None of the points or polygons lies on the embedding stack: check their "
                              "layer and its CRS.")
    check_gpp_output_folder(output_folder, table_path)
    skipped = [d.isoformat() for d, ok in zip(info.dates, mask) if not ok]
    if skipped:
        progress.pushInfo(f"{len(skipped)} of {len(info.dates)} dates lack a complete {model.window_days}-day "
                          f"window in the stack and get no data: {', '.join(skipped[:6])}"
                          + (" ..." if len(skipped) > 6 else ""))
    progress.pushInfo(f"GPP = top-of-atmosphere radiation (from each pixel's latitude and the day of year) x "
                      f"light-use efficiency; area of applicability threshold {model.aoa.threshold:.3f} "
                      "(band AOA_DI above it: outside)")
    tags = {"CAMEO_GPP_MODEL": os.path.basename(model.path),
            "CAMEO_GPP_MODEL_VERSION": model.metadata.get("cameo_model_version", ""),
            "CAMEO_MODEL_NAME": info.model_name, "CAMEO_MODEL_VERSION": info.model_version,
            "CAMEO_UNITS": UNITS, "CAMEO_EMBEDDINGS": os.path.basename(embeddings_path),
            "CAMEO_AOA_THRESHOLD": f"{model.aoa.threshold:.6g}"}
    writer = gpp_writer(output_folder, info.dates, info.crs, info.transform, info.width, info.height, tags)
    report_swept(progress.pushInfo, writer.swept)
    table = atomic_output(os.path.dirname(os.path.abspath(table_path)), guard=False) if table_path else None
    staging = None
    try:
        source = embeddings_path
        if info.s1_stack not in ("", "none"):
            staging, source = s2_only_embeddings(info, s2_stack or info.s2_stack_path, writer.staging, models_dir,
                                                 threads, progress)
        started = time.perf_counter()
        sums = _predict_blocks(model, info, source, mask, writer, locations, block_rows,
                               int(threads) if threads else default_workers(), progress)
        check_cancelled(progress)
        seconds = time.perf_counter() - started
        if table is not None:
            with open(table.stage(table_path), "w", newline="", encoding="utf-8") as handle:
                out = csv.writer(handle)
                out.writerow(TABLE_FIELDS)
                out.writerows(_table_rows(locations, info.dates, sums))
        if staging:
            shutil.rmtree(staging, ignore_errors=True)
        files, index_path = writer.publish()
        if table is not None:
            table.commit()
    except BaseException:
        writer.abort()
        if table is not None:
            table.abort()
        raise
    return GPPRun(index_path, files, list(info.dates), [d for d, ok in zip(info.dates, mask) if ok],
                  len(info.dates) * info.width * info.height, seconds, table_path, model.aoa.threshold)


def _predict_blocks(model, info, source, mask, writer, locations, block_rows, workers, progress):
    """Write GPP and AOA_DI block by block, `workers` blocks read and computed at once (each
    block's numbers do not depend on which thread computes it); returns the per-location sums
    for the table. Blocks are written in this thread, in order."""
    import rasterio
    from rasterio.windows import Window

    n_dates, n_feat = len(info.dates), len(info.features)
    wanted = {}
    for fid, cells in locations:
        for rc in cells:
            wanted.setdefault(rc[0], []).append((fid, rc[1]))
    sums = {key: {fid: np.zeros(n_dates) for fid, _ in locations} for key in ("gpp", "di", "count", "outside")}

    def finish(row, h, computed):
        gpp, di = (a.reshape(n_dates, h, info.width) for a in computed.result())
        for t in range(n_dates):
            writer.write(t, np.stack([gpp[t], di[t]]), row, 0)
        for r in range(row, row + h):
            for fid, col in wanted.get(r, ()):
                g, d = gpp[:, r - row, col], di[:, r - row, col]
                ok = np.isfinite(g)
                sums["gpp"][fid][ok] += g[ok]
                sums["di"][fid][ok] += d[ok]
                sums["count"][fid] += ok
                sums["outside"][fid] += ok & (d > model.aoa.threshold)
        progress.setProgress(100.0 * (row + h) / info.height)

    opened, handles = threading.local(), []

    def compute(row, h):
        """Read and compute one block, in a worker: each worker reads through its own handle."""
        if not hasattr(opened, "dataset"):
            opened.dataset = rasterio.open(source)
            handles.append(opened.dataset)
        data = opened.dataset.read(window=Window(0, row, info.width, h), out_dtype="float32")
        latitudes = pixel_latitudes(info.crs, info.transform, row, h, info.width)
        return gpp_block(model, data.reshape(n_dates, n_feat, h * info.width), info.dates, mask, latitudes,
                         progress)

    pending = collections.deque()
    try:
        with single_threaded_blas(), ThreadPoolExecutor(workers) as pool:
            for row in range(0, info.height, block_rows):
                check_cancelled(progress)
                h = min(block_rows, info.height - row)
                pending.append((row, h, pool.submit(compute, row, h)))
                if len(pending) > workers:
                    finish(*pending.popleft())
            while pending:
                finish(*pending.popleft())
    finally:
        for dataset in handles:
            dataset.close()
    return sums
