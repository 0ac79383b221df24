"""Real QGIS desktop under Xvfb: cameo:embed through its algorithm dialog, then a screenshot.

Starts Xvfb and `qgis --code tests/desktop_script.py` in a temporary profile with the
plugin linked and enabled (as `make setup` does for the user's profile). The script runs
the algorithm dialog's code path, shows one date with the Temporal Controller and saves
the map canvas; the screenshots are kept in runs/test-artifacts/desktop/.
"""

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import rasterio
from PIL import Image

from conftest import REPO, venv_site_packages

ARTIFACTS = REPO / "runs" / "test-artifacts" / "desktop"
TIMEOUT = 150  # s, for the whole desktop session; the script gives up 20 s earlier


def start_xvfb(log):
    """Xvfb on the first free display (it picks it and writes it to a pipe)."""
    read_end, write_end = os.pipe()
    xvfb = subprocess.Popen(["Xvfb", "-displayfd", str(write_end), "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
                            pass_fds=(write_end,), stdout=log, stderr=log, start_new_session=True)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        display = pipe.readline().strip()
    if not display:
        xvfb.kill()
        pytest.fail("Xvfb did not start: install the Debian package xvfb")
    return xvfb, f":{display}"


def stop(process):
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def make_profile(folder):
    """XDG_DATA_HOME whose default QGIS profile has `cameo` -> this checkout, enabled."""
    profile = folder / "QGIS" / "QGIS3" / "profiles" / "default"
    (profile / "python" / "plugins").mkdir(parents=True)
    (profile / "python" / "plugins" / "cameo").symlink_to(REPO, target_is_directory=True)
    (profile / "QGIS").mkdir()
    (profile / "QGIS" / "QGIS3.ini").write_text("[PythonPlugins]\ncameo=true\nprocessing=true\n")
    return folder


@pytest.fixture(scope="module")
def desktop_run(belgian_stacks, tmp_path_factory):
    with rasterio.open(belgian_stacks["S2_STACK"]) as data:
        left, top = data.bounds.left, data.bounds.top
    extent = f"{left + 100},{left + 500},{top - 500},{top - 100} [EPSG:32631]"  # 40 x 40 px
    work = tmp_path_factory.mktemp("desktop")
    out = work / "out"
    out.mkdir()
    config = {"params": {"S2_STACK": belgian_stacks["S2_STACK"], "S1_STACK": belgian_stacks["S1_STACK"],
                         "EXTENT": extent, "OUTPUT_FOLDER": str(work / "embeddings")},
              "date_index": 3, "other_date_index": 12, "out_dir": str(out), "timeout": TIMEOUT - 20}
    (work / "config.json").write_text(json.dumps(config))
    env = dict(os.environ)
    env.pop("QT_QPA_PLATFORM", None)  # conftest sets offscreen; the desktop runs on Xvfb
    env.update({"XDG_DATA_HOME": str(make_profile(work / "xdg")),
                "XDG_RUNTIME_DIR": str(work), "CAMEO_DESKTOP_CONFIG": str(work / "config.json"),
                "PYTHONPATH": venv_site_packages()})
    started = time.monotonic()
    with open(work / "xvfb.log", "w") as xlog, open(work / "qgis.log", "w") as qlog:
        xvfb, display = start_xvfb(xlog)
        env["DISPLAY"] = display
        qgis = subprocess.Popen(["qgis", "--noversioncheck", "--nologo", "--code",
                                 str(REPO / "tests" / "desktop_script.py")],
                                env=env, stdout=qlog, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            deadline = started + TIMEOUT
            while time.monotonic() < deadline and qgis.poll() is None:
                time.sleep(0.5)
            if qgis.poll() is None and (out / "result.json").exists():
                time.sleep(10)  # result written: give QGIS a moment to exit by itself
        finally:
            exit_code = qgis.poll()
            stop(qgis)
            stop(xvfb)
    seconds = time.monotonic() - started
    if not (out / "result.json").exists():
        pytest.fail(f"QGIS desktop wrote no result in {seconds:.0f} s (exit {exit_code}):\n"
                    + (work / "qgis.log").read_text()[-4000:])
    result = json.loads((out / "result.json").read_text())
    if "error" in result:
        pytest.fail(f"in QGIS desktop: {result['error']}\nlog: {result.get('log')}\n"
                    + (work / "qgis.log").read_text()[-4000:])
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for name in ("canvas.png", "canvas_other_date.png", "window.png", "result.json"):
        if (out / name).exists():
            shutil.copy(out / name, ARTIFACTS / name)
    print(f"\nQGIS desktop session: {seconds:.0f} s, exit code {exit_code}; "
          f"screenshot: {ARTIFACTS / 'canvas.png'} (main window: {ARTIFACTS / 'window.png'})")
    result["exit_code"] = exit_code
    return result


def canvas_pixels(path):
    image = np.asarray(Image.open(path).convert("RGB"))
    assert image.shape[0] >= 300 and image.shape[1] >= 300, f"{path}: {image.shape}"
    return image.reshape(-1, 3)


def test_dialog_loads_one_layer_per_date_into_one_group(desktop_run):
    dates = desktop_run["results"]["DATES"].split(",")
    assert len(dates) >= 13
    folder = desktop_run["results"]["OUTPUT_FOLDER"]
    groups = desktop_run["groups"]
    assert list(groups) == [f"CAMEO embeddings ({os.path.basename(folder)})"]
    layers = next(iter(groups.values()))
    assert sorted(layer["name"] for layer in layers) == dates
    assert desktop_run["layers_outside_groups"] == [] and desktop_run["project_layer_count"] == len(dates)
    for layer in layers:
        assert layer["temporal_active"] and layer["renderer"] == "QgsMultiBandColorRenderer"
        assert layer["temporal_range"] == [f"{layer['name']}T00:00:00", layer["temporal_range"][1], True, False]
        assert Path(layer["source"]) == Path(folder) / f"embedding_{layer['name']}.tif"


def test_temporal_controller_shows_the_chosen_date_only(desktop_run):
    dates = desktop_run["results"]["DATES"].split(",")
    layers = {layer["name"]: layer for layer in next(iter(desktop_run["groups"].values()))}
    shots = desktop_run["shots"]
    assert [shot["date"] for shot in shots] == [dates[3], dates[12]]
    for shot in shots:
        assert shot["map_settings_temporal"]
        assert shot["canvas_range"][0] == f"{shot['date']}T00:00:00"
        assert shot["visible_layers"] == [shot["date"]]  # one layer: that date's
        assert layers[shot["date"]]["temporal_range"][:2] == shot["canvas_range"][:2]


def test_canvas_screenshot_shows_the_embedding(desktop_run):
    first, other = (canvas_pixels(ARTIFACTS / name) for name in ("canvas.png", "canvas_other_date.png"))
    colours = np.unique(first, axis=0)
    assert len(colours) >= 200  # 40 x 40 embedding pixels stretched to RGB: many colours
    counts = np.unique(first, axis=0, return_counts=True)[1]
    assert counts.max() / len(first) < 0.5, "one colour (e.g. the white background) fills half the canvas"
    # Another date renders another image: the Temporal Controller filters what is drawn.
    assert np.mean(np.any(first != other, axis=1)) > 0.5
