"""The pixel inspector under Xvfb: a real QTest click on a canvas fills the dock with the
pixel's series; they equal the rasters' values there. Screenshots kept in
runs/test-artifacts/inspector/."""

import csv
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import rasterio
from PIL import Image

from conftest import REPO, venv_site_packages
from test_desktop_screenshot import start_xvfb, stop

ARTIFACTS = REPO / "runs" / "test-artifacts" / "inspector"
ROW, COL = 30, 20
DATE = "2019-06-30"


@pytest.fixture(scope="module")
def run_folder(validation_stacks, validation_embeddings, tmp_path_factory):
    """A run as the chain leaves it: run/stack, run/embeddings, run/gpp (bundled GPP model)."""
    from models.gpp.predict import predict_gpp

    run = tmp_path_factory.mktemp("inspector-run")
    os.symlink(os.path.dirname(validation_stacks["S2_STACK"]), run / "stack")
    os.symlink(os.path.dirname(validation_embeddings.index_path), run / "embeddings")
    predict_gpp(str(run / "embeddings" / "embeddings.vrt"), str(run / "gpp"))
    return run


@pytest.fixture(scope="module")
def clicked(run_folder, plugins_dir, tmp_path_factory):
    work = tmp_path_factory.mktemp("inspector")
    vrt = run_folder / "embeddings" / "embeddings.vrt"
    with rasterio.open(vrt) as data:
        point = data.transform * (COL + 0.5, ROW + 0.5)
    config = {"plugins_dir": str(plugins_dir), "layer": str(vrt), "point": list(point), "date": DATE,
              "out_dir": str(work)}
    (work / "config.json").write_text(json.dumps(config))
    env = dict(os.environ)
    env.pop("QT_QPA_PLATFORM", None)  # a real X server, not offscreen
    with open(work / "xvfb.log", "w") as log:
        xvfb, display = start_xvfb(log)
        try:
            env.update({"DISPLAY": display, "XDG_RUNTIME_DIR": str(work), "PYTHONPATH": venv_site_packages()})
            done = subprocess.run([sys.executable, str(REPO / "tests" / "inspector_script.py"),
                                   str(work / "config.json")], env=env, capture_output=True, text=True,
                                  timeout=120)
        finally:
            stop(xvfb)
    assert (work / "result.json").exists(), done.stdout + done.stderr
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for name in ("inspector.png", "plots.png"):
        shutil.copy(work / name, ARTIFACTS / name)
    return json.loads((work / "result.json").read_text()), work


def test_a_click_fills_the_dock_with_that_pixels_series(clicked, run_folder):
    result, _ = clicked
    assert (result["row"], result["col"]) == (ROW, COL)
    assert result["label"].startswith(f"row {ROW}, column {COL}")
    with rasterio.open(run_folder / "embeddings" / "embeddings.vrt") as data:
        dates = data.tags()["CAMEO_DATES"].split(",")
        embedding = data.read()[:, ROW, COL].reshape(len(dates), 7)
    lines = result["plotted"]["embedding"]
    assert len(lines) == 7
    for f, (x, y) in enumerate(lines):
        assert x == dates
        np.testing.assert_allclose(y, embedding[:, f], rtol=1e-7)
    with rasterio.open(run_folder / "gpp" / "gpp.vrt") as data:
        gpp = data.read()[0::2, ROW, COL]  # bands GPP, AOA_DI per date
    (x, y), = result["plotted"]["GPP (g C m-2 d-1)"]
    np.testing.assert_allclose(y, gpp, rtol=1e-7, equal_nan=True)
    assert np.isfinite(gpp).sum() >= 10
    with rasterio.open(run_folder / "stack" / "s2_stack.tif") as data:
        bands = data.tags()["CAMEO_BANDS"].split(",")
        values = data.read()[:, ROW, COL].reshape(-1, len(bands)).astype(np.float64)
    ndvi = (values[:, bands.index("B08")] - values[:, bands.index("B04")]) / (
        values[:, bands.index("B08")] + values[:, bands.index("B04")])
    (x, y), = result["plotted"]["NDVI (dots: true colour)"]
    np.testing.assert_allclose(y, ndvi, rtol=1e-7, equal_nan=True)
    assert result["date_lines"] == [[DATE]] * 3  # the Temporal Controller's date on every plot


def test_exports_and_screenshot(clicked):
    result, work = clicked
    rows = list(csv.DictReader(open(work / "series.csv", encoding="utf-8")))
    first = next(r for r in rows if r["series"] == "embedding" and r["name"] == "F01")
    assert float(first["value"]) == pytest.approx(result["plotted"]["embedding"][0][1][0], rel=1e-6)
    assert {r["series"] for r in rows} == {"embedding", "gpp", "s2"}
    for name in ("inspector.png", "plots.png"):
        image = np.asarray(Image.open(work / name).convert("RGB")).astype(int)
        assert image.shape[0] > 300 and image.shape[1] > 300
        # Not blank: many distinct colours (lines, swatches, text), not one flat fill.
        assert len(np.unique(image.reshape(-1, 3), axis=0)) > 50
        assert image.std() > 10


def test_any_layer_of_the_run_leads_to_the_same_series(run_folder):
    """Clicking the GPP layer or one date's embedding file finds the same files and numbers."""
    from models.analysis.pixel_series import pixel_series

    vrt = run_folder / "embeddings" / "embeddings.vrt"
    with rasterio.open(vrt) as data:
        x, y = data.transform * (COL + 0.5, ROW + 0.5)
    reference = pixel_series(str(vrt), x, y)
    assert set(reference.sources) == {"embeddings", "gpp", "s2_stack"}
    for layer in (run_folder / "gpp" / "gpp.vrt", run_folder / "embeddings" / f"embedding_{DATE}.tif"):
        series = pixel_series(str(layer), x, y)
        assert series.sources == reference.sources
        np.testing.assert_array_equal(series.embeddings, reference.embeddings)
        np.testing.assert_array_equal(series.gpp, reference.gpp)
        np.testing.assert_array_equal(series.ndvi, reference.ndvi)
    with rasterio.open(run_folder / "gpp" / "gpp.vrt") as data:
        di = data.read()[1::2, ROW, COL]
        threshold = float(data.tags()["CAMEO_AOA_THRESHOLD"])
    np.testing.assert_array_equal(reference.gpp_aoa_di, di)   # for the outside-AOA marks of the plot
    assert reference.aoa_threshold == threshold
    assert pixel_series(str(vrt), x - 10_000, y) is None  # outside the raster
