"""Dependency probing and the install command users are told to run."""

import subprocess
import sys
from pathlib import Path

import numpy
import pytest

from models import environment
from models.environment import MissingDependencyError, install_command, require

REPO = str(Path(__file__).resolve().parent.parent)


def test_python_executable_is_this_venv_python():
    assert environment.python_executable() == sys.executable


def test_install_command_for_a_venv_keeps_numpy_and_needs_no_flags():
    command = install_command(["onnxruntime", "rasterio"])
    assert command == f'{sys.executable} -m pip install onnxruntime rasterio "numpy=={numpy.__version__}"'


def test_install_command_for_debian_system_python_passes_pep668_flags():
    # The system interpreter QGIS embeds on Debian 12 is "externally managed" (PEP 668).
    code = ("from models.environment import install_command; "
            "print(install_command(['onnxruntime']))")
    done = subprocess.run(["/usr/bin/python3", "-c", code], capture_output=True, text=True,
                          check=True, cwd=REPO)
    assert done.stdout.strip() == (
        f'/usr/bin/python3 -m pip install --user --break-system-packages onnxruntime '
        f'"numpy=={numpy.__version__}"')


def test_require_names_every_missing_package_and_the_fix(hide_packages):
    hidden = hide_packages("onnxruntime", "shapely")
    code = ("import sys; sys.path.insert(0, sys.argv[1]); "
            "from models.environment import require; require('numpy', 'onnxruntime', 'shapely')")
    done = subprocess.run([sys.executable, "-c", code, str(hidden)], capture_output=True, text=True,
                          cwd=REPO)
    assert done.returncode == 1
    last_line = done.stderr.strip().splitlines()[-1]
    assert last_line.startswith("models.environment.MissingDependencyError: CAMEO needs the "
                                "Python packages onnxruntime, shapely")
    assert "pip install onnxruntime shapely" in last_line
    assert "restart QGIS" in last_line


def test_require_passes_when_everything_is_installed():
    require("numpy", "onnxruntime")  # must not raise


def test_missing_dependency_error_lists_packages():
    error = MissingDependencyError(["rasterio"])
    assert error.packages == ["rasterio"]
    assert "package rasterio," in str(error)


@pytest.mark.parametrize("name", ["numpy", "onnxruntime", "rasterio", "pyproj", "shapely"])
def test_runtime_report_matches_the_imported_modules(name):
    module = __import__(name)
    assert environment.runtime_report()[name] == module.__version__
