"""Helpers (no tests): data cubes in the layouts other tools write, made from the real chips.

- `write_band_cube_netcdf`: one 4-D variable `band_data(time, band, y, x)` with the band
  names in a string `band` coordinate, x/y coordinate variables, the CRS only as a
  global attribute `crs = "EPSG:32631"` and a string variable `productid(time)` - what
  `DataArray.to_netcdf` of a stackstac / odc-stac / rioxarray cube gives. Written with
  GDAL's multidimensional netCDF writer (no xarray needed).
- `write_band_cube_zarr`: the same as an xarray-style Zarr v2 store (`_ARRAY_DIMENSIONS`,
  `<U` band names, zlib chunks of one 2-D slice each, a rioxarray `spatial_ref` grid-mapping variable with
  `crs_wkt`), written file by file with numpy and json, as `DataArray.to_zarr` lays it out.

The values are the chip's uint16 DNs as stored (fill value 0), so a stack prepared from a
cube must equal, bit for bit, the stack prepared from the original files.
"""

import json
import os
import zlib

import numpy as np
from osgeo import gdal
from rasterio.crs import CRS

from test_stack_helpers import coordinate, raw

gdal.UseExceptions()


def chip_cube(path, bands):
    """(values [T, B, H, W] uint16, time values, time units, x, y) of `bands` of a chip file."""
    values = np.stack([raw(path, band) for band in bands], axis=1)
    dataset = gdal.OpenEx(path, gdal.OF_MULTIDIM_RASTER)
    time = dataset.GetRootGroup().OpenMDArray("timestamp")
    units = time.GetUnit() or time.GetAttribute("units").Read()
    stamps = np.asarray(time.ReadAsArray())
    return values, stamps, units, coordinate(path, "x"), coordinate(path, "y")


def write_band_cube_netcdf(path, values, stamps, units, x, y, band_names, *, crs="EPSG:32631", fill=0,
                           x_name="x", y_name="y"):
    """A NetCDF-4 file with `band_data(time, band, y, x)` (see the module docstring)."""
    driver = gdal.GetDriverByName("netCDF")
    dataset = driver.CreateMultiDimensional(str(path), [], ["FORMAT=NC4"])
    root = dataset.GetRootGroup()
    t, b, h, w = values.shape
    dims = [root.CreateDimension("time", "TEMPORAL", None, t), root.CreateDimension("band", None, None, b),
            root.CreateDimension(y_name, None, None, h), root.CreateDimension(x_name, None, None, w)]
    _coordinate(root, "time", dims[0], np.asarray(stamps, "int64"), gdal.GDT_Int64, units=units)
    band = root.CreateMDArray("band", [dims[1]], gdal.ExtendedDataType.CreateString())
    band.Write(list(band_names))
    _coordinate(root, y_name, dims[2], np.asarray(y, "float64"), gdal.GDT_Float64)
    _coordinate(root, x_name, dims[3], np.asarray(x, "float64"), gdal.GDT_Float64)
    data = root.CreateMDArray("band_data", dims, gdal.ExtendedDataType.Create(_gdal_type(values.dtype)))
    if fill is not None:
        data.SetNoDataValueDouble(float(fill))
    data.Write(np.ascontiguousarray(values))
    product = root.CreateMDArray("productid", [dims[0]], gdal.ExtendedDataType.CreateString())
    product.Write([f"S2A_MSIL2A_{i:03d}" for i in range(t)])
    if crs is not None:
        _string_attribute(root, "crs", crs)
    dataset = None  # noqa: F841 - closing writes the file
    return str(path)


def _coordinate(root, name, dim, values, gdal_type, units=None):
    array = root.CreateMDArray(name, [dim], gdal.ExtendedDataType.Create(gdal_type))
    array.Write(values)
    if units:
        _string_attribute(array, "units", units)
    return array


def _string_attribute(holder, name, value):
    holder.CreateAttribute(name, [], gdal.ExtendedDataType.CreateString()).Write(value)


def _gdal_type(dtype):
    return {"uint16": gdal.GDT_UInt16, "uint8": gdal.GDT_Byte, "float32": gdal.GDT_Float32,
            "int16": gdal.GDT_Int16}[np.dtype(dtype).name]


def write_band_cube_zarr(path, values, stamps, units, x, y, band_names, *, crs="EPSG:32631", fill=0,
                         scale_factor=None, extra_arrays=None):
    """An xarray-style Zarr v2 store with `band_data(time, band, y, x)` (see the module docstring).

    `extra_arrays`: {name: (dims, numpy array)} written as well (e.g. only 1-D arrays for a
    store that holds no raster).
    """
    os.makedirs(path)
    _json(os.path.join(path, ".zgroup"), {"zarr_format": 2})
    _json(os.path.join(path, ".zattrs"), {})
    if values is not None:
        grid_attrs = {"grid_mapping": "spatial_ref"} if crs else {}
        if scale_factor is not None:
            grid_attrs["scale_factor"] = scale_factor
        _zarr_array(path, "band_data", ["time", "band", "y", "x"], np.ascontiguousarray(values), fill, grid_attrs)
        _zarr_array(path, "time", ["time"], np.asarray(stamps, "<i8"), None, {"units": units,
                                                                               "calendar": "proleptic_gregorian"})
        width = max(len(n) for n in band_names)
        _zarr_array(path, "band", ["band"], np.asarray(band_names, dtype=f"<U{width}"), None, {})
        _zarr_array(path, "x", ["x"], np.asarray(x, "<f8"), None, {})
        _zarr_array(path, "y", ["y"], np.asarray(y, "<f8"), None, {})
        if crs:
            wkt = CRS.from_user_input(crs).to_wkt()
            _zarr_array(path, "spatial_ref", [], np.asarray(0, "<i8"), None,
                        {"crs_wkt": wkt, "spatial_ref": wkt, "grid_mapping_name": "transverse_mercator"})
    for name, (dims, array) in (extra_arrays or {}).items():
        _zarr_array(path, name, dims, np.asarray(array), None, {})
    return str(path)


def _zarr_array(store, name, dims, array, fill, attrs):
    """One chunk per 2-D slice of a raster (as dask-backed xarray writes), one chunk for the others."""
    folder = os.path.join(store, name)
    os.makedirs(folder)
    dtype = array.dtype.str
    chunks = ([1] * (array.ndim - 2) + list(array.shape[-2:])) if array.ndim > 2 else list(array.shape)
    _json(os.path.join(folder, ".zarray"), {
        "chunks": chunks, "compressor": {"id": "zlib", "level": 1}, "dtype": dtype,
        "fill_value": None if fill is None else (int(fill) if array.dtype.kind in "iu" else float(fill)),
        "filters": None, "order": "C", "shape": list(array.shape), "zarr_format": 2})
    _json(os.path.join(folder, ".zattrs"), dict(attrs, _ARRAY_DIMENSIONS=list(dims)))
    for index in np.ndindex(*array.shape[:-2]) if array.ndim > 2 else [()]:
        chunk = ".".join(str(i) for i in index + (0,) * min(array.ndim, 2)) or "0"
        with open(os.path.join(folder, chunk), "wb") as handle:
            handle.write(zlib.compress(np.ascontiguousarray(array[index]).tobytes(), 1))


def _json(path, content):
    with open(path, "w") as handle:
        json.dump(content, handle)


def write_band_variables_netcdf(path, values, stamps, units, x, y, band_names, *, crs="EPSG:32631"):
    """One variable per band (time, y, x) with a CF grid-mapping variable that GDAL reads itself."""
    dataset = gdal.GetDriverByName("netCDF").CreateMultiDimensional(str(path), [], ["FORMAT=NC4"])
    root = dataset.GetRootGroup()
    t, _, h, w = values.shape
    dims = [root.CreateDimension("time", "TEMPORAL", None, t), root.CreateDimension("y", None, None, h),
            root.CreateDimension("x", None, None, w)]
    _coordinate(root, "time", dims[0], np.asarray(stamps, "int64"), gdal.GDT_Int64, units=units)
    _coordinate(root, "y", dims[1], np.asarray(y, "float64"), gdal.GDT_Float64)
    _coordinate(root, "x", dims[2], np.asarray(x, "float64"), gdal.GDT_Float64)
    mapping = root.CreateMDArray("spatial_ref", [], gdal.ExtendedDataType.Create(gdal.GDT_Int32))
    _string_attribute(mapping, "crs_wkt", CRS.from_user_input(crs).to_wkt())
    _string_attribute(mapping, "grid_mapping_name", "transverse_mercator")
    for b, name in enumerate(band_names):
        array = root.CreateMDArray(name, dims, gdal.ExtendedDataType.Create(_gdal_type(values.dtype)))
        array.SetNoDataValueDouble(0.0)
        array.Write(np.ascontiguousarray(values[:, b]))
        _string_attribute(array, "grid_mapping", "spatial_ref")
    dataset = None  # noqa: F841 - closing writes the file
    return str(path)
