"""The bundled GPP model on the validation chip (Belgian cropland, 2018-08 .. 2019-11), through
qgis_process, with and without Sentinel-1: GPP a user can read (plausible in value and season).

Thresholds (g C m-2 d-1): never negative; 99th percentile <= 25; every December-February date's
median <= 3; every June-July date's median 3 .. 20 (winter GPP of Belgian cropland is about 0-2,
summer crops 5-20).
"""

import datetime
import json

import numpy as np
import pytest
import rasterio


@pytest.fixture(scope="module")
def validation_gpp(data_dir, qgis_process, tmp_path_factory):
    from models.embedding.job import embed_stacks
    from models.stack import prepare_stack

    chip = data_dir / "chips" / "belgium_0000280849BAC91C"
    root = tmp_path_factory.mktemp("validation-gpp")
    stacks = prepare_stack(sorted(str(p) for p in chip.glob("S2_*.nc")), str(root / "stack"),
                           s1=sorted(str(p) for p in chip.glob("S1_*.nc")))
    out = {}
    for name, s1 in (("with_s1", stacks.s1_stack), ("without_s1", None)):
        embeddings = embed_stacks(stacks.s2_stack, str(root / f"emb_{name}"), s1_path=s1).index_path
        done = qgis_process("run", "cameo:predictgpp", "--json", "--", f"EMBEDDINGS={embeddings}",
                            f"OUTPUT_FOLDER={root / f'gpp_{name}'}")
        gpp_vrt = json.loads(done.stdout[done.stdout.index("{"):])["results"]["GPP"]
        with rasterio.open(gpp_vrt) as data:
            values = data.read()
            tags = data.tags()
        out[name] = {"dates": [datetime.date.fromisoformat(d) for d in tags["CAMEO_DATES"].split(",")],
                     "gpp": values[0::2], "di": values[1::2], "threshold": float(tags["CAMEO_AOA_THRESHOLD"]),
                     "log": done.stdout + done.stderr}
    return out


@pytest.mark.parametrize("name", ["with_s1", "without_s1"])
def test_validation_chip_gpp_is_plausible(validation_gpp, name):
    run = validation_gpp[name]
    gpp = run["gpp"]
    finite = gpp[np.isfinite(gpp)]
    assert finite.size > 0.5 * gpp.size
    assert finite.min() >= 0
    assert np.percentile(finite, 99) <= 25
    checked = 0
    for date, g in zip(run["dates"], gpp):
        if not np.isfinite(g).any():
            continue
        median = float(np.nanmedian(g))
        if date.month in (12, 1, 2):
            assert median <= 3, f"{date}: winter median {median:.2f}"
            checked += 1
        if date.month in (6, 7):
            assert 3 <= median <= 20, f"{date}: summer median {median:.2f}"
            checked += 1
    assert checked >= 10  # 6 winter and 7 June-July dates have GPP on this chip


def test_sentinel1_does_not_change_gpp(validation_gpp):
    """GPP of S1 embeddings comes from the S2-only path the model was trained on: the same maps."""
    assert "Sentinel-2-only embedding" in validation_gpp["with_s1"]["log"]
    np.testing.assert_allclose(validation_gpp["with_s1"]["gpp"], validation_gpp["without_s1"]["gpp"],
                               rtol=1e-5, atol=1e-5)


def test_aoa_band_marks_part_of_the_chip(validation_gpp):
    run = validation_gpp["without_s1"]
    di = run["di"][np.isfinite(run["di"])]
    assert np.array_equal(np.isfinite(run["di"]), np.isfinite(run["gpp"]))
    assert di.min() >= 0 and 0 < run["threshold"] < 5
    outside = float(np.mean(di > run["threshold"]))
    assert 0 < outside < 0.5  # some pixel-dates are unlike the towers, most are not
