"""The target grid of a stack: 10 m pixels in the Sentinel-2 CRS (or the one asked for).

The area is where all Sentinel-2 inputs overlap, cut to the processing extent when one is
given, and snapped to the Sentinel-2 pixels when the CRS is theirs.
"""

import math

from affine import Affine
from rasterio.crs import CRS
from rasterio.warp import transform_bounds
from rasterio.windows import Window

from ..errors import CameoInputError
from .defaults import RESOLUTION
from .sources import Grid


def utm_for(lon, lat):
    zone = int(math.floor((lon + 180.0) / 6.0)) % 60 + 1
    return CRS.from_epsg((32600 if lat >= 0 else 32700) + zone)


def grid_bounds_in(grid, crs):
    if grid.crs == crs:
        return grid.bounds
    return transform_bounds(grid.crs, crs, *grid.bounds, densify_pts=21)


def intersect(a, b):
    box = (max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3]))
    return box if box[0] < box[2] and box[1] < box[3] else None


def format_bounds(b):
    return f"({b[0]:.6g}, {b[1]:.6g}) - ({b[2]:.6g}, {b[3]:.6g})"


def target_grid(s2_refs, extent=None, extent_crs=None, crs=None):
    """The 10 m output grid: S2's CRS (or `crs`), S2's footprint (or `extent`) snapped to S2's pixels."""
    reference = min(s2_refs, key=lambda r: r.resolution)
    dst_crs = _target_crs(reference, crs)
    footprint = _common_footprint(s2_refs, dst_crs)
    area = footprint if extent is None else _cut_to_extent(footprint, extent, extent_crs, dst_crs)
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


def _target_crs(reference, crs):
    """The CRS asked for (projected), else the finest S2 input's, else (geographic input) its UTM zone."""
    if crs:
        try:
            dst_crs = CRS.from_user_input(crs)
        except Exception as error:  # noqa: BLE001
            raise CameoInputError(f"CRS '{crs}' is not a valid CRS. Give e.g. EPSG:32631.") from error
    else:
        dst_crs = reference.grid.crs
    if dst_crs.is_geographic:
        b = grid_bounds_in(reference.grid, CRS.from_epsg(4326))
        utm = utm_for((b[0] + b[2]) / 2, (b[1] + b[3]) / 2)
        if crs:
            raise CameoInputError(
                f"CRS {dst_crs.to_string()} is geographic (degrees); the stacks need a 10 m grid in metres. "
                f"Choose a projected CRS, e.g. the UTM zone of the data, {utm.to_string()}."
            )
        dst_crs = utm
    return dst_crs


def _common_footprint(s2_refs, dst_crs):
    """Bounds (in dst_crs) where all Sentinel-2 inputs overlap."""
    grids = {}
    for ref in s2_refs:
        grids.setdefault((ref.label, ref.grid.transform, ref.grid.width, ref.grid.height, ref.grid.crs.to_string()), ref)
    footprint, first = None, None
    for ref in grids.values():
        bounds = grid_bounds_in(ref.grid, dst_crs)
        if footprint is None:
            footprint, first = bounds, ref
            continue
        both = intersect(footprint, bounds)
        if both is None:
            raise CameoInputError(
                f"The Sentinel-2 inputs do not overlap: '{first.label}' covers {format_bounds(footprint)} and "
                f"'{ref.label}' covers {format_bounds(bounds)} ({dst_crs.to_string()}). "
                "Give files of the same area (one tile or one chip)."
            )
        footprint = both
    return footprint


def _cut_to_extent(footprint, extent, extent_crs, dst_crs):
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
    area = intersect(footprint, ext)
    if area is None:
        raise CameoInputError(
            f"The processing extent {format_bounds(ext)} does not overlap the Sentinel-2 data, which covers "
            f"{format_bounds(footprint)} ({dst_crs.to_string()}). Choose an extent inside the data, or leave EXTENT empty."
        )
    return area


def blocks(grid, size):
    """Windows of `size` x `size` pixels covering the grid (the last ones smaller)."""
    for row in range(0, grid.height, size):
        for col in range(0, grid.width, size):
            yield Window(col, row, min(size, grid.width - col), min(size, grid.height - row))


def check_footprint(refs, grid, role):
    """Refuse inputs of `role` none of which overlaps the processing area."""
    for ref in refs:
        if intersect(grid_bounds_in(ref.grid, grid.crs), grid.bounds) is not None:
            return
    label = refs[0].label if refs else "?"
    raise CameoInputError(
        f"The {role} input(s) (e.g. '{label}') do not overlap the Sentinel-2 processing area "
        f"{format_bounds(grid.bounds)} ({grid.crs.to_string()}). Give {role} data of the same place."
    )
