"""Tiny, real ONNX files for tests of the model-handling code (built with `onnx`)."""

import onnx
from onnx import TensorProto, helper


def write_affine_model(path, metadata, scale=2.0, offset=1.0):
    """y = x * scale + offset over x of shape [batch, 3], with `metadata` as ONNX metadata."""
    graph = helper.make_graph(
        [helper.make_node("Mul", ["x", "scale"], ["scaled"]),
         helper.make_node("Add", ["scaled", "offset"], ["y"])],
        "affine",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])],
        initializer=[helper.make_tensor("scale", TensorProto.FLOAT, [], [scale]),
                     helper.make_tensor("offset", TensorProto.FLOAT, [], [offset])],
    )
    model = helper.make_model(graph, producer_name="cameo-tests",
                              opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    for key, value in metadata.items():
        model.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path
