"""Reading an ONNX model's own description with the real ONNX Runtime."""

import numpy as np
import onnxruntime
import pytest

from models.errors import CameoInputError
from models.onnx_info import describe_onnx
from onnx_models import write_affine_model


def test_describe_returns_metadata_and_signature(tmp_path):
    path = write_affine_model(tmp_path / "m.onnx", {"cameo_bands": "B02,B03,B04", "window": "15"})
    info = describe_onnx(str(path))
    assert info["metadata"] == {"cameo_bands": "B02,B03,B04", "window": "15"}
    assert info["inputs"] == [{"name": "x", "shape": ["batch", 3], "type": "tensor(float)"}]
    assert info["outputs"] == [{"name": "y", "shape": ["batch", 3], "type": "tensor(float)"}]
    assert info["producer"] == "cameo-tests"


def test_the_test_model_computes_what_it_says(tmp_path):
    path = write_affine_model(tmp_path / "m.onnx", {}, scale=3.0, offset=-1.0)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (y,) = session.run(None, {"x": np.array([[1, 2, 3]], dtype=np.float32)})
    np.testing.assert_array_equal(y, [[2, 5, 8]])


def test_a_file_that_is_not_onnx_is_refused_by_name(tmp_path):
    path = tmp_path / "not a model.onnx"
    path.write_text("hello")
    with pytest.raises(CameoInputError, match="not a readable ONNX model"):
        describe_onnx(str(path))


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(CameoInputError, match="does not exist"):
        describe_onnx(str(tmp_path / "absent.onnx"))
