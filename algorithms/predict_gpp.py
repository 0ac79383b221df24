"""cameo:predictgpp - daily Gross Primary Production maps from CAMEO embedding stacks."""

import os

from qgis.core import (
    QgsProcessing,
    QgsProcessingOutputRasterLayer,
    QgsProcessingOutputString,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterFile,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
)

from .base import CameoAlgorithm
from .feature_input import features_in_crs, split_points_polygons
from .layer_loading import aoa_overlay, load_dated_layers, ramp_style


class PredictGPP(CameoAlgorithm):
    NAME = "predictgpp"
    DISPLAY_NAME = "Predict GPP"
    GROUP = "ecosystem"
    REQUIRES = ("numpy", "onnxruntime", "rasterio", "shapely")
    EMBEDDINGS = "EMBEDDINGS"
    POINTS = "POINTS"
    S2_STACK = "S2_STACK"
    MODELS = "MODELS"
    MODEL = "MODEL"
    THREADS = "THREADS"
    OUTPUT_FOLDER = "OUTPUT_FOLDER"
    TABLE = "TABLE"
    GPP = "GPP"
    DATES = "DATES"
    HELP = (
        "Daily Gross Primary Production (GPP, g C m-2 d-1) per 10 m pixel and per date from the "
        "embeddings of <i>Compute embeddings</i> (its embeddings.vrt, with all its dates), with the "
        "bundled CAMEO GPP model (Peters et al. 2025, GPP downstream task).",
        "For each pixel, the 7 embedding values are interpolated linearly to daily values between the "
        "dates where the pixel has an embedding, and the model reads the 90-day window ending on each "
        "date. A pixel-date gets no data when its window is incomplete: the first 89 days of the stack, "
        "and gaps longer than 90 days between the pixel's embeddings. The stack must come from the "
        "embedding models the GPP model was trained with (checked from the metadata).",
        "<b>Outputs</b>: one float32 GeoTIFF per date (gpp_YYYY-MM-DD.tif, band 'GPP', units and date "
        "in its metadata) and gpp.vrt listing all dates, loaded as one group with a colour ramp "
        "(0-15 g C m-2 d-1) and dates for the Temporal Controller. Optional <b>points or polygons</b> "
        "with a <b>table</b>: a CSV of GPP time series (id = feature id, date, GPP at the point's pixel or "
        "the mean over the polygon's pixels with data, how many pixels had data, their mean AOA_DI and "
        "how many were outside the area of applicability).",
        "<b>Model</b>: GPP = top-of-atmosphere radiation of the day (astronomy: each pixel's latitude and "
        "the day of year) x a light-use efficiency >= 0 set by the embeddings of the last 20 days, so GPP "
        "is never negative and follows the sun. Trained on five European flux towers: DE-HoH, FR-Fon "
        "(deciduous forest), FI-Hyy (evergreen forest) with daily GPP, DE-Kli (cropland) and IT-Tor "
        "(alpine grassland) with monthly GPP; errors per site in the model card (models/README.md, GPP "
        "section). Validate it against your own tower with python -m models.gpp evaluate.",
        "<b>Area of applicability</b>: band 2 of every file, AOA_DI, is the dissimilarity index of "
        "Meyer and Pebesma (2021): the distance of the pixel's embedding window to the nearest training "
        "sample, relative to the training data's spread. Above the threshold in the file's metadata "
        "(CAMEO_AOA_THRESHOLD) the pixel is unlike anything the model learned from: do not trust its GPP. "
        "Each date's layer gets a companion layer that greys those pixels.",
        "<b>Sentinel-1</b>: the model learned from Sentinel-2-only embeddings (tower footprints have no "
        "radar). For embeddings made with a Sentinel-1 stack, GPP is computed from the Sentinel-2-only "
        "embedding of the same Sentinel-2 stack (found from the embeddings' metadata, or given as "
        "<b>Sentinel-2 stack</b>), at the cost of one more embedding pass.",
        "<b>GPP model</b> (advanced): another CAMEO GPP ONNX file instead of the bundled one.",
    )

    def initAlgorithm(self, config=None):  # noqa: N802 - QGIS API
        self.addParameter(QgsProcessingParameterRasterLayer(
            self.EMBEDDINGS, "Embeddings (embeddings.vrt of Compute embeddings)"))
        self.addParameter(QgsProcessingParameterFeatureSource(
            self.POINTS, "Points or polygons for a GPP time series table [optional]",
            [QgsProcessing.SourceType.TypeVectorPoint, QgsProcessing.SourceType.TypeVectorPolygon],
            optional=True))
        self.addAdvancedParameter(QgsProcessingParameterRasterLayer(
            self.S2_STACK, "Sentinel-2 stack of embeddings made with Sentinel-1 (default: from their metadata)",
            optional=True))
        self.addAdvancedParameter(QgsProcessingParameterFile(
            self.MODELS, "CAMEO embedding models of the embeddings (default: the bundled ones)",
            behavior=QgsProcessingParameterFile.Behavior.Folder, optional=True))
        self.addAdvancedParameter(QgsProcessingParameterFile(
            self.MODEL, "GPP model (default: the bundled one)", extension="onnx", optional=True))
        self.addAdvancedParameter(QgsProcessingParameterNumber(
            self.THREADS, "Threads (0 = all cores)", QgsProcessingParameterNumber.Type.Integer, 0, minValue=0))
        self.addParameter(QgsProcessingParameterFolderDestination(self.OUTPUT_FOLDER, "Output folder"))
        self.addParameter(QgsProcessingParameterFileDestination(
            self.TABLE, "GPP time series table", "CSV files (*.csv)", optional=True, createByDefault=False))
        self.addOutput(QgsProcessingOutputRasterLayer(self.GPP, "GPP of all dates (VRT)"))
        self.addOutput(QgsProcessingOutputString(self.DATES, "Dates (comma-separated)"))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        layer = self.parameterAsRasterLayer(parameters, self.EMBEDDINGS, context)
        substitution = _b8a_substitution(layer.source())
        if substitution:
            feedback.pushInfo(f"Note: these embeddings come from a stack whose B8A was taken from B08 "
                              f"({substitution}); the GPP inherits that difference.")
        folder = self.parameterAsString(parameters, self.OUTPUT_FOLDER, context)
        table = self.parameterAsFileOutput(parameters, self.TABLE, context) or None
        source = self.parameterAsSource(parameters, self.POINTS, context)
        points = polygons = None
        if source is not None:
            points, polygons = split_points_polygons(features_in_crs(source, layer.crs(), context))
        if table is None and (points or polygons):
            feedback.pushInfo("Points or polygons given without a table output: writing none.")
            points = polygons = None
        if table and points is None:
            feedback.pushInfo("A table was asked for without points or polygons: writing none.")
            table = None
        s2_layer = self.parameterAsRasterLayer(parameters, self.S2_STACK, context)
        with self.user_errors():
            from ..models.gpp.predict import predict_gpp

            run = predict_gpp(
                layer.source(), folder, model_path=self.parameterAsFile(parameters, self.MODEL, context) or None,
                points=points, polygons=polygons, table_path=table,
                s2_stack=s2_layer.source() if s2_layer is not None else None,
                models_dir=self.parameterAsFile(parameters, self.MODELS, context) or None,
                threads=self.parameterAsInt(parameters, self.THREADS, context) or None, progress=feedback)
        feedback.pushInfo(f"GPP for {len(run.predicted_dates)} of {len(run.dates)} dates; {run.pixel_dates:,} "
                          f"pixel-dates in {run.seconds:.1f} s ({run.pixel_dates_per_second:,.0f} pixel-dates/s)")
        load_dated_layers(context, zip(run.files, run.dates), f"CAMEO GPP ({os.path.basename(folder)})", self.GPP,
                          ramp_style(), aoa_overlay(run.aoa_threshold))
        results = {self.GPP: run.index_path, self.OUTPUT_FOLDER: folder,
                   self.DATES: ",".join(d.isoformat() for d in run.dates)}
        if run.table_path:
            results[self.TABLE] = run.table_path
        return results


def _b8a_substitution(path):
    """The B8A substitution that cameo:embed recorded in the embeddings (CAMEO_S2_SUBSTITUTIONS), or None."""
    import rasterio

    try:
        with rasterio.open(path) as dataset:
            return dataset.tags().get("CAMEO_S2_SUBSTITUTIONS")
    except rasterio.errors.RasterioIOError:  # unreadable: predict_gpp reports that itself
        return None
