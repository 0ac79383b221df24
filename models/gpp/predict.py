"""Per-pixel GPP maps from an embeddings stack (the engine of cameo:predictgpp).

For every pixel, the embedding series of the stack (NaN = no embedding that date) is
linearly interpolated to daily values (`series.daily_pixels`, gaps up to the model's
`cameo_max_gap_days`), and the GPP model gets the 90-day window ending on each stack
date. A pixel-date gets no data (NaN) when any day of its window has no value: the first
89 days of the stack, gaps between the pixel's valid dates longer than the maximum gap,
and pixels without embeddings.

Outputs (written into a hidden staging folder and moved into place when complete, like
the embeddings): `gpp_YYYY-MM-DD.tif` (one float32 band, g C m-2 d-1, NaN nodata,
cloud-optimised) per stack date, `gpp.vrt` listing all dates (band 'YYYY-MM-DD GPP', tag
CAMEO_DATES), and optionally a CSV table of GPP time series at points or over polygons.
"""

import csv
import datetime
import os
import time
from dataclasses import dataclass

import numpy as np

from ..errors import CameoInputError
from ..progress import NullProgress, check_cancelled
from ..staging import report_swept
from .model import check_embedding_model, load_gpp_model
from .series import daily_pixels, day_numbers

GPP_INDEX_NAME = "gpp.vrt"
UNITS = "g C m-2 d-1"
TABLE_FIELDS = ["id", "date", "gpp_g_c_m2_d", "pixels"]


@dataclass
class GPPRun:
    index_path: str
    files: list
    dates: list
    predicted_dates: list
    pixel_dates: int
    seconds: float
    table_path: str = None

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


def read_embeddings_info(path):
    """Dates, features and model of an embeddings.vrt (or a per-date-band raster with its tags)."""
    import rasterio

    if not path or not os.path.exists(path):
        raise CameoInputError(f"Embeddings {path} not found: give the embeddings.vrt written by cameo:embed.")
    try:
        with rasterio.open(path) as ds:
            tags = ds.tags()
            info = (ds.count, ds.width, ds.height, ds.crs, ds.transform)
    except rasterio.errors.RasterioIOError as error:
        raise CameoInputError(f"{path} is not a readable raster ({error}).") from error
    name = os.path.basename(path)
    if "CAMEO_DATES" not in tags or "CAMEO_FEATURES" not in tags:
        raise CameoInputError(
            f"{name} is not a CAMEO embedding stack (no CAMEO_DATES / CAMEO_FEATURES metadata): give the "
            "embeddings.vrt that cameo:embed writes, with all its dates.")
    try:
        dates = [datetime.date.fromisoformat(d) for d in tags["CAMEO_DATES"].split(",") if d]
    except ValueError as error:
        raise CameoInputError(f"{name}: garbled CAMEO_DATES metadata ({error}).") from error
    features = [f for f in tags["CAMEO_FEATURES"].split(",") if f]
    count, width, height, crs, transform = info
    if count != len(dates) * len(features):
        raise CameoInputError(f"{name} has {count} bands, not {len(dates)} dates x {len(features)} features: "
                              "it is not a complete cameo:embed output.")
    if any(b <= a for a, b in zip(dates, dates[1:])):
        raise CameoInputError(f"{name}: the dates are not unique and ascending.")
    return EmbeddingStackInfo(path, dates, features, tags.get("CAMEO_MODEL_NAME", ""),
                              tags.get("CAMEO_MODEL_VERSION", ""), width, height, crs, transform,
                              tags.get("CAMEO_S1_STACK", "none"))


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


class GPPWriter:
    """Per-date GPP GeoTIFFs + gpp.vrt through the embeddings' atomic staging writer."""

    def __new__(cls, folder, dates, crs, transform, width, height, tags):
        from ..embedding.outputs import EmbeddingWriter

        class _Writer(EmbeddingWriter):
            INDEX_NAME = GPP_INDEX_NAME

            def file_name(self, date):
                return f"gpp_{date.isoformat()}.tif"

            def _create(self, path, date):
                dataset = super()._create(path, date)
                dataset.set_band_unit(1, UNITS)
                dataset.update_tags(1, UNITS=UNITS)
                return dataset

        return _Writer(folder, dates, ["GPP"], crs, transform, width, height, tags)


def check_gpp_output_folder(folder, table_path=None):
    from ..embedding.outputs import check_output_folder

    check_output_folder(folder, pattern="gpp_*.tif", index_name=GPP_INDEX_NAME, what="GPP rasters")
    if table_path:
        parent = os.path.dirname(os.path.abspath(table_path))
        if not os.path.isdir(parent) or not os.access(parent, os.W_OK):
            raise CameoInputError(f"Cannot write the table {table_path}: its folder does not exist or is "
                                  "not writable.")


def gpp_block(model, values, dates, predict_mask, progress=None, pixels_per_chunk=4096):
    """GPP [T, P] (NaN = no data) of embedding values [T, E, P] (NaN = no embedding)."""
    window = model.window_days
    days = day_numbers(dates)
    n_dates, _, n_pix = values.shape
    out = np.full((n_dates, n_pix), np.nan, np.float32)
    targets = np.flatnonzero(predict_mask)
    if len(targets) == 0 or n_pix == 0:
        return out
    start = int(days[targets[0]]) - window + 1
    for p0 in range(0, n_pix, pixels_per_chunk):
        check_cancelled(progress)
        part = values[:, :, p0:p0 + pixels_per_chunk]
        if not np.isfinite(part).any():
            continue
        daily, ok = daily_pixels(days, part, start, int(days[targets[-1]]), model.max_gap_days,
                                 pixel_major=True)                              # [p, D, E], [p, D]
        filled = np.concatenate([np.zeros((ok.shape[0], 1), np.int32), np.cumsum(ok, axis=1, dtype=np.int32)],
                                axis=1)
        for t in targets:
            i = int(days[t]) - start
            complete = np.flatnonzero(filled[:, i + 1] - filled[:, i + 1 - window] == window)
            if len(complete):
                out[t, p0 + complete] = model.run(daily[complete, i - window + 1:i + 1])
    return out


def _locations(info, points, polygons):
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


def predict_gpp(embeddings_path, output_folder, *, model_path=None, points=None, polygons=None,
                table_path=None, threads=None, block_rows=64, progress=None):
    """GPP rasters for every date of an embeddings stack; returns a GPPRun.

    points: [(id, (x, y))] and polygons: [(id, wkt)] in the stack's CRS for the table
    (CSV at table_path: id, date, gpp_g_c_m2_d (mean over the polygon's pixels with data),
    pixels (how many had data))."""
    import rasterio
    from rasterio.windows import Window

    progress = progress or NullProgress()
    info = read_embeddings_info(embeddings_path)
    model = load_gpp_model(model_path, threads=threads)
    what = os.path.basename(embeddings_path)
    check_embedding_model(model, info.model_name, info.model_version, info.features, what)
    mask = check_dates(info.dates, model.window_days, model.max_gap_days, what)
    if (points or polygons) and not table_path:
        raise CameoInputError("Points or polygons were given but no table to write their GPP into.")
    locations = _locations(info, points, polygons) if (points or polygons) else []
    if (points or polygons) and not locations:
        raise CameoInputError("None of the points or polygons lies on the embedding stack: check their "
                              "layer and its CRS.")
    check_gpp_output_folder(output_folder, table_path)
    if info.s1_stack not in ("", "none"):
        progress.pushInfo(
            "Note: these embeddings include Sentinel-1; the bundled GPP model was trained on embeddings "
            "without Sentinel-1 (tower footprints have none), so its GPP is most reliable from embeddings "
            "computed without the Sentinel-1 stack (see the model card).")
    skipped = [d.isoformat() for d, ok in zip(info.dates, mask) if not ok]
    if skipped:
        progress.pushInfo(f"{len(skipped)} of {len(info.dates)} dates lack a complete {model.window_days}-day "
                          f"window in the stack and get no data: {', '.join(skipped[:6])}"
                          + (" ..." if len(skipped) > 6 else ""))
    n_dates, n_feat = len(info.dates), len(info.features)
    tags = {"CAMEO_GPP_MODEL": os.path.basename(model.path),
            "CAMEO_GPP_MODEL_VERSION": model.metadata.get("cameo_model_version", ""),
            "CAMEO_MODEL_NAME": info.model_name, "CAMEO_MODEL_VERSION": info.model_version,
            "CAMEO_UNITS": UNITS, "CAMEO_EMBEDDINGS": os.path.basename(embeddings_path)}
    writer = GPPWriter(output_folder, info.dates, info.crs, info.transform, info.width, info.height, tags)
    report_swept(progress.pushInfo, writer.swept)
    wanted = {}
    for fid, cells in locations:
        for rc in cells:
            wanted.setdefault(rc[0], []).append((fid, rc[1]))
    sums = {fid: np.zeros(n_dates) for fid, _ in locations}
    counts = {fid: np.zeros(n_dates, np.int64) for fid, _ in locations}
    started = time.perf_counter()
    try:
        with rasterio.open(embeddings_path) as ds:
            for row in range(0, info.height, block_rows):
                check_cancelled(progress)
                h = min(block_rows, info.height - row)
                data = ds.read(window=Window(0, row, info.width, h), out_dtype="float32")
                values = data.reshape(n_dates, n_feat, h * info.width)
                gpp = gpp_block(model, values, info.dates, mask, progress).reshape(n_dates, h, info.width)
                for t in range(n_dates):
                    writer.write(t, gpp[t][None], row, 0)
                for r in range(row, row + h):
                    for fid, col in wanted.get(r, ()):
                        v = gpp[:, r - row, col]
                        ok = np.isfinite(v)
                        sums[fid][ok] += v[ok]
                        counts[fid] += ok
                progress.setProgress(100.0 * (row + h) / info.height)
        check_cancelled(progress)
        seconds = time.perf_counter() - started
        table_tmp = None
        if table_path:
            table_tmp = table_path + ".part"
            with open(table_tmp, "w", newline="", encoding="utf-8") as handle:
                out = csv.writer(handle)
                out.writerow(TABLE_FIELDS)
                for fid, _ in locations:
                    for t, date in enumerate(info.dates):
                        c = int(counts[fid][t])
                        out.writerow([fid, date.isoformat(), f"{sums[fid][t] / c:.6g}" if c else "", c])
        files, index_path = writer.publish()
        if table_tmp:
            os.replace(table_tmp, table_path)
    except BaseException:
        writer.abort()
        if table_path and os.path.exists(table_path + ".part"):
            os.remove(table_path + ".part")
        raise
    return GPPRun(index_path, files, list(info.dates), [d for d, ok in zip(info.dates, mask) if ok],
                  n_dates * info.width * info.height, seconds, table_path)
