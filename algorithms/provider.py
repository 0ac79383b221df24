"""The CAMEO Processing provider (id `cameo`)."""

import glob
import os

from qgis.core import QgsProcessingModelAlgorithm, QgsProcessingProvider
from qgis.PyQt.QtGui import QIcon

from .base import ICON_PATH
from .check_install import CheckInstallation
from .classify import ClassifyFromPolygons
from .cluster import ClusterEmbeddings
from .embed import ComputeEmbeddings
from .embedding_rgb import EmbeddingToRgb
from .model_info import DescribeModel
from .predict_gpp import PredictGPP
from .prepare_stack import PrepareStack
from .similarity import SimilarityToExamples

ALGORITHMS = (CheckInstallation, DescribeModel, PrepareStack, ComputeEmbeddings, EmbeddingToRgb, PredictGPP,
              SimilarityToExamples, ClusterEmbeddings, ClassifyFromPolygons)
# Graphical models shipped with the plugin (e.g. sentinel_to_gpp: preparestack -> embed -> predictgpp).
MODEL_FILES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "resources", "*.model3")


class CameoProvider(QgsProcessingProvider):
    def id(self):
        return "cameo"

    def name(self):
        return "CAMEO"

    def longName(self):  # noqa: N802 - QGIS API
        return "CAMEO - context-aware multimodal embeddings for earth observation"

    def icon(self):
        return QIcon(ICON_PATH)

    def svgIconPath(self):  # noqa: N802
        return ICON_PATH

    def loadAlgorithms(self):  # noqa: N802
        for algorithm in ALGORITHMS:
            self.addAlgorithm(algorithm())
        for path in sorted(glob.glob(MODEL_FILES)):
            model = QgsProcessingModelAlgorithm()
            if model.fromFile(path):
                self.addAlgorithm(model)
