"""Sentinel-1 speckle filters (models/stack/speckle.py): statistics against hand computations.

Synthetic speckle is drawn as the physics has it: a field's linear power times a gamma
factor of mean 1 and shape L (L looks, Cu^2 = 1 / L); the real chip checks what users see.
"""

import glob
import os

import numpy as np
import pytest

from models.errors import CameoInputError
from models.stack import prepare_stack, read_stack
from models.stack.speckle import apply_filter, estimate_noise, local_moments

LOOKS = 5


@pytest.fixture(scope="module")
def two_fields():
    """A 0.01 | 0.04 linear-power step edge at column 40 under 5-look speckle."""
    truth = np.full((80, 80), 0.01)
    truth[:, 40:] = 0.04
    rng = np.random.default_rng(7)
    return truth, truth * rng.gamma(LOOKS, 1.0 / LOOKS, truth.shape)


def test_local_moments_are_the_window_mean_and_variance_of_valid_pixels():
    power = np.arange(36, dtype="float64").reshape(6, 6)
    power[2, 3] = np.nan
    count, mean, variance = local_moments(power, 3)
    window = power[1:4, 2:5]
    values = window[np.isfinite(window)]
    assert count[2, 3] == 8
    assert mean[2, 3] == pytest.approx(values.mean(), rel=1e-12)
    assert variance[2, 3] == pytest.approx(values.var(), rel=1e-9)
    corner = power[0:2, 0:2].ravel()  # the raster's corner: only the 4 pixels inside count
    assert count[0, 0] == 4 and mean[0, 0] == pytest.approx(corner.mean())


def test_noise_estimate_finds_the_number_of_looks(two_fields):
    _, speckled = two_fields
    noise = estimate_noise(speckled, 5)
    assert 1.0 / noise == pytest.approx(LOOKS, rel=0.15)


def test_lee_and_boxcar_remove_most_speckle_and_lee_keeps_the_edge(two_fields):
    truth, speckled = two_fields
    inside = (slice(5, 75), slice(5, 33))
    cv = lambda a: float(a[inside].std() / a[inside].mean())
    lee, boxcar = apply_filter(speckled, "lee", 5), apply_filter(speckled, "boxcar", 5)
    assert cv(speckled) == pytest.approx(1 / np.sqrt(LOOKS), rel=0.1)
    assert cv(lee) < 0.45 * cv(speckled) and cv(boxcar) < 0.35 * cv(speckled)
    # Next to the edge (the last column of the dark field) the boxcar mixes in the bright field;
    # Lee sees the window's variance is not speckle and keeps the pixel's own value.
    error = lambda a: float(np.median(np.abs(a[:, 39] - truth[:, 39]) / truth[:, 39]))
    assert error(boxcar) > 0.5
    assert error(lee) < 0.6 * error(boxcar)
    # Mean level is kept (speckle has mean 1): within 3 % inside each field.
    for cols in (slice(5, 33), slice(47, 75)):
        assert lee[5:75, cols].mean() == pytest.approx(truth[5:75, cols].mean(), rel=0.03)


def test_boxcar_value_is_the_hand_mean_and_no_data_stays_no_data():
    power = np.random.default_rng(1).uniform(0.01, 0.1, (9, 9))
    power[4, 5] = np.nan
    out = apply_filter(power, "boxcar", 3)
    window = power[3:6, 3:6]
    assert out[4, 4] == pytest.approx(np.nanmean(window), rel=1e-6)
    assert np.isnan(out[4, 5]) and np.isfinite(out).sum() == 80
    assert apply_filter(power, "none", 3) is power


def test_real_chip_speckle_filter_smooths_s1_inside_fields(data_dir, tmp_path):
    folder = os.path.join(data_dir, "chips", "belgium_0000280849BAC91C")
    s2, s1 = sorted(glob.glob(os.path.join(folder, "S2_*.nc"))), sorted(glob.glob(os.path.join(folder, "S1_*.nc")))
    stacks = {name: read_stack(prepare_stack(s2, str(tmp_path / name), s1=s1, s1_speckle_filter=name).s1_stack)
              for name in ("none", "lee")}
    rough = {name: float(np.nanmean(np.abs(np.diff(stack.values, axis=-1)))) for name, stack in stacks.items()}
    # Measured: 0.469 dB between horizontal neighbours without the filter, 0.219 with Lee 5x5.
    assert rough["lee"] < 0.6 * rough["none"]
    level = {name: float(np.nanmedian(stack.values[:, 0])) for name, stack in stacks.items()}
    assert abs(level["lee"] - level["none"]) < 0.3  # dB: the backscatter level is kept
    assert stacks["none"].tags["CAMEO_SPECKLE_FILTER"] == "none"


@pytest.mark.parametrize("option, value, words", [
    ("s1_speckle_filter", "refined", ["S1_SPECKLE_FILTER", "lee"]),
    ("s1_speckle_size", 4, ["S1_SPECKLE_SIZE", "3, 5, 7"]),
])
def test_bad_speckle_options_name_the_parameter_and_the_choices(data_dir, tmp_path, option, value, words):
    folder = os.path.join(data_dir, "chips", "belgium_0000280849BAC91C")
    with pytest.raises(CameoInputError) as error:
        prepare_stack(sorted(glob.glob(os.path.join(folder, "S2_*.nc"))), str(tmp_path / "out"),
                      s1=sorted(glob.glob(os.path.join(folder, "S1_*.nc"))), **{option: value})
    assert all(word in str(error.value) for word in words)
    assert not os.path.exists(tmp_path / "out")


def test_processing_parameters_reach_the_filter(qgis_process, data_dir, tmp_path):
    folder = os.path.join(data_dir, "chips", "belgium_0000280849BAC91C")
    s2, s1 = sorted(glob.glob(os.path.join(folder, "S2_*.nc"))), sorted(glob.glob(os.path.join(folder, "S1_*.nc")))
    extent = "574800,575100,5622000,5622300 [EPSG:32631]"
    qgis_process("run", "cameo:preparestack", "--json", "--", *[f"S2={p}" for p in s2], *[f"S1={p}" for p in s1],
                 f"EXTENT={extent}", "S1_SPECKLE_FILTER=1", "S1_SPECKLE_SIZE=3", f"OUTPUT_FOLDER={tmp_path / 'qgis'}")
    via_qgis = read_stack(str(tmp_path / "qgis" / "s1_stack.tif"))
    direct = read_stack(prepare_stack(s2, str(tmp_path / "direct"), s1=s1, extent=(574800, 5622000, 575100, 5622300),
                                      extent_crs="EPSG:32631", s1_speckle_filter="boxcar",
                                      s1_speckle_size=3).s1_stack)
    assert via_qgis.tags["CAMEO_SPECKLE_FILTER"] == "boxcar 3x3 (Sentinel-1 file pixels, linear power)"
    np.testing.assert_array_equal(via_qgis.values, direct.values)
    assert np.isfinite(direct.values).mean() > 0.9
