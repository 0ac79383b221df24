"""Turn downloaded Sentinel-2 (and Sentinel-1) rasters into CAMEO time stacks.

`prepare_stack(...)` is what `cameo:preparestack` and `python -m models.stack` run:

1. catalogue the inputs (bands, dates, grids) without reading pixels;
2. define the 10 m target grid (Sentinel-2 grid, or the CRS/extent asked for);
3. pass 1: per date, the share of valid pixels in the extent from the mask
   (SCL classes or the user's mask); keep dates at or above MIN_VALID_FRACTION;
4. match every kept date to the nearest Sentinel-1 acquisition;
5. pass 2, block by block: read, scale, resample, mask and write both stacks.

Memory depends on `block_size` (and GDAL's bounded cache), not on the area.
"""

import csv
import datetime as _dt
import math
import os

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS
import rasterio.warp
from rasterio.warp import transform_bounds
from rasterio.windows import Window

from ..errors import CameoInputError
from ..progress import NullProgress, check_cancelled
from ..writeguard import WriteGuard
from ..staging import report_swept, sweep_abandoned
from .format import (GDAL_CACHE_BYTES, S1_BANDS, S2_BANDS, STAGED_FILES, StackWriter, format_gap, remove_quietly,
                     temporary_path)
from .defaults import (
    BASELINE_04_START,
    BASELINE_OFFSET_DN,
    DATES_FILE,
    DEFAULT_BLOCK_SIZE,
    DEFAULT_MAX_S1_GAP_DAYS,
    DEFAULT_MIN_VALID_FRACTION,
    DEFAULT_SCL_VALID,
    DEFAULT_SPECKLE_FILTER,
    DEFAULT_SPECKLE_SIZE,
    HARMONIZED_CHOICES,
    RESAMPLING_CHOICES,
    RESOLUTION,
    S1_FILE,
    S1_UNITS_CHOICES,
    S2_FILE,
    SPECKLE_FILTERS,
    SPECKLE_SIZES,
)
from .resample import DatasetPool, read_band, read_central_sample, read_onto
from .speckle import SpeckleFilter
from .acquisitions import empty_bands, merge_into, priority, substitute_b8a as take_b8a_from_b08
from .sources import GDAL_ENV, Grid, build_catalog



# ----------------------------------------------------------------------------- inputs

def _as_list(value):
    if value is None:
        return []
    if isinstance(value, (str, os.PathLike)):
        return [str(value)] if str(value) else []
    return [str(v) for v in value if str(v)]


def parse_band_orders(text):
    """'B02,B03,B04,B08;B05,B06,...' -> [['B02','B03','B04','B08'], ['B05',...]]."""
    if not text:
        return []
    if not isinstance(text, str):
        text = ";".join(",".join(o) if not isinstance(o, str) else o for o in text)
    orders = []
    for group in text.split(";"):
        names = [n.strip() for n in group.replace(" ", ",").split(",") if n.strip()]
        if names:
            orders.append(names)
    return orders


def parse_valid_values(text):
    if text is None or (isinstance(text, str) and not text.strip()):
        return None
    if isinstance(text, str):
        try:
            return tuple(int(v) for v in text.replace(";", ",").split(",") if v.strip())
        except ValueError as error:
            raise CameoInputError(
                f"Mask valid values '{text}' are not a list of integers. Write them comma-separated, e.g. 4,5,6,7,11."
            ) from error
    return tuple(int(v) for v in text)


def _check_choice(name, value, choices):
    if value not in choices:
        raise CameoInputError(f"{name} must be one of {', '.join(choices)}, not '{value}'.")


def _s2_scaling(ref, harmonized, pool):
    """(dn_offset, scale, extra_offset, rule) so that reflectance = (raw + dn_offset) * scale + extra_offset."""
    scale, extra = ref.scale, ref.offset
    reflectance_input = False
    if scale == 1.0 and extra == 0.0:
        if np.dtype(ref.dtype).kind == "f":
            sample = _central_sample(pool, ref)
            reflectance_input = sample.size > 0 and float(np.nanmedian(sample)) <= 2.0
        scale = 1.0 if reflectance_input else 1e-4
    if ref.offset != 0.0:
        return 0.0, scale, extra, "offset from the band's metadata"
    if harmonized == "yes":
        return 0.0, scale, extra, "harmonised (HARMONIZED=yes)"
    post = ref.date is not None and ref.date >= BASELINE_04_START
    dn_offset = BASELINE_OFFSET_DN if post else 0.0
    if harmonized == "no":
        return dn_offset, scale, extra, "by date (HARMONIZED=no)"
    # auto: metadata first, then the kind of input, then the date.
    for key, value in ref.tags.items():
        upper = key.upper()
        if "BOA_ADD_OFFSET" in upper:
            try:
                return float(value), scale, extra, f"metadata {key}"
            except ValueError:
                pass
    for key, value in ref.tags.items():
        if key.upper().endswith("PROCESSING_BASELINE"):
            try:
                baseline = float(value)
            except ValueError:
                continue
            return (BASELINE_OFFSET_DN if baseline >= 4.0 else 0.0), scale, extra, f"metadata {key}={value}"
    for key, value in ref.tags.items():
        if "HARMONIZED" in key.upper() or "HARMONIZED" in str(value).upper():
            return 0.0, scale, extra, "metadata says harmonised"
    if reflectance_input:
        return 0.0, scale, extra, "float reflectance input, taken as harmonised"
    return dn_offset, scale, extra, "by date"


def _central_sample(pool, ref, size=256):
    dataset = pool.get(ref.path)
    w, h = min(size, ref.grid.width), min(size, ref.grid.height)
    window = Window((ref.grid.width - w) // 2, (ref.grid.height - h) // 2, w, h)
    raw = read_band(dataset, ref, window).astype("float64")
    for nodata in (ref.nodata, ref.fill_max):
        if nodata is not None and not (isinstance(nodata, float) and math.isnan(nodata)):
            raw[raw == nodata] = np.nan
    raw = raw * ref.scale + ref.offset
    return raw[np.isfinite(raw)]


def _s1_units(ref, requested, pool):
    if requested in ("dB", "linear"):
        return requested
    for key, value in ref.tags.items():
        if key.lower().endswith("units") and isinstance(value, str):
            v = value.strip().lower()
            if v in ("db", "decibel", "decibels"):
                return "dB"
            if v in ("linear", "power", "intensity"):
                return "linear"
    sample = _central_sample(pool, ref)
    if sample.size == 0:
        return "dB"
    median = float(np.median(sample))
    if median < 0:
        return "dB"
    if sample.min() >= 0 and median <= 1.5:
        return "linear"
    raise CameoInputError(
        f"Cannot tell whether the Sentinel-1 values in '{ref.label}' are dB or linear power "
        f"(median {median:.3g}, no negative values). Set S1_UNITS to dB or linear."
    )


# ----------------------------------------------------------------------------- grid

def _utm_for(lon, lat):
    zone = int(math.floor((lon + 180.0) / 6.0)) % 60 + 1
    return CRS.from_epsg((32600 if lat >= 0 else 32700) + zone)


def _grid_bounds_in(grid, crs):
    if grid.crs == crs:
        return grid.bounds
    return transform_bounds(grid.crs, crs, *grid.bounds, densify_pts=21)


def _intersect(a, b):
    box = (max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3]))
    return box if box[0] < box[2] and box[1] < box[3] else None


def _fmt_bounds(b):
    return f"({b[0]:.6g}, {b[1]:.6g}) - ({b[2]:.6g}, {b[3]:.6g})"


def target_grid(s2_refs, extent=None, extent_crs=None, crs=None):
    """The 10 m output grid: S2's CRS (or `crs`), S2's footprint (or `extent`) snapped to S2's pixels."""
    reference = min(s2_refs, key=lambda r: r.resolution)
    if crs:
        try:
            dst_crs = CRS.from_user_input(crs)
        except Exception as error:  # noqa: BLE001
            raise CameoInputError(f"CRS '{crs}' is not a valid CRS. Give e.g. EPSG:32631.") from error
    else:
        dst_crs = reference.grid.crs
    if dst_crs.is_geographic:
        b = _grid_bounds_in(reference.grid, CRS.from_epsg(4326))
        utm = _utm_for((b[0] + b[2]) / 2, (b[1] + b[3]) / 2)
        if crs:
            raise CameoInputError(
                f"CRS {dst_crs.to_string()} is geographic (degrees); the stacks need a 10 m grid in metres. "
                f"Choose a projected CRS, e.g. the UTM zone of the data, {utm.to_string()}."
            )
        dst_crs = utm
    # Footprint: where all Sentinel-2 inputs overlap.
    grids = {}
    for ref in s2_refs:
        grids.setdefault((ref.label, ref.grid.transform, ref.grid.width, ref.grid.height, ref.grid.crs.to_string()), ref)
    footprint, first = None, None
    for ref in grids.values():
        bounds = _grid_bounds_in(ref.grid, dst_crs)
        if footprint is None:
            footprint, first = bounds, ref
            continue
        both = _intersect(footprint, bounds)
        if both is None:
            raise CameoInputError(
                f"The Sentinel-2 inputs do not overlap: '{first.label}' covers {_fmt_bounds(footprint)} and "
                f"'{ref.label}' covers {_fmt_bounds(bounds)} ({dst_crs.to_string()}). "
                "Give files of the same area (one tile or one chip)."
            )
        footprint = both
    area = footprint
    if extent is not None:
        xmin, ymin, xmax, ymax = [float(v) for v in extent]
        if not (xmax > xmin and ymax > ymin) or not all(math.isfinite(v) for v in (xmin, ymin, xmax, ymax)):
            raise CameoInputError(
                f"The processing extent ({xmin}, {ymin}) - ({xmax}, {ymax}) is empty. "
                "Give an extent with a positive width and height, or leave EXTENT empty for the whole Sentinel-2 area."
            )
        ext_crs = CRS.from_user_input(extent_crs) if extent_crs else dst_crs
        ext = (xmin, ymin, xmax, ymax)
        if ext_crs != dst_crs:
            ext = transform_bounds(ext_crs, dst_crs, *ext, densify_pts=21)
        area = _intersect(footprint, ext)
        if area is None:
            raise CameoInputError(
                f"The processing extent {_fmt_bounds(ext)} does not overlap the Sentinel-2 data, which covers "
                f"{_fmt_bounds(footprint)} ({dst_crs.to_string()}). Choose an extent inside the data, or leave EXTENT empty."
            )
    if dst_crs == reference.grid.crs:
        x0, y0 = reference.grid.transform.c, reference.grid.transform.f
    else:
        x0, y0 = 0.0, 0.0
    res, eps = RESOLUTION, 1e-6
    left = x0 + math.floor((area[0] - x0) / res + eps) * res
    right = x0 + math.ceil((area[2] - x0) / res - eps) * res
    top = y0 + math.ceil((area[3] - y0) / res - eps) * res
    bottom = y0 + math.floor((area[1] - y0) / res + eps) * res
    width, height = int(round((right - left) / res)), int(round((top - bottom) / res))
    if width <= 0 or height <= 0:
        raise CameoInputError("The processing extent is smaller than one 10 m pixel. Give a larger extent.")
    return Grid(dst_crs, Affine(res, 0.0, left, 0.0, -res, top), width, height)


def blocks(grid, size):
    for row in range(0, grid.height, size):
        for col in range(0, grid.width, size):
            yield Window(col, row, min(size, grid.width - col), min(size, grid.height - row))


# ----------------------------------------------------------------------------- matching

def match_s1_dates(s2_dates, s1_dates, max_gap_days):
    """For each S2 date, (index into s1_dates, gap in days) of the nearest S1 date, or (None, nan).

    Ties go to the earlier acquisition; gaps above `max_gap_days` count as no match.
    """
    result = []
    for date in s2_dates:
        best, best_gap = None, None
        for i, s1_date in enumerate(s1_dates):
            gap = abs((s1_date - date).days)
            if best_gap is None or gap < best_gap:
                best, best_gap = i, gap
        if best is None or best_gap > max_gap_days:
            result.append((None, float("nan")))
        else:
            result.append((best, float(best_gap)))
    return result


# ----------------------------------------------------------------------------- main

class _Masker:
    """Per-pixel validity of a date on a window: SCL classes, a user mask, or the data footprint."""

    def __init__(self, s2_table, mask_catalog, valid_values):
        self.s2_table = s2_table
        self.static = None
        self.by_date = {}
        if mask_catalog is not None:
            undated = [r for r in mask_catalog.refs if r.date is None]
            if undated and len(mask_catalog.refs) > 1:
                raise CameoInputError(
                    f"The mask input has {len(mask_catalog.refs)} bands but no dates for "
                    f"'{undated[0].label}'. Give one single-band mask for all dates, or one mask per date "
                    "with the date in its file name or metadata."
                )
            if undated:
                self.static = undated[0]
            else:
                for ref in mask_catalog.refs:
                    if ref.date in self.by_date:
                        raise CameoInputError(
                            f"Duplicate mask date: {ref.date} appears twice (in '{self.by_date[ref.date].label}' "
                            f"and '{ref.label}'). Give one mask per date."
                        )
                    self.by_date[ref.date] = ref
            self.kind = "user"
            self.values = valid_values
        elif any("SCL" in bands for acquisitions in s2_table.values() for bands in acquisitions):
            self.kind = "SCL"
            self.values = valid_values or DEFAULT_SCL_VALID
        else:
            self.kind = "none"
            self.values = None

    def check_dates(self, dates):
        if self.kind == "user" and self.static is None:
            missing = [d for d in dates if d not in self.by_date]
            if missing:
                raise CameoInputError(
                    f"No mask for Sentinel-2 date(s) {', '.join(str(d) for d in missing[:5])}"
                    f"{' ...' if len(missing) > 5 else ''}. Give a mask for every date, or one undated mask for all."
                )
        if self.kind == "SCL":
            missing = [d for d in dates if any("SCL" not in bands for bands in self.s2_table[d])]
            if missing:
                raise CameoInputError(
                    f"Sentinel-2 date(s) {', '.join(str(d) for d in missing[:5])} have no SCL band while others do. "
                    "Give the SCL layer for every date, or give a mask layer (S2_MASK)."
                )

    def describe(self):
        if self.kind == "SCL":
            return (f"SCL scene classification: valid classes {','.join(map(str, self.values))}, "
                    "others (and SCL no data) NaN; also NaN where any band has no data")
        if self.kind == "user":
            rule = (f"values {','.join(map(str, self.values))}" if self.values else "non-zero values")
            return f"user mask: {rule} valid, others and mask no data NaN; also NaN where any band has no data"
        return ("no cloud mask given (no SCL, no mask layer): valid where the values are finite (not NaN, "
                "infinite or no data); NaN where any band has no data")

    def valid(self, pool, date, bands, grid, transform, width, height):
        """Validity of the acquisition `bands` (a {band: BandRef} of `date`) on a window."""
        if self.kind == "none":
            data = read_onto(pool, bands[S2_BANDS[0]], grid.crs, transform, width, height, "nearest")
            return np.isfinite(data)
        ref = self.static if self.kind == "user" and self.static is not None else (
            self.by_date[date] if self.kind == "user" else bands["SCL"])
        data = read_onto(pool, ref, grid.crs, transform, width, height, "nearest")
        finite = np.isfinite(data)
        if self.values is None:
            return finite & (data != 0)
        return finite & np.isin(data, np.asarray(self.values, dtype="float32"))


def _scaling_rules(pool, s2_table, dates, harmonized, progress):
    """Scaling per (date, acquisition, band), decided once from metadata; the rules used go to the log."""
    scaling, boa_by_date, rules = {}, [], {}
    for date in dates:
        offsets = set()
        for k, bands in enumerate(s2_table[date]):
            for band in S2_BANDS:
                ref = bands[band]
                rule = scaling[(date, k, band)] = _s2_scaling(ref, harmonized, pool)
                _check_reflectance(ref, pool, *rule[:3])
                offsets.add(rule[0])
                rules.setdefault(_describe_scaling(ref, rule), []).append(date)
        boa_by_date.append(min(offsets))
    for text, used in rules.items():
        progress.pushInfo(f"Scaling of {len(set(used))} date(s): {text}.")
    return scaling, boa_by_date


def _describe_scaling(ref, rule):
    dn_offset, scale, extra, why = rule
    source = ("scale_factor/add_offset of the input" if (ref.scale, ref.offset) != (1.0, 0.0)
              else "detected: float reflectance" if scale == 1.0 else "detected: integer DN")
    return (f"reflectance = (value{dn_offset:+g}) x {scale:g}{extra:+g} ({source}; BOA offset: {why})"
            if extra else f"reflectance = (value{dn_offset:+g}) x {scale:g} ({source}; BOA offset: {why})")


def _valid_shares(pool, masker, s2_table, all_dates, grid, windows, s2_refs, progress, work):
    """Pass 1: (valid share per date, valid pixels per acquisition of each date, work done).

    A merged date's pixel is valid when any of its acquisitions is. The share is over the
    pixels inside every source raster; without a mask, over the pixels that ever have data.
    """
    counts = np.zeros(len(all_dates), dtype="int64")
    acquisition_counts = {date: [0] * len(s2_table[date]) for date in all_dates}
    inside_px, done = 0, 0
    source_grids = _distinct_grids(s2_refs)
    for window in windows:
        transform = rasterio.windows.transform(window, grid.transform)
        inside = _inside(source_grids, grid.crs, transform, window.width, window.height)
        ever = np.zeros_like(inside)
        for t, date in enumerate(all_dates):
            check_cancelled(progress)
            union = np.zeros_like(inside)
            for k, bands in enumerate(s2_table[date]):
                valid = masker.valid(pool, date, bands, grid, transform, window.width, window.height)
                acquisition_counts[date][k] += int(valid.sum())
                union |= valid
            counts[t] += int(union.sum())
            ever |= union
            done += 1
            progress.setProgress(100.0 * done / work)
        inside_px += int((ever & inside).sum() if masker.kind == "none" else inside.sum())
    return counts / float(max(inside_px, 1)), acquisition_counts, done


def _distinct_grids(refs):
    grids = {}
    for ref in refs:
        g = ref.grid
        grids.setdefault((tuple(g.transform)[:6], g.width, g.height, g.crs.to_string()), g)
    return list(grids.values())


def _inside(source_grids, crs, transform, width, height):
    """Pixels of a window whose centre lies inside every source raster (the data footprint)."""
    inside = np.ones((height, width), dtype=bool)
    cols = np.arange(width) + 0.5
    rows = np.arange(height) + 0.5
    xs = transform.c + transform.a * cols
    ys = transform.f + transform.e * rows
    for g in source_grids:
        if g.crs == crs:
            c = (xs - g.transform.c) / g.transform.a
            r = (ys - g.transform.f) / g.transform.e
            inside &= ((r >= 0) & (r < g.height))[:, None] & ((c >= 0) & (c < g.width))[None, :]
            continue
        gx, gy = np.meshgrid(xs, ys)
        tx, ty = rasterio.warp.transform(crs, g.crs, gx.ravel(), gy.ravel())
        c = (np.asarray(tx) - g.transform.c) / g.transform.a
        r = (np.asarray(ty) - g.transform.f) / g.transform.e
        inside &= ((c >= 0) & (c < g.width) & (r >= 0) & (r < g.height)).reshape(height, width)
    return inside


def _footprint_check(refs, grid, role):
    for ref in refs:
        if _intersect(_grid_bounds_in(ref.grid, grid.crs), grid.bounds) is not None:
            return
    label = refs[0].label if refs else "?"
    raise CameoInputError(
        f"The {role} input(s) (e.g. '{label}') do not overlap the Sentinel-2 processing area "
        f"{_fmt_bounds(grid.bounds)} ({grid.crs.to_string()}). Give {role} data of the same place."
    )


def _missing_band_error(catalog, band, role="Sentinel-2"):
    found = sorted(set(catalog.names_found))
    unnamed = ""
    if catalog.unnamed:
        label, count = next(iter(catalog.unnamed.items()))
        unnamed = (f" {count} band(s) of '{label}' have no recognisable name: set S2_BANDS "
                   "(e.g. B02,B03,B04,B08) or band descriptions.")
    swapped = ""
    if role == "Sentinel-2" and found and set(found) <= set(S1_BANDS):
        swapped = (" These are Sentinel-1 bands: give those files as the Sentinel-1 input (S1) and "
                   "Sentinel-2 L2A files as S2.")
    elif role == "Sentinel-1" and set(found) & set(S2_BANDS):
        swapped = (" These are Sentinel-2 bands: give those files as the Sentinel-2 input (S2) and "
                   "Sentinel-1 VV/VH files as S1.")
    substitute = ""
    if role == "Sentinel-2" and band == "B8A" and "B08" in found:
        substitute = (" Or set SUBSTITUTE_B8A (command line: --substitute-b8a) to take B8A from B08, which "
                      "changes the embeddings somewhat (see the README).")
    return CameoInputError(
        f"{role} band {band} is missing: no input provides it. Bands found: "
        f"{', '.join(found) if found else 'none'}.{unnamed} The models need "
        f"{' '.join(S2_BANDS if role == 'Sentinel-2' else S1_BANDS)}; add the file(s) with {band}.{swapped}{substitute}"
    )


def _check_band_orders(catalog, orders):
    """S2_BANDS given, but no order has as many names as an unnamed file has bands."""
    if not orders or not catalog.unnamed:
        return
    label, count = next(iter(catalog.unnamed.items()))
    if all(len(order) != count for order in orders):
        given = " or ".join(str(len(order)) for order in orders)
        raise CameoInputError(
            f"S2_BANDS names {given} band(s), but '{label}' has {count} bands without names. Give one name "
            f"per band in the file's order (e.g. B02,B03,B04,B05,B06,B07,B08,B8A,B11,B12,SCL for 11 bands).")


def _check_not_future(table, role):
    """Acquisition dates after today (UTC) come from a misread file name or tag."""
    today = _dt.datetime.now(_dt.timezone.utc).date()
    for date in sorted(d for d in table if d is not None and d > today):
        entry = table[date][0] if isinstance(table[date], list) else table[date]
        label = next(iter(entry.values())).label
        raise CameoInputError(
            f"{role} date {date} of '{label}' is in the future (today is {today}): it was read wrongly from "
            "the file name or metadata. Rename the file to contain the acquisition date as YYYYMMDD, or set "
            "a DATE=YYYY-MM-DD tag.")


def _check_reflectance(ref, pool, dn_offset, scale, extra):
    """Refuse values that cannot be surface reflectance after scaling (e.g. DNs all above 20000)."""
    sample = _central_sample(pool, ref)
    if sample.size == 0:
        return
    median = float(np.median((sample + dn_offset) * scale + extra))
    if median > 2.0:
        raise CameoInputError(
            f"Sentinel-2 band {ref.band} of '{ref.label}' ({ref.date}) is not surface reflectance: after "
            f"scaling its median is {median:.3g} (raw median {float(np.median(sample)):.6g}), but L2A "
            "reflectance lies between 0 and about 1.6 (DN 0-16000). Give Sentinel-2 L2A reflectance (DN, "
            "or floats 0-1); if the values carry a scale factor, set it as the band's scale metadata.")


def _s2_catalogue(s2_paths, s2_bands, substitute):
    """(catalog, {date: [{band: BandRef}, ...]}, dates whose B8A is B08) of the Sentinel-2 inputs."""
    orders = parse_band_orders(s2_bands)
    s2_cat = build_catalog(s2_paths, "Sentinel-2", orders, wanted=set(S2_BANDS) | {"SCL"})
    _check_band_orders(s2_cat, orders)
    s2_table = s2_cat.acquisitions(set(S2_BANDS) | {"SCL"})
    _check_not_future(s2_table, "Sentinel-2")
    substituted = take_b8a_from_b08(s2_table) if substitute else []
    present = {band for acquisitions in s2_table.values() for bands in acquisitions for band in bands}
    for band in S2_BANDS:
        if band not in present:
            raise _missing_band_error(s2_cat, band)
    return s2_cat, s2_table, substituted


def _check_complete_dates(s2_table, substitute):
    for date, acquisitions in sorted(s2_table.items()):
        for bands in acquisitions:
            missing = [b for b in S2_BANDS if b not in bands]
            if missing:
                hint = (" (or set SUBSTITUTE_B8A to take B8A from B08)"
                        if missing == ["B8A"] and not substitute else "")
                raise CameoInputError(
                    f"Sentinel-2 date {date} lacks band(s) {', '.join(missing)} (it has {', '.join(sorted(bands))}). "
                    f"Give all 10 bands for every date{hint}, or remove that date's files."
                )


def _report_inputs(progress, s2_cat, s2_table, substituted):
    """Log where cubes' georeferencing came from, the merged days and the B8A substitution."""
    for label, source in sorted(s2_cat.georeferencing.items()):
        progress.pushInfo(f"Georeferencing of '{label}': {source}.")
    merged = [(date, len(acq)) for date, acq in sorted(s2_table.items()) if len(acq) > 1]
    if merged:
        progress.pushInfo(
            f"Merged same-day acquisitions per pixel on {len(merged)} date(s): "
            + ", ".join(f"{date} ({count} acquisitions)" for date, count in merged)
            + "; a valid observation beats an invalid one, and where both are valid the acquisition with "
            "more valid pixels in the extent wins.")
    if substituted:
        progress.pushInfo(
            f"SUBSTITUTE_B8A: band B8A (865 nm, 20 m) is taken from B08 (842 nm, 10 m) on {len(substituted)} of "
            f"{len(s2_table)} date(s) ({substituted[0]}..{substituted[-1]}); the embeddings differ from those of "
            "real B8A (see the README).")


def prepare_stack(
    s2, output_folder, *, s2_bands=None, s2_mask=None, s1=None, extent=None, extent_crs=None, crs=None,
    min_valid_fraction=DEFAULT_MIN_VALID_FRACTION, max_s1_gap_days=DEFAULT_MAX_S1_GAP_DAYS,
    mask_valid_values=None, harmonized="auto", s1_units="auto", s1_smoothing=True,
    resampling="bilinear", block_size=DEFAULT_BLOCK_SIZE, substitute_b8a=False,
    s1_speckle_filter=DEFAULT_SPECKLE_FILTER, s1_speckle_size=DEFAULT_SPECKLE_SIZE, progress=None,
):
    """Prepare `s2_stack.tif` (and `s1_stack.tif`) plus `dates.csv` in `output_folder`.

    Returns a dict with keys S2_STACK, S1_STACK (None without S1), DATES and
    `dates`, `valid_fraction`, `s1_dates`, `s1_gap_days` for the kept dates.
    """
    progress = progress or NullProgress()
    s2_paths, s1_paths, mask_paths = _as_list(s2), _as_list(s1), _as_list(s2_mask)
    if not s2_paths:
        raise CameoInputError("No Sentinel-2 input given. Give one or more Sentinel-2 L2A files (S2).")
    if not output_folder:
        raise CameoInputError("No output folder given. Set OUTPUT_FOLDER.")
    _check_choice("HARMONIZED", harmonized, HARMONIZED_CHOICES)
    _check_choice("S1_UNITS", s1_units, S1_UNITS_CHOICES)
    _check_choice("RESAMPLING", resampling, RESAMPLING_CHOICES)
    _check_choice("S1_SPECKLE_FILTER", s1_speckle_filter, SPECKLE_FILTERS)
    if int(s1_speckle_size) not in SPECKLE_SIZES:
        raise CameoInputError(f"S1_SPECKLE_SIZE must be one of {', '.join(map(str, SPECKLE_SIZES))} (an odd window "
                              f"in Sentinel-1 pixels), not {s1_speckle_size}.")
    speckle = SpeckleFilter(s1_speckle_filter, int(s1_speckle_size))
    min_valid_fraction = float(min_valid_fraction)
    if not 0.0 <= min_valid_fraction <= 1.0:
        raise CameoInputError(f"MIN_VALID_FRACTION must be between 0 and 1, not {min_valid_fraction}.")
    max_s1_gap_days = float(max_s1_gap_days)
    if max_s1_gap_days < 0:
        raise CameoInputError(f"MAX_S1_GAP_DAYS must be 0 or more, not {max_s1_gap_days:g}.")
    valid_values = parse_valid_values(mask_valid_values)
    block_size = int(block_size)
    if os.path.isdir(output_folder):
        existing = [name for name in (S2_FILE, S1_FILE, DATES_FILE)
                    if os.path.exists(os.path.join(output_folder, name))]
        if existing:
            raise CameoInputError(
                f"The output folder {output_folder} already holds a stack of another run ({', '.join(existing)}): "
                "choose an empty folder, or delete those files first.")

    with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_BYTES, **GDAL_ENV), DatasetPool() as pool:
        # 1. Catalogue.
        progress.pushInfo(f"Reading the metadata of {len(s2_paths)} Sentinel-2 input(s)...")
        s2_cat, s2_table, substituted = _s2_catalogue(s2_paths, s2_bands, substitute_b8a)
        _report_inputs(progress, s2_cat, s2_table, substituted)
        # 2. Grid (first: inputs of different places also have different dates).
        s2_refs = [ref for acquisitions in s2_table.values() for bands in acquisitions for ref in bands.values()]
        grid = target_grid(s2_refs, extent, extent_crs, crs)
        _check_complete_dates(s2_table, substitute_b8a)
        mask_cat = build_catalog(mask_paths, "mask") if mask_paths else None
        masker = _Masker(s2_table, mask_cat, valid_values)
        all_dates = sorted(s2_table)
        masker.check_dates(all_dates)
        if masker.kind == "none":
            progress.pushInfo(
                "Warning: no SCL band and no mask layer: clouds are NOT masked. A pixel is valid where its values "
                "are finite (not NaN, infinite or no data), and a date's valid fraction is counted over the pixels "
                "that have data on at least one date (e.g. the field polygon of a cube that is NaN outside it).")

        progress.pushInfo(
            f"Target grid: {grid.width} x {grid.height} px at 10 m in {grid.crs.to_string()}, "
            f"{_fmt_bounds(grid.bounds)}; {len(all_dates)} Sentinel-2 dates."
        )
        if mask_cat is not None:
            _footprint_check(mask_cat.refs, grid, "mask")

        s1_table, s1_dates = None, []
        if s1_paths:
            s1_cat = build_catalog(s1_paths, "Sentinel-1", wanted=set(S1_BANDS))
            s1_table = s1_cat.by_date(set(S1_BANDS))
            _check_not_future(s1_table, "Sentinel-1")
            for band in S1_BANDS:
                if band not in set(s1_cat.bands()):
                    raise _missing_band_error(s1_cat, band, "Sentinel-1")
            for date, bands in s1_table.items():
                if len(bands) < 2:
                    raise CameoInputError(
                        f"Sentinel-1 date {date} has only {', '.join(bands)}. Give VV and VH for every acquisition."
                    )
            s1_dates = sorted(s1_table)
            _footprint_check([r for b in s1_table.values() for r in b.values()], grid, "Sentinel-1")

        # 3. Pass 1: valid share per date.
        windows = list(blocks(grid, block_size))
        s1_work = len(windows) * len(all_dates) if s1_paths else 0
        work = len(windows) * len(all_dates) * 2 + s1_work
        fractions, acquisition_counts, done = _valid_shares(
            pool, masker, s2_table, all_dates, grid, windows, s2_refs, progress, work)
        kept = [i for i in range(len(all_dates)) if fractions[i] >= min_valid_fraction]
        if not kept:
            best = int(np.argmax(fractions))
            raise CameoInputError(
                f"All {len(all_dates)} Sentinel-2 dates are too cloudy: none has at least "
                f"{min_valid_fraction:.0%} valid pixels in the extent (the clearest, {all_dates[best]}, has "
                f"{fractions[best]:.1%}). Lower MIN_VALID_FRACTION, or choose another extent or period."
            )
        dates = [all_dates[i] for i in kept]
        valid_fraction = [float(fractions[i]) for i in kept]
        progress.pushInfo(
            f"Kept {len(dates)} of {len(all_dates)} dates with at least {min_valid_fraction:.0%} valid pixels."
        )

        # 4. Sentinel-1 matching.
        matches = match_s1_dates(dates, s1_dates, max_s1_gap_days) if s1_paths else []
        if s1_paths and all(m[0] is None for m in matches):
            raise CameoInputError(
                f"No Sentinel-1 acquisition lies within MAX_S1_GAP_DAYS={max_s1_gap_days:g} days of any kept "
                f"Sentinel-2 date: Sentinel-2 spans {dates[0]}..{dates[-1]}, Sentinel-1 spans "
                f"{s1_dates[0]}..{s1_dates[-1]}. Give Sentinel-1 data of the same period, or raise MAX_S1_GAP_DAYS."
            )
        if s1_paths:
            unmatched = sum(1 for m in matches if m[0] is None)
            if unmatched:
                progress.pushInfo(f"{unmatched} date(s) have no Sentinel-1 within {max_s1_gap_days:g} days: NaN in S1.")

        scaling, boa_by_date = _scaling_rules(pool, s2_table, dates, harmonized, progress)
        s1_units_by_path = {}
        if s1_paths:
            for bands in s1_table.values():
                for ref in bands.values():
                    if ref.path not in s1_units_by_path:
                        s1_units_by_path[ref.path] = _s1_units(ref, s1_units, pool)
            progress.pushInfo(f"Sentinel-1 speckle filter: {speckle.describe()}.")

        # 5. Pass 2: write.
        created = not os.path.isdir(output_folder)
        try:
            os.makedirs(output_folder, exist_ok=True)
        except OSError as error:
            raise CameoInputError(f"Cannot create the output folder '{output_folder}': {error}. Choose a writable folder.") from error
        if not os.access(output_folder, os.W_OK):
            if created:
                os.rmdir(output_folder)
            raise CameoInputError(f"The output folder '{output_folder}' is not writable. Choose a folder you can write to.")
        report_swept(progress.pushInfo, sweep_abandoned(output_folder, file_pattern=STAGED_FILES))
        s2_path = os.path.join(output_folder, S2_FILE)
        s1_path = os.path.join(output_folder, S1_FILE) if s1_paths else None
        dates_path = os.path.join(output_folder, DATES_FILE)
        writers = []
        dates_tmp = temporary_path(dates_path)
        valid_pixels = 0
        # The guard turns a failed write (a full disk) into one clear CameoInputError on the way out.
        with WriteGuard(output_folder) as guard:
            try:
                s2_writer = StackWriter(s2_path, dates, S2_BANDS, grid.crs, grid.transform, grid.width, grid.height, "S2")
                writers.append(s2_writer)
                s1_writer = None
                if s1_paths:
                    s1_writer = StackWriter(s1_path, dates, S1_BANDS, grid.crs, grid.transform, grid.width,
                                            grid.height, "S1")
                    writers.append(s1_writer)
                for window in windows:
                    transform = rasterio.windows.transform(window, grid.transform)
                    s1_cache = {}
                    for t, date in enumerate(dates):
                        check_cancelled(progress)
                        arrays, filled = _merged_date(pool, masker, s2_table[date], acquisition_counts[date], date,
                                                      scaling, grid, transform, window, resampling)
                        valid_pixels += int(filled.sum())
                        for c, data in enumerate(arrays):
                            s2_writer.write(t, c, data, window)
                        done += 1
                        progress.setProgress(100.0 * done / work)
                        if s1_writer is not None:
                            vv, vh = _s1_block(pool, s1_table, s1_dates, matches[t][0], s1_smoothing, speckle,
                                               s1_units_by_path, grid, transform, window, s1_cache)
                            s1_writer.write(t, 0, vv, window)
                            s1_writer.write(t, 1, vh, window)
                            done += 1
                            progress.setProgress(100.0 * done / work)

                if valid_pixels == 0:
                    raise CameoInputError(
                        f"No Sentinel-2 pixel of the {len(dates)} kept date(s) has data: every value is no data, NaN or "
                        f"infinite (e.g. in '{s2_table[dates[0]][0][S2_BANDS[0]].label}'). Give Sentinel-2 files that hold "
                        "reflectance, and check their no-data value.")
                dates_text = ",".join(d.isoformat() for d in dates)
                s2_writer.update_tags(
                    CAMEO_UNITS="reflectance",
                    CAMEO_SCALING=("reflectance = (DN + BOA_ADD_OFFSET) / 10000; BOA_ADD_OFFSET per date in "
                                   "CAMEO_BOA_ADD_OFFSET (-1000 for processing baseline >= 04.00, i.e. products "
                                   "from 2022-01-25, unless harmonised); not clipped"),
                    CAMEO_BOA_ADD_OFFSET=",".join(f"{o:g}" for o in boa_by_date),
                    CAMEO_MASK=masker.describe(),
                    CAMEO_VALID_FRACTION=",".join(f"{f:.6f}" for f in valid_fraction),
                    CAMEO_MIN_VALID_FRACTION=f"{min_valid_fraction:g}",
                    CAMEO_RESAMPLING=f"{resampling} for 20 m bands, nearest for masks",
                    CAMEO_ACQUISITIONS=",".join(str(len(s2_table[d])) for d in dates),
                    **_substitution_tags(substituted, dates),
                )
                s1_dates_matched = [s1_dates[m[0]] if m[0] is not None else None for m in matches]
                gaps = [m[1] for m in matches]
                if s1_writer is not None:
                    s1_writer.update_tags(
                        CAMEO_UNITS="dB",
                        CAMEO_SCALING=("backscatter in dB = 10 log10(linear power); inputs in "
                                       + ", ".join(sorted(set(s1_units_by_path.values())))
                                       + "; bilinear resampling in linear power; not clipped or scaled"),
                        CAMEO_MASK=(f"NaN where VV or VH has no data, or no Sentinel-1 acquisition within "
                                    f"{max_s1_gap_days:g} days of the date"),
                        CAMEO_S1_DATES=",".join(d.isoformat() if d else "" for d in s1_dates_matched),
                        CAMEO_S1_GAP_DAYS=",".join(format_gap(g) for g in gaps),
                        CAMEO_MAX_S1_GAP_DAYS=f"{max_s1_gap_days:g}",
                        CAMEO_SMOOTHING="rolling-mean-3-linear" if s1_smoothing else "none",
                        CAMEO_SPECKLE_FILTER=speckle.describe(),
                    )
                with open(dates_tmp, "w", newline="") as handle:
                    writer = csv.writer(handle)
                    writer.writerow(["date", "valid_fraction", "s1_date", "s1_gap_days", "acquisitions"])
                    for i, date in enumerate(dates):
                        s1d = s1_dates_matched[i].isoformat() if s1_paths and s1_dates_matched[i] else ""
                        gap = format_gap(gaps[i]) if s1_paths else "nan"
                        writer.writerow([date.isoformat(), f"{valid_fraction[i]:.6f}", s1d, gap, len(s2_table[date])])
                for w in writers:
                    w.finish()
                guard.check()  # GDAL reports a full disk without raising: no truncated stack gets published
                for w in writers:
                    w.commit()
                os.replace(dates_tmp, dates_path)
            except BaseException:
                for w in writers:
                    w.abort()
                remove_quietly(dates_tmp)
                if created:
                    try:
                        os.rmdir(output_folder)
                    except OSError:
                        pass
                raise
    progress.setProgress(100.0)
    return {
        "S2_STACK": os.path.abspath(s2_path),
        "S1_STACK": os.path.abspath(s1_path) if s1_path else None,
        "DATES": os.path.abspath(dates_path),
        "dates": dates,
        "valid_fraction": valid_fraction,
        "s1_dates": s1_dates_matched if s1_paths else None,
        "s1_gap_days": gaps if s1_paths else None,
        "grid": grid,
    }


def _merged_date(pool, masker, acquisitions, counts, date, scaling, grid, transform, window, resampling):
    """The 10 bands of one date on a window (NaN where invalid), same-day acquisitions merged per pixel."""
    shape = (window.height, window.width)
    out, filled = empty_bands(len(S2_BANDS), shape), np.zeros(shape, dtype=bool)
    for k in priority(counts):
        bands = acquisitions[k]
        valid = masker.valid(pool, date, bands, grid, transform, window.width, window.height)
        arrays = []
        for band in S2_BANDS:
            dn_offset, scale, extra, _rule = scaling[(date, k, band)]
            data = read_onto(pool, bands[band], grid.crs, transform, window.width, window.height,
                             resampling, convert=_linear(dn_offset, scale, extra))
            valid &= np.isfinite(data)
            arrays.append(data)
        merge_into(out, filled, valid, arrays)
    return out, filled


def _substitution_tags(substituted, dates):
    """CAMEO_SUBSTITUTIONS of a stack whose B8A was taken from B08 (none otherwise)."""
    kept = [d for d in dates if d in set(substituted)]
    if not kept:
        return {}
    return {"CAMEO_SUBSTITUTIONS": f"B8A=B08 on {len(kept)} of {len(dates)} dates (SUBSTITUTE_B8A)",
            "CAMEO_SUBSTITUTED_DATES": ",".join(d.isoformat() for d in kept)}


def _linear(dn_offset, scale, extra):
    def convert(data):
        if dn_offset:
            data += np.float32(dn_offset)
        data *= np.float32(scale)
        if extra:
            data += np.float32(extra)
        return data
    return convert


def _s1_linear(ref, units):
    scale, offset = ref.scale, ref.offset

    def convert(data):
        if scale != 1.0 or offset != 0.0:
            data = data * np.float32(scale) + np.float32(offset)
        if units == "dB":
            data = np.power(np.float32(10.0), data / np.float32(10.0), dtype="float32")
        return data
    return convert


def _s1_block(pool, s1_table, s1_dates, index, smoothing, speckle, units_by_path, grid, transform, window, cache):
    """VV and VH in dB on the window for the S1 acquisition `index` (None: all NaN).

    Each acquisition is speckle-filtered on its own grid, then resampled, then (with
    `smoothing`) averaged with its neighbours in time, all in linear power.
    """
    shape = (window.height, window.width)
    if index is None:
        return np.full(shape, np.nan, "float32"), np.full(shape, np.nan, "float32")
    indices = [i for i in ((index - 1, index, index + 1) if smoothing else (index,)) if 0 <= i < len(s1_dates)]
    out = []
    for band in S1_BANDS:
        total = np.zeros(shape, "float32")
        count = np.zeros(shape, "int16")
        for i in indices:
            key = (i, band)
            if key not in cache:
                ref = s1_table[s1_dates[i]][band]
                convert = _s1_linear(ref, units_by_path[ref.path])
                neighbourhood = speckle.for_acquisition(
                    (ref.path, ref.index), lambda: read_central_sample(pool, ref, convert)) if speckle else None
                cache[key] = read_onto(pool, ref, grid.crs, transform, window.width, window.height, "bilinear",
                                       convert=convert, neighbourhood=neighbourhood)
                if len(cache) > 12:
                    cache.pop(next(iter(cache)))
            data = cache[key]
            finite = np.isfinite(data)
            total[finite] += data[finite]
            count += finite
        with np.errstate(divide="ignore", invalid="ignore"):
            mean = total / count
            db = (np.float32(10.0) * np.log10(mean)).astype("float32")
        db[(count == 0) | ~(mean > 0)] = np.nan
        out.append(db)
    vv, vh = out
    invalid = ~(np.isfinite(vv) & np.isfinite(vh))
    vv[invalid] = np.nan
    vh[invalid] = np.nan
    return vv, vh
