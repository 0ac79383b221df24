"""A Sentinel-1 input in EPSG:4326 lands on the same 10 m pixels as the UTM original."""

import os
import subprocess
import warnings

import numpy as np
import pytest
import rasterio

from models.stack import prepare_stack, read_stack
from test_stack_helpers import chip_files


def _smooth3(image):
    padded = np.pad(image, 1, mode="edge")
    return sum(padded[1 + dy:1 + dy + image.shape[0], 1 + dx:1 + dx + image.shape[1]]
               for dy in (-1, 0, 1) for dx in (-1, 0, 1)) / 9.0


def _best_shift(a, b, reach=3, border=6):
    """(dy, dx) in [-reach, reach] that best aligns b to a (max correlation on the interior)."""
    h, w = a.shape
    core = a[border:h - border, border:w - border]
    best, best_r = None, -2.0
    for dy in range(-reach, reach + 1):
        for dx in range(-reach, reach + 1):
            moved = b[border + dy:h - border + dy, border + dx:w - border + dx]
            ok = np.isfinite(core) & np.isfinite(moved)
            r = np.corrcoef(core[ok], moved[ok])[0, 1]
            if r > best_r:
                best, best_r = (dy, dx), r
    return best, best_r


@pytest.fixture(scope="module")
def s1_pair(data_dir, tmp_path_factory):
    s2, s1 = chip_files(data_dir)
    folder = tmp_path_factory.mktemp("s1_4326")
    geographic = []
    env = dict(os.environ, GDAL_NETCDF_IGNORE_XY_AXIS_NAME_CHECKS="YES")
    for pol in ("VV", "VH"):
        path = folder / f"S1_{pol}_4326.tif"
        subprocess.run(["gdalwarp", "-q", "-overwrite", "-t_srs", "EPSG:4326", "-r", "bilinear",
                        f'NETCDF:"{s1[0]}":{pol}', str(path)], check=True, env=env, timeout=120)
        geographic.append(str(path))
    with rasterio.open(geographic[0]) as dataset:
        assert dataset.crs.to_epsg() == 4326
    common = dict(min_valid_fraction=0.95, s1_smoothing=False)
    utm = prepare_stack(s2, str(folder / "utm"), s1=s1, **common)
    geo = prepare_stack(s2, str(folder / "geo"), s1=geographic, **common)
    return read_stack(utm.s1_stack), read_stack(geo.s1_stack)


def test_same_dates_and_gaps(s1_pair):
    utm, geo = s1_pair
    assert utm.dates == geo.dates and len(utm.dates) >= 5
    np.testing.assert_array_equal(utm.s1_gap_days, geo.s1_gap_days)


def test_bright_and_dark_features_land_within_one_pixel(s1_pair):
    utm, geo = s1_pair
    # Temporal mean VV in dB: stable bright (buildings) and dark (water, smooth fields) spots.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # corner pixels outside the warped scene: all NaN
        a = np.nanmean(utm.values[:, 0], axis=0)
        b = np.nanmean(geo.values[:, 0], axis=0)
    shift, r = _best_shift(a, b)
    assert max(abs(shift[0]), abs(shift[1])) <= 1, shift
    assert r > 0.8
    inner = (slice(6, -6), slice(6, -6))
    sa, sb = _smooth3(a)[inner], _smooth3(b)[inner]
    for pick in (np.nanargmax, np.nanargmin):
        ya, xa = np.unravel_index(pick(sa), sa.shape)
        yb, xb = np.unravel_index(pick(sb), sb.shape)
        assert abs(int(ya) - int(yb)) <= 1 and abs(int(xa) - int(xb)) <= 1, (pick.__name__, (ya, xa), (yb, xb))
    # Values agree too (two bilinear resamplings apart): median difference well under 1 dB.
    assert np.nanmedian(np.abs(a - b)[inner]) < 0.5
