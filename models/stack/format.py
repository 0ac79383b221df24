"""The CAMEO time-stack GeoTIFF format, version 1 (docs/stack-format.md).

One GeoTIFF per modality, float32, date-major bands (band index = t * C + c + 1),
NaN = invalid, metadata in dataset and band tags (creation profile "stack" of
models.rasterio_io). `StackWriter` writes one block by block into a file staged by
`atomic_output`; `write_stack` writes a whole in-memory array; `read_stack` /
`read_stack_info` read one back.
"""

import datetime as _dt
import math
import os
from dataclasses import dataclass, field

import numpy as np
import rasterio
from rasterio.crs import CRS
from rasterio.windows import Window

from ..errors import CameoInputError
from ..rasterio_io import atomic_output

FORMAT_VERSION = "1"
S2_BANDS = ("B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12")
S1_BANDS = ("VV", "VH")
# Bounded GDAL block cache while writing/reading stacks (bytes): keeps peak memory
# independent of the raster size.
GDAL_CACHE_BYTES = 256 * 1024 * 1024


def band_description(date, band):
    return f"{date.isoformat()} {band}"


def format_gap(gap):
    if gap is None or (isinstance(gap, float) and math.isnan(gap)):
        return "nan"
    return str(int(gap))


class StackWriter:
    """Write a stack block by block into a file staged by `atomic_output`.

    `finish()` writes the dataset tags and closes the file; the atomic_output renames it into
    place when the whole run succeeded, or removes it on any error.
    """

    def __init__(self, output, path, dates, bands, crs, transform, width, height, modality, tags=None):
        self.dates = list(dates)
        self.bands = list(bands)
        self.modality = modality
        self._tags = dict(tags or {})
        self._dataset = output.raster(path, "stack", width=width, height=height,
                                      count=len(self.dates) * len(self.bands), crs=crs, transform=transform)
        for t, date in enumerate(self.dates):
            for c, band in enumerate(self.bands):
                index = self.band_index(t, c)
                self._dataset.set_band_description(index, band_description(date, band))
                self._dataset.update_tags(index, DATE=date.isoformat(), BAND=band)

    def band_index(self, t, c):
        return t * len(self.bands) + c + 1

    def write(self, t, c, array, window):
        self._dataset.write(np.asarray(array, dtype="float32"), self.band_index(t, c), window=window)

    def update_tags(self, **tags):
        self._tags.update(tags)

    def finish(self):
        """Write the dataset tags and close."""
        tags = {
            "CAMEO_STACK_VERSION": FORMAT_VERSION,
            "CAMEO_MODALITY": self.modality,
            "CAMEO_DATES": ",".join(d.isoformat() for d in self.dates),
            "CAMEO_BANDS": ",".join(self.bands),
        }
        tags.update({k: str(v) for k, v in self._tags.items()})
        self._dataset.update_tags(**tags)
        self._dataset.close()


def write_stack(path, values, dates, bands, crs, transform, modality, **tags):
    """Write a whole `[T, C, H, W]` array as a stack, atomically."""
    values = np.asarray(values, dtype="float32")
    if values.ndim != 4 or values.shape[0] != len(dates) or values.shape[1] != len(bands):
        raise CameoInputError(
            f"write_stack: values have shape {values.shape}, expected "
            f"[{len(dates)} dates, {len(bands)} bands, H, W]. Pass one array per date and band."
        )
    height, width = values.shape[2:]
    with atomic_output(os.path.dirname(os.path.abspath(path)), guard=False) as out:
        writer = StackWriter(out, path, dates, bands, CRS.from_user_input(crs), transform, width, height,
                             modality, tags)
        window = Window(0, 0, width, height)
        for t in range(len(dates)):
            for c in range(len(bands)):
                writer.write(t, c, values[t, c], window)
        writer.finish()
    return os.path.abspath(path)


@dataclass
class Stack:
    path: str
    dates: list
    bands: list
    crs: object
    transform: object
    width: int
    height: int
    modality: str
    tags: dict = field(default_factory=dict)
    s1_gap_days: object = None
    s1_dates: object = None
    valid_fraction: object = None
    values: object = None


def _parse_list(text):
    return [item for item in (text or "").split(",")]


def read_stack_info(path):
    """A stack's metadata (a `Stack` with `values=None`)."""
    return _read(path, window=None, with_values=False)


def read_stack(path, window=None):
    """A stack with its values, `[T, C, H, W]` float32, optionally a window only.

    `window` is a rasterio Window or `(col_off, row_off, width, height)`.
    """
    return _read(path, window=window, with_values=True)


def _read(path, window, with_values):
    try:
        dataset = rasterio.open(path)
    except rasterio.errors.RasterioIOError as error:
        raise CameoInputError(f"Cannot open the stack '{path}': {error}. Give a file written by cameo:preparestack.") from error
    with dataset:
        tags = dataset.tags()
        if tags.get("CAMEO_STACK_VERSION") != FORMAT_VERSION:
            raise CameoInputError(
                f"'{path}' is not a CAMEO time stack version {FORMAT_VERSION} (no CAMEO_STACK_VERSION tag). "
                "Prepare it with cameo:preparestack."
            )
        redo = "Prepare the stack again with cameo:preparestack (do not edit its metadata)."
        try:
            dates = [_dt.date.fromisoformat(d) for d in _parse_list(tags["CAMEO_DATES"])]
            bands = _parse_list(tags["CAMEO_BANDS"])
        except (KeyError, ValueError) as error:
            raise CameoInputError(f"'{path}' has a missing or garbled CAMEO_DATES/CAMEO_BANDS tag ({error}). "
                                  + redo) from error
        if len(dates) * len(bands) != dataset.count:
            raise CameoInputError(
                f"'{path}' lists {len(dates)} dates x {len(bands)} bands in its metadata but has {dataset.count} "
                "raster bands. " + redo)
        if any(b <= a for a, b in zip(dates, dates[1:])):
            raise CameoInputError(f"The dates of '{path}' are not unique and ascending. " + redo)
        info = Stack(
            path=os.path.abspath(path), dates=dates, bands=bands, crs=dataset.crs,
            transform=dataset.transform, width=dataset.width, height=dataset.height,
            modality=tags.get("CAMEO_MODALITY", ""), tags=tags,
        )
        try:
            if "CAMEO_S1_GAP_DAYS" in tags:
                info.s1_gap_days = np.array([float(g) for g in _parse_list(tags["CAMEO_S1_GAP_DAYS"])])
                info.s1_dates = [_dt.date.fromisoformat(d) if d else None
                                 for d in _parse_list(tags.get("CAMEO_S1_DATES", ""))]
            if "CAMEO_VALID_FRACTION" in tags:
                info.valid_fraction = np.array([float(v) for v in _parse_list(tags["CAMEO_VALID_FRACTION"])])
        except ValueError as error:
            raise CameoInputError(f"'{path}' has a garbled CAMEO_S1_* or CAMEO_VALID_FRACTION tag ({error}). "
                                  + redo) from error
        if with_values:
            if window is not None and not isinstance(window, Window):
                window = Window(*window)
            data = dataset.read(window=window, out_dtype="float32")
            if window is not None:
                info.transform = dataset.window_transform(window)
                info.height, info.width = data.shape[1:]
            info.values = data.reshape(len(dates), len(bands), data.shape[1], data.shape[2])
        return info
