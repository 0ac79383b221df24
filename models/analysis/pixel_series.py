"""One pixel through time, from a CAMEO embedding or GPP raster and the files beside it.

What the pixel inspector (ui/pixel_inspector.py) plots, without Qt: the 7 embedding
features per date, GPP per date, and the Sentinel-2 reflectance of the stack (true colour
and NDVI). The outputs name their inputs by file name only (CAMEO_S2_STACK,
CAMEO_EMBEDDINGS), so those are looked for in the raster's folder, its parent and the
parent's other folders (the layout of cameo:preparestack -> cameo:embed -> cameo:predictgpp
runs, e.g. run/stack, run/embeddings, run/gpp).
"""

import csv
import datetime
import glob
import io
import os
from dataclasses import dataclass, field

import numpy as np
import rasterio
from rasterio.windows import Window

from ..errors import CameoInputError

TRUE_COLOUR = ("B04", "B03", "B02")


@dataclass
class PixelSeries:
    row: int
    col: int
    embedding_dates: list = field(default_factory=list)
    embeddings: np.ndarray = None        # [T, E]
    features: list = field(default_factory=list)
    gpp_dates: list = field(default_factory=list)
    gpp: np.ndarray = None               # [T]
    gpp_aoa_di: np.ndarray = None        # [T] dissimilarity index of each GPP value
    aoa_threshold: float = float("nan")  # AOA_DI above it: outside the area of applicability
    s2_dates: list = field(default_factory=list)
    reflectance: dict = field(default_factory=dict)  # band -> [T]
    sources: dict = field(default_factory=dict)

    @property
    def ndvi(self):
        if "B08" not in self.reflectance or "B04" not in self.reflectance:
            return None
        nir, red = self.reflectance["B08"], self.reflectance["B04"]
        with np.errstate(invalid="ignore", divide="ignore"):
            return (nir - red) / (nir + red)


def _near(path, name):
    """The file `name` in path's folder, its parent or the parent's subfolders, or None."""
    folder = os.path.dirname(os.path.abspath(path))
    parent = os.path.dirname(folder)
    candidates = [os.path.join(folder, name), os.path.join(parent, name)]
    candidates += sorted(glob.glob(os.path.join(glob.escape(parent), "*", glob.escape(name))))
    return next((c for c in candidates if os.path.isfile(c)), None)


def related_files(path):
    """{'embeddings', 'gpp', 's2_stack'} -> path (or None) for a CAMEO embedding or GPP raster."""
    with rasterio.open(path) as data:
        tags = data.tags()
    found = {"embeddings": None, "gpp": None, "s2_stack": None}
    if tags.get("CAMEO_FEATURES", "").split(",")[0] == "GPP" or os.path.basename(path).startswith("gpp"):
        found["gpp"] = path if "CAMEO_DATES" in tags else _near(path, "gpp.vrt")
        found["embeddings"] = _near(path, tags.get("CAMEO_EMBEDDINGS", "embeddings.vrt"))
    elif "CAMEO_DATES" in tags or "CAMEO_DATE" in tags:
        found["embeddings"] = path if "CAMEO_DATES" in tags else _near(path, "embeddings.vrt")
        gpp = _near(path, "gpp.vrt")
        found["gpp"] = gpp
    else:
        raise CameoInputError(f"{os.path.basename(path)} is not a CAMEO embedding or GPP raster.")
    if found["embeddings"]:
        with rasterio.open(found["embeddings"]) as data:
            found["s2_stack"] = _near(found["embeddings"], data.tags().get("CAMEO_S2_STACK", "s2_stack.tif"))
    return found


def _dates(tags):
    return [datetime.date.fromisoformat(d) for d in tags["CAMEO_DATES"].split(",") if d]


def _read_pixel(path, x, y):
    """(values [count] float64, dates, band names, row, col) at map point (x, y), or None outside."""
    with rasterio.open(path) as data:
        row, col = data.index(x, y)
        if not (0 <= row < data.height and 0 <= col < data.width):
            return None
        values = data.read(window=Window(col, row, 1, 1), out_dtype="float64")[:, 0, 0]
        return values, data.tags(), row, col


def pixel_series(path, x, y):
    """The PixelSeries at (x, y) (in the raster's CRS) of a CAMEO layer, or None outside it."""
    files = related_files(path)
    first = _read_pixel(files["embeddings"] or files["gpp"], x, y)
    if first is None:
        return None
    series = PixelSeries(first[2], first[3], sources={k: v for k, v in files.items() if v})
    if files["embeddings"]:
        values, tags = first[:2]  # read from the embeddings when they exist
        series.features = tags["CAMEO_FEATURES"].split(",")
        series.embedding_dates = _dates(tags)
        series.embeddings = values.reshape(len(series.embedding_dates), len(series.features))
    if files["gpp"]:
        found = _read_pixel(files["gpp"], x, y)
        if found is not None:
            values, tags = found[:2]
            series.gpp_dates = _dates(tags)
            bands = tags.get("CAMEO_FEATURES", "GPP").split(",")
            per_date = values.reshape(len(series.gpp_dates), len(bands))
            series.gpp = per_date[:, bands.index("GPP")]
            if "AOA_DI" in bands:
                series.gpp_aoa_di = per_date[:, bands.index("AOA_DI")]
                series.aoa_threshold = float(tags.get("CAMEO_AOA_THRESHOLD", "nan"))
    if files["s2_stack"]:
        found = _read_pixel(files["s2_stack"], x, y)
        if found is not None:
            values, tags = found[:2]
            bands = tags["CAMEO_BANDS"].split(",")
            series.s2_dates = _dates(tags)
            per_date = values.reshape(len(series.s2_dates), len(bands))
            series.reflectance = {b: per_date[:, bands.index(b)] for b in TRUE_COLOUR + ("B08",) if b in bands}
    return series


def series_csv(series):
    """CSV text: date, source (embedding / gpp / s2), then one column per value."""
    text = io.StringIO()
    out = csv.writer(text, lineterminator="\n")
    out.writerow(["date", "row", "col", "series", "name", "value"])
    for t, date in enumerate(series.embedding_dates):
        for f, name in enumerate(series.features):
            out.writerow([date.isoformat(), series.row, series.col, "embedding", name,
                          f"{series.embeddings[t, f]:.7g}"])
    for t, date in enumerate(series.gpp_dates if series.gpp is not None else []):
        out.writerow([date.isoformat(), series.row, series.col, "gpp", "GPP", f"{series.gpp[t]:.7g}"])
        if series.gpp_aoa_di is not None:
            out.writerow([date.isoformat(), series.row, series.col, "gpp", "AOA_DI", f"{series.gpp_aoa_di[t]:.7g}"])
    ndvi = series.ndvi
    for t, date in enumerate(series.s2_dates):
        for band, values in series.reflectance.items():
            out.writerow([date.isoformat(), series.row, series.col, "s2", band, f"{values[t]:.7g}"])
        if ndvi is not None:
            out.writerow([date.isoformat(), series.row, series.col, "s2", "NDVI", f"{ndvi[t]:.7g}"])
    return text.getvalue()
