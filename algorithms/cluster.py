"""cameo:cluster - k-means clusters of the embeddings of one or several dates."""

import json

from qgis.core import (
    QgsProcessingOutputString,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
)

from ..models.analysis.defaults import MAX_CLASSES
from .base import CameoAlgorithm
from .layer_loading import class_labels_style, style_on_load


class ClusterEmbeddings(CameoAlgorithm):
    NAME = "cluster"
    DISPLAY_NAME = "Cluster embeddings"
    GROUP = "embeddings"
    REQUIRES = ("numpy", "rasterio", "sklearn")
    EMBEDDINGS = "EMBEDDINGS"
    DATES = "DATES"
    K = "K"
    SEED = "SEED"
    OUTPUT = "OUTPUT"
    CENTRES = "CENTRES"
    HELP = (
        "Groups the pixels into <b>K</b> clusters of similar embeddings with k-means (scikit-learn's "
        "KMeans, 10 initialisations from <b>Seed</b>: the same seed gives the same clusters).",
        "<b>Dates</b>: empty = every date of the embeddings.vrt; one date YYYY-MM-DD; several, "
        "comma-separated; or a range FIRST/LAST (e.g. 2019-04-01/2019-09-30). The features of a pixel are "
        "its 7 embedding values on each chosen date, side by side, so clusters over several dates group "
        "pixels that change alike through time. Pixels without an embedding on every chosen date get no "
        "data (0).",
        "k-means is fitted on every valid pixel, or on a uniform sample on larger rasters (at most 200,000 "
        "pixels and 256 MB of features), then "
        "each pixel gets its nearest centre, block by block. <b>Output</b>: a byte GeoTIFF of classes "
        "1..K with a colour table; the centres (JSON), dates, features and seed are in its metadata "
        "(CAMEO_CLUSTER_*). Needs scikit-learn.",
    )

    def initAlgorithm(self, config=None):  # noqa: N802 - QGIS API
        self.addParameter(QgsProcessingParameterRasterLayer(
            self.EMBEDDINGS, "Embeddings (embeddings.vrt of Compute embeddings)"))
        self.addParameter(QgsProcessingParameterString(
            self.DATES, "Dates (YYYY-MM-DD, comma-separated, or FIRST/LAST; empty = every date)", optional=True))
        self.addParameter(QgsProcessingParameterNumber(
            self.K, "Number of clusters (K)", QgsProcessingParameterNumber.Type.Integer, 6, minValue=2,
            maxValue=MAX_CLASSES))
        self.addParameter(QgsProcessingParameterNumber(
            self.SEED, "Seed", QgsProcessingParameterNumber.Type.Integer, 0, minValue=0))
        self.addParameter(QgsProcessingParameterRasterDestination(self.OUTPUT, "Clusters"))
        self.addOutput(QgsProcessingOutputString(self.CENTRES, "Cluster centres (JSON)"))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        layer = self.parameterAsRasterLayer(parameters, self.EMBEDDINGS, context)
        output = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        with self.user_errors():
            from ..models.analysis.cluster import cluster_embeddings

            run = cluster_embeddings(
                layer.source(), output, k=self.parameterAsInt(parameters, self.K, context),
                seed=self.parameterAsInt(parameters, self.SEED, context),
                dates=self.parameterAsString(parameters, self.DATES, context).strip() or None, progress=feedback)
        style_on_load(context, output, class_labels_style([f"cluster {c}" for c in range(1, len(run.centres) + 1)]))
        feedback.pushInfo(f"{len(run.centres)} clusters of {run.fitted_pixels:,} pixels on {len(run.dates)} "
                          f"date(s); inertia {run.inertia:.6g}")
        return {self.OUTPUT: output, self.CENTRES: json.dumps(run.centres.round(6).tolist())}
