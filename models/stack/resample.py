"""Read one band of one source onto a window of the target grid, block by block.

Only the source pixels under the window (plus a small margin for the resampling
kernel) are read, so memory depends on the block size, never on the raster size.
"""

import functools
import math
from collections import OrderedDict

import numpy as np
import rasterio
import rasterio.errors
from rasterio.enums import Resampling
from rasterio.warp import reproject, transform_bounds
from rasterio.windows import Window

from ..errors import CameoInputError, first_line
from .sources import GDAL_ENV

RESAMPLING = {"nearest": Resampling.nearest, "bilinear": Resampling.bilinear, "cubic": Resampling.cubic}
_MARGIN = {"nearest": 1, "bilinear": 2, "cubic": 3}


class DatasetPool:
    """Keeps up to `size` datasets open (opening a NetCDF per block is slow).

    Each open dataset holds buffers outside GDAL's block cache (about a tile's worth for
    a GeoTIFF, more for JPEG2000), so the pool is kept small: memory must not grow with
    the number of input files.
    """

    def __init__(self, size=48):
        self.size = size
        self._open = OrderedDict()
        self._env = None

    def __enter__(self):
        self._env = rasterio.Env(**GDAL_ENV)
        self._env.__enter__()
        return self

    def __exit__(self, *exc):
        self.close()
        self._env.__exit__(*exc)
        return False

    def get(self, path):
        dataset = self._open.get(path)
        if dataset is None:
            dataset = rasterio.open(path)
            self._open[path] = dataset
            while len(self._open) > self.size:
                _, old = self._open.popitem(last=False)
                old.close()
        else:
            self._open.move_to_end(path)
        return dataset

    def close(self):
        while self._open:
            _, dataset = self._open.popitem()
            dataset.close()


def read_band(dataset, ref, window):
    """Band `ref.index` of `dataset` in `window`; a damaged or truncated file is a CameoInputError."""
    try:
        return dataset.read(ref.index, window=window)
    except rasterio.errors.RasterioIOError as error:
        first = first_line(error)
        raise CameoInputError(
            f"'{ref.label}' is damaged or incomplete: GDAL cannot read band {ref.index} ({first}). "
            "Download or copy the file again, or leave it out.") from error


def _raw_to_float(raw, ref):
    data = raw.astype("float32", copy=False) if raw.dtype != np.float32 else raw.copy()
    for nodata in (ref.nodata, ref.fill_max):
        if nodata is not None and not (isinstance(nodata, float) and math.isnan(nodata)):
            data[raw == nodata] = np.nan
    return data


def _read_converted(dataset, ref, window, convert, neighbourhood=None):
    """Source values in `window` as float32 (NaN = no data), through `convert`, then `neighbourhood`.

    A neighbourhood filter (an object with `margin` and a call on a 2-D array) sees
    `margin` more source pixels on each side, where the file has them, so its result
    inside the window does not depend on how the raster is cut into blocks.
    """
    margin = neighbourhood.margin if neighbourhood is not None else 0
    c0, r0 = max(window.col_off - margin, 0), max(window.row_off - margin, 0)
    c1 = min(window.col_off + window.width + margin, ref.grid.width)
    r1 = min(window.row_off + window.height + margin, ref.grid.height)
    data = _raw_to_float(read_band(dataset, ref, Window(c0, r0, c1 - c0, r1 - r0)), ref)
    if convert is not None:
        data = convert(data)
    if neighbourhood is None:
        return data
    data = neighbourhood(data)
    return data[window.row_off - r0:window.row_off - r0 + window.height,
                window.col_off - c0:window.col_off - c0 + window.width]


def read_central_sample(pool, ref, convert=None, size=256):
    """The central size x size source window of `ref` (2-D float32, NaN = no data), through `convert`."""
    w, h = min(size, ref.grid.width), min(size, ref.grid.height)
    window = Window((ref.grid.width - w) // 2, (ref.grid.height - h) // 2, w, h)
    return _read_converted(pool.get(ref.path), ref, window, convert)


def _aligned_offset(src_grid, dst_crs, dst_transform):
    """(col, row) offset when the source grid is the target grid shifted by whole pixels."""
    if src_grid.crs != dst_crs:
        return None
    s, d = src_grid.transform, dst_transform
    if not (math.isclose(s.a, d.a, rel_tol=1e-9) and math.isclose(s.e, d.e, rel_tol=1e-9)
            and s.b == 0 and s.d == 0 and d.b == 0 and d.d == 0):
        return None
    col = (d.c - s.c) / s.a
    row = (d.f - s.f) / s.e
    if abs(col - round(col)) > 1e-6 or abs(row - round(row)) > 1e-6:
        return None
    return int(round(col)), int(round(row))


@functools.lru_cache(maxsize=4096)
def _transform_bounds_cached(src_wkt, dst_wkt, bounds):
    """transform_bounds is slow (a PROJ pipeline per call): every date and band of a block asks the same."""
    return transform_bounds(src_wkt, dst_wkt, *bounds, densify_pts=21)


def read_onto(pool, ref, dst_crs, dst_transform, width, height, resampling="bilinear", convert=None,
              neighbourhood=None):
    """Band `ref` resampled onto a `height` x `width` window of the target grid.

    Returns float32 with NaN where the source has no data or does not reach.
    `convert(float32 array) -> float32 array` maps source values (NaN = nodata) before
    resampling (scaling to reflectance, dB to linear power...).
    """
    dataset = pool.get(ref.path)
    out = np.full((height, width), np.nan, dtype="float32")
    src = ref.grid
    offset = _aligned_offset(src, dst_crs, dst_transform)
    if offset is not None:
        col, row = offset
        c0, r0 = max(col, 0), max(row, 0)
        c1, r1 = min(col + width, src.width), min(row + height, src.height)
        if c1 <= c0 or r1 <= r0:
            return out
        data = _read_converted(dataset, ref, Window(c0, r0, c1 - c0, r1 - r0), convert, neighbourhood)
        out[r0 - row:r1 - row, c0 - col:c1 - col] = data
        return out
    factor = _integer_factor(src, dst_crs, dst_transform)
    if factor is not None and resampling in ("nearest", "bilinear"):
        return _upsample_aligned(dataset, ref, factor, dst_transform, width, height, resampling, convert,
                                 neighbourhood)
    # General case: the source pixels under the window, plus a kernel margin.
    t = dst_transform
    left, top = t.c, t.f
    right, bottom = t.c + t.a * width, t.f + t.e * height
    bounds = (min(left, right), min(top, bottom), max(left, right), max(top, bottom))
    if src.crs != dst_crs:
        bounds = _transform_bounds_cached(dst_crs.to_wkt(), src.crs.to_wkt(), bounds)
    inv = ~src.transform
    xs, ys = [], []
    for x in (bounds[0], bounds[2]):
        for y in (bounds[1], bounds[3]):
            c, r = inv * (x, y)
            xs.append(c)
            ys.append(r)
    margin = _MARGIN[resampling]
    c0 = max(int(math.floor(min(xs))) - margin, 0)
    r0 = max(int(math.floor(min(ys))) - margin, 0)
    c1 = min(int(math.ceil(max(xs))) + margin, src.width)
    r1 = min(int(math.ceil(max(ys))) + margin, src.height)
    if c1 <= c0 or r1 <= r0:
        return out
    window = Window(c0, r0, c1 - c0, r1 - r0)
    data = _read_converted(dataset, ref, window, convert, neighbourhood)
    reproject(
        data, out,
        src_transform=dataset.window_transform(window), src_crs=src.crs, src_nodata=np.nan,
        dst_transform=dst_transform, dst_crs=dst_crs, dst_nodata=np.nan,
        resampling=RESAMPLING[resampling], num_threads=1, init_dest_nodata=True,
    )
    return out


def _integer_factor(src_grid, dst_crs, dst_transform):
    """k when the source grid is k times coarser than the target and shares its pixel edges."""
    if src_grid.crs != dst_crs:
        return None
    s, d = src_grid.transform, dst_transform
    if s.b or s.d or d.b or d.d or d.a <= 0 or d.e >= 0 or s.a <= 0 or s.e >= 0:
        return None
    kx, ky = s.a / d.a, s.e / d.e
    k = int(round(kx))
    if k < 2 or abs(kx - k) > 1e-9 or abs(ky - k) > 1e-9:
        return None
    col = (d.c - s.c) / d.a
    row = (d.f - s.f) / d.e
    if abs(col - round(col)) > 1e-6 or abs(row - round(row)) > 1e-6:
        return None
    return k


def _axis_weights(start, count, k, size, resampling):
    """Source indices and weights along one axis for target pixels start..start+count-1.

    Target pixel i (in source-aligned target coordinates) has its centre at source
    coordinate x = (i + 0.5) / k - 0.5 (in source pixel-centre units). Bilinear uses
    floor(x) and floor(x) + 1 with weights 1 - f and f, clamped at the raster edge;
    nearest uses round-half-up, i.e. floor((i + 0.5) / k). Target pixels whose centre
    is outside the source raster get index -1 (no data).
    """
    centre = (np.arange(start, start + count, dtype="float64") + 0.5) / k
    outside = (centre < 0) | (centre > size)
    if resampling == "nearest":
        i0 = np.clip(np.floor(centre).astype("int64"), 0, size - 1)
        i0[outside] = -1
        return i0, None, None
    x = centre - 0.5
    i0 = np.floor(x).astype("int64")
    f = x - i0
    i1 = np.clip(i0 + 1, 0, size - 1)
    i0 = np.clip(i0, 0, size - 1)
    i0[outside] = -1
    i1[outside] = -1
    return i0, i1, f


def _upsample_aligned(dataset, ref, k, dst_transform, width, height, resampling, convert, neighbourhood=None):
    """Exact, fast resampling from a k-times coarser aligned grid (20 m -> 10 m) in numpy.

    Bilinear weights are renormalised over the valid (non-NaN) neighbours, as GDAL does;
    a target pixel with no valid neighbour is NaN.
    """
    src = ref.grid
    s, d = src.transform, dst_transform
    col0 = int(round((d.c - s.c) / d.a))
    row0 = int(round((d.f - s.f) / d.e))
    cx0, cx1, fx = _axis_weights(col0, width, k, src.width, resampling)
    ry0, ry1, fy = _axis_weights(row0, height, k, src.height, resampling)
    used_c = np.concatenate([cx0, cx1]) if cx1 is not None else cx0
    used_r = np.concatenate([ry0, ry1]) if ry1 is not None else ry0
    used_c, used_r = used_c[used_c >= 0], used_r[used_r >= 0]
    out = np.full((height, width), np.nan, dtype="float32")
    if used_c.size == 0 or used_r.size == 0:
        return out
    c_lo, c_hi, r_lo, r_hi = int(used_c.min()), int(used_c.max()), int(used_r.min()), int(used_r.max())
    data = _read_converted(dataset, ref, Window(c_lo, r_lo, c_hi - c_lo + 1, r_hi - r_lo + 1), convert,
                           neighbourhood)
    ok_c, ok_r = cx0 >= 0, ry0 >= 0
    if resampling == "nearest":
        picked = data[np.ix_(ry0[ok_r] - r_lo, cx0[ok_c] - c_lo)]
        out[np.ix_(ok_r, ok_c)] = picked
        return out
    fx_, fy_ = fx[ok_c][None, :].astype("float32"), fy[ok_r][:, None].astype("float32")
    a0, a1 = cx0[ok_c] - c_lo, cx1[ok_c] - c_lo
    b0, b1 = ry0[ok_r] - r_lo, ry1[ok_r] - r_lo

    def interpolate(array):
        # Columns first on the small source rows, then whole rows (contiguous copies).
        left, right = array[:, a0], array[:, a1]
        across = left + (right - left) * fx_
        top, bottom = across[b0, :], across[b1, :]
        return top + (bottom - top) * fy_

    valid = np.isfinite(data)
    if valid.all():
        result = interpolate(data.astype("float32", copy=False))
    else:
        weight = valid.astype("float32")
        total = interpolate(weight)
        with np.errstate(invalid="ignore", divide="ignore"):
            result = interpolate(np.where(valid, data, 0).astype("float32")) / total
        result[total <= 1e-6] = np.nan
    out[np.ix_(ok_r, ok_c)] = result.astype("float32")
    return out
