"""CAMEO on the numpy QGIS ships: 1.24 (Debian 12, QGIS 3.22) and 2.x (Debian 13, QGIS 3.44).

The suite runs under both in CI; these tests pin down the parts where the two differ:
the numpy in use must be the system one (never a pip copy), GDAL's numpy bindings must
work with it, float32 arithmetic must stay float32 under NumPy 2's promotion rules
(NEP 50), and no name that NumPy 2 removed may be used.
"""

import ast
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np
import pytest

from models.runtime.specs import ModalitySpec, preprocess
from models.stack.scaling import reflectance_converter
from models.stack.sentinel1 import linear_power_converter

REPO = Path(__file__).resolve().parent.parent
# Names NumPy 2.0 removed from the main namespace (NEP 52), with their replacements.
REMOVED_IN_NUMPY2 = {
    "float_": "np.float64", "complex_": "np.complex128", "string_": "np.bytes_",
    "unicode_": "np.str_", "NaN": "np.nan", "NAN": "np.nan", "Inf": "np.inf", "Infinity": "np.inf",
    "infty": "np.inf", "PINF": "np.inf", "NINF": "-np.inf", "product": "np.prod",
    "cumproduct": "np.cumprod", "sometrue": "np.any", "alltrue": "np.all", "asfarray": "np.asarray(x, float)",
    "row_stack": "np.vstack", "round_": "np.round", "int0": "np.intp", "bool8": "np.bool_",
    "find_common_type": "np.result_type", "cast": "x.astype", "mat": "np.asmatrix",
    "trapz": "scipy or np.trapezoid (2.x only)", "in1d": "np.isin", "safe_eval": "ast.literal_eval",
}


def test_numpy_is_the_system_one_that_qgis_and_gdal_are_built_against():
    system = subprocess.run(["/usr/bin/python3", "-c", "import numpy; print(numpy.__version__, numpy.__file__)"],
                            capture_output=True, text=True, check=True).stdout.split()
    assert [np.__version__, np.__file__] == system
    assert np.__file__.startswith("/usr/lib/python3/dist-packages/")
    venv_numpy = list(Path(sysconfig.get_paths()["purelib"]).glob("numpy*"))
    assert venv_numpy == [] or sys.prefix == sys.base_prefix, f"pip put numpy into the venv: {venv_numpy}"


def test_gdal_array_round_trips_float32_with_nan_and_uint16():
    from osgeo import gdal, gdal_array

    assert gdal_array.NumericTypeCodeToGDALTypeCode(np.float32) == gdal.GDT_Float32
    floats = np.array([[0.25, np.nan], [-1.5, 3e-4]], dtype=np.float32)
    counts = np.array([[0, 65535], [1000, 12345]], dtype=np.uint16)
    for values in (floats, counts):
        dataset = gdal_array.OpenArray(values)
        back = dataset.GetRasterBand(1).ReadAsArray()
        assert back.dtype == values.dtype
        np.testing.assert_array_equal(back, values)


def _spec(add, multiply):
    return ModalitySpec(modality="S2", bands=["B02", "B03"], units="reflectance", clip_min=0.0, clip_max=1.6,
                        add=add, multiply=multiply, mean=np.array([0.5, 1.0], np.float32),
                        std=np.array([2.0, 4.0], np.float32), fill=0.0, window=15, frames=11, halo=7,
                        feature_channels=3, latent_dim=7)


def test_model_input_scaling_stays_float32_and_matches_a_hand_computation():
    values = np.array([[[[0.1]], [[2.0]]], [[[np.nan]], [[0.3]]]], np.float32)  # 2 frames x 2 bands
    out = preprocess(values, _spec(add=0.25, multiply=3.0))
    assert out.dtype == np.float32 and out.shape == (2, 3, 1, 1)
    # frame 0: B02 (0.1 + 0.25) * 3 = 1.05 -> (1.05 - 0.5) / 2 = 0.275; B03 clipped to 1.6:
    # (1.6 + 0.25) * 3 = 5.55 -> (5.55 - 1) / 4 = 1.1375; valid. Frame 1: NaN -> fill 0, invalid.
    np.testing.assert_allclose(out[:, :, 0, 0], [[0.275, 1.1375, 1.0], [0.0, 0.0, 0.0]], rtol=1e-6)


def test_reflectance_and_backscatter_conversions_stay_float32():
    dn = np.array([1000.0, 11000.0], np.float32)
    reflectance = reflectance_converter(-1000, 1e-4, 0)(dn.copy())
    assert reflectance.dtype == np.float32
    np.testing.assert_allclose(reflectance, [0.0, 1.0], atol=1e-7)

    class Ref:
        scale, offset = 1.0, 0.0

    linear = linear_power_converter(Ref, "dB")(np.array([-10.0, 0.0], np.float32))
    assert linear.dtype == np.float32
    np.testing.assert_allclose(linear, [0.1, 1.0], rtol=1e-6)


def _removed_names_used(source, where):
    return [f"{where}:{node.lineno}: np.{node.attr} is gone in NumPy 2 - write {REMOVED_IN_NUMPY2[node.attr]}"
            for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
            and node.value.id in ("np", "numpy") and node.attr in REMOVED_IN_NUMPY2]


@pytest.mark.parametrize("folder", ["models", "algorithms", "ui", "scripts", "benchmarks", "tests"])
def test_no_name_removed_in_numpy2_is_used(folder):
    found = [line for path in sorted((REPO / folder).rglob("*.py"))
             for line in _removed_names_used(path.read_text(encoding="utf-8"), path.relative_to(REPO))]
    assert found == []


def test_the_removed_name_check_finds_each_use():
    source = "import numpy as np\nx = np.float_(1)\ny = np.NaN * np.nan\n"
    assert sorted(_removed_names_used(source, "sample.py")) == [
        "sample.py:2: np.float_ is gone in NumPy 2 - write np.float64",
        "sample.py:3: np.NaN is gone in NumPy 2 - write np.nan",
    ]
