"""Data cubes with named dimensions (NetCDF, Zarr), as xarray, stackstac, odc-stac, rioxarray
and openEO write them: which arrays are rasters, what their band and time coordinates say,
and where their georeferencing is when GDAL's classic raster view finds none.

The metadata comes from GDAL's multidimensional API (the one reader for both formats);
pixels are still read through rasterio on GDAL's classic view of each 2-D slice
(`NETCDF:"file":var` band k, or `ZARR:"file":/var:i:j`), like every other input.
"""

import math
import os
import re
import warnings
from dataclasses import dataclass, field

import numpy as np
from affine import Affine
from osgeo import gdal
from rasterio.crs import CRS

# GDAL >= 3.9 warns (FutureWarning, on stderr) when a program has called neither
# gdal.UseExceptions() nor gdal.DontUseExceptions(). Choosing one here would change GDAL's
# behaviour for everything else in the QGIS process; this module handles both (it catches
# RuntimeError and checks for None), so only the warning is silenced.
warnings.filterwarnings("ignore", message="Neither gdal.UseExceptions", category=FutureWarning)

from ..errors import CameoInputError

_X_NAMES = {"x", "lon", "long", "longitude", "easting"}
_Y_NAMES = {"y", "lat", "latitude", "northing"}
_TIME_NAMES = {"time", "t", "date", "dates", "datetime", "timestamp"}
_BAND_NAMES = {"band", "bands", "variable", "variables", "channel", "spectral_band"}
_GRID_MAPPING_NAMES = {"spatial_ref", "crs", "grid_mapping", "transverse_mercator", "utm"}
# Spacing of x/y coordinates may differ by float rounding, not by more than this share of a pixel.
_REGULAR_TOLERANCE = 1e-3
_ZARR_MARKERS = (".zgroup", ".zarray", ".zmetadata", "zarr.json")


def is_zarr(path):
    """A Zarr store on disk (a folder holding Zarr v2/v3 metadata)."""
    return os.path.isdir(path) and any(os.path.exists(os.path.join(path, m)) for m in _ZARR_MARKERS)


@dataclass
class CubeArray:
    """One array of a cube: its dimensions (names and sizes), attributes, data type class."""
    name: str
    dims: list
    sizes: list
    numeric: bool
    attrs: dict = field(default_factory=dict)
    unit: str = ""


def _read_attrs(holder):
    attrs = {}
    for attribute in holder.GetAttributes() or []:
        try:
            attrs[attribute.GetName()] = attribute.Read()
        except RuntimeError:  # an attribute of a type GDAL cannot convert: not one we use
            continue
    return attrs


class Cube:
    """The root group of a NetCDF file or Zarr store, read through GDAL's multidimensional API."""

    def __init__(self, path, label):
        self.path, self.label = path, label
        try:
            dataset = gdal.OpenEx(path, gdal.OF_MULTIDIM_RASTER)
        except RuntimeError as error:
            raise CameoInputError(
                f"'{label}' is not a data cube that GDAL can read ({str(error).strip()}). Give a NetCDF file "
                "or a Zarr store of a Sentinel-2 or Sentinel-1 cube.") from error
        if dataset is None:
            raise CameoInputError(f"'{label}' is not a data cube that GDAL can read. Give a NetCDF file or a Zarr store.")
        self.driver = dataset.GetDriver().ShortName
        root = dataset.GetRootGroup()
        self.global_attrs = _read_attrs(root)
        self.arrays = {}
        self._root, self._dataset = root, dataset  # the arrays stay readable while the Cube lives
        for name in root.GetMDArrayNames() or []:
            array = root.OpenMDArray(name)
            dims = array.GetDimensions()
            self.arrays[name] = CubeArray(
                name=name, dims=[d.GetName() for d in dims], sizes=[int(d.GetSize()) for d in dims],
                numeric=array.GetDataType().GetClass() == gdal.GEDTC_NUMERIC, attrs=_read_attrs(array),
                unit=array.GetUnit() or "")
        self._values = {}

    def values(self, name):
        """The values of a (coordinate) array, cached: numpy for numbers, a list for strings."""
        if name not in self._values:
            array = self._root.OpenMDArray(name)
            if array.GetDataType().GetClass() == gdal.GEDTC_STRING:
                self._values[name] = [str(v) for v in array.Read()]
            else:
                self._values[name] = np.asarray(array.ReadAsArray())
        return self._values[name]

    # -- which arrays are rasters

    def _grid_mapping_names(self):
        names = {a.attrs.get("grid_mapping") for a in self.arrays.values()}
        return {n for n in names if isinstance(n, str)} | (_GRID_MAPPING_NAMES & set(self.arrays))

    def raster_arrays(self):
        """Numeric arrays whose last two dimensions are y and x (not coordinates, not grid mappings)."""
        skip = self._grid_mapping_names()
        found = []
        for array in self.arrays.values():
            if (not array.numeric or len(array.dims) < 2 or array.name in skip or array.name in array.dims
                    or not self._spatial(array.dims[-2], _Y_NAMES) or not self._spatial(array.dims[-1], _X_NAMES)):
                continue
            found.append(array)
        return found

    def _spatial(self, dim, names):
        return dim.lower() in names

    def describe_arrays(self):
        return ", ".join(f"{a.name} ({', '.join(a.dims)})" for a in self.arrays.values()) or "none"

    # -- extra (non-spatial) dimensions

    def dim_role(self, dim):
        """'time', 'band' or 'other' for a non-spatial dimension."""
        units = self.time_units(dim)
        coordinate = self.arrays.get(dim)
        if dim.lower() in _TIME_NAMES or " since " in units.lower():
            return "time"
        if dim.lower() in _BAND_NAMES or (coordinate is not None and not coordinate.numeric):
            return "band"
        return "other"

    def time_units(self, dim):
        coordinate = self.arrays.get(dim)
        if coordinate is None:
            return ""
        return str(coordinate.attrs.get("units") or coordinate.unit or "")

    def coordinate(self, dim, size):
        """The coordinate values of a dimension, or its indices 0..size-1 when it has none."""
        if dim in self.arrays and len(self.arrays[dim].dims) == 1:
            return self.values(dim)
        return list(range(size))

    def classic_slice(self, array, indices):
        """(rasterio path, 1-based band index) of the 2-D slice of `array` at the extra-dimension `indices`."""
        if self.driver == "Zarr":
            suffix = "".join(f":{i}" for i in indices)
            return f'ZARR:"{self.path}":/{array.name}{suffix}', 1
        index = 0
        for i, size in zip(indices, array.sizes[:-2]):
            index = index * size + i  # GDAL's netCDF driver: last extra dimension varies fastest
        return f'NETCDF:"{self.path}":{array.name}', index + 1

    # -- georeferencing GDAL did not find

    def crs(self, array):
        """The CRS from a CF grid mapping / rioxarray spatial_ref variable, else a `crs` attribute; or None."""
        mapping = array.attrs.get("grid_mapping")
        candidates = [mapping] if isinstance(mapping, str) else []
        candidates += [n for n in ("spatial_ref",) if n in self.arrays and n not in candidates]
        for name in candidates:
            attrs = self.arrays[name].attrs if name in self.arrays else {}
            for key in ("crs_wkt", "spatial_ref", "esri_pe_string", "epsg_code", "EPSG", "proj4", "proj4text"):
                crs = _crs_from(attrs.get(key))
                if crs is not None:
                    return crs, f"the grid mapping variable '{name}' ({key})"
        for where, attrs in ((f"the attribute of {array.name}", array.attrs), ("the global attribute", self.global_attrs)):
            for key in ("crs", "crs_wkt", "spatial_ref", "epsg", "EPSG", "proj4"):
                crs = _crs_from(attrs.get(key))
                if crs is not None:
                    return crs, f"{where} '{key}'"
        return None, None

    def transform(self, array):
        """The affine transform from the x/y coordinate variables (pixel centres, regular spacing)."""
        y_dim, x_dim = array.dims[-2], array.dims[-1]
        if x_dim not in self.arrays or y_dim not in self.arrays:
            return None
        x0, dx = self._regular(x_dim, array)
        y0, dy = self._regular(y_dim, array)
        return Affine(dx, 0.0, x0 - dx / 2.0, 0.0, dy, y0 - dy / 2.0)

    def check_regular(self, array):
        """Refuse x/y coordinates that are not evenly spaced (no affine grid describes them)."""
        for dim in array.dims[-2:]:
            if dim in self.arrays and len(self.arrays[dim].dims) == 1:
                self._regular(dim, array)

    def _regular(self, dim, array):
        values = np.asarray(self.values(dim), dtype="float64")
        if values.size < 2:
            raise CameoInputError(
                f"'{self.label}' variable {array.name} has a single {dim} coordinate: the pixel size cannot be "
                "told. Give a cube of at least 2 x 2 pixels.")
        steps = np.diff(values)
        step = float(np.median(steps))
        if step == 0 or np.max(np.abs(steps - step)) > _REGULAR_TOLERANCE * abs(step):
            raise CameoInputError(
                f"'{self.label}' has irregular {dim} coordinates (spacing from {steps.min():.6g} to "
                f"{steps.max():.6g}): CAMEO needs a regular grid. Resample the cube onto a regular grid first "
                "(e.g. rioxarray's reproject or gdalwarp), or export it with a fixed resolution.")
        return float(values[0]), step


def _crs_from(value):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    text = str(value).strip()
    if re.fullmatch(r"\d{4,6}", text):
        text = f"EPSG:{text}"
    if not text:
        return None
    try:
        return CRS.from_user_input(text)
    except Exception:  # noqa: BLE001 - rasterio raises CRSError and others for text that is no CRS
        return None
