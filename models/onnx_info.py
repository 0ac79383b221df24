"""Read what an ONNX model says about itself: metadata, inputs, outputs.

CAMEO models carry their band order, scaling and window size as ONNX metadata
(key/value strings), so users and the runtime can check a model before trusting it.
"""

import os

from .environment import require
from .errors import CameoInputError, first_line


def describe_onnx(path):
    """Metadata and input/output signatures of the ONNX model at `path`.

    Returns {"path", "producer", "graph", "version", "metadata": {key: value},
    "inputs": [{"name", "shape", "type"}], "outputs": [...]}. Dimensions without a
    fixed size appear under their symbolic name (e.g. "batch").
    """
    require("onnxruntime")
    import onnxruntime

    if not os.path.isfile(path):
        raise CameoInputError(f"Model file {path} does not exist: choose an existing .onnx file.")
    try:
        session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    except Exception as error:  # noqa: BLE001 - onnxruntime raises several types
        first = first_line(error)
        raise CameoInputError(
            f"{path} is not a readable ONNX model ({first}). "
            "Choose a .onnx file exported by CAMEO or another ONNX exporter.") from error
    meta = session.get_modelmeta()

    def signature(nodes):
        return [{"name": n.name, "shape": list(n.shape), "type": n.type} for n in nodes]

    return {
        "path": os.path.abspath(path),
        "producer": meta.producer_name,
        "graph": meta.graph_name,
        "version": meta.version,
        "metadata": dict(meta.custom_metadata_map),
        "inputs": signature(session.get_inputs()),
        "outputs": signature(session.get_outputs()),
    }
