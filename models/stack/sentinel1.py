"""Step 4 of a preparation, Sentinel-1 matching: each kept Sentinel-2 date gets its nearest
Sentinel-1 acquisition, and VV/VH of that acquisition are resampled onto the stack's grid.

The chain per acquisition and window (`s1_on_grid`): source values -> linear power
(`linear_power_converter`) -> speckle filter (models.stack.speckle), both on the
Sentinel-1 file's own pixels -> resampled bilinearly onto the grid (`read_onto`); then
(`s1_block`) the optional centred mean over 3 acquisitions -> dB.
"""

from dataclasses import dataclass

import numpy as np

from ..errors import CameoInputError
from .format import S1_BANDS
from .resample import read_central_sample, read_onto
from .scaling import central_sample


@dataclass
class Sentinel1Match:
    """For each kept S2 date, the index into `s1_dates` of its S1 acquisition (None: none) and the gap."""

    table: dict
    s1_dates: list
    matches: list           # [(index or None, gap in days or nan)] per kept S2 date
    units_by_path: dict     # 'dB' / 'linear' per input file (decided after the scaling step)
    speckle: object = None  # speckle.SpeckleFilter applied to each acquisition before resampling

    @property
    def matched_dates(self):
        return [self.s1_dates[m[0]] if m[0] is not None else None for m in self.matches]

    @property
    def gaps(self):
        return [m[1] for m in self.matches]


def match_sentinel1(s1, dates, max_s1_gap_days, speckle, progress):
    """The Sentinel1Match of the kept dates; no acquisition near any of them: one clear error."""
    s1_dates = s1.dates
    matches = match_s1_dates(dates, s1_dates, max_s1_gap_days)
    if all(m[0] is None for m in matches):
        raise CameoInputError(
            f"No Sentinel-1 acquisition lies within MAX_S1_GAP_DAYS={max_s1_gap_days:g} days of any kept "
            f"Sentinel-2 date: Sentinel-2 spans {dates[0]}..{dates[-1]}, Sentinel-1 spans "
            f"{s1_dates[0]}..{s1_dates[-1]}. Give Sentinel-1 data of the same period, or raise MAX_S1_GAP_DAYS."
        )
    unmatched = sum(1 for m in matches if m[0] is None)
    if unmatched:
        progress.pushInfo(f"{unmatched} date(s) have no Sentinel-1 within {max_s1_gap_days:g} days: NaN in S1.")
    return Sentinel1Match(s1.table, s1_dates, matches, {}, speckle)


def decide_units(match, requested, pool, progress):
    """Fill `match.units_by_path`: the units of every Sentinel-1 file; log the speckle filter."""
    for bands in match.table.values():
        for ref in bands.values():
            if ref.path not in match.units_by_path:
                match.units_by_path[ref.path] = s1_units(ref, requested, pool)
    progress.pushInfo(f"Sentinel-1 speckle filter: {match.speckle.describe()}.")


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


def s1_units(ref, requested, pool):
    """dB or linear: as requested (S1_UNITS), else from the metadata, else from the values."""
    if requested in ("dB", "linear"):
        return requested
    for key, value in ref.tags.items():
        if key.lower().endswith("units") and isinstance(value, str):
            v = value.strip().lower()
            if v in ("db", "decibel", "decibels"):
                return "dB"
            if v in ("linear", "power", "intensity"):
                return "linear"
    sample = central_sample(pool, ref)
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


def linear_power_converter(ref, units):
    """Source values of `ref` (dB or linear, scaled by its metadata) -> float32 linear power.

    read_onto applies it to the source pixels, before the speckle filter and the resampling
    onto the target grid."""
    scale, offset = ref.scale, ref.offset

    def convert(data):
        if scale != 1.0 or offset != 0.0:
            data = data * np.float32(scale) + np.float32(offset)
        if units == "dB":
            data = np.power(np.float32(10.0), data / np.float32(10.0), dtype="float32")
        return data
    return convert


def s1_block(pool, s1_table, s1_dates, index, smoothing, speckle, units_by_path, grid, transform, window, cache):
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
                cache[key] = s1_on_grid(pool, s1_table[s1_dates[i]][band], speckle, units_by_path, grid, transform,
                                        window)
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


def s1_on_grid(pool, ref, speckle, units_by_path, grid, transform, window):
    """One acquisition's band in linear power on the window: converted and speckle-filtered on the
    Sentinel-1 file's own pixels, then resampled bilinearly onto the target grid."""
    convert = linear_power_converter(ref, units_by_path[ref.path])
    neighbourhood = speckle.for_acquisition(
        (ref.path, ref.index), lambda: read_central_sample(pool, ref, convert)) if speckle else None
    return read_onto(pool, ref, grid.crs, transform, window.width, window.height, "bilinear",
                     convert=convert, neighbourhood=neighbourhood)
