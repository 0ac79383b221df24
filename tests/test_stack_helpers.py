"""Helpers (no tests) of the issue-3 stack tests: raw reads of the NetCDF chips, synthetic rasters.

The hand computations read the chips through GDAL's HDF5 driver, which returns the
arrays in storage order with no georeferencing logic at all, so they do not share the
netCDF-driver code path (and its orientation pitfalls) that models/stack uses.
"""

import datetime as dt
import glob
import os
import re
import warnings

import numpy as np
import rasterio
from affine import Affine



def _open_raw(name):
    """Open an HDF5 variable: it has no georeferencing, which is the point (no warning)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        return rasterio.open(name)

CHIP = "belgium_00002806639B424A"
S2_BANDS = ("B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12")
BANDS_10M = ("B02", "B03", "B04", "B08")


def chip_files(data_dir, chip=CHIP):
    folder = os.path.join(str(data_dir), "chips", chip)
    s2 = sorted(glob.glob(os.path.join(folder, "S2_L2A_*.nc")))
    s1 = sorted(glob.glob(os.path.join(folder, "S1_*.nc")))
    return s2, s1


def raw(path, variable):
    """[T, H, W] array in file storage order (HDF5 driver)."""
    with _open_raw(f'HDF5:"{path}"://{variable}') as dataset:
        return dataset.read()


def coordinate(path, name):
    with _open_raw(f'HDF5:"{path}"://{name}') as dataset:
        return dataset.read().ravel()


def timestamps(path):
    """Acquisition datetimes from the `timestamp` variable and its CF units."""
    with _open_raw(path) as container:
        first_variable = container.subdatasets[0]
    with _open_raw(first_variable) as variable:
        units = variable.tags()["timestamp#units"]
    match = re.match(r"seconds since (\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)", units)
    base = dt.datetime(*map(int, match.groups()))
    return [base + dt.timedelta(seconds=int(s)) for s in coordinate(path, "timestamp")]


def bilinear_2x(array20, row10, col10):
    """Bilinear value of a 20 m array at the centre of 10 m pixel (row10, col10), same origin."""
    y = (row10 + 0.5) / 2.0 - 0.5
    x = (col10 + 0.5) / 2.0 - 0.5
    r0, c0 = int(np.floor(y)), int(np.floor(x))
    fy, fx = y - r0, x - c0
    a = array20.astype("float64")
    return ((1 - fy) * (1 - fx) * a[r0, c0] + (1 - fy) * fx * a[r0, c0 + 1]
            + fy * (1 - fx) * a[r0 + 1, c0] + fy * fx * a[r0 + 1, c0 + 1])


def write_s2_tif(path, *, dn=2000, scl=4, size=16, bands=S2_BANDS + ("SCL",), origin=(500000.0, 5600000.0),
                 tags=None, describe=True, dtype="uint16"):
    """A synthetic single-date Sentinel-2 GeoTIFF at 10 m: every band = dn (SCL band = scl)."""
    profile = dict(driver="GTiff", width=size, height=size, count=len(bands), dtype=dtype, nodata=0,
                   crs="EPSG:32631", transform=Affine(10, 0, origin[0], 0, -10, origin[1]))
    with rasterio.open(path, "w", **profile) as dataset:
        for i, band in enumerate(bands, start=1):
            value = scl if band == "SCL" else dn
            dataset.write(np.full((size, size), value, dtype=dtype), i)
            if describe:
                dataset.set_band_description(i, band)
        if tags:
            dataset.update_tags(**tags)
    return str(path)


def write_s1_tif(path, *, vv_db=-10.0, vh_db=-17.0, size=8, origin=(500000.0, 5600000.0)):
    """A synthetic single-date Sentinel-1 GeoTIFF at 20 m, float32 dB, bands described VV, VH."""
    profile = dict(driver="GTiff", width=size, height=size, count=2, dtype="float32", nodata=None,
                   crs="EPSG:32631", transform=Affine(20, 0, origin[0], 0, -20, origin[1]))
    with rasterio.open(path, "w", **profile) as dataset:
        dataset.write(np.full((size, size), vv_db, "float32"), 1)
        dataset.write(np.full((size, size), vh_db, "float32"), 2)
        dataset.set_band_description(1, "VV")
        dataset.set_band_description(2, "VH")
    return str(path)
