"""Step 3 of a preparation, the validity pass: which pixels of a date are valid, and which dates to keep.

A pixel is valid by its SCL class, by the user's mask, or (with neither) where its values
are finite. Pass 1 counts each date's valid share of the extent; dates below
MIN_VALID_FRACTION are dropped before any value is written.
"""

from dataclasses import dataclass

import numpy as np
import rasterio
import rasterio.warp

from ..errors import CameoInputError
from ..progress import check_cancelled
from .defaults import DEFAULT_SCL_VALID
from .format import S2_BANDS
from .resample import read_onto
from .sources import build_catalog


@dataclass
class ClearDates:
    """The dates kept by the validity pass, their valid share, and each acquisition's valid pixel count."""

    dates: list
    valid_fraction: list
    acquisition_counts: dict


def clear_dates(pool, masker, s2, grid, windows, min_valid_fraction, progress, work):
    """Pass 1: the dates with at least `min_valid_fraction` valid pixels (none: one clear error)."""
    all_dates = s2.dates
    fractions, acquisition_counts = valid_shares(pool, masker, s2.table, all_dates, grid, windows, s2.refs,
                                                 progress, work)
    kept = [i for i in range(len(all_dates)) if fractions[i] >= min_valid_fraction]
    if not kept:
        best = int(np.argmax(fractions))
        raise CameoInputError(
            f"All {len(all_dates)} Sentinel-2 dates are too cloudy: none has at least "
            f"{min_valid_fraction:.0%} valid pixels in the extent (the clearest, {all_dates[best]}, has "
            f"{fractions[best]:.1%}). Lower MIN_VALID_FRACTION, or choose another extent or period."
        )
    dates = [all_dates[i] for i in kept]
    progress.pushInfo(
        f"Kept {len(dates)} of {len(all_dates)} dates with at least {min_valid_fraction:.0%} valid pixels."
    )
    return ClearDates(dates, [float(fractions[i]) for i in kept], acquisition_counts)


def make_masker(s2, mask_paths, valid_values, progress):
    """The Masker of the run (SCL, the user's mask or none), its dates checked; warns when nothing masks clouds."""
    mask_cat = build_catalog(mask_paths, "mask") if mask_paths else None
    masker = Masker(s2.table, mask_cat, valid_values)
    masker.check_dates(s2.dates)
    if masker.kind == "none":
        progress.pushInfo(
            "Warning: no SCL band and no mask layer: clouds are NOT masked. A pixel is valid where its values "
            "are finite (not NaN, infinite or no data), and a date's valid fraction is counted over the pixels "
            "that have data on at least one date (e.g. the field polygon of a cube that is NaN outside it).")
    return masker, mask_cat


class Masker:
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


def valid_shares(pool, masker, s2_table, all_dates, grid, windows, s2_refs, progress, work):
    """Pass 1: (valid share per date, valid pixels per acquisition of each date).

    A merged date's pixel is valid when any of its acquisitions is. The share is over the
    pixels inside every source raster; without a mask, over the pixels that ever have data.
    """
    counts = np.zeros(len(all_dates), dtype="int64")
    acquisition_counts = {date: [0] * len(s2_table[date]) for date in all_dates}
    inside_px = 0
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
            work.step()
        inside_px += int((ever & inside).sum() if masker.kind == "none" else inside.sum())
    return counts / float(max(inside_px, 1)), acquisition_counts


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
