"""cameo:preparestack in real QGIS: processing.run and the qgis_process command line."""

import json
import os

import numpy as np
import pytest

from models.stack import read_stack
from test_stack_helpers import chip_files


@pytest.fixture(scope="module")
def chip_inputs(data_dir):
    return chip_files(data_dir)


def test_processing_run_writes_stacks_that_load_with_band_names(qgis_app, chip_inputs, tmp_path):
    import processing
    from qgis.core import QgsRasterLayer

    s2, s1 = chip_inputs
    out = tmp_path / "out"
    result = processing.run("cameo:preparestack", {
        "S2": s2, "S1": s1, "EXTENT": "501400,501800,5629200,5629600 [EPSG:32631]",
        "MIN_VALID_FRACTION": 0.9, "MAX_S1_GAP_DAYS": 3, "OUTPUT_FOLDER": str(out),
    })
    assert result["S2_STACK"] == str(out / "s2_stack.tif")
    assert result["S1_STACK"] == str(out / "s1_stack.tif")
    assert result["DATES"] == str(out / "dates.csv")
    stack = read_stack(result["S2_STACK"])
    assert (stack.width, stack.height) == (40, 40)
    assert all(f >= 0.9 for f in stack.valid_fraction)
    s1_stack = read_stack(result["S1_STACK"])
    assert np.nanmax(s1_stack.s1_gap_days) <= 3

    layer = QgsRasterLayer(result["S2_STACK"], "s2")
    assert layer.isValid()
    assert layer.bandCount() == len(stack.dates) * 10
    assert layer.crs().authid() == "EPSG:32631"
    first = stack.dates[0].isoformat()
    assert f"{first} B02" in layer.bandName(1)
    assert f"{first} B8A" in layer.bandName(8)
    # QGIS reads the same numbers (NaN = no data).
    block = layer.dataProvider().block(8, layer.extent(), 40, 40)
    value, ok = block.value(5, 7), not block.isNoData(5, 7)
    expected = stack.values[0, 7, 5, 7]
    if np.isnan(expected):
        assert not ok
    else:
        assert ok and value == pytest.approx(float(expected), abs=1e-6)
    s1_layer = QgsRasterLayer(result["S1_STACK"], "s1")
    assert s1_layer.isValid() and f"{first} VH" in s1_layer.bandName(2)


def test_processing_run_bad_input_raises_a_processing_exception(qgis_app, data_dir, tmp_path):
    import processing
    from qgis.core import QgsProcessingException

    monthly = str(data_dir / "monthly" / "worldcereal_preprocessed_inputs.nc")
    with pytest.raises(QgsProcessingException, match="B8A is missing.*Bands found.*set SUBSTITUTE_B8A"):
        processing.run("cameo:preparestack", {"S2": [monthly], "OUTPUT_FOLDER": str(tmp_path / "out")})
    assert not (tmp_path / "out").exists()


def test_processing_run_with_substitute_b8a_prepares_the_monthly_cube(qgis_app, data_dir, tmp_path):
    import processing

    monthly = str(data_dir / "monthly" / "worldcereal_preprocessed_inputs.nc")
    result = processing.run("cameo:preparestack", {"S2": [monthly], "SUBSTITUTE_B8A": True,
                                                   "OUTPUT_FOLDER": str(tmp_path / "out")})
    stack = read_stack(result["S2_STACK"])
    assert len(stack.dates) == 10  # two months are fill everywhere
    assert stack.tags["CAMEO_SUBSTITUTIONS"] == "B8A=B08 on 10 of 10 dates (SUBSTITUTE_B8A)"
    b8a, b08 = stack.bands.index("B8A"), stack.bands.index("B08")
    assert np.array_equal(stack.values[:, b8a], stack.values[:, b08])


def test_qgis_process_reads_a_zarr_store(qgis_process, data_dir, tmp_path):
    from cube_fixtures import chip_cube, write_band_cube_zarr

    s2, _ = chip_files(data_dir, "belgium_0000280849BAC91C")
    ten = next(p for p in s2 if "_10m_" in p)
    twenty = next(p for p in s2 if "_20m_" in p)
    bands_20m = ["B05", "B06", "B07", "B8A", "B11", "B12", "SCL"]
    stores = [write_band_cube_zarr(str(tmp_path / "c10.zarr"), *chip_cube(ten, ["B02", "B03", "B04", "B08"]),
                                   ["B02", "B03", "B04", "B08"]),
              write_band_cube_zarr(str(tmp_path / "c20.zarr"), *chip_cube(twenty, bands_20m), bands_20m)]
    out = tmp_path / "out"
    results = json.loads(qgis_process("run", "cameo:preparestack", "--json", "--", *[f"S2={p}" for p in stores],
                                      f"OUTPUT_FOLDER={out}").stdout)["results"]
    direct = read_stack(results["S2_STACK"])
    from models.stack import prepare_stack
    reference = read_stack(prepare_stack(s2, str(tmp_path / "ref")).s2_stack)
    assert direct.dates == reference.dates
    assert np.array_equal(direct.values, reference.values, equal_nan=True)


def test_qgis_process_prepares_the_belgian_chip(qgis_process, qgis_app, chip_inputs, tmp_path):
    from qgis.core import QgsRasterLayer

    s2, s1 = chip_inputs
    out = tmp_path / "out"
    args = ["run", "cameo:preparestack", "--json", "--"] + [f"S2={p}" for p in s2] + [f"S1={s1[0]}",
                                                                                     f"OUTPUT_FOLDER={out}"]
    results = json.loads(qgis_process(*args).stdout)["results"]
    assert results == {"S2_STACK": str(out / "s2_stack.tif"), "S1_STACK": str(out / "s1_stack.tif"),
                       "DATES": str(out / "dates.csv")}
    stack = read_stack(results["S2_STACK"])
    assert len(stack.dates) == 58  # the 0.5 default threshold on this chip (see test_stack_prepare)
    assert sorted(os.listdir(out)) == ["dates.csv", "s1_stack.tif", "s2_stack.tif"]
    layer = QgsRasterLayer(results["S2_STACK"], "s2")
    assert layer.isValid() and f"{stack.dates[-1].isoformat()} B12" in layer.bandName(layer.bandCount())


def test_qgis_process_bad_input_fails_with_the_message(qgis_process, data_dir, tmp_path):
    monthly = str(data_dir / "monthly" / "worldcereal_preprocessed_inputs.nc")
    done = qgis_process("run", "cameo:preparestack", f"--S2={monthly}", f"--OUTPUT_FOLDER={tmp_path / 'out'}",
                        check=False)
    assert done.returncode != 0
    output = done.stdout + done.stderr
    assert "Sentinel-2 band B8A is missing" in output and "Bands found" in output
    assert "Traceback" not in output
    assert not (tmp_path / "out").exists()


def test_predictgpp_logs_a_b8a_substitution(qgis_app, data_dir, tmp_path):
    import processing
    from qgis.core import QgsProcessingFeedback

    from models.embedding.job import embed_stacks
    from models.stack import prepare_stack

    class Log(QgsProcessingFeedback):
        lines = []

        def pushInfo(self, info):  # noqa: N802 - QGIS API
            self.lines.append(info)
            super().pushInfo(info)

    monthly = str(data_dir / "monthly" / "worldcereal_preprocessed_inputs.nc")
    stacks = prepare_stack([monthly], str(tmp_path / "stack"), substitute_b8a=True,
                           extent=(664000, 5611120, 664320, 5611440))
    run = embed_stacks(stacks.s2_stack, str(tmp_path / "emb"))
    log = Log()
    processing.run("cameo:predictgpp", {"EMBEDDINGS": run.index_path, "OUTPUT_FOLDER": str(tmp_path / "gpp")},
                   feedback=log)
    assert ("Note: these embeddings come from a stack whose B8A was taken from B08 (B8A=B08 on 10 of 10 dates "
            "(SUBSTITUTE_B8A)); the GPP inherits that difference.") in log.lines
