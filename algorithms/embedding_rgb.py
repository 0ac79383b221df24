"""cameo:embeddingrgb - the first three principal components of an embedding, as RGB."""

from qgis.core import (
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
)

from .base import CameoAlgorithm


class EmbeddingToRgb(CameoAlgorithm):
    NAME = "embeddingrgb"
    DISPLAY_NAME = "Embedding to RGB"
    GROUP = "embeddings"
    REQUIRES = ("numpy", "rasterio")
    INPUT = "INPUT"
    DATE = "DATE"
    OUTPUT = "OUTPUT"
    HELP = (
        "Shows an embedding as colours: the first three principal components of its 7 features, "
        "each stretched between its 2nd and 98th percentile to 1..255 (0 = no data). Similar "
        "surfaces get similar colours, which shows how spatially coherent the embedding is.",
        "<b>Input</b>: one date's embedding (embedding_YYYY-MM-DD.tif) or embeddings.vrt of all dates; "
        "with the VRT, <b>Date</b> picks the date (YYYY-MM-DD; empty = the first date). Components "
        "are fitted on up to 200,000 valid pixels of that date.",
    )

    def initAlgorithm(self, config=None):  # noqa: N802 - QGIS API
        self.addParameter(QgsProcessingParameterRasterLayer(self.INPUT, "Embedding layer"))
        self.addParameter(QgsProcessingParameterString(self.DATE, "Date (YYYY-MM-DD)", optional=True))
        self.addParameter(QgsProcessingParameterRasterDestination(self.OUTPUT, "RGB view"))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        layer = self.parameterAsRasterLayer(parameters, self.INPUT, context)
        date = self.parameterAsString(parameters, self.DATE, context).strip() or None
        output = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        with self.user_errors():
            from ..models.embedding.rgb import embedding_to_rgb

            result = embedding_to_rgb(layer.source(), output, date=date, progress=feedback)
        shares = ", ".join(f"{100 * v:.1f} %" for v in result["explained_variance"])
        feedback.pushInfo(f"Date {result['date']}; variance explained by PC1-PC3: {shares}")
        return {self.OUTPUT: output}
