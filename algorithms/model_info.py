"""cameo:modelinfo - show the metadata and signature of an ONNX model."""

import json

from qgis.core import QgsProcessingOutputString, QgsProcessingParameterFile

from ..models.onnx_info import describe_onnx
from .base import CameoAlgorithm


class DescribeModel(CameoAlgorithm):
    NAME = "modelinfo"
    DISPLAY_NAME = "Describe ONNX model"
    GROUP = "utilities"
    REQUIRES = ("onnxruntime",)
    INPUT = "INPUT"
    METADATA = "METADATA"
    INPUTS = "INPUTS"
    OUTPUTS = "OUTPUTS"
    HELP = (
        "Shows what an ONNX model says about itself: its metadata (for CAMEO models: "
        "modality, band order, scaling, window size, embedding size, version, training "
        "data) and its inputs and outputs with their shapes. Use it to check a model "
        "before running it, or to see which bands a model expects.",
    )

    def initAlgorithm(self, config=None):  # noqa: N802 - QGIS API
        self.addParameter(QgsProcessingParameterFile(
            self.INPUT, "ONNX model file", extension="onnx"))
        self.addOutput(QgsProcessingOutputString(self.METADATA, "Metadata (JSON)"))
        self.addOutput(QgsProcessingOutputString(self.INPUTS, "Inputs (JSON)"))
        self.addOutput(QgsProcessingOutputString(self.OUTPUTS, "Outputs (JSON)"))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        path = self.parameterAsFile(parameters, self.INPUT, context)
        with self.user_errors():
            info = describe_onnx(path)
        for key, value in sorted(info["metadata"].items()):
            feedback.pushInfo(f"{key}: {value}")
        for kind in ("inputs", "outputs"):
            for node in info[kind]:
                feedback.pushInfo(f"{kind[:-1]} {node['name']}: {node['type']} {node['shape']}")
        return {
            self.METADATA: json.dumps(info["metadata"], sort_keys=True),
            self.INPUTS: json.dumps(info["inputs"]),
            self.OUTPUTS: json.dumps(info["outputs"]),
        }
