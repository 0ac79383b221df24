"""cameo preparestack on inputs as other tools write them (Qt-free), from the real sample data.

- band-dimension cubes (`band_data(time, band, y, x)`, NetCDF and Zarr, CRS only as an
  attribute / `spatial_ref` variable) give the stack of the original files, bit for bit;
- a date present twice (two acquisitions of one day) is merged pixel by pixel;
- the monthly openEO cube (no B8A) prepares with SUBSTITUTE_B8A only; a 3-date cube
  prepares, embeds every date and makes an RGB;
- new bad inputs: one clear line each, nothing written, inputs unchanged.

Expected values come from the chips read through GDAL's HDF5 driver (storage order), not
through models/stack.
"""

import csv
import datetime as dt
import hashlib
import os
import subprocess
import sys

import numpy as np
import pytest
import rasterio

from cube_fixtures import chip_cube, write_band_cube_netcdf, write_band_cube_zarr, write_band_variables_netcdf
from models.errors import CameoInputError
from models.stack import prepare_stack, read_stack
from test_stack_helpers import chip_files, raw

CHIP = "belgium_0000280849BAC91C"
BANDS_10M = ["B02", "B03", "B04", "B08"]
BANDS_20M = ["B05", "B06", "B07", "B8A", "B11", "B12", "SCL"]
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Log:
    def __init__(self):
        self.lines = []

    def pushInfo(self, message):  # noqa: N802 - the progress interface
        self.lines.append(message)

    def setProgress(self, percent):  # noqa: N802
        pass

    def isCanceled(self):  # noqa: N802
        return False

    def text(self):
        return "\n".join(self.lines)


@pytest.fixture(scope="module")
def chip(data_dir):
    s2, _ = chip_files(data_dir, CHIP)
    ten = next(p for p in s2 if "_10m_" in p)
    twenty = next(p for p in s2 if "_20m_" in p)
    return {"s2": s2, "10m": chip_cube(ten, BANDS_10M), "20m": chip_cube(twenty, BANDS_20M)}


@pytest.fixture(scope="module")
def reference(chip, tmp_path_factory):
    return read_stack(prepare_stack(chip["s2"], str(tmp_path_factory.mktemp("ref") / "out")).s2_stack)


def _same_stack(a, b):
    assert b.dates == a.dates and b.bands == a.bands
    assert tuple(b.transform) == tuple(a.transform) and b.crs == a.crs
    assert np.array_equal(a.values, b.values, equal_nan=True)
    assert b.tags["CAMEO_VALID_FRACTION"] == a.tags["CAMEO_VALID_FRACTION"]


def _scaled_zarr(path, *args, **kwargs):
    return write_band_cube_zarr(path, *args, scale_factor=1e-4, **kwargs)


@pytest.mark.parametrize("writer, suffix, georeferencing, scaling", [
    (write_band_cube_netcdf, ".nc", "CRS from the global attribute 'crs', transform from GDAL", "detected: integer DN"),
    (write_band_cube_zarr, ".zarr", "CRS from the grid mapping variable 'spatial_ref' (crs_wkt), transform from GDAL",
     "detected: integer DN"),
    (_scaled_zarr, ".zarr", "CRS from the grid mapping variable 'spatial_ref' (crs_wkt), transform from GDAL",
     "scale_factor/add_offset of the input"),  # the 10 m cube carries scale_factor = 1e-4
])
def test_band_dimension_cube_gives_the_original_stack_bit_for_bit(chip, reference, tmp_path, writer, suffix,
                                                                  georeferencing, scaling):
    names_10m = ["B02 (490 nm)", "B3", "B04", "B08"]  # the spellings tools use
    inputs = [writer(str(tmp_path / f"c10{suffix}"), *chip["10m"], names_10m),
              write_band_cube_zarr(str(tmp_path / "c20.zarr"), *chip["20m"], BANDS_20M) if writer is _scaled_zarr
              else writer(str(tmp_path / f"c20{suffix}"), *chip["20m"], BANDS_20M)]
    log = Log()
    stack = read_stack(prepare_stack(inputs, str(tmp_path / "out"), progress=log).s2_stack)
    _same_stack(reference, stack)
    assert len(stack.dates) == 41  # of 72: the SCL rule, as for the original files
    text = log.text()
    # GDAL 3.10's Zarr driver (Debian 13) reads the spatial_ref variable itself; GDAL 3.6's does not
    said = [f"c10{suffix}': {georeferencing}.", f"c10{suffix}': CRS from GDAL, transform from GDAL."]
    assert said[0] in text or (suffix == ".zarr" and said[1] in text), text
    assert f"Scaling of 41 date(s): reflectance = (value+0) x 0.0001 ({scaling};" in text


def _duplicated_day(chip, a_wins):
    """Two dates of the chip, the second present twice (60 s apart), each copy half cloud-masked.

    Copy A: SCL 9 (cloud) in the western half; copy B: B02..B12 + 7 DN and SCL 9 in the
    northern three quarters (a_wins) or the southern quarter (not a_wins).
    """
    cubes = {}
    for key in ("10m", "20m"):
        values, stamps, units, x, y = chip[key]
        pick = [25, 26]  # two clear days of the chip (checked below)
        a, b = values[pick[1]].copy(), values[pick[1]].copy()
        b[b > 0] += 7 if key == "10m" else 0
        if key == "20m":
            b[:6][b[:6] > 0] += 7  # the 20 m bands (not SCL, the last)
            a[-1][:, :16] = 9
            if a_wins:
                b[-1][:24, :] = 9
            else:
                b[-1][24:, :] = 9
        stacked = np.stack([values[pick[0]], a, b])
        times = np.asarray([stamps[pick[0]], stamps[pick[1]], stamps[pick[1]] + 60])
        cubes[key] = (stacked, times, units, x, y)
    return cubes


@pytest.mark.parametrize("a_wins", [True, False])
def test_same_day_acquisitions_are_merged_pixel_by_pixel(chip, tmp_path, a_wins):
    cubes = _duplicated_day(chip, a_wins)
    inputs = [write_band_cube_netcdf(str(tmp_path / "c10.nc"), *cubes["10m"], BANDS_10M),
              write_band_cube_netcdf(str(tmp_path / "c20.nc"), *cubes["20m"], BANDS_20M)]
    log = Log()
    result = prepare_stack(inputs, str(tmp_path / "out"), min_valid_fraction=0.0, progress=log)
    stack = read_stack(result.s2_stack)
    day = stack.dates[1]
    assert len(stack.dates) == 2
    b02_a = cubes["10m"][0][1, 0].astype("float64")  # [H, W] DN of copy A
    b02_b = cubes["10m"][0][2, 0].astype("float64")
    scl_a = np.repeat(np.repeat(cubes["20m"][0][1, -1], 2, 0), 2, 1)
    scl_b = np.repeat(np.repeat(cubes["20m"][0][2, -1], 2, 0), 2, 1)
    ok = (4, 5, 6, 7, 11)
    valid_a, valid_b = np.isin(scl_a, ok) & (b02_a > 0), np.isin(scl_b, ok) & (b02_b > 0)
    assert valid_a.sum() != valid_b.sum() and (valid_a.sum() > valid_b.sum()) == a_wins
    got = stack.values[1, 0]
    picked = {"A only": valid_a & ~valid_b, "B only": valid_b & ~valid_a, "both": valid_a & valid_b,
              "neither": ~valid_a & ~valid_b}
    for region, where in picked.items():
        rows, cols = np.nonzero(where)
        assert rows.size > 0, region
        for r, c in list(zip(rows, cols))[:: max(1, rows.size // 5)]:  # about 5 hand-picked pixels per region
            if region == "neither":
                assert np.isnan(got[r, c])
                continue
            from_a = region == "A only" or (region == "both" and a_wins)
            expected = np.float32((b02_a if from_a else b02_b)[r, c]) * np.float32(1e-4)
            assert got[r, c] == expected, (region, r, c)
    union = (valid_a | valid_b).mean()
    assert abs(result.valid_fraction[1] - union) < 1e-9
    with open(result.dates_table) as handle:
        rows = list(csv.DictReader(handle))
    assert [r["acquisitions"] for r in rows] == ["1", "2"]
    assert f"Merged same-day acquisitions per pixel on 1 date(s): {day} (2 acquisitions)" in log.text()


@pytest.fixture(scope="module")
def monthly(data_dir):
    return str(data_dir / "monthly" / "worldcereal_preprocessed_inputs.nc")


def test_monthly_cube_without_b8a_needs_substitute_b8a(monthly, tmp_path):
    with pytest.raises(CameoInputError, match=r"band B8A is missing.*set SUBSTITUTE_B8A \(command line: "
                                              r"--substitute-b8a\) to take B8A from B08") as raised:
        prepare_stack([monthly], str(tmp_path / "refused"))
    assert "\n" not in str(raised.value) and not (tmp_path / "refused").exists()
    log = Log()
    result = prepare_stack([monthly], str(tmp_path / "out"), substitute_b8a=True, progress=log)
    stack = read_stack(result.s2_stack)
    # 2020-12 and 2021-01 are fill (65535) everywhere: dropped; the 10 others are complete.
    assert [d.month for d in stack.dates] == [11, 2, 3, 4, 5, 6, 7, 8, 9, 10]
    assert result.valid_fraction == [1.0] * 10
    b8a, b08 = stack.bands.index("B8A"), stack.bands.index("B08")
    assert np.array_equal(stack.values[:, b8a], stack.values[:, b08])
    dn = raw(monthly, "S2-L2A-B04")  # storage order; rows north-up in this file
    assert stack.values[1, 2, 10, 20] == np.float32(dn[3, 10, 20]) * np.float32(1e-4)
    assert stack.tags["CAMEO_SUBSTITUTIONS"] == "B8A=B08 on 10 of 10 dates (SUBSTITUTE_B8A)"
    assert "SUBSTITUTE_B8A: band B8A (865 nm, 20 m) is taken from B08" in log.text()
    assert "valid fraction is counted over the pixels that have data on at least one date" in log.text()


def _monthly_band_cube(monthly, path, dates):
    """Three months of the monthly cube as one band_data(time, band, y, x) cube without B8A."""
    from osgeo import gdal

    names = ["B02", "B03", "B04", "B05", "B06", "B07", "B08", "B11", "B12"]
    values = np.stack([raw(monthly, f"S2-L2A-{n}")[dates] for n in names], axis=1)
    root = gdal.OpenEx(monthly, gdal.OF_MULTIDIM_RASTER).GetRootGroup()
    x, y = root.OpenMDArray("x").ReadAsArray(), root.OpenMDArray("y").ReadAsArray()
    stamps = root.OpenMDArray("t").ReadAsArray()[dates]
    return write_band_cube_netcdf(path, values, stamps, "days since 1990-01-01", x, y, names, fill=65535)


def test_three_date_cube_prepares_embeds_every_date_and_makes_an_rgb(monthly, tmp_path):
    from models.embedding.job import embed_stacks
    from models.embedding.rgb import embedding_to_rgb

    cube = _monthly_band_cube(monthly, str(tmp_path / "three.nc"), [3, 4, 5])  # 2021-02..04
    stacks = prepare_stack([cube], str(tmp_path / "stack"), substitute_b8a=True)
    assert [d.isoformat() for d in stacks.dates] == ["2021-02-01", "2021-03-01", "2021-04-01"]
    log = Log()
    run = embed_stacks(stacks.s2_stack, str(tmp_path / "emb"), progress=log)
    assert run.dates == stacks.dates and len(run.files) == 3
    features = []
    for path, date in zip(run.files, run.dates):
        with rasterio.open(path) as dataset:
            assert dataset.tags()["CAMEO_DATE"] == date.isoformat()
            assert dataset.tags()["CAMEO_S2_SUBSTITUTIONS"].startswith("B8A=B08 on 3 of 3 dates")
            values = dataset.read()
        assert np.isfinite(values).all()  # every pixel of every date written
        features.append(values)
    assert not np.allclose(features[0], features[2])  # February and April differ
    text = log.text()
    assert "the stack has 3 date(s), fewer than the 11 of a model window; the missing 8 frame(s)" in text
    assert "band B8A was taken from B08 (B8A=B08 on 3 of 3 dates" in text
    rgb = embedding_to_rgb(run.index_path, str(tmp_path / "rgb.tif"), date=dt.date(2021, 3, 1))
    with rasterio.open(rgb if isinstance(rgb, str) else str(tmp_path / "rgb.tif")) as dataset:
        pixels = dataset.read()
    assert pixels.shape[0] >= 3 and pixels[:3].std(axis=(1, 2)).min() > 1


# ----------------------------------------------------------------------------- bad inputs

def _sha(path):
    digest = hashlib.sha256()
    for root, _, files in sorted(os.walk(path)) if os.path.isdir(path) else [("", [], [path])]:
        for name in sorted(files):
            with open(os.path.join(root, name), "rb") as handle:
                digest.update(handle.read())
    return digest.hexdigest()


def _bad_cubes(chip, folder):
    values, stamps, units, x, y = chip["10m"]
    few = (values[:2], stamps[:2], units)
    irregular_x = np.asarray(x, "float64").copy()
    irregular_x[10:] += 3.0
    os.makedirs(folder, exist_ok=True)
    return {
        "irregular coordinates": (
            write_band_cube_netcdf(f"{folder}/irregular.nc", *few, irregular_x, y, BANDS_10M),
            r"^'.*irregular\.nc' has irregular x coordinates \(spacing from 10 to 13\): CAMEO needs a regular "
            r"grid\. Resample the cube onto a regular grid first"),
        "irregular coordinates, one variable per band": (
            write_band_variables_netcdf(f"{folder}/irregular_vars.nc", *few, irregular_x, y, BANDS_10M),
            r"^'.*irregular_vars\.nc' has irregular x coordinates \(spacing from 10 to 13\)"),
        "crs nowhere": (
            write_band_cube_netcdf(f"{folder}/no_crs.nc", *few, x, y, BANDS_10M, crs=None),
            r"^'.*no_crs\.nc' variable band_data has no CRS: GDAL finds none, and the cube has no CF grid_mapping "
            r"or spatial_ref variable, no crs attribute \(global or on the variable\)\. Add the CRS"),
        "band coordinate without S2 names": (
            write_band_cube_netcdf(f"{folder}/colours.nc", *few, x, y, ["blue", "green", "red", "nir"]),
            r"^'.*colours\.nc' variable band_data: its band coordinate 'band' holds blue, green, red, nir, which "
            r"names no Sentinel-2 or Sentinel-1 band\. Name the bands in that coordinate"),
        "zarr that is not a raster": (
            write_band_cube_zarr(f"{folder}/table.zarr", None, None, None, None, None, None,
                                 extra_arrays={"station": (["n"], np.arange(5)),
                                               "gpp": (["n", "day"], np.ones((5, 3)))}),
            r"^'.*table\.zarr' holds no raster: none of its arrays has y and x dimensions \(arrays: .*gpp \(n, "
            r"day\).*\)\. Give a Zarr cube of Sentinel-2 or Sentinel-1 bands"),
    }


@pytest.mark.parametrize("case", ["irregular coordinates", "irregular coordinates, one variable per band",
                                  "crs nowhere", "band coordinate without S2 names",
                                  "zarr that is not a raster"])
def test_bad_cube_gives_one_clear_line_and_writes_nothing(chip, tmp_path, case):
    path, pattern = _bad_cubes(chip, str(tmp_path / "inputs"))[case]
    before = _sha(path)
    with pytest.raises(CameoInputError, match=pattern) as raised:
        prepare_stack([path], str(tmp_path / "new" / "out"))
    assert "\n" not in str(raised.value)
    assert not (tmp_path / "new").exists()
    assert _sha(path) == before


def test_bad_cube_on_the_command_line_exits_2_with_one_line(chip, tmp_path):
    path, _ = _bad_cubes(chip, str(tmp_path / "inputs"))["crs nowhere"]
    done = subprocess.run([sys.executable, "-m", "models.stack", "--s2", path, "--output-folder",
                           str(tmp_path / "out"), "--quiet"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: '") and "has no CRS" in lines[0]
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------- what SUBSTITUTE_B8A costs

def test_b8a_from_b08_changes_the_validation_chip_embeddings_by_the_documented_amount(data_dir, chip, tmp_path):
    """Embeddings with real B8A vs B8A taken from B08, validation chip with S1 (figures in the README).

    Run with -s to print median / 95th percentile / max of |difference| per feature.
    """
    from models.embedding.job import embed_stacks

    s2, s1 = chip_files(data_dir, CHIP)
    ten = next(p for p in s2 if "_10m_" in p)
    without = [b for b in BANDS_20M if b != "B8A"]
    values, stamps, units, x, y = chip["20m"]
    keep = [BANDS_20M.index(b) for b in without]
    cube = write_band_cube_netcdf(str(tmp_path / "c20_no_b8a.nc"), values[:, keep], stamps, units, x, y, without)
    real = prepare_stack(s2, str(tmp_path / "real"), s1=s1)
    substituted = prepare_stack([ten, cube], str(tmp_path / "subst"), s1=s1, substitute_b8a=True)
    assert substituted.dates == real.dates
    runs = [embed_stacks(r.s2_stack, str(tmp_path / f"emb{i}"), s1_path=r.s1_stack)
            for i, r in enumerate((real, substituted))]
    with rasterio.open(runs[0].index_path) as a, rasterio.open(runs[1].index_path) as b:
        first, second = a.read(), b.read()
    t = len(runs[0].dates)
    first = first.reshape(t, -1, *first.shape[1:])
    second = second.reshape(t, -1, *second.shape[1:])
    medians, p95s, spreads = [], [], []
    for e in range(first.shape[1]):
        both = np.isfinite(first[:, e]) & np.isfinite(second[:, e])
        diff = np.abs(first[:, e] - second[:, e])[both]
        medians.append(float(np.median(diff)))
        p95s.append(float(np.percentile(diff, 95)))
        spreads.append(float(np.std(first[:, e][both])))
        print(f"F{e + 1:02d}: median {medians[-1]:.4f}, p95 {p95s[-1]:.4f}, max {diff.max():.4f}, "
              f"std of the feature {spreads[-1]:.3f}, n {diff.size}")
    # The substitution changes every feature (B8A is no copy of B08), by far less than the features vary
    # (bundled 1.1.0: medians 0.009-0.053, 95th percentiles 0.05-0.24; README).
    assert all(m > 1e-4 for m in medians)
    assert max(m / s for m, s in zip(medians, spreads)) < 0.2 and max(p / s for p, s in zip(p95s, spreads)) < 0.8
