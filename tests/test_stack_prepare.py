"""cameo preparestack numerics (Qt-free): hand computations on the real Belgian chip.

Every expected number is computed here from the NetCDF files read through GDAL's HDF5
driver (storage order, no georeferencing logic), not through models/stack.
"""

import csv
import datetime as dt
import math
import os

import numpy as np
import pytest
import rasterio

from models.stack import match_s1_dates, prepare_stack, read_stack, read_stack_info
from test_stack_helpers import (
    BANDS_10M, S2_BANDS, bilinear_2x, chip_files, coordinate, raw, timestamps, write_s1_tif, write_s2_tif,
)

SCL_VALID = (4, 5, 6, 7, 11)


@pytest.fixture(scope="module")
def chip(data_dir):
    s2, s1 = chip_files(data_dir)
    ten = next(p for p in s2 if "_10m_" in p)
    twenty = next(p for p in s2 if "_20m_" in p)
    return {"s2": s2, "s1": s1[0], "10m": ten, "20m": twenty}


@pytest.fixture(scope="module")
def run(chip, tmp_path_factory):
    """The chip prepared with small, uneven blocks (40 px on a 64 px grid) to exercise block edges."""
    out = tmp_path_factory.mktemp("chip") / "out"
    result = prepare_stack(chip["s2"], str(out), s1=[chip["s1"]], block_size=40)
    return result


@pytest.fixture(scope="module")
def s2_stack(run):
    return read_stack(run.s2_stack)


@pytest.fixture(scope="module")
def s1_stack(run):
    return read_stack(run.s1_stack)


def test_chip_orientation_premise(chip):
    # The hand computations below map storage row 0 to the northern edge: check it.
    y = coordinate(chip["10m"], "y")
    assert y[0] == 5629675.0 and np.all(np.diff(y) == -10.0)
    x = coordinate(chip["20m"], "x")
    assert x[0] == 501370.0 and np.all(np.diff(x) == 20.0)


def test_grid_is_the_chip_10m_grid(s2_stack):
    assert s2_stack.crs.to_epsg() == 32631
    assert tuple(s2_stack.transform)[:6] == (10.0, 0.0, 501360.0, 0.0, -10.0, 5629680.0)
    assert (s2_stack.width, s2_stack.height) == (64, 64)
    assert s2_stack.bands == list(S2_BANDS)


def test_kept_dates_follow_the_threshold_rule(chip, run):
    scl = raw(chip["20m"], "SCL")  # 20 m; nearest to 10 m duplicates each pixel 2x2: same share
    share = np.isin(scl, SCL_VALID).mean(axis=(1, 2))
    dates = [t.date() for t in timestamps(chip["20m"])]
    expected = [d for d, f in zip(dates, share) if f >= 0.5]
    assert 0 < len(expected) < len(dates)
    assert run.dates == expected
    kept_share = [f for f in share if f >= 0.5]
    np.testing.assert_allclose(run.valid_fraction, kept_share, atol=1e-9)
    with open(run.dates_table) as handle:
        rows = list(csv.DictReader(handle))
    assert [r["date"] for r in rows] == [d.isoformat() for d in expected]
    np.testing.assert_allclose([float(r["valid_fraction"]) for r in rows], kept_share, atol=1e-6)


def test_reflectance_values_and_masking_at_chosen_pixels(chip, run, s2_stack):
    dates = [t.date() for t in timestamps(chip["10m"])]
    scl = raw(chip["20m"], "SCL")
    checked_valid = checked_masked = 0
    for t_out in (0, 7, len(run.dates) - 1):
        date = run.dates[t_out]
        t_in = dates.index(date)
        for row, col in ((21, 33), (40, 10), (5, 58), (62, 2)):
            values = s2_stack.values[t_out, :, row, col]
            if scl[t_in, row // 2, col // 2] not in SCL_VALID:
                assert np.isnan(values).all(), (date, row, col)
                checked_masked += 1
                continue
            for c, band in enumerate(S2_BANDS):
                if band in BANDS_10M:
                    expected = raw(chip["10m"], band)[t_in, row, col] / 10000.0
                else:
                    expected = bilinear_2x(raw(chip["20m"], band)[t_in], row, col) / 10000.0 \
                        if 1 <= row < 63 and 1 <= col < 63 else None
                if expected is not None:
                    assert values[c] == pytest.approx(expected, abs=2e-6), (date, band, row, col)
            checked_valid += 1
    assert checked_valid >= 6
    # Masked pixels: every SCL-invalid 10 m pixel of a kept date is NaN in all bands.
    for t_out, date in enumerate(run.dates[:10]):
        invalid20 = ~np.isin(scl[dates.index(date)], SCL_VALID)
        invalid10 = np.kron(invalid20, np.ones((2, 2), bool))
        assert np.isnan(s2_stack.values[t_out][:, invalid10]).all()
        checked_masked += int(invalid10.sum())
    assert checked_masked > 0


def test_a_20m_band_is_bilinear_not_nearest(chip, run, s2_stack):
    # At pixel (21, 33) the 20 m neighbours differ, so bilinear and nearest disagree.
    t_out = 0
    t_in = [t.date() for t in timestamps(chip["20m"])].index(run.dates[t_out])
    b8a = raw(chip["20m"], "B8A")[t_in]
    bilinear = bilinear_2x(b8a, 21, 33) / 10000.0
    nearest = b8a[10, 16] / 10000.0
    assert abs(bilinear - nearest) > 1e-3
    assert s2_stack.values[t_out, S2_BANDS.index("B8A"), 21, 33] == pytest.approx(bilinear, abs=2e-6)


def test_s1_gaps_are_the_hand_computed_nearest_dates(chip, run, s1_stack):
    s1_dates = sorted({t.date() for t in timestamps(chip["s1"])})
    expected_gaps, expected_dates = [], []
    for date in run.dates:
        nearest = min(s1_dates, key=lambda d: (abs((d - date).days), d))
        gap = abs((nearest - date).days)
        expected_gaps.append(gap if gap <= 6 else math.nan)
        expected_dates.append(nearest if gap <= 6 else None)
    np.testing.assert_array_equal(s1_stack.s1_gap_days, expected_gaps)
    assert s1_stack.s1_dates == expected_dates
    assert s1_stack.dates == run.dates
    with open(run.dates_table) as handle:
        rows = list(csv.DictReader(handle))
    assert [r["s1_gap_days"] for r in rows] == [str(g) if g == g else "nan" for g in expected_gaps]
    assert set(expected_gaps) - {math.nan} >= {0, 1, 2}


def lee_by_hand(power, size=5):
    """Lee (1980) filter of a 2-D linear-power array, pixel by pixel (NaN = no data).

    Noise Cu^2 = the median squared coefficient of variation of the windows with at least
    half their pixels valid (the whole 32 x 32 S1 chip is the file's central sample).
    """
    r = size // 2
    h, w = power.shape
    mean, var, count = (np.full((h, w), np.nan) for _ in range(3))
    for i in range(h):
        for j in range(w):
            window = power[max(i - r, 0):i + r + 1, max(j - r, 0):j + r + 1]
            values = window[np.isfinite(window)]
            count[i, j] = values.size
            if values.size:
                mean[i, j], var[i, j] = values.mean(), values.var()
    ci2 = var / mean ** 2
    usable = (count >= size * size // 2 + 1) & np.isfinite(power) & (mean > 0)
    noise = np.median(ci2[usable])
    weight = np.clip((1 - noise / ci2) / (1 + noise), 0, 1)
    weight[~np.isfinite(weight)] = 0.0
    return mean + weight * (power - mean)


@pytest.mark.parametrize("row, col", [(21, 33), (39, 40)])  # (39, 40): across the 40-px block edges
def test_s1_value_is_lee_filtered_then_smoothed_in_linear_power_then_db(chip, run, s1_stack, row, col):
    stamps = timestamps(chip["s1"])
    s1_dates = [t.date() for t in stamps]
    raw_vv = raw(chip["s1"], "VV")
    vv = np.where(raw_vv == 0, np.nan, raw_vv.astype("float64") * 1e-4)
    t_out = 3
    i = s1_dates.index(s1_stack.s1_dates[t_out])
    linear = [bilinear_2x(lee_by_hand(10 ** (vv[j] / 10)), row, col) for j in (i - 1, i, i + 1)]
    expected = 10 * np.log10(np.mean(linear))
    unfiltered = 10 * np.log10(np.mean([bilinear_2x(10 ** (vv[j] / 10), row, col) for j in (i - 1, i, i + 1)]))
    assert abs(expected - unfiltered) > 1e-2  # the filter changes this pixel: the comparison means something
    assert s1_stack.values[t_out, 0, row, col] == pytest.approx(expected, abs=1e-4)
    assert s1_stack.tags["CAMEO_SMOOTHING"] == "rolling-mean-3-linear"
    assert s1_stack.tags["CAMEO_SPECKLE_FILTER"] == "lee 5x5 (Sentinel-1 file pixels, linear power)"


def test_block_size_does_not_change_a_single_value(chip, run, s2_stack, s1_stack, tmp_path):
    whole = prepare_stack(chip["s2"], str(tmp_path / "whole"), s1=[chip["s1"]], block_size=1024)
    np.testing.assert_array_equal(read_stack(whole.s2_stack).values, s2_stack.values)
    np.testing.assert_array_equal(read_stack(whole.s1_stack).values, s1_stack.values)


def test_stack_metadata_follows_the_format_contract(run):
    with rasterio.open(run.s2_stack) as dataset:
        assert dataset.count == len(run.dates) * 10
        assert dataset.dtypes[0] == "float32" and math.isnan(dataset.nodata)
        assert dataset.block_shapes[0] == (256, 256)
        assert dataset.descriptions[7] == f"{run.dates[0].isoformat()} B8A"
        assert dataset.tags(11) == {"DATE": run.dates[1].isoformat(), "BAND": "B02"}
        tags = dataset.tags()
        assert tags["CAMEO_STACK_VERSION"] == "1" and tags["CAMEO_MODALITY"] == "S2"
        assert tags["CAMEO_UNITS"] == "reflectance"
        assert tags["CAMEO_BOA_ADD_OFFSET"] == ",".join(["0"] * len(run.dates))
    info = read_stack_info(run.s1_stack)
    assert info.bands == ["VV", "VH"] and info.modality == "S1" and info.values is None
    window = read_stack(run.s2_stack, window=(10, 20, 5, 3))
    assert window.values.shape == (len(run.dates), 10, 3, 5)
    assert tuple(window.transform)[2] == 501360.0 + 100 and tuple(window.transform)[5] == 5629680.0 - 200
    # Nothing but the three outputs in the folder (no temporary files left).
    assert sorted(os.listdir(os.path.dirname(run.s2_stack))) == ["dates.csv", "s1_stack.tif", "s2_stack.tif"]


def test_extent_crops_on_the_s2_pixel_grid(chip, run, s2_stack, tmp_path):
    # An extent that does not fall on pixel edges: snapped outwards to the 10 m pixels.
    extent_utm = (501455.0, 5629305.0, 501733.0, 5629512.0)
    result = prepare_stack(chip["s2"], str(tmp_path / "crop"), extent=extent_utm, extent_crs="EPSG:32631",
                           min_valid_fraction=0.9)
    crop = read_stack(result.s2_stack)
    assert tuple(crop.transform)[2] == 501450.0 and tuple(crop.transform)[5] == 5629520.0
    assert (crop.width, crop.height) == (29, 22)
    col, row = 9, 16  # (501450 - 501360) / 10, (5629680 - 5629520) / 10
    for t_crop, date in enumerate(crop.dates):
        if date in run.dates:
            t_full = run.dates.index(date)
            np.testing.assert_array_equal(crop.values[t_crop], s2_stack.values[t_full, :, row:row + 22, col:col + 29])


def test_post_2022_offset_is_removed_unless_harmonised(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    old = write_s2_tif(src / "S2_20211201.tif", dn=2000)
    new = write_s2_tif(src / "S2_2022-03-01.tif", dn=2000)
    result = prepare_stack([old, new], str(tmp_path / "raw"))
    stack = read_stack(result.s2_stack)
    assert stack.dates == [dt.date(2021, 12, 1), dt.date(2022, 3, 1)]
    np.testing.assert_allclose(stack.values[0], 0.2, atol=1e-7)
    np.testing.assert_allclose(stack.values[1], 0.1, atol=1e-7)
    assert stack.tags["CAMEO_BOA_ADD_OFFSET"] == "0,-1000"

    harmonised = read_stack(prepare_stack([old, new], str(tmp_path / "h"), harmonized="yes").s2_stack)
    np.testing.assert_allclose(harmonised.values, 0.2, atol=1e-7)

    # Metadata beats the date: a product that says baseline 03.01 keeps its DNs.
    tagged = write_s2_tif(src / "S2_20220305.tif", dn=2000, tags={"PROCESSING_BASELINE": "03.01"})
    by_tag = read_stack(prepare_stack([tagged], str(tmp_path / "t")).s2_stack)
    np.testing.assert_allclose(by_tag.values, 0.2, atol=1e-7)


def test_band_order_parameter_names_undescribed_bands(tmp_path):
    path = write_s2_tif(tmp_path / "T31UDS_20180804T105021_L2A.tif", dn=1500, scl=9, describe=False,
                        bands=("SCL",) + S2_BANDS)
    # SCL first: with the order given, class 9 (cloud) masks everything -> error names the date.
    from models.errors import CameoInputError
    with pytest.raises(CameoInputError, match="too cloudy.*2018-08-04"):
        prepare_stack([path], str(tmp_path / "out"), s2_bands="SCL," + ",".join(S2_BANDS))
    result = prepare_stack([path], str(tmp_path / "out"), s2_bands="SCL," + ",".join(S2_BANDS),
                           mask_valid_values="9")
    np.testing.assert_allclose(read_stack(result.s2_stack).values, 0.15, atol=1e-7)


def test_user_mask_replaces_scl(tmp_path):
    s2 = write_s2_tif(tmp_path / "S2_20180804.tif", dn=1000, scl=9)  # SCL says cloud everywhere
    mask_path = tmp_path / "clear.tif"
    with rasterio.open(s2) as ref:
        profile = dict(ref.profile, count=1, dtype="uint8", nodata=None)
    data = np.zeros((16, 16), "uint8")
    data[:, :12] = 1  # 75 % clear
    with rasterio.open(mask_path, "w", **profile) as dataset:
        dataset.write(data, 1)
    result = prepare_stack([s2], str(tmp_path / "out"), s2_mask=[str(mask_path)])
    stack = read_stack(result.s2_stack)
    assert result.valid_fraction == [0.75]
    assert np.isnan(stack.values[0][:, :, 12:]).all()
    np.testing.assert_allclose(stack.values[0][:, :, :12], 0.1, atol=1e-7)


def test_s1_linear_power_input_and_max_gap(tmp_path):
    s2a = write_s2_tif(tmp_path / "S2_20180804.tif")
    s2b = write_s2_tif(tmp_path / "S2_20180820.tif")
    s1 = write_s1_tif(tmp_path / "S1_20180802.tif", vv_db=0.05, vh_db=0.01)  # linear power, all >= 0
    result = prepare_stack([s2a, s2b], str(tmp_path / "out"), s1=[s1], max_s1_gap_days=5)
    stack = read_stack(result.s1_stack)
    np.testing.assert_array_equal(stack.s1_gap_days, [2, math.nan])
    np.testing.assert_allclose(stack.values[0, 0], 10 * np.log10(0.05), atol=1e-5)
    np.testing.assert_allclose(stack.values[0, 1], 10 * np.log10(0.01), atol=1e-5)
    assert np.isnan(stack.values[1]).all()


def test_match_s1_dates_ties_go_to_the_earlier_acquisition():
    d = dt.date
    matches = match_s1_dates([d(2020, 1, 5), d(2020, 1, 30)], [d(2020, 1, 3), d(2020, 1, 7)], 6)
    assert matches[0] == (0, 2.0)
    assert matches[1][0] is None and math.isnan(matches[1][1])


def test_target_crs_reprojects_onto_a_10m_grid_in_that_crs(chip, run, s2_stack, tmp_path):
    result = prepare_stack(chip["s2"], str(tmp_path / "laea"), crs="EPSG:3035", min_valid_fraction=0.95)
    laea = read_stack(result.s2_stack)
    assert laea.crs.to_epsg() == 3035
    t = laea.transform
    assert (t.a, t.e) == (10.0, -10.0) and t.c % 10 == 0 and t.f % 10 == 0
    # Same dates as the UTM run at that threshold, same reflectance level (a 3 deg rotation apart).
    keep = [i for i, f in enumerate(run.valid_fraction) if f >= 0.95]
    assert laea.dates == [run.dates[i] for i in keep]
    for t_laea, t_utm in enumerate(keep[:3]):
        for c in (2, 7):
            a, b = np.nanmean(laea.values[t_laea, c]), np.nanmean(s2_stack.values[t_utm, c])
            assert a == pytest.approx(b, rel=0.03)


def test_per_date_geotiffs_give_the_same_stack_as_the_netcdf_cube(chip, run, s2_stack, tmp_path):
    # The same real data as one GeoTIFF pair per date (10 m + 20 m), bands described the way
    # GDAL's SENTINEL2 driver does ("B2, central wavelength 490 nm"), dates only in SAFE-style names.
    from affine import Affine
    dates = [t.date() for t in timestamps(chip["10m"])]
    picked = run.dates[:3]
    files = []
    for date in picked:
        t_in = dates.index(date)
        stem = f"T31UDS_{date.strftime('%Y%m%d')}T105031_N0206"
        for suffix, source, bands, res in (("10m", chip["10m"], BANDS_10M, 10),
                                           ("20m", chip["20m"], ("B05", "B06", "B07", "B8A", "B11", "B12", "SCL"), 20)):
            path = tmp_path / f"{stem}_{suffix}.tif"
            size = 64 if res == 10 else 32
            profile = dict(driver="GTiff", width=size, height=size, count=len(bands), dtype="uint16", nodata=0,
                           crs="EPSG:32631", transform=Affine(res, 0, 501360, 0, -res, 5629680))
            with rasterio.open(path, "w", **profile) as dataset:
                for i, band in enumerate(bands, start=1):
                    dataset.write(raw(source, band)[t_in].astype("uint16"), i)
                    name = band if band == "SCL" else f"B{band[1:].lstrip('0')}"
                    dataset.set_band_description(i, f"{name}, central wavelength 000 nm")
            files.append(str(path))
    result = prepare_stack(files, str(tmp_path / "out"), min_valid_fraction=0.0)
    stack = read_stack(result.s2_stack)
    assert stack.dates == picked
    np.testing.assert_array_equal(stack.values, s2_stack.values[:3])
