"""How preparestack recognises band names and dates in what users download (pure functions)."""

import datetime as dt

import pytest

from models.stack.sources import normalise_band, parse_cf_time, parse_date


@pytest.mark.parametrize("text, band", [
    ("B02", "B02"), ("B2", "B02"), ("B02 (490 nm)", "B02"), ("B2, central wavelength 490 nm", "B02"),
    ("S2-L2A-B02", "B02"), ("B8A", "B8A"), ("b8a", "B8A"), ("B8", "B08"), ("B12", "B12"),
    ("T31UDS_20180804T105021_B11_20m", "B11"), ("2017-08-04 B8A", "B8A"), ("SCL", "SCL"),
    ("SCL, Scene Classification", "SCL"), ("S1-SIGMA0-VV", "VV"), ("VH_dB", "VH"), ("sigma0_vv", "VV"),
    ("S2B_MSIL2A_20180804", None), ("B13", None), ("elevation", None), ("Band 1", None), ("B02 B03", None), ("", None),
])
def test_band_names(text, band):
    assert normalise_band(text) == band


@pytest.mark.parametrize("text, date", [
    ("S2_20180804.tif", dt.date(2018, 8, 4)), ("S2_2018-08-04.tif", dt.date(2018, 8, 4)),
    ("S2_2018_08_04.tif", dt.date(2018, 8, 4)),
    ("S2A_MSIL2A_20180804T105021_N0208_R051_T31UDS_20180804T134227.SAFE", dt.date(2018, 8, 4)),
    ("2022-01-25T10:50:21.024Z", dt.date(2022, 1, 25)),
    ("scene.tif", None), ("00002806639B424A", None), ("S2_20181304.tif", None), ("POLY_1101950", None),
])
def test_dates_in_names_and_tags(text, date):
    assert parse_date(text) == date


def test_cf_time_units():
    assert parse_cf_time("864109", "seconds since 2017-08-04 10:53:28") == dt.datetime(2017, 8, 14, 10, 55, 17)
    assert parse_cf_time(11262, "days since 1990-01-01") == dt.datetime(2020, 11, 1)
    assert parse_cf_time(5, "fortnights since 2000-01-01") is None
