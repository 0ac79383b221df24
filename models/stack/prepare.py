"""Turn downloaded Sentinel-2 (and Sentinel-1) rasters into CAMEO time stacks.

`prepare_stack(...)` is what `cameo:preparestack` and `python -m models.stack` run. It
calls the named steps in order, each in its own module:

1. catalogue the inputs (bands, dates, grids) without reading pixels (`catalogue`);
2. define the 10 m target grid: Sentinel-2 grid, or the CRS/extent asked for (`grid`);
3. validity pass: per date, the share of valid pixels in the extent from the mask (SCL
   classes, the user's mask, or finite values); keep dates at or above MIN_VALID_FRACTION
   (`validity`);
4. match every kept date to the nearest Sentinel-1 acquisition, whose values are
   speckle-filtered on their own grid before they are resampled (`sentinel1`, `speckle`);
5. decide the scaling of every band to reflectance (`scaling`);
6. writing pass, block by block: read, scale, resample, mask and write both stacks and
   dates.csv (`writing`).

Memory depends on `block_size` (and GDAL's bounded cache), not on the area.
"""

import os
from dataclasses import dataclass
from typing import List, Optional

import rasterio

from ..progress import NullProgress
from ..rasterio_io import refuse_other_run
from .catalogue import catalogue_s1, catalogue_s2, check_complete_dates, report_inputs
from .defaults import DATES_FILE, S1_FILE, S2_FILE
from .format import GDAL_CACHE_BYTES
from .grid import blocks, check_footprint, format_bounds, target_grid
# parse_band_orders, parse_valid_values and match_s1_dates are imported from here by earlier callers.
from .options import StackOptions, parse_band_orders, parse_valid_values  # noqa: F401
from .resample import DatasetPool
from .scaling import scaling_rules
from .sentinel1 import decide_units, match_s1_dates, match_sentinel1  # noqa: F401
from .sources import GDAL_ENV, Grid
from .speckle import SpeckleFilter
from .validity import clear_dates, make_masker
from .writing import StackPlan, Work, write_stacks


@dataclass
class PreparedStack:
    """What a preparation wrote (absolute paths) and the kept dates with their Sentinel-1 match."""

    s2_stack: str
    s1_stack: Optional[str]          # None without Sentinel-1
    dates_table: str
    dates: list
    valid_fraction: List[float]
    s1_dates: Optional[list]         # per kept date: the matched S1 date or None; None without Sentinel-1
    s1_gap_days: Optional[List[float]]
    grid: Grid

    def outputs(self):
        """The output paths under the names of the algorithm's outputs (and the command line's JSON)."""
        return {"S2_STACK": self.s2_stack, "S1_STACK": self.s1_stack, "DATES": self.dates_table}


def prepare_stack(s2=None, output_folder=None, *, options=None, progress=None, **settings) -> PreparedStack:
    """Prepare `s2_stack.tif` (and `s1_stack.tif`) plus `dates.csv` in the output folder.

    Give a StackOptions as `options`, or its fields as arguments
    (`prepare_stack(s2_files, folder, s1=s1_files, ...)`).
    """
    if options is None:
        options = StackOptions(s2=s2, output_folder=output_folder, **settings)
    options = options.checked()
    progress = progress or NullProgress()
    refuse_other_run(options.output_folder, "a stack", names=(S2_FILE, S1_FILE, DATES_FILE))
    with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_BYTES, **GDAL_ENV), DatasetPool() as pool:
        plan = _plan(pool, options, progress)
        s2_path, s1_path, dates_path = write_stacks(pool, plan, progress)
    progress.setProgress(100.0)
    s1 = plan.s1
    return PreparedStack(
        os.path.abspath(s2_path), os.path.abspath(s1_path) if s1_path else None, os.path.abspath(dates_path),
        plan.clear.dates, plan.clear.valid_fraction, s1.matched_dates if s1 else None, s1.gaps if s1 else None,
        plan.grid)


def _plan(pool, options, progress):
    """Steps 1-5: every decision of the run, before any output is written."""
    progress.pushInfo(f"Reading the metadata of {len(options.s2)} Sentinel-2 input(s)...")
    s2 = catalogue_s2(options.s2, options.s2_bands, options.substitute_b8a)
    report_inputs(progress, s2)
    # The grid first: inputs of different places also have different dates.
    grid = target_grid(s2.refs, options.extent, options.extent_crs, options.crs)
    check_complete_dates(s2.table, options.substitute_b8a)
    masker, mask_catalog = make_masker(s2, options.s2_mask, options.mask_valid_values, progress)
    progress.pushInfo(
        f"Target grid: {grid.width} x {grid.height} px at 10 m in {grid.crs.to_string()}, "
        f"{format_bounds(grid.bounds)}; {len(s2.dates)} Sentinel-2 dates."
    )
    if mask_catalog is not None:
        check_footprint(mask_catalog.refs, grid, "mask")
    s1_inputs = catalogue_s1(options.s1, grid) if options.s1 else None
    windows = list(blocks(grid, options.block_size))
    # Units of work per window and date: pass 1, pass 2's Sentinel-2 (and Sentinel-1).
    per_pass = len(windows) * len(s2.dates)
    work = Work(progress, per_pass * 2 + (per_pass if s1_inputs is not None else 0))
    clear = clear_dates(pool, masker, s2, grid, windows, options.min_valid_fraction, progress, work)
    plan = StackPlan(options, grid, windows, work, s2, masker, clear)
    if s1_inputs is not None:
        speckle = SpeckleFilter(options.s1_speckle_filter, options.s1_speckle_size)
        plan.s1 = match_sentinel1(s1_inputs, plan.clear.dates, options.max_s1_gap_days, speckle, progress)
    plan.scaling, plan.boa_by_date = scaling_rules(pool, s2.table, plan.clear.dates, options.harmonized, progress)
    if plan.s1 is not None:
        decide_units(plan.s1, options.s1_units, pool, progress)
    return plan
