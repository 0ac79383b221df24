"""GPP data: FLUXNET2015 DD and date,GPP readers, footprint screen, windows, metrics, NIRv (real towers)."""

import datetime

import numpy as np
import pytest

from models.errors import CameoInputError
from models.gpp.metrics import gpp_metrics
from models.gpp.series import bin_weights, build_windows, daily_series, window_bins
from models.gpp.towers import UMOL_TO_G_C_PER_DAY, read_daily_gpp, read_footprint, units_factor

D = datetime.date
BE_LCR = "FLX_BE-Lcr_FLUXNET2015_FULLSET_DD_2019-2020_beta-3.csv"
FOOTPRINTS = {"DE-HoH": "DE-HoH_HohesHolz_S2_footprint_raw_2017-2024.csv",
              "FR-Fon": "FR-Fon_FontainebleauBarbeau_S2_footprint_raw_2017-2023.csv",
              "FI-Hyy": "FI-Hyy_Hyytiala_S2_footprint_raw_2017-2024.csv"}


@pytest.fixture(scope="module")
def towers(data_dir):
    return data_dir / "towers"


def test_fluxnet_dd_rows_of_be_lcr(towers):
    gpp = read_daily_gpp(str(towers / BE_LCR))
    assert gpp.kind == "fluxnet2015-dd"
    g = gpp.as_dict()
    # Hand-picked rows (TIMESTAMP, GPP_NT_VUT_REF, NEE_VUT_REF_QC) of the file:
    assert g[D(2019, 1, 1)] == pytest.approx(0.629764)      # QC 0.979167: kept
    assert g[D(2019, 1, 3)] == pytest.approx(-1.89786)      # QC 0.75: kept (negative GPP stays)
    assert D(2019, 1, 4) not in g                           # QC 0.625: dropped
    assert g[D(2019, 1, 21)] == pytest.approx(0.44603)      # QC 0.708333: kept (>= 0.7)
    assert D(2019, 1, 26) not in g                          # QC 0.6875: dropped
    assert D(2019, 5, 13) not in g                          # QC 0.666667: dropped
    assert g[D(2019, 7, 21)] == pytest.approx(14.0632)      # QC 1.0
    assert g[D(2020, 2, 28)] == pytest.approx(-0.782032)    # QC 0.729167
    assert len(gpp.dates) == 651 and gpp.dropped_quality == 80  # 731 days in the file
    assert gpp.dates == sorted(gpp.dates)


def test_date_gpp_tables_and_units(towers, tmp_path):
    gpp = read_daily_gpp(str(towers / "derived_daily_gpp_DE-HoH.csv"))
    assert gpp.kind == "table" and gpp.as_dict()[D(2015, 1, 1)] == pytest.approx(0.5904)
    assert len(gpp.dates) == 2037  # empty cells are missing days
    path = tmp_path / "umol.csv"
    path.write_text("date,GPP (umol m-2 s-1)\n2020-01-01,2.0\n2020-01-02,\n2020-01-03,-9999\n")
    g = read_daily_gpp(str(path))
    assert g.dates == [D(2020, 1, 1)] and g.gpp[0] == pytest.approx(2.0 * 12.011e-6 * 86400)
    assert UMOL_TO_G_C_PER_DAY == pytest.approx(1.0377504)
    for text in ("GPP_gC_m2_d", "GPP [g C m-2 d-1]", "g C m-2 day-1", "gC/m2/d"):
        assert units_factor(text) == 1.0, text
    assert units_factor("GPP") is None and units_factor("kg C ha-1 yr-1") is None


@pytest.mark.parametrize("text, message", [
    ("TIMESTAMP,GPP_DT_VUT_REF,NEE_VUT_REF_QC\n20190101,1.0,1.0\n", "without the column GPP_NT_VUT_REF"),
    ("TIMESTAMP_START,TIMESTAMP_END,GPP_NT_VUT_REF\n201901010000,201901010030,1.0\n", "half-hourly"),
    ("date,GPP\n2020-01-01,1.0\n", "cannot recognise the GPP units"),
    ("date,GPP_kgC_ha_yr\n2020-01-01,1.0\n", "cannot recognise the GPP units"),
    ("when,value\n2020-01-01,1.0\n", "neither a FLUXNET2015 file"),
])
def test_bad_gpp_files_give_one_clear_error(tmp_path, text, message):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(CameoInputError, match=message):
        read_daily_gpp(str(path))


def test_footprint_bands_and_screen(towers):
    fp = read_footprint(str(towers / FOOTPRINTS["DE-HoH"]))
    assert fp.dates[0] == D(2017, 4, 30)
    # First row: B2 0.020455778, B8 0.20641154, B8A 0.20887378, B12 0.09073692 -> CAMEO order
    assert fp.values[0, 0] == pytest.approx(0.020455778)
    assert fp.values[0, 6] == pytest.approx(0.20641154)
    assert fp.values[0, 7] == pytest.approx(0.20887378)
    assert fp.values[0, 9] == pytest.approx(0.09073692)
    assert fp.nirv[0] == pytest.approx(0.72771186 * 0.20641154, rel=1e-6)  # table NDVI x B8
    hyy = read_footprint(str(towers / FOOTPRINTS["FI-Hyy"]))
    assert len(hyy.dates) == 157 and hyy.dropped == {"missing": 0, "cloud_snow": 52}  # 209 rows
    assert np.all(hyy.values[:, 0] <= 0.08)
    raw = read_footprint(str(towers / FOOTPRINTS["FI-Hyy"]), screen=False)
    assert len(raw.dates) == 209


@pytest.mark.parametrize("site, pairs, r", [("DE-HoH", 100, 0.84), ("FR-Fon", 59, 0.89), ("FI-Hyy", 94, 0.61)])
def test_nirv_same_day_correlations_reproduce(towers, site, pairs, r):
    """The data README's anchors: NIRv vs GPP on same-day pairs of screened rows, 2017-2020."""
    fp = read_footprint(str(towers / FOOTPRINTS[site]))
    observed = read_daily_gpp(str(towers / f"derived_daily_gpp_{site}.csv")).as_dict()
    both = np.asarray([(v, observed[d]) for d, v in zip(fp.dates, fp.nirv) if d in observed and 2017 <= d.year <= 2020])
    assert len(both) == pairs
    assert round(float(np.corrcoef(both[:, 0], both[:, 1])[0, 1]), 2) == r


def test_daily_interpolation_and_window_builder_hand_example():
    obs = [0, 40, 100]
    values = np.array([[0.0], [80.0], [20.0]])
    daily = daily_series(obs, values, 0, 100)
    assert daily[11, 0] == pytest.approx(22.0)     # 0 + 80 * 11/40
    assert daily[70, 0] == pytest.approx(50.0)     # 80 + (20 - 80) * 30/60
    x, kept = build_windows(obs, values, [88, 89, 100, 101])
    assert list(kept) == [1, 2]                     # day 88's window starts on day -1; 101 is after the data
    assert x.shape == (2, 90, 1)
    assert x[0, 0, 0] == 0.0 and x[0, -1, 0] == pytest.approx(80 - 60 * 49 / 60)   # days 0 .. 89
    assert x[1, 0, 0] == pytest.approx(22.0) and x[1, -1, 0] == pytest.approx(20.0)  # days 11 .. 100
    # a 60-day gap is not interpolated when the maximum gap is 50 days
    _, kept = build_windows(obs, values, [89, 100], max_gap=50)
    assert list(kept) == []
    # an invalid observation is skipped: NaN at day 40 -> straight line from day 0 to 100,
    # a 100-day gap: only interpolated when the maximum gap allows it
    d = daily_series(obs, np.array([[0.0], [np.nan], [20.0]]), 0, 100, max_gap=100)
    assert d[50, 0] == pytest.approx(10.0)
    assert np.isnan(daily_series(obs, np.array([[0.0], [np.nan], [20.0]]), 0, 100)[50, 0])


def test_bin_weights_equal_the_daily_series_bin_means_per_pixel():
    """The exact linear weights give the 10-day means of the daily-interpolated series, and the
    same completeness, for every validity pattern (skipped observations, a gap over 90 days)."""
    rng = np.random.default_rng(1)
    obs = np.array([0, 7, 15, 40, 41, 120, 130, 150, 200])
    values = rng.normal(size=(9, 3, 5))
    values[2, :, 1] = np.nan
    values[1:5, 0, 3] = np.nan   # pixel 3: gap 0 -> 120 (> 90)
    targets = np.array([120, 130, 150, 200])
    for p in range(5):
        valid = np.isfinite(values[:, 0, p])
        weights, complete = bin_weights(obs, valid, targets)
        daily = daily_series(obs, values[:, :, p], targets.min() - 89, targets.max())
        for k, day in enumerate(targets):
            window = daily[day - targets.min():day - targets.min() + 90]
            assert complete[k] == bool(np.isfinite(window).all())
            if complete[k]:
                got = weights[k] @ np.nan_to_num(values[:, :, p])
                np.testing.assert_allclose(got.T, window_bins(window[None], 9)[0], rtol=1e-12, atol=1e-12)
    assert not bin_weights(obs, np.isfinite(values[:, 0, 3]), targets)[1][0]   # the gap: no window


def test_metrics_hand_computation():
    m = gpp_metrics([1, 2, 3, 4], [1.5, 2, 2.5, 5])
    assert m["n"] == 4
    assert m["rmse"] == pytest.approx(np.sqrt(0.375))
    assert m["nrmse"] == pytest.approx(np.sqrt(0.375) / 3)
    assert m["r2"] == pytest.approx(1 - 1.5 / 5)
    assert m["bias"] == pytest.approx(0.25)
