"""cameo:embed - 7-band embedding layers, one per date, from Sentinel-2 (+1) stacks."""

import os

from qgis.core import (
    QgsProcessingOutputRasterLayer,
    QgsProcessingParameterBoolean,
    QgsProcessingOutputString,
    QgsProcessingParameterEnum,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterExtent,
    QgsProcessingParameterFile,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
)

from ..models.embedding.defaults import DEFAULT_TILE_SIZE, DEVICES
from .base import CameoAlgorithm
from .layer_loading import load_dated_layers, rgb_style
from .predict_gpp import gpp_style

# Reconstruction error colour range (reflectance): the bundled models' median on their
# validation chip is about 0.015; from 0.05 on a pixel is far from what they learnt.
ERROR_STYLE_MAX = 0.05


class ComputeEmbeddings(CameoAlgorithm):
    NAME = "embed"
    DISPLAY_NAME = "Compute embeddings"
    GROUP = "embeddings"
    REQUIRES = ("numpy", "onnxruntime", "rasterio")
    HELP = (
        "Turns a Sentinel-2 time stack (and optionally the matching Sentinel-1 stack), as written by "
        "<i>Prepare Sentinel-1/2 time stack</i>, into a 7-band embedding (F01..F07) per 10 m pixel and "
        "per date, with the bundled CAMEO models (Peters et al. 2025).<br><br>"
        "Each pixel-date is embedded from its own 15 x 15 pixel x 11 date window: the 11 nearest "
        "dates of the stack (off-centre for the first and last five dates) and the pixels within 7 px; "
        "pixels outside the raster count as invalid, like clouds. A pixel-date gets no data when its "
        "window has no valid Sentinel-2 observation of that pixel. Without a Sentinel-1 stack the "
        "fusion model uses its Sentinel-1-missing path.<br><br>"
        "Outputs: one cloud-optimised GeoTIFF per date (embedding_YYYY-MM-DD.tif) and embeddings.vrt, "
        "which lists all dates (band 'YYYY-MM-DD F01' ...) and feeds <i>Predict GPP</i> and "
        "<i>Embedding to RGB</i>. The folder must not already hold another run's embeddings.<br><br>"
        "<b>Reconstruction error</b> (optional): the models decode each embedding back into the 10 "
        "Sentinel-2 reflectances of its pixel-date; reconstruction_error_YYYY-MM-DD.tif (and "
        "reconstruction_error.vrt) hold the mean absolute difference to the observed reflectances. "
        "Small where the embedding represents the pixel, large where the pixel is unlike what the "
        "encoders were trained on: a map of where the embeddings can be trusted. No data where the "
        "pixel-date has no valid observation. Costs about a tenth more time.<br><br>"
        "<b>Tile size</b> and <b>Threads</b> change speed and memory only, never the numbers. At the "
        "default 256 px tile a run with 24 dates needed 1.6 GB of memory at 512 and at 2048 px: it does not "
        "grow with the raster's size, a little with its number of dates (a tile is read with all its dates). "
        "<b>Threads</b>: 0 uses all cores. <b>Device</b>: auto uses CUDA when onnxruntime offers it. "
        "<b>Model folder</b> (advanced): CAMEO models exported by models/train, checked against the "
        "SHA256SUMS file in that folder, instead of the bundled ones."
    )

    def initAlgorithm(self, config=None):  # noqa: N802 - QGIS API
        self.addParameter(QgsProcessingParameterRasterLayer(
            "S2_STACK", "Sentinel-2 stack (s2_stack.tif)"))
        self.addParameter(QgsProcessingParameterRasterLayer(
            "S1_STACK", "Sentinel-1 stack (s1_stack.tif)", optional=True))
        self.addParameter(QgsProcessingParameterExtent(
            "EXTENT", "Extent (default: the whole stack)", optional=True))
        self.addParameter(QgsProcessingParameterNumber(
            "TILE_SIZE", "Tile size (pixels)", QgsProcessingParameterNumber.Type.Integer,
            DEFAULT_TILE_SIZE, minValue=32, maxValue=4096))
        self.addParameter(QgsProcessingParameterNumber(
            "THREADS", "Threads (0 = all cores)", QgsProcessingParameterNumber.Type.Integer, 0, minValue=0))
        self.addParameter(QgsProcessingParameterEnum(
            "DEVICE", "Device", options=list(DEVICES), defaultValue=0))
        self.addParameter(QgsProcessingParameterBoolean(
            "RECONSTRUCTION_ERROR", "Also write the Sentinel-2 reconstruction error per date", defaultValue=False))
        models = QgsProcessingParameterFile(
            "MODELS", "Model folder (default: the bundled models)",
            behavior=QgsProcessingParameterFile.Behavior.Folder, optional=True)
        models.setFlags(models.flags() | QgsProcessingParameterDefinition.Flag.FlagAdvanced)
        self.addParameter(models)
        self.addParameter(QgsProcessingParameterFolderDestination(
            "OUTPUT_FOLDER", "Output folder"))
        self.addOutput(QgsProcessingOutputRasterLayer("EMBEDDINGS", "Embeddings of all dates (VRT)"))
        self.addOutput(QgsProcessingOutputString("DATES", "Dates (comma-separated)"))
        self.addOutput(QgsProcessingOutputRasterLayer(
            "RECONSTRUCTION_ERRORS", "Sentinel-2 reconstruction error of all dates (VRT)"))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        s2_layer = self.parameterAsRasterLayer(parameters, "S2_STACK", context)
        s1_layer = self.parameterAsRasterLayer(parameters, "S1_STACK", context)
        bounds = None
        if parameters.get("EXTENT"):
            rect = self.parameterAsExtent(parameters, "EXTENT", context, s2_layer.crs())
            bounds = (rect.xMinimum(), rect.yMinimum(), rect.xMaximum(), rect.yMaximum())
        folder = self.parameterAsString(parameters, "OUTPUT_FOLDER", context)
        with self.user_errors():
            from ..models.embedding.job import embed_stacks

            run = embed_stacks(
                s2_layer.source(), folder, s1_path=s1_layer.source() if s1_layer else None,
                bounds=bounds, tile_size=self.parameterAsInt(parameters, "TILE_SIZE", context),
                threads=self.parameterAsInt(parameters, "THREADS", context) or None,
                device=DEVICES[self.parameterAsEnum(parameters, "DEVICE", context)],
                models_dir=self.parameterAsFile(parameters, "MODELS", context) or None,
                reconstruction_error=self.parameterAsBool(parameters, "RECONSTRUCTION_ERROR", context),
                progress=feedback)
        feedback.pushInfo(f"{run.pixel_dates:,} pixel-dates in {run.seconds:.1f} s "
                          f"({run.pixel_dates_per_second:,.0f} pixel-dates/s) on {', '.join(run.providers)}")
        load_dated_layers(context, zip(run.files, run.dates),
                          f"CAMEO embeddings ({os.path.basename(folder)})", "EMBEDDINGS", rgb_style())
        if run.error_index_path:
            load_dated_layers(context, zip(run.error_files, run.dates),
                              f"CAMEO reconstruction error ({os.path.basename(folder)})", "RECONSTRUCTION_ERRORS",
                              gpp_style(0.0, ERROR_STYLE_MAX, "Magma"))
        return {"EMBEDDINGS": run.index_path, "OUTPUT_FOLDER": folder,
                "DATES": ",".join(d.isoformat() for d in run.dates), "RECONSTRUCTION_ERRORS": run.error_index_path}
