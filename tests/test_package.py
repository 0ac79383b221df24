"""The plugin zip: what the QGIS plugin repository expects, and it loads in QGIS."""

import configparser
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
REQUIRED_METADATA = ("name", "qgisMinimumVersion", "description", "about", "version", "author",
                     "email", "repository", "tracker", "tags", "icon", "hasProcessingProvider",
                     "experimental")


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    output = tmp_path_factory.mktemp("dist") / "cameo.zip"
    subprocess.run([sys.executable, str(REPO / "scripts" / "package.py"), "--output", str(output)],
                   check=True, capture_output=True)
    return output


def test_zip_has_one_top_folder_named_cameo(package):
    names = zipfile.ZipFile(package).namelist()
    assert {name.split("/")[0] for name in names} == {"cameo"}
    for required in ("metadata.txt", "__init__.py", "plugin.py", "LICENSE",
                     "algorithms/provider.py", "resources/icon.png", "ui/missing_dependencies.py"):
        assert f"cameo/{required}" in names


def test_zip_has_no_development_files(package):
    for name in zipfile.ZipFile(package).namelist():
        parts = name.split("/")
        assert parts[1] not in ("tests", ".venv", ".git", ".ci", "scripts", "benchmarks"), name
        assert "__pycache__" not in parts and not name.endswith(".pyc"), name
        assert not name.startswith("cameo/models/train/"), name  # torch-only training code
        assert not name.startswith("cameo/models/distributed/"), name  # Dask command line


def test_zip_is_under_the_25_mb_limit(package):
    assert os.path.getsize(package) < 25 * 1024 * 1024


def test_metadata_is_complete(package):
    parser = configparser.ConfigParser()
    parser.read_string(zipfile.ZipFile(package).read("cameo/metadata.txt").decode("utf-8"))
    general = parser["general"]
    assert [key for key in REQUIRED_METADATA if not general.get(key)] == []
    assert general["qgisMinimumVersion"] == "3.22"
    # What the plugin site and QGIS 4 read to offer CAMEO to QGIS 4.x (Qt6) users.
    assert general["qgisMaximumVersion"] == "4.99"
    assert "supportsQt6" not in general  # deprecated: qgisMaximumVersion alone decides
    assert general["hasProcessingProvider"] == "yes"
    assert f"cameo/{general['icon']}" in zipfile.ZipFile(package).namelist()


def test_unzipped_plugin_loads_in_qgis_process(package, tmp_path, qgis_process):
    plugins = tmp_path / "plugins"
    zipfile.ZipFile(package).extractall(plugins)
    listing = qgis_process("list", env={"QGIS_PLUGINPATH": str(plugins)}).stdout
    assert "cameo:checkinstall" in listing
