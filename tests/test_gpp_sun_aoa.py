"""The sun (FAO-56 radiation), monthly tower GPP and the area of applicability, against hand values."""

import datetime
import math

import numpy as np
import pytest

from models.errors import CameoInputError
from models.gpp.aoa import AreaOfApplicability, fit_aoa
from models.gpp.sun import check_latitude, day_of_year, toa_radiation, toa_radiation_days
from models.gpp.towers import read_gpp


def test_toa_radiation_fao56_example_8():
    """FAO-56 Example 8: 20 deg S on 3 September (day 246) receives Ra = 32.2 MJ m-2 d-1."""
    assert day_of_year([datetime.date(2015, 9, 3).toordinal()])[0] == 246
    assert toa_radiation(-20.0, 246) == pytest.approx(32.2, abs=0.05)


def test_toa_radiation_follows_the_sun():
    days = [datetime.date(2019, m, 21).toordinal() for m in (3, 6, 9, 12)]
    belgium = toa_radiation_days(50.75, days)
    assert belgium[1] > 40 and belgium[3] < 8 and belgium[1] > belgium[0] > belgium[3]
    # polar night and polar day come out as 0 and as more than the equator gets
    arctic = toa_radiation_days(75.0, days)
    assert arctic[3] == 0.0 and arctic[1] > toa_radiation_days(0.0, days)[1]
    # seasons mirror across the equator (to within the Earth-Sun distance term)
    assert toa_radiation_days(-50.75, days)[3] == pytest.approx(belgium[1], rel=0.08)


@pytest.mark.parametrize("bad", ["north", 91, -95, 5630000])
def test_bad_latitude_is_refused(bad):
    with pytest.raises(CameoInputError, match="latitude"):
        check_latitude(bad)


def test_monthly_fluxnet_mm_file_as_downloaded(data_dir):
    """DE-Kli FULLSET MM: TIMESTAMP YYYYMM, months kept with NEE_VUT_REF_QC >= 0.75, -9999 missing."""
    gpp = read_gpp(str(data_dir / "towers" / "FLX_DE-Kli_FLUXNET2015_FULLSET_MM_2004-2020_beta-3.csv"))
    assert gpp.resolution == "monthly" and gpp.kind == "fluxnet2015-mm"
    months = dict(zip(gpp.dates, gpp.gpp))
    assert months[datetime.date(2017, 5, 1)] == pytest.approx(5.2332)     # row 201705, QC 0.884
    assert datetime.date(2017, 6, 1) not in months                       # QC below 0.75
    assert sum(2017 <= d.year <= 2020 for d in gpp.dates) == 45
    table = read_gpp(str(data_dir / "towers" / "derived_monthly_gpp_DE-Kli.csv"))
    assert table.resolution == "monthly"
    assert {d: v for d, v in zip(table.dates, table.gpp) if d.year >= 2017} == pytest.approx(
        {d: v for d, v in months.items() if d.year >= 2017}, abs=1e-4)


def test_monthly_table_errors(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text("date,GPP_gC_m2_d\n2019-01,1.0\n2019-01,2.0\n")
    with pytest.raises(CameoInputError, match="2019-01 appears twice"):
        read_gpp(str(path))
    path.write_text("date,GPP_gC_m2_d\n2019/01,1.0\n")
    with pytest.raises(CameoInputError, match="not a date .* or a month"):
        read_gpp(str(path))


def test_aoa_against_a_hand_computation():
    """Four training points on a square, two folds, importance (1, 0.5): every number by hand."""
    features = np.array([[0, 0], [2, 0], [0, 2], [2, 2]], float)
    aoa = fit_aoa(features, [0, 0, 1, 1], [2.0, 1.0])       # weights = importance / max = (1, 0.5)
    np.testing.assert_allclose(aoa.center, [1, 1])
    np.testing.assert_allclose(aoa.scale, [1, 1])
    np.testing.assert_allclose(aoa.weights, [1, 0.5])
    # scaled, weighted points (+-1, +-0.5): pair distances 2, 1, sqrt5, sqrt5, 1, 2
    mean_distance = (6 + 2 * math.sqrt(5)) / 6
    assert aoa.mean_distance == pytest.approx(mean_distance)
    # each point's nearest point of the other fold is 1 away: all training DIs equal, IQR 0
    assert aoa.threshold == pytest.approx(1 / mean_distance)
    # a new point (1, 3) -> scaled (0, 2) -> weighted (0, 1): nearest (+-1, 0.5) at sqrt(1.25)
    di = aoa.dissimilarity([[1, 3], [0, 0], [np.nan, 1]])
    assert di[0] == pytest.approx(math.sqrt(1.25) / mean_distance)
    assert di[1] == pytest.approx(0.0) and np.isnan(di[2])
    again = AreaOfApplicability.from_metadata(aoa.to_metadata())
    np.testing.assert_allclose(again.dissimilarity([[1, 3]]), di[:1], rtol=1e-6)
    assert again.threshold == aoa.threshold


def test_aoa_threshold_is_q3_plus_1_5_iqr():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(60, 3))
    folds = np.repeat([0, 1, 2], 20)
    aoa = fit_aoa(features, folds, [1, 1, 1])
    train = (features - features.mean(0)) / features.std(0)
    d = np.sqrt(((train[:, None] - train[None]) ** 2).sum(-1))
    mean_distance = d[~np.eye(60, dtype=bool)].mean()
    d[folds[:, None] == folds[None]] = np.inf
    di = d.min(1) / mean_distance
    q1, q3 = np.percentile(di, [25, 75])
    assert aoa.threshold == pytest.approx(q3 + 1.5 * (q3 - q1))
