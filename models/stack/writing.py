"""Step 6 of a preparation, writing: pass 2, block by block, and the stacks' metadata.

Per window and kept date: the Sentinel-2 acquisitions of the day are read, scaled,
resampled, masked and merged (`s2_block`), the matched Sentinel-1 acquisition resampled
(`sentinel1.s1_block`); both stacks and dates.csv are written under temporary names and
renamed into place together when everything succeeded (models.rasterio_io.atomic_output).
"""

import csv
import os
from dataclasses import dataclass

import numpy as np
import rasterio

from ..errors import CameoInputError
from ..progress import check_cancelled
from ..rasterio_io import STAGED_FILES, atomic_output, make_output_folder
from ..staging import report_swept, sweep_abandoned
from .acquisitions import empty_bands, merge_into, priority
from .defaults import DATES_FILE, S1_FILE, S2_FILE
from .format import S1_BANDS, S2_BANDS, StackWriter, format_gap
from .resample import read_onto
from .scaling import reflectance_converter
from .sentinel1 import s1_block

S2_SCALING = ("reflectance = (DN + BOA_ADD_OFFSET) / 10000; BOA_ADD_OFFSET per date in CAMEO_BOA_ADD_OFFSET "
              "(-1000 for processing baseline >= 04.00, i.e. products from 2022-01-25, unless harmonised); "
              "not clipped")


@dataclass
class StackPlan:
    """Everything the writing pass needs, decided by the steps before it."""

    options: object        # StackOptions (checked)
    grid: object
    windows: list
    work: object           # Work, the progress of both passes
    s2: object             # catalogue.Sentinel2Inputs
    masker: object         # validity.Masker
    clear: object          # validity.ClearDates
    s1: object = None      # sentinel1.Sentinel1Match, or None without Sentinel-1
    scaling: dict = None   # (date, acquisition, band) -> (dn_offset, scale, extra, rule)
    boa_by_date: list = None


@dataclass
class Work:
    """Progress over the units of work of both passes."""

    progress: object
    total: int
    done: int = 0

    def step(self):
        self.done += 1
        self.progress.setProgress(100.0 * self.done / self.total)


def write_stacks(pool, plan, progress):
    """Pass 2: write s2_stack.tif (s1_stack.tif) and dates.csv; returns their paths (S1: None without)."""
    folder = plan.options.output_folder
    created = make_output_folder(folder)
    report_swept(progress.pushInfo, sweep_abandoned(folder, file_pattern=STAGED_FILES))
    s2_path = os.path.join(folder, S2_FILE)
    s1_path = os.path.join(folder, S1_FILE) if plan.s1 is not None else None
    dates_path = os.path.join(folder, DATES_FILE)
    grid, dates = plan.grid, plan.clear.dates
    # A failed write (a full disk) becomes one clear CameoInputError, and nothing is left.
    with atomic_output(folder, remove_folder=created) as out:
        writers = [StackWriter(out, s2_path, dates, S2_BANDS, grid.crs, grid.transform, grid.width,
                               grid.height, "S2")]
        if plan.s1 is not None:
            writers.append(StackWriter(out, s1_path, dates, S1_BANDS, grid.crs, grid.transform, grid.width,
                                       grid.height, "S1"))
        _write_blocks(pool, plan, writers, progress)
        writers[0].update_tags(**s2_tags(plan))
        if plan.s1 is not None:
            writers[1].update_tags(**s1_tags(plan))
        write_dates_table(out.stage(dates_path), plan)
        for w in writers:
            w.finish()
    return s2_path, s1_path, dates_path


def _write_blocks(pool, plan, writers, progress):
    """Every window: each kept date's merged Sentinel-2 bands (and its Sentinel-1 VV/VH)."""
    grid, dates, options = plan.grid, plan.clear.dates, plan.options
    s2_writer, s1_writer = writers[0], (writers[1] if len(writers) > 1 else None)
    valid_pixels = 0
    for window in plan.windows:
        transform = rasterio.windows.transform(window, grid.transform)
        s1_cache = {}
        for t, date in enumerate(dates):
            check_cancelled(progress)
            arrays, filled = s2_block(pool, plan, date, transform, window)
            valid_pixels += int(filled.sum())
            for c, data in enumerate(arrays):
                s2_writer.write(t, c, data, window)
            plan.work.step()
            if s1_writer is not None:
                s1 = plan.s1
                vv, vh = s1_block(pool, s1.table, s1.s1_dates, s1.matches[t][0], options.s1_smoothing, s1.speckle,
                                  s1.units_by_path, grid, transform, window, s1_cache)
                s1_writer.write(t, 0, vv, window)
                s1_writer.write(t, 1, vh, window)
                plan.work.step()
    if valid_pixels == 0:
        raise CameoInputError(
            f"No Sentinel-2 pixel of the {len(dates)} kept date(s) has data: every value is no data, NaN or "
            f"infinite (e.g. in '{plan.s2.table[dates[0]][0][S2_BANDS[0]].label}'). Give Sentinel-2 files that hold "
            "reflectance, and check their no-data value.")


def s2_block(pool, plan, date, transform, window):
    """The 10 bands of one date on a window (NaN where invalid), same-day acquisitions merged per pixel."""
    shape = (window.height, window.width)
    acquisitions, grid = plan.s2.table[date], plan.grid
    out, filled = empty_bands(len(S2_BANDS), shape), np.zeros(shape, dtype=bool)
    for k in priority(plan.clear.acquisition_counts[date]):
        bands = acquisitions[k]
        valid = plan.masker.valid(pool, date, bands, grid, transform, window.width, window.height)
        arrays = []
        for band in S2_BANDS:
            dn_offset, scale, extra, _rule = plan.scaling[(date, k, band)]
            data = read_onto(pool, bands[band], grid.crs, transform, window.width, window.height,
                             plan.options.resampling, convert=reflectance_converter(dn_offset, scale, extra))
            valid &= np.isfinite(data)
            arrays.append(data)
        merge_into(out, filled, valid, arrays)
    return out, filled


def s2_tags(plan):
    """The Sentinel-2 stack's CAMEO_* metadata."""
    dates, options = plan.clear.dates, plan.options
    return dict(
        CAMEO_UNITS="reflectance",
        CAMEO_SCALING=S2_SCALING,
        CAMEO_BOA_ADD_OFFSET=",".join(f"{o:g}" for o in plan.boa_by_date),
        CAMEO_MASK=plan.masker.describe(),
        CAMEO_VALID_FRACTION=",".join(f"{f:.6f}" for f in plan.clear.valid_fraction),
        CAMEO_MIN_VALID_FRACTION=f"{options.min_valid_fraction:g}",
        CAMEO_RESAMPLING=f"{options.resampling} for 20 m bands, nearest for masks",
        CAMEO_ACQUISITIONS=",".join(str(len(plan.s2.table[d])) for d in dates),
        **substitution_tags(plan.s2.substituted, dates),
    )


def s1_tags(plan):
    """The Sentinel-1 stack's CAMEO_* metadata."""
    s1, options = plan.s1, plan.options
    return dict(
        CAMEO_UNITS="dB",
        CAMEO_SCALING=("backscatter in dB = 10 log10(linear power); inputs in "
                       + ", ".join(sorted(set(s1.units_by_path.values())))
                       + "; bilinear resampling in linear power; not clipped or scaled"),
        CAMEO_MASK=(f"NaN where VV or VH has no data, or no Sentinel-1 acquisition within "
                    f"{options.max_s1_gap_days:g} days of the date"),
        CAMEO_S1_DATES=",".join(d.isoformat() if d else "" for d in s1.matched_dates),
        CAMEO_S1_GAP_DAYS=",".join(format_gap(g) for g in s1.gaps),
        CAMEO_MAX_S1_GAP_DAYS=f"{options.max_s1_gap_days:g}",
        CAMEO_SMOOTHING="rolling-mean-3-linear" if options.s1_smoothing else "none",
        CAMEO_SPECKLE_FILTER=s1.speckle.describe(),
    )


def substitution_tags(substituted, dates):
    """CAMEO_SUBSTITUTIONS of a stack whose B8A was taken from B08 (none otherwise)."""
    kept = [d for d in dates if d in set(substituted)]
    if not kept:
        return {}
    return {"CAMEO_SUBSTITUTIONS": f"B8A=B08 on {len(kept)} of {len(dates)} dates (SUBSTITUTE_B8A)",
            "CAMEO_SUBSTITUTED_DATES": ",".join(d.isoformat() for d in kept)}


def write_dates_table(path, plan):
    """dates.csv: date, valid fraction, matched Sentinel-1 date and gap, acquisitions of the day."""
    dates, s1 = plan.clear.dates, plan.s1
    s1_dates = s1.matched_dates if s1 is not None else None
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["date", "valid_fraction", "s1_date", "s1_gap_days", "acquisitions"])
        for i, date in enumerate(dates):
            s1d = s1_dates[i].isoformat() if s1 is not None and s1_dates[i] else ""
            gap = format_gap(s1.gaps[i]) if s1 is not None else "nan"
            writer.writerow([date.isoformat(), f"{plan.clear.valid_fraction[i]:.6f}", s1d, gap,
                             len(plan.s2.table[date])])
