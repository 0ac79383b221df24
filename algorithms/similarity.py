"""cameo:similarity - how similar each pixel's embedding is to those of example pixels, per date."""

from qgis.core import (
    QgsProcessing,
    QgsProcessingOutputString,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
)

from ..models.analysis.defaults import SIMILARITY_THRESHOLD
from .base import CameoAlgorithm
from .feature_input import features_in_crs, split_points_polygons


class SimilarityToExamples(CameoAlgorithm):
    NAME = "similarity"
    DISPLAY_NAME = "Similarity to examples"
    GROUP = "embeddings"
    REQUIRES = ("numpy", "rasterio", "shapely")
    EMBEDDINGS = "EMBEDDINGS"
    EXAMPLES = "EXAMPLES"
    DATE = "DATE"
    THRESHOLD = "THRESHOLD"
    OUTPUT = "OUTPUT"
    DATES = "DATES"
    HELP = (
        "Finds what looks like your examples: for every pixel and date, the similarity of its embedding to "
        "the mean embedding of the <b>examples</b> (points: the pixel under each; polygons: every pixel "
        "inside) on that date.",
        "The similarity is the cosine between the pixel's and the examples' embeddings, both taken "
        "relative to that date's mean embedding over the raster: 1 where a pixel differs from the average "
        "exactly as the examples do (exactly 1 at a single example pixel, the maximum), 0 for unrelated "
        "pixels, -1 for the opposite. (The embeddings share a large common part, so the plain cosine would "
        "be close to 1 everywhere.)",
        "<b>Date</b> (YYYY-MM-DD): one date of the embeddings.vrt; empty = every date, plus a last band "
        "counting the dates on which the pixel's similarity is at least <b>Threshold</b>. "
        "<b>Output</b>: float32 GeoTIFF, one band per date ('YYYY-MM-DD similarity'), no data (NaN) where "
        "the pixel has no embedding that date, or the examples have none. Read block by block; written "
        "under a hidden name and renamed only when complete.",
    )

    def initAlgorithm(self, config=None):  # noqa: N802 - QGIS API
        self.addParameter(QgsProcessingParameterRasterLayer(
            self.EMBEDDINGS, "Embeddings (embeddings.vrt of Compute embeddings)"))
        self.addParameter(QgsProcessingParameterFeatureSource(
            self.EXAMPLES, "Examples (points or polygons)",
            [QgsProcessing.SourceType.TypeVectorPoint, QgsProcessing.SourceType.TypeVectorPolygon]))
        self.addParameter(QgsProcessingParameterString(
            self.DATE, "Date (YYYY-MM-DD; empty = every date)", optional=True))
        self.addParameter(QgsProcessingParameterNumber(
            self.THRESHOLD, "Threshold of the 'dates similar' band", QgsProcessingParameterNumber.Type.Double,
            SIMILARITY_THRESHOLD, minValue=-1.0, maxValue=1.0))
        self.addParameter(QgsProcessingParameterRasterDestination(self.OUTPUT, "Similarity"))
        self.addOutput(QgsProcessingOutputString(self.DATES, "Dates (comma-separated)"))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        layer = self.parameterAsRasterLayer(parameters, self.EMBEDDINGS, context)
        source = self.parameterAsSource(parameters, self.EXAMPLES, context)
        date = self.parameterAsString(parameters, self.DATE, context).strip() or None
        output = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        points, polygons = split_points_polygons(features_in_crs(source, layer.crs(), context))
        with self.user_errors():
            from ..models.analysis.similarity import similarity_to_examples

            run = similarity_to_examples(
                layer.source(), output, points=points, polygons=polygons, date=date,
                threshold=self.parameterAsDouble(parameters, self.THRESHOLD, context), progress=feedback)
        feedback.pushInfo(f"Similarity to {run.example_pixels} example pixel(s) on {len(run.dates)} date(s)")
        return {self.OUTPUT: output, self.DATES: ",".join(d.isoformat() for d in run.dates)}
