"""cameo:embed - 7-band embedding layers, one per date, from Sentinel-2 (+1) stacks."""

import os

from qgis.core import (
    QgsProcessingOutputRasterLayer,
    QgsProcessingParameterBoolean,
    QgsProcessingOutputString,
    QgsProcessingParameterEnum,
    QgsProcessingParameterExtent,
    QgsProcessingParameterFile,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
)

from ..models.embedding.defaults import DEFAULT_TILE_SIZE, DEVICES
from .base import CameoAlgorithm
from .layer_loading import load_dated_layers, ramp_style, rgb_style

# Reconstruction error colour range (reflectance): the bundled models' median on their
# validation chip is 0.008, their 99th percentile 0.06: from 0.05 on, a pixel is far from
# what they learnt.
ERROR_STYLE_MAX = 0.05


class ComputeEmbeddings(CameoAlgorithm):
    NAME = "embed"
    DISPLAY_NAME = "Compute embeddings"
    GROUP = "embeddings"
    REQUIRES = ("numpy", "onnxruntime", "rasterio")
    S2_STACK = "S2_STACK"
    S1_STACK = "S1_STACK"
    EXTENT = "EXTENT"
    TILE_SIZE = "TILE_SIZE"
    THREADS = "THREADS"
    DEVICE = "DEVICE"
    RECONSTRUCTION_ERROR = "RECONSTRUCTION_ERROR"
    MODELS = "MODELS"
    OUTPUT_FOLDER = "OUTPUT_FOLDER"
    EMBEDDINGS = "EMBEDDINGS"
    DATES = "DATES"
    RECONSTRUCTION_ERRORS = "RECONSTRUCTION_ERRORS"
    HELP = (
        "Turns a Sentinel-2 time stack (and optionally the matching Sentinel-1 stack), as written by "
        "<i>Prepare Sentinel-1/2 time stack</i>, into a 7-band embedding (F01..F07) per 10 m pixel and "
        "per date, with the bundled CAMEO models (Peters et al. 2025).",
        "Each pixel-date is embedded from its own 15 x 15 pixel x 11 date window: the 11 nearest "
        "dates of the stack (off-centre for the first and last five dates) and the pixels within 7 px; "
        "pixels outside the raster count as invalid, like clouds. A pixel-date gets no data when its "
        "window has no valid Sentinel-2 observation of that pixel. Without a Sentinel-1 stack the "
        "fusion model uses its Sentinel-1-missing path.",
        "Outputs: one cloud-optimised GeoTIFF per date (embedding_YYYY-MM-DD.tif) and embeddings.vrt, "
        "which lists all dates (band 'YYYY-MM-DD F01' ...) and feeds <i>Predict GPP</i> and "
        "<i>Embedding to RGB</i>. The folder must not already hold another run's embeddings.",
        "<b>Reconstruction error</b> (optional): the models decode each embedding back into the 10 "
        "Sentinel-2 reflectances of its pixel-date; reconstruction_error_YYYY-MM-DD.tif (and "
        "reconstruction_error.vrt) hold the mean absolute difference to the observed reflectances. "
        "Small where the embedding represents the pixel, large where the pixel is unlike what the "
        "encoders were trained on: a map of where the embeddings can be trusted. No data where the "
        "pixel-date has no valid observation. On the 64 x 64 px, 41-date validation chip it made the run "
        "1.6 times as long (mostly writing the extra files).",
        "<b>Tile size</b> and <b>Threads</b> change speed and memory only, never the numbers. At the "
        "default 256 px tile a run with 24 dates needed 1.6 GB of memory at 512 and at 2048 px: it does not "
        "grow with the raster's size, a little with its number of dates (a tile is read with all its dates). "
        "<b>Threads</b>: 0 uses all cores. <b>Device</b>: auto uses CUDA when onnxruntime offers it. "
        "<b>Model folder</b> (advanced): CAMEO models exported by models/train, checked against the "
        "SHA256SUMS file in that folder, instead of the bundled ones.",
    )

    def initAlgorithm(self, config=None):  # noqa: N802 - QGIS API
        self.addParameter(QgsProcessingParameterRasterLayer(
            self.S2_STACK, "Sentinel-2 stack (s2_stack.tif)"))
        self.addParameter(QgsProcessingParameterRasterLayer(
            self.S1_STACK, "Sentinel-1 stack (s1_stack.tif)", optional=True))
        self.addParameter(QgsProcessingParameterExtent(
            self.EXTENT, "Extent (default: the whole stack)", optional=True))
        self.addParameter(QgsProcessingParameterNumber(
            self.TILE_SIZE, "Tile size (pixels)", QgsProcessingParameterNumber.Type.Integer,
            DEFAULT_TILE_SIZE, minValue=32, maxValue=4096))
        self.addParameter(QgsProcessingParameterNumber(
            self.THREADS, "Threads (0 = all cores)", QgsProcessingParameterNumber.Type.Integer, 0, minValue=0))
        self.addParameter(QgsProcessingParameterEnum(
            self.DEVICE, "Device", options=list(DEVICES), defaultValue=0))
        self.addParameter(QgsProcessingParameterBoolean(
            self.RECONSTRUCTION_ERROR, "Also write the Sentinel-2 reconstruction error per date", defaultValue=False))
        self.addAdvancedParameter(QgsProcessingParameterFile(
            self.MODELS, "Model folder (default: the bundled models)",
            behavior=QgsProcessingParameterFile.Behavior.Folder, optional=True))
        self.addParameter(QgsProcessingParameterFolderDestination(
            self.OUTPUT_FOLDER, "Output folder"))
        self.addOutput(QgsProcessingOutputRasterLayer(self.EMBEDDINGS, "Embeddings of all dates (VRT)"))
        self.addOutput(QgsProcessingOutputString(self.DATES, "Dates (comma-separated)"))
        self.addOutput(QgsProcessingOutputRasterLayer(
            self.RECONSTRUCTION_ERRORS, "Sentinel-2 reconstruction error of all dates (VRT)"))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        s2_layer = self.parameterAsRasterLayer(parameters, self.S2_STACK, context)
        s1_layer = self.parameterAsRasterLayer(parameters, self.S1_STACK, context)
        bounds = self.extent_bounds(parameters, self.EXTENT, context, s2_layer.crs())
        folder = self.parameterAsString(parameters, self.OUTPUT_FOLDER, context)
        with self.user_errors():
            from ..models.embedding.job import embed_stacks

            run = embed_stacks(
                s2_layer.source(), folder, s1_path=s1_layer.source() if s1_layer else None,
                bounds=bounds, tile_size=self.parameterAsInt(parameters, self.TILE_SIZE, context),
                threads=self.parameterAsInt(parameters, self.THREADS, context) or None,
                device=DEVICES[self.parameterAsEnum(parameters, self.DEVICE, context)],
                models_dir=self.parameterAsFile(parameters, self.MODELS, context) or None,
                reconstruction_error=self.parameterAsBool(parameters, self.RECONSTRUCTION_ERROR, context),
                progress=feedback)
        feedback.pushInfo(f"{run.pixel_dates:,} pixel-dates in {run.seconds:.1f} s "
                          f"({run.pixel_dates_per_second:,.0f} pixel-dates/s) on {', '.join(run.providers)}")
        load_dated_layers(context, zip(run.files, run.dates),
                          f"CAMEO embeddings ({os.path.basename(folder)})", self.EMBEDDINGS, rgb_style())
        if run.error_index_path:
            load_dated_layers(context, zip(run.error_files, run.dates),
                              f"CAMEO reconstruction error ({os.path.basename(folder)})", self.RECONSTRUCTION_ERRORS,
                              ramp_style(0.0, ERROR_STYLE_MAX, "Magma"))
        return {self.EMBEDDINGS: run.index_path, self.OUTPUT_FOLDER: folder,
                self.DATES: ",".join(d.isoformat() for d in run.dates), self.RECONSTRUCTION_ERRORS: run.error_index_path}
