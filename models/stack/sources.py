"""Find the bands and dates in whatever the user downloaded.

Accepts, for each input path: a raster file in any GDAL format (one date, bands named
by description, band tags or file name, or an explicit band order); a NetCDF / openEO /
Earth Engine cube with a time dimension (each variable one band, each time step one
GDAL band); a container with subdatasets (NetCDF, HDF, Sentinel-2 SAFE folder or zip
through GDAL's SENTINEL2 driver). The result is a `Catalog` of `BandRef`s: one per
(date, band) with everything needed to read it (path, band index, grid, scaling).
"""

import datetime as _dt
import os
import re
import warnings
from dataclasses import dataclass, field

import rasterio
from rasterio.crs import CRS

from ..errors import CameoInputError, first_line
from .acquisitions import finest_of_products, split_acquisitions
from .cube import Cube, is_zarr

# GDAL's netCDF driver ignores x/y coordinate variables that lack CF attributes (as in
# the Earth Engine chips) and then reads the rows bottom-up with no georeferencing.
# This option makes it use them: correct transform and north-up rows.
GDAL_ENV = {
    "GDAL_NETCDF_IGNORE_XY_AXIS_NAME_CHECKS": "YES",
    "GDAL_PAM_ENABLED": "NO",
}

_BAND_RE = re.compile(r"(?<![A-Z0-9])B0?(\d{1,2}A?)(?![A-Z0-9])")
_SCL_RE = re.compile(r"(?<![A-Z0-9])(SCL|SCENE_?CLASSIFICATION)(?![A-Z0-9])")
_POL_RE = re.compile(r"(?<![A-Z0-9])(VV|VH)(?![A-Z0-9])")
_DATE_RE = re.compile(r"(?<!\d)(\d{4})([-_]?)(\d{2})\2(\d{2})(?!\d)")
_CF_TIME_RE = re.compile(
    r"^\s*(\w+)\s+since\s+(\d{1,4})-(\d{1,2})-(\d{1,2})"
    r"(?:[ T](\d{1,2}):(\d{1,2})(?::(\d{1,2})(?:\.\d*)?)?)?", re.IGNORECASE)
_CF_UNITS = {"nanoseconds": 1e-9, "microseconds": 1e-6, "milliseconds": 1e-3, "second": 1.0, "seconds": 1.0, "sec": 1.0, "s": 1.0, "minute": 60.0, "minutes": 60.0,
             "min": 60.0, "hour": 3600.0, "hours": 3600.0, "h": 3600.0, "day": 86400.0, "days": 86400.0,
             "d": 86400.0}
_DATE_TAGS = ("DATE", "ACQUISITION_DATE", "SENSING_DATE", "SENSING_TIME", "DATATAKE_1_DATATAKE_SENSING_START",
              "PRODUCT_START_TIME", "START_TIME", "START_DATE_TIME", "ACQUISITIONSTARTTIME", "TIME", "DATETIME",
              "SYSTEM:TIME_START", "SYSTEM_TIME_START")
_SKIP_SUBDATASETS = re.compile(r"(:TCI:|:PREVIEW|TCI$|:QUICKLOOK)", re.IGNORECASE)
_NON_BAND_VARIABLES = {"X", "Y", "LAT", "LON", "LATITUDE", "LONGITUDE", "TIME", "T", "TIMESTAMP",
                       "SPATIAL_REF", "CRS", "BAND"}


def normalise_band(text):
    """'B2', 'B02 (490 nm)', 'S2-L2A-B02', 'B8A' -> 'B02' / 'B8A'; 'SCL'; 'VV'/'VH'; else None."""
    if not text:
        return None
    upper = str(text).upper()
    found = set()
    for match in _BAND_RE.finditer(upper):
        code = match.group(1)
        number = int(code.rstrip("A"))
        if code.endswith("A"):
            if number == 8:
                found.add("B8A")
        elif 1 <= number <= 12:
            found.add(f"B{number:02d}")
    if _SCL_RE.search(upper):
        found.add("SCL")
    for match in _POL_RE.finditer(upper):
        found.add(match.group(1))
    if len(found) == 1:
        return found.pop()
    return None


def parse_date(text):
    """The first calendar date (YYYYMMDD, YYYY-MM-DD, YYYY_MM_DD, SAFE-style) in `text`, or None."""
    if not text:
        return None
    for match in _DATE_RE.finditer(str(text)):
        year, month, day = int(match.group(1)), int(match.group(3)), int(match.group(4))
        if 1970 <= year <= 2100:
            try:
                return _dt.date(year, month, day)
            except ValueError:
                continue
    return None


def _date_from_tag_value(value):
    value = str(value).strip()
    if re.fullmatch(r"\d{12,14}", value):  # Earth Engine system:time_start, ms since epoch
        return _dt.datetime.fromtimestamp(int(value) / 1000.0, _dt.timezone.utc).date()
    return parse_date(value)


def parse_cf_time(value, units):
    """A CF time coordinate value ('<unit> since <datetime>') as a UTC datetime, or None."""
    match = _CF_TIME_RE.match(units or "")
    if not match:
        return None
    seconds_per_unit = _CF_UNITS.get(match.group(1).lower())
    if seconds_per_unit is None:
        return None
    base = _dt.datetime(int(match.group(2)), int(match.group(3)), int(match.group(4)),
                        int(match.group(5) or 0), int(match.group(6) or 0), int(match.group(7) or 0))
    try:
        return base + _dt.timedelta(seconds=float(value) * seconds_per_unit)
    except (OverflowError, ValueError):
        return None


@dataclass
class Grid:
    """A raster grid: CRS, affine transform and size."""
    crs: object
    transform: object
    width: int
    height: int

    @property
    def bounds(self):
        t = self.transform
        xs = (t.c, t.c + t.a * self.width)
        ys = (t.f, t.f + t.e * self.height)
        return min(xs), min(ys), max(xs), max(ys)

    @property
    def resolution(self):
        return abs(self.transform.a), abs(self.transform.e)


@dataclass
class BandRef:
    """One band of one date, and how to read it."""
    path: str          # what rasterio opens (file or subdataset name)
    index: int         # 1-based band index in that dataset
    band: str          # normalised name (B02 ... B12, B8A, SCL, VV, VH) or the raw name
    date: object       # datetime.date, or None (an undated mask)
    label: str         # the file the user gave (for messages)
    grid: Grid
    dtype: str
    nodata: object
    scale: float
    offset: float
    tags: dict = field(default_factory=dict)  # dataset tags (baseline, harmonisation, units)
    container: str = ""  # the file a subdataset belongs to
    stamp: object = None  # full acquisition time (datetime) when a time coordinate gives one
    ordinal: int = 0     # how many earlier time steps of the same source share this date

    @property
    def fill_max(self):
        """65535 in uint16 Sentinel-2 bands is no data even when undeclared (openEO's fill; L2A: saturated)."""
        if self.dtype == "uint16" and self.band not in ("VV", "VH", "MASK", "SCL"):
            return 65535
        return None

    @property
    def resolution(self):
        return self.grid.resolution[0]


class Catalog:
    """All bands of one input role (S2, S1 or mask), keyed by date and band name."""

    def __init__(self, role):
        self.role = role
        self.refs = []
        self.unnamed = {}  # label -> number of bands with no recognisable name
        self.names_found = []  # raw names seen, for messages
        self.georeferencing = {}  # label -> where a cube's georeferencing came from (for the log)

    def add(self, ref):
        self.refs.append(ref)

    @property
    def labels(self):
        return sorted({r.label for r in self.refs})

    def bands(self):
        return sorted({r.band for r in self.refs})

    def dates(self):
        return sorted({r.date for r in self.refs if r.date is not None})

    def acquisitions(self, wanted_bands):
        """{date: [{band: BandRef}, ...]}: one dict per acquisition of that day (several are merged)."""
        refs_by_date = {}
        for ref in self.refs:
            if ref.band in wanted_bands:
                refs_by_date.setdefault(ref.date, []).append(ref)
        return {date: split_acquisitions(self.role, date, finest_of_products(refs))
                for date, refs in refs_by_date.items()}

    def by_date(self, wanted_bands):
        """{date: {band: BandRef}} for the wanted bands; duplicates are errors."""
        table = {}
        for ref in self.refs:
            if ref.band not in wanted_bands:
                continue
            slot = table.setdefault(ref.date, {})
            other = slot.get(ref.band)
            if other is None:
                slot[ref.band] = ref
            elif ref.container and ref.container == other.container and ref.resolution != other.resolution:
                # One product offering a band at two resolutions (SAFE): keep the finest.
                if ref.resolution < other.resolution:
                    slot[ref.band] = ref
            else:
                where = (f"both in '{ref.label}'" if ref.label == other.label
                         else f"in '{other.label}' and in '{ref.label}'")
                raise CameoInputError(
                    f"Duplicate {self.role} date: {ref.date} appears twice for band {ref.band} ({where}). "
                    "Give each acquisition date once: remove one of them, or mosaic same-day tiles "
                    "into one raster first (e.g. with gdalbuildvrt)."
                )
        return table


def _tags_upper(tags):
    return {str(k).upper(): v for k, v in tags.items()}


def date_from_tags(tags):
    upper = _tags_upper(tags)
    for key in _DATE_TAGS:
        if key in upper:
            date = _date_from_tag_value(upper[key])
            if date is not None:
                return date
    return None


def _time_units(dataset_tags, dim):
    for key in (f"{dim}#units", f"{dim}#UNITS"):
        if key in dataset_tags:
            return dataset_tags[key]
    return None


def _open(path, label):
    try:
        return rasterio.open(path)
    except Exception as error:  # noqa: BLE001 - rasterio raises several types here
        message = first_line(error)
        raise CameoInputError(
            f"'{label}' is not a raster that GDAL can read ({message}). "
            "Give GeoTIFF, JPEG2000, NetCDF or other GDAL raster files, or Sentinel-2 SAFE folders/zips."
        ) from error


def _resolve_path(path):
    """Absolute path; a SAFE folder becomes its L2A metadata file (GDAL's SENTINEL2 driver)."""
    path = str(path)
    if re.match(r"^[A-Za-z0-9_]+:", path) and not os.path.exists(path):
        return path  # already a GDAL connection / subdataset string
    path = os.path.abspath(path)
    if is_zarr(path):
        return path
    if os.path.isdir(path):
        for name in ("MTD_MSIL2A.xml", "MTD_MSIL1C.xml"):
            candidate = os.path.join(path, name)
            if os.path.exists(candidate):
                return candidate
        raise CameoInputError(
            f"'{path}' is a folder, not a raster. Give the raster files inside it, or a Sentinel-2 .SAFE folder."
        )
    if not os.path.exists(path):
        raise CameoInputError(f"Input file '{path}' does not exist. Check the path.")
    return path


def _label_of(path):
    match = re.match(r'^[A-Za-z0-9_]+:"?([^":]+(?::\\[^":]+)?)"?(?::.*)?$', path)
    if match and os.path.exists(match.group(1)):
        return match.group(1)
    return path


def _is_placeholder(dataset):
    """The container view of a multi-variable file (no CRS, no transform): not a band source."""
    return bool(dataset.subdatasets) and (dataset.crs is None or dataset.transform.is_identity)


def build_catalog(paths, role, band_orders=None, wanted=None):
    """Read the metadata of all inputs of one role into a Catalog (no pixel data is read).

    `band_orders`: optional list of band-name lists; a file whose band count equals the
    length of one of them (and whose bands carry no names) takes those names in order.
    `wanted`: band names of interest (others are recorded but never read).
    """
    from .cube_bands import add_cube, needs_cube_reading  # imports this module: not at the top

    catalog = Catalog(role)
    band_orders = [list(o) for o in (band_orders or []) if o]
    with rasterio.Env(**GDAL_ENV), warnings.catch_warnings():
        # Containers (NetCDF with several variables) open without georeferencing: expected.
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        for raw in paths:
            path = _resolve_path(raw)
            label = _label_of(path)
            dataset = _open(path, label)
            with dataset:
                driver = dataset.driver
                if _is_placeholder(dataset) or (dataset.count == 0 and dataset.subdatasets):
                    subdatasets = [s for s in dataset.subdatasets if not _SKIP_SUBDATASETS.search(s)]
                    container = label
                else:
                    subdatasets = None
            if driver in ("netCDF", "Zarr"):
                cube = Cube(path, label)
                if needs_cube_reading(cube):
                    add_cube(catalog, cube, wanted)
                    continue
            if subdatasets is None:
                _add_dataset(catalog, path, label, "", band_orders, wanted)
            else:
                for sub in subdatasets:
                    variable = sub.rsplit(":", 1)[-1].strip('"')
                    if variable.upper() in _NON_BAND_VARIABLES:
                        continue
                    _add_dataset(catalog, sub, label, container, band_orders, wanted)
    return catalog


def _band_name(dataset, i, path, label, order, file_band):
    """(normalised name or None, raw name, has a variable or description) of band i."""
    band_tags = dataset.tags(i)
    description = dataset.descriptions[i - 1] or ""
    name = None
    variable = band_tags.get("NETCDF_VARNAME")
    for candidate in (variable, description, band_tags.get("BANDNAME"), band_tags.get("BAND"),
                      band_tags.get("band_name"), band_tags.get("long_name")):
        name = normalise_band(candidate)
        if name:
            break
    if order is not None and not (variable and name):
        name = order[i - 1].strip().upper()
        name = normalise_band(name) or name
    if name is None and dataset.count == 1:
        name = normalise_band(os.path.basename(path.rsplit(":", 1)[-1])) or file_band
    return name, variable or description or f"band {i}", bool(variable or description)


def _band_time(dataset, i, tags):
    """The acquisition time of band i from its CF time dimension (datetime), or None."""
    for key, value in dataset.tags(i).items():
        if key.startswith("NETCDF_DIM_") and key != "NETCDF_DIM_EXTRA":
            units = _time_units(tags, key[len("NETCDF_DIM_"):])
            if units:
                stamp = parse_cf_time(value, units)
                if stamp is not None:
                    return stamp
    return None


def _add_dataset(catalog, path, label, container, band_orders, wanted):
    dataset = _open(path, label)
    with dataset:
        file_band = normalise_band(os.path.splitext(os.path.basename(label))[0])
        order = next((o for o in band_orders if len(o) == dataset.count), None)
        names = [_band_name(dataset, i, path, label, order, file_band) for i in range(1, dataset.count + 1)]
        if dataset.crs is None or dataset.transform.is_identity:
            if container and catalog.role != "mask" and not any(name for name, _, _ in names):
                # A variable of a container that is no band (a product id, angles): not a source.
                catalog.names_found.extend(raw for _, raw, _ in names)
                return
            raise CameoInputError(
                f"'{path}' has no georeferencing (CRS and geotransform). "
                "Give georeferenced rasters (assign the CRS and extent, e.g. with gdal_translate -a_srs -a_ullr)."
            )
        tags = dataset.tags()
        grid = Grid(CRS.from_user_input(dataset.crs), dataset.transform, dataset.width, dataset.height)
        file_date = parse_date(os.path.basename(label))
        dataset_date = date_from_tags(tags)
        seen = {}
        for i, (name, raw_name, named) in enumerate(names, start=1):
            if catalog.role == "mask":
                name = "MASK"
            catalog.names_found.append(name or raw_name)
            if name is None:
                if not named:
                    catalog.unnamed[label] = catalog.unnamed.get(label, 0) + 1
                continue
            if wanted is not None and name not in wanted:
                continue
            stamp = _band_time(dataset, i, tags)
            date = stamp.date() if stamp is not None else None
            if date is None:
                description = dataset.descriptions[i - 1] or ""
                date = (parse_date(description) or date_from_tags(dataset.tags(i)) or dataset_date
                        or file_date)
            if date is None and catalog.role != "mask":
                raise undated_error(label, i if dataset.count > 1 else None)
            ordinal = seen.get((name, date), 0)
            seen[(name, date)] = ordinal + 1
            scale = dataset.scales[i - 1] if dataset.scales else 1.0
            offset = dataset.offsets[i - 1] if dataset.offsets else 0.0
            catalog.add(BandRef(
                path=path, index=i, band=name, date=date, label=label, grid=grid,
                dtype=dataset.dtypes[i - 1], nodata=dataset.nodatavals[i - 1],
                scale=1.0 if scale is None else float(scale), offset=0.0 if offset is None else float(offset),
                tags=tags, container=container, stamp=stamp, ordinal=ordinal,
            ))


def undated_error(label, band=None):
    return CameoInputError(
        f"Cannot tell the acquisition date of '{label}'"
        + (f" band {band}" if band is not None else "")
        + ": there is no time dimension, no date in its metadata (DATE, ACQUISITION_DATE, "
        "PRODUCT_START_TIME...) and no date in its file name. Rename the file to contain the "
        "date as YYYYMMDD or YYYY-MM-DD (e.g. S2_20180804.tif), or set a DATE=YYYY-MM-DD tag."
    )
