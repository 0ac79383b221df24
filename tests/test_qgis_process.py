"""The plugin through the real `qgis_process.bin` command line, as users script it."""

import json
import re
import subprocess
import sys

import numpy
import onnxruntime
from osgeo import gdal

from onnx_models import write_affine_model


def test_list_shows_the_cameo_algorithms(qgis_process):
    listing = qgis_process("list").stdout
    assert "cameo:checkinstall\tCheck installation" in listing
    assert "cameo:modelinfo\tDescribe ONNX model" in listing


def test_checkinstall_json_reports_the_installed_versions(qgis_process, data_dir):
    results = json.loads(qgis_process("run", "cameo:checkinstall", "--json").stdout)["results"]
    assert results["ONNXRUNTIME_VERSION"] == onnxruntime.__version__
    assert results["NUMPY_VERSION"] == numpy.__version__
    assert results["GDAL_VERSION"] == gdal.__version__
    assert results["SAMPLE_DATA_FOUND"] is True
    assert results["SAMPLE_DATA_DIR"] == str(data_dir)
    assert results["MISSING_PACKAGES"] == ""


def test_checkinstall_follows_cameo_data(qgis_process, tmp_path):
    done = qgis_process("run", "cameo:checkinstall", "--json", env={"CAMEO_DATA": str(tmp_path)})
    results = json.loads(done.stdout)["results"]
    assert results["SAMPLE_DATA_DIR"] == str(tmp_path)
    assert results["SAMPLE_DATA_FOUND"] is False


def test_without_onnxruntime_the_plugin_loads_and_names_the_fix(qgis_process, hide_packages):
    hidden = hide_packages("onnxruntime")
    listing = qgis_process("list", python_path_first=hidden).stdout
    assert "cameo:checkinstall" in listing and "cameo:modelinfo" in listing

    report = qgis_process("run", "cameo:checkinstall", "--json", python_path_first=hidden)
    results = json.loads(report.stdout)["results"]
    assert results["ONNXRUNTIME_VERSION"] == "not installed"
    assert results["MISSING_PACKAGES"] == "onnxruntime"
    # The Python QGIS embeds (/usr/bin/python3.11 on Debian 12, python3 on 13), the numpy it has.
    python, rest = results["INSTALL_COMMAND"].split(" ", 1)
    assert re.fullmatch(rf"/usr/bin/python3(\.{sys.version_info.minor})?", python), python
    assert rest == f'-m pip install --user --break-system-packages onnxruntime "numpy=={numpy.__version__}"'
    assert subprocess.run([python, "-c", "import numpy; print(numpy.__version__)"], capture_output=True,
                          text=True, check=True).stdout.strip() == numpy.__version__

    failed = qgis_process("run", "cameo:modelinfo", "--INPUT=/nonexistent.onnx",
                          python_path_first=hidden, check=False)
    assert failed.returncode != 0
    output = failed.stdout + failed.stderr
    assert "CAMEO needs the Python package onnxruntime" in output
    assert results["INSTALL_COMMAND"] in output
    assert "Traceback" not in output


def test_without_rasterio_the_plugin_loads_and_embed_names_the_fix(qgis_process, hide_packages, tmp_path):
    hidden = hide_packages("rasterio")
    listing = qgis_process("list", python_path_first=hidden).stdout
    for algorithm in ("checkinstall", "modelinfo", "preparestack", "embed", "embeddingrgb", "similarity", "cluster",
                      "classify"):
        assert f"cameo:{algorithm}\t" in listing
    source = tmp_path / "any.tif"
    source.write_bytes(b"")
    failed = qgis_process("run", "cameo:embed", f"--S2_STACK={source}", f"--OUTPUT_FOLDER={tmp_path / 'out'}",
                          python_path_first=hidden, check=False)
    output = failed.stdout + failed.stderr
    assert failed.returncode != 0
    assert "CAMEO needs the Python package rasterio" in output and "pip install" in output
    assert "Traceback" not in output
    assert not (tmp_path / "out").exists()


def test_modelinfo_json_on_a_real_model(qgis_process, tmp_path):
    folder = tmp_path / "dir with spaces é"  # paths users really have
    folder.mkdir()
    path = write_affine_model(folder / "m.onnx", {"modality": "S2"})
    done = qgis_process("run", "cameo:modelinfo", "--json", f"--INPUT={path}")
    assert json.loads(json.loads(done.stdout)["results"]["METADATA"]) == {"modality": "S2"}
