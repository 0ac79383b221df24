"""Catalogue the bands of a data cube (NetCDF or Zarr read through `cube.Cube`).

Used for every Zarr store and for NetCDF files that GDAL's classic view cannot describe
alone: a band dimension (`band_data(time, band, y, x)` with the band names in a `band`
coordinate) or a CRS that GDAL does not find. Other NetCDF files keep the classic path
of `sources.build_catalog`.
"""

import itertools
import os

import rasterio
from rasterio.crs import CRS

from ..errors import CameoInputError
from .sources import BandRef, Grid, date_from_tags, normalise_band, parse_cf_time, parse_date, undated_error


def needs_cube_reading(cube):
    """Zarr always; NetCDF when a raster has a band dimension or GDAL's classic view lacks its georeferencing.

    Uneven x/y coordinates are refused here for every NetCDF file, whichever path reads it.
    """
    if cube.driver == "Zarr":
        return True
    for array in cube.raster_arrays():
        cube.check_regular(array)  # GDAL's netCDF driver averages uneven spacing into a wrong transform
        if any(cube.dim_role(dim) != "time" for dim in array.dims[:-2]):
            return True
        path, _ = cube.classic_slice(array, [0] * (len(array.dims) - 2))
        with rasterio.open(path) as dataset:
            if dataset.crs is None or dataset.transform.is_identity:
                return True
    return False


def add_cube(catalog, cube, wanted):
    arrays = cube.raster_arrays()
    if not arrays:
        raise CameoInputError(
            f"'{cube.label}' holds no raster: none of its arrays has y and x dimensions (arrays: "
            f"{cube.describe_arrays()}). Give a {cube.driver} cube of Sentinel-2 or Sentinel-1 bands with "
            "dimensions (time, band, y, x), (time, y, x) or (y, x).")
    for array in arrays:
        _add_array(catalog, cube, array, wanted)


def _roles(cube, array):
    """{'time': axis, 'band': axis} of the extra dimensions; anything else is refused."""
    roles = {}
    for axis, dim in enumerate(array.dims[:-2]):
        role = cube.dim_role(dim)
        if role == "other" or role in roles:
            raise CameoInputError(
                f"'{cube.label}' variable {array.name} has the dimension '{dim}', which is neither its time nor "
                f"its band dimension (dimensions: {', '.join(array.dims)}). Give a cube with dimensions "
                "(time, band, y, x), (time, y, x) or (y, x); select one value of the others first.")
        roles[role] = axis
    return roles


def _band_names(catalog, cube, array, roles):
    """Normalised names per index of the band dimension (or [name] for a one-band variable)."""
    if "band" not in roles:
        name = normalise_band(array.name) or normalise_band(array.attrs.get("long_name"))
        catalog.names_found.append(name or array.name)
        return [name]
    axis = roles["band"]
    values = [str(v) for v in cube.coordinate(array.dims[axis], array.sizes[axis])]
    names = [normalise_band(v) for v in values]
    catalog.names_found.extend(n or v for n, v in zip(names, values))
    if not any(names) and catalog.role != "mask":
        raise CameoInputError(
            f"'{cube.label}' variable {array.name}: its band coordinate '{array.dims[axis]}' holds "
            f"{', '.join(values[:12])}{' ...' if len(values) > 12 else ''}, which names no Sentinel-2 or Sentinel-1 "
            "band. Name the bands in that coordinate (B02, B2 or 'B02 (490 nm)' ... B12, B8A, SCL; VV, VH), "
            "or give one variable per band.")
    return names


def _stamps(cube, array, roles):
    """Acquisition times per index of the time dimension ([None] without one)."""
    if "time" not in roles:
        return [None]
    axis = roles["time"]
    dim = array.dims[axis]
    units = cube.time_units(dim)
    stamps = []
    for value in cube.coordinate(dim, array.sizes[axis]):
        stamp = parse_cf_time(value, units) if units else None
        if stamp is None:
            date = parse_date(value)
            if date is None:
                raise CameoInputError(
                    f"'{cube.label}': the time coordinate '{dim}' value {value!r} (units '{units}') is not a "
                    "date. Give CF time units ('days since 2018-01-01') or ISO dates in the time coordinate.")
            stamp = date
        stamps.append(stamp)
    return stamps


def _grid(cube, array, dataset):
    """GDAL's own georeferencing, else the cube's grid mapping / crs attribute and x/y coordinates."""
    cube.check_regular(array)
    crs = CRS.from_user_input(dataset.crs) if dataset.crs is not None else None
    crs_source, transform_source = "GDAL", "GDAL"
    if crs is None:
        crs, crs_source = cube.crs(array)
    transform = None if dataset.transform.is_identity else dataset.transform
    if transform is None:
        transform, transform_source = cube.transform(array), "the x/y coordinate variables"
    if crs is None or transform is None:
        missing = "CRS" if crs is None else "x/y coordinates"
        raise CameoInputError(
            f"'{cube.label}' variable {array.name} has no {missing}: GDAL finds none, and the cube has no CF "
            "grid_mapping or spatial_ref variable, no crs attribute (global or on the variable)"
            f"{' and no x/y coordinate variables' if transform is None else ''}. Add the CRS (e.g. the global "
            "attribute crs = 'EPSG:32631', or rioxarray's .rio.write_crs) and x/y coordinates.")
    return (Grid(crs, transform, dataset.width, dataset.height),
            f"CRS from {crs_source}, transform from {transform_source}")


def _encoding(array, dataset):
    """(scale, offset, nodata): GDAL's, else the CF attributes scale_factor, add_offset, _FillValue."""
    scale = dataset.scales[0] if dataset.scales else None
    offset = dataset.offsets[0] if dataset.offsets else None
    nodata = dataset.nodatavals[0]
    if scale in (None, 1.0) and offset in (None, 0.0):
        scale = array.attrs.get("scale_factor", 1.0)
        offset = array.attrs.get("add_offset", 0.0)
    if nodata is None:
        nodata = array.attrs.get("_FillValue", array.attrs.get("missing_value"))
    scale, offset = float(_first(scale, 1.0)), float(_first(offset, 0.0))
    nodata = _first(nodata, None)
    return scale, offset, (float(nodata) if nodata is not None else None)


def _first(value, default):
    if value is None:
        return default
    if isinstance(value, (list, tuple)):
        return value[0] if value else default
    return value


def _add_array(catalog, cube, array, wanted):
    roles = _roles(cube, array)
    names = _band_names(catalog, cube, array, roles)
    if catalog.role == "mask":
        names = ["MASK"] * len(names)
    if not any(n and (wanted is None or n in wanted) for n in names):
        return  # angles, elevation, bands the models do not use
    stamps = _stamps(cube, array, roles)
    first, _ = cube.classic_slice(array, [0] * len(roles))
    with rasterio.open(first) as dataset:
        grid, source = _grid(cube, array, dataset)
        tags = dataset.tags()
        scale, offset, nodata = _encoding(array, dataset)
        dtype = dataset.dtypes[0]
    catalog.georeferencing.setdefault(cube.label, source)
    fallback_date = date_from_tags(tags) or parse_date(os.path.basename(cube.label))
    band_axis, time_axis = roles.get("band"), roles.get("time")
    seen = {}
    for indices in itertools.product(*(range(size) for size in array.sizes[:-2])):
        name = names[indices[band_axis]] if band_axis is not None else names[0]
        if not name or (wanted is not None and name not in wanted):
            continue
        stamp = stamps[indices[time_axis]] if time_axis is not None else None
        date = (stamp.date() if hasattr(stamp, "date") else stamp) if stamp is not None else fallback_date
        if date is None and catalog.role != "mask":
            raise undated_error(cube.label)
        path, index = cube.classic_slice(array, indices)
        ordinal = seen.get((name, date), 0)
        seen[(name, date)] = ordinal + 1
        catalog.add(BandRef(
            path=path, index=index, band=name, date=date, label=cube.label, grid=grid, dtype=dtype,
            nodata=nodata, scale=1.0 if scale is None else float(scale),
            offset=0.0 if offset is None else float(offset), tags=tags, container=cube.label,
            stamp=stamp if hasattr(stamp, "hour") else None, ordinal=ordinal,
        ))
