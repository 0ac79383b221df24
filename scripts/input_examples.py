"""Write the sample chip in the layouts users download, for the README's "what you downloaded" table.

    .venv/bin/python scripts/input_examples.py OUT_FOLDER [--chip belgium_00002806639B424A] [--dates 12]

From the real WorldCereal chip (openEO NetCDF, one variable per band) it writes, for the
first `--dates` Sentinel-2 dates:
- geotiff/S2_YYYYMMDD_10m.tif and _20m.tif: one GeoTIFF per date and resolution, bands
  described B02, B03, ... (10 m: B02 B03 B04 B08; 20 m: B05 B06 B07 B8A B11 B12 SCL);
- geotiff_unnamed/: the same without band descriptions (give S2_BANDS);
- bands/S2_YYYYMMDD_<band>.tif: one file per band and date;
- cube.nc and cube.zarr: one 4-D variable band_data(time, band, y, x) of all 11 bands at
  10 m (the 20 m bands repeated 2 x 2, as stackstac / odc-stac resample them), band names in
  the band coordinate, the CRS only as a global attribute (NetCDF) or a rioxarray
  spatial_ref variable (Zarr): what DataArray.to_netcdf / to_zarr write;
- s1_geotiff/S1_YYYYMMDD.tif: Sentinel-1 VV and VH per date, described VV, VH, with the
  chip's scale factor.
Values are the chip's stored numbers (uint16 DN, SCL classes; S1 as stored), unchanged.
Needs the tests' helpers (tests/cube_fixtures.py), so run it from a checkout.
"""

import argparse
import datetime
import os
import sys

import numpy as np
import rasterio
from affine import Affine

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
sys.path.insert(0, os.path.join(HERE, ".."))

from cube_fixtures import chip_cube, write_band_cube_netcdf, write_band_cube_zarr  # noqa: E402

from models.sample_data import sample_data_dir  # noqa: E402
from models.stack.sources import parse_cf_time  # noqa: E402

BANDS_10M = ["B02", "B03", "B04", "B08"]
BANDS_20M = ["B05", "B06", "B07", "B8A", "B11", "B12", "SCL"]


def _grid(x, y):
    """Affine transform of pixel-centre coordinates x, y."""
    dx, dy = float(x[1] - x[0]), float(y[1] - y[0])
    return Affine(dx, 0.0, float(x[0]) - dx / 2, 0.0, dy, float(y[0]) - dy / 2)


def _write(path, values, names, transform, nodata, scale=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with rasterio.open(path, "w", driver="GTiff", width=values.shape[-1], height=values.shape[-2],
                       count=len(values), dtype=values.dtype, crs="EPSG:32631", transform=transform,
                       nodata=nodata, compress="deflate") as out:
        out.write(values)
        if scale is not None:  # the source's scale_factor, so that the values keep their meaning
            out.scales = [scale] * len(values)
        for band, name in enumerate(names or [], start=1):
            out.set_band_description(band, name)


def _dates(stamps, units):
    return [parse_cf_time(s, units).date() for s in stamps]


def write_s2_layouts(out, chip, n_dates):
    ten = [p for p in os.listdir(chip) if p.startswith("S2_L2A_10m")][0]
    twenty = [p for p in os.listdir(chip) if p.startswith("S2_L2A_20m")][0]
    v10, stamps, units, x10, y10 = chip_cube(os.path.join(chip, ten), BANDS_10M)
    v20, stamps20, _, x20, y20 = chip_cube(os.path.join(chip, twenty), BANDS_20M)
    assert list(stamps) == list(stamps20)
    v10, v20, stamps = v10[:n_dates], v20[:n_dates], stamps[:n_dates]
    for t, date in enumerate(_dates(stamps, units)):
        day = date.strftime("%Y%m%d")
        for folder, names in (("geotiff", True), ("geotiff_unnamed", False)):
            _write(f"{out}/{folder}/S2_{day}_10m.tif", v10[t], BANDS_10M if names else None, _grid(x10, y10), 0)
            _write(f"{out}/{folder}/S2_{day}_20m.tif", v20[t], BANDS_20M if names else None, _grid(x20, y20), 0)
        for values, bands, x, y in ((v10, BANDS_10M, x10, y10), (v20, BANDS_20M, x20, y20)):
            for b, band in enumerate(bands):
                _write(f"{out}/bands/S2_{day}_{band}.tif", values[t, b:b + 1], None, _grid(x, y), 0)
    # One cube on the 10 m grid, as stackstac / odc-stac give (20 m bands repeated 2 x 2).
    up = np.repeat(np.repeat(v20, 2, axis=2), 2, axis=3)[:, :, :v10.shape[2], :v10.shape[3]]
    cube = np.concatenate([v10, up], axis=1)
    names = BANDS_10M + BANDS_20M
    write_band_cube_netcdf(f"{out}/cube.nc", cube, stamps, units, x10, y10, names)
    write_band_cube_zarr(f"{out}/cube.zarr", cube, stamps, units, x10, y10, names)


def write_s1_layout(out, chip, n_dates):
    s1 = [p for p in os.listdir(chip) if p.startswith("S1_")][0]
    values, stamps, units, x, y = chip_cube(os.path.join(chip, s1), ["VV", "VH"])
    with rasterio.open(f'NETCDF:"{os.path.join(chip, s1)}":VV') as band:
        nodata, scale = band.nodata, band.scales[0]
    for t, date in enumerate(_dates(stamps, units)[:n_dates]):
        _write(f"{out}/s1_geotiff/S1_{date.strftime('%Y%m%d')}.tif", values[t], ["VV", "VH"], _grid(x, y), nodata,
               scale)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--chip", default="belgium_00002806639B424A")
    parser.add_argument("--dates", type=int, default=12, help="first N Sentinel-2 dates (default %(default)s)")
    args = parser.parse_args(argv)
    chip = os.path.join(sample_data_dir(), "chips", args.chip)
    write_s2_layouts(args.out, chip, args.dates)
    write_s1_layout(args.out, chip, 4 * args.dates)
    print(f"wrote {args.out} ({datetime.date.today()})")


if __name__ == "__main__":
    main()
