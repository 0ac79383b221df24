"""cameo:classify - classes from labelled polygons, with a spatially blocked accuracy report."""

from qgis.core import (
    QgsProcessing,
    QgsProcessingOutputNumber,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterField,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
)

from ..models.analysis.defaults import BLOCK_SIZE, FOLDS, MODEL_LABELS, MODELS
from .base import CameoAlgorithm
from .feature_input import features_in_crs
from .layer_loading import class_labels_style, style_on_load


class ClassifyFromPolygons(CameoAlgorithm):
    NAME = "classify"
    DISPLAY_NAME = "Classify from labelled polygons"
    GROUP = "embeddings"
    REQUIRES = ("numpy", "rasterio", "shapely", "sklearn")
    EMBEDDINGS = "EMBEDDINGS"
    TRAINING = "TRAINING"
    FIELD = "FIELD"
    DATES = "DATES"
    MODEL = "MODEL"
    SEED = "SEED"
    FOLDS = "FOLDS"
    BLOCK_SIZE = "BLOCK_SIZE"
    OUTPUT = "OUTPUT"
    PROBABILITIES = "PROBABILITIES"
    REPORT = "REPORT"
    TABLE = "TABLE"
    OVERALL_ACCURACY = "OVERALL_ACCURACY"
    HELP = (
        "Maps classes from a few labelled areas: every pixel of each <b>training</b> polygon (the pixel "
        "under each point) is an example of the class in <b>Class field</b> (a name or a number), its "
        "features the 7 embedding values of each chosen date, side by side. <b>Model</b>: random forest "
        "(100 trees), logistic regression or k nearest neighbours (k = 5), from scikit-learn.",
        "<b>Dates</b>: empty = every date; one date YYYY-MM-DD; several, comma-separated; or a range "
        "FIRST/LAST. Pixels without an embedding on every chosen date get no data (0).",
        "<b>Accuracy</b>: spatially blocked cross-validation. Each training feature belongs, whole, to the "
        "square block of <b>Block size</b> metres holding the centre of its pixels; each of the "
        "<b>Folds</b> leaves out whole blocks (scikit-learn's GroupKFold), so nearby pixels, which look "
        "alike, never end up on both sides. Pooled over the folds: confusion matrix, overall accuracy, "
        "precision, recall and F1 per class, written as an HTML <b>report</b> and a CSV <b>table</b> "
        "(measure,true_class,predicted_class,value). The model is then fitted on all training pixels.",
        "<b>Outputs</b>: byte GeoTIFF of classes 1..C (colour table; class names in the order of the codes "
        "in its CAMEO_CLASSES metadata), optionally a float32 raster of per-class probabilities (one band "
        "per class). All outputs are written under hidden names and renamed only when complete. Needs "
        "scikit-learn.",
    )

    def initAlgorithm(self, config=None):  # noqa: N802 - QGIS API
        self.addParameter(QgsProcessingParameterRasterLayer(
            self.EMBEDDINGS, "Embeddings (embeddings.vrt of Compute embeddings)"))
        self.addParameter(QgsProcessingParameterFeatureSource(
            self.TRAINING, "Training polygons (or points)",
            [QgsProcessing.SourceType.TypeVectorPolygon, QgsProcessing.SourceType.TypeVectorPoint]))
        self.addParameter(QgsProcessingParameterField(
            self.FIELD, "Class field", parentLayerParameterName=self.TRAINING,
            type=QgsProcessingParameterField.DataType.Any))
        self.addParameter(QgsProcessingParameterString(
            self.DATES, "Dates (YYYY-MM-DD, comma-separated, or FIRST/LAST; empty = every date)", optional=True))
        self.addParameter(QgsProcessingParameterEnum(
            self.MODEL, "Model", options=list(MODEL_LABELS), defaultValue=0))
        for name, label, default, minimum, kind in (
                (self.SEED, "Seed", 0, 0, QgsProcessingParameterNumber.Type.Integer),
                (self.FOLDS, "Cross-validation folds", FOLDS, 2, QgsProcessingParameterNumber.Type.Integer),
                (self.BLOCK_SIZE, "Cross-validation block size (m)", BLOCK_SIZE, 10.0,
                 QgsProcessingParameterNumber.Type.Double)):
            self.addAdvancedParameter(QgsProcessingParameterNumber(name, label, kind, default, minValue=minimum))
        self.addParameter(QgsProcessingParameterRasterDestination(self.OUTPUT, "Classes"))
        self.addParameter(QgsProcessingParameterRasterDestination(
            self.PROBABILITIES, "Class probabilities", optional=True, createByDefault=False))
        self.addParameter(QgsProcessingParameterFileDestination(
            self.REPORT, "Accuracy report", "HTML files (*.html)"))
        self.addParameter(QgsProcessingParameterFileDestination(
            self.TABLE, "Accuracy table", "CSV files (*.csv)"))
        self.addOutput(QgsProcessingOutputNumber(self.OVERALL_ACCURACY, "Overall accuracy (cross-validated)"))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        layer = self.parameterAsRasterLayer(parameters, self.EMBEDDINGS, context)
        source = self.parameterAsSource(parameters, self.TRAINING, context)
        fields = self.parameterAsFields(parameters, self.FIELD, context)
        field_name = fields[0] if fields else ""
        training = features_in_crs(source, layer.crs(), context, field_name)
        output = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        probabilities = self.parameterAsOutputLayer(parameters, self.PROBABILITIES, context) or None
        with self.user_errors():
            from ..models.analysis.classify import classify_embeddings

            run = classify_embeddings(
                layer.source(), output, training=training,
                field_name=field_name, model=MODELS[self.parameterAsEnum(parameters, self.MODEL, context)],
                dates=self.parameterAsString(parameters, self.DATES, context).strip() or None,
                seed=self.parameterAsInt(parameters, self.SEED, context),
                folds=self.parameterAsInt(parameters, self.FOLDS, context),
                block_size=self.parameterAsDouble(parameters, self.BLOCK_SIZE, context),
                probabilities_path=probabilities,
                report_path=self.parameterAsFileOutput(parameters, self.REPORT, context),
                table_path=self.parameterAsFileOutput(parameters, self.TABLE, context), progress=feedback)
        style_on_load(context, output, class_labels_style(run.class_names))
        feedback.pushInfo(f"Classes {', '.join(run.class_names)}; {run.training_pixels:,} training pixels in "
                          f"{run.blocks} blocks; cross-validated overall accuracy {run.accuracy.overall:.3f}")
        return {**run.outputs, self.OUTPUT: output, self.OVERALL_ACCURACY: run.accuracy.overall}
