"""cameo:preparestack - Sentinel-1/2 downloads to analysis-ready CAMEO time stacks.

Thin glue: parameters in, `models.stack.prepare_stack` (Qt-free) does the work.
"""

from qgis.core import (
    QgsProcessing,
    QgsProcessingContext,
    QgsProcessingOutputFile,
    QgsProcessingOutputRasterLayer,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterCrs,
    QgsProcessingParameterEnum,
    QgsProcessingParameterExtent,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterNumber,
    QgsProcessingParameterString,
    QgsProcessingUtils,
)

from ..models.stack.defaults import (
    DEFAULT_MAX_S1_GAP_DAYS,
    DEFAULT_MIN_VALID_FRACTION,
    DEFAULT_SPECKLE_SIZE,
    HARMONIZED_CHOICES,
    RESAMPLING_CHOICES,
    S1_UNITS_CHOICES,
    SPECKLE_FILTERS,
    SPECKLE_SIZES,
)
from .base import CameoAlgorithm


class PrepareStack(CameoAlgorithm):
    NAME = "preparestack"
    DISPLAY_NAME = "Prepare Sentinel-1/2 time stack"
    GROUP = "prepare"
    REQUIRES = ("numpy", "rasterio", "pyproj")
    S2 = "S2"
    S2_BANDS = "S2_BANDS"
    S2_MASK = "S2_MASK"
    S1 = "S1"
    EXTENT = "EXTENT"
    CRS = "CRS"
    MIN_VALID_FRACTION = "MIN_VALID_FRACTION"
    MAX_S1_GAP_DAYS = "MAX_S1_GAP_DAYS"
    MASK_VALID_VALUES = "MASK_VALID_VALUES"
    HARMONIZED = "HARMONIZED"
    S1_UNITS = "S1_UNITS"
    S1_SMOOTHING = "S1_SMOOTHING"
    S1_SPECKLE_FILTER = "S1_SPECKLE_FILTER"
    S1_SPECKLE_SIZE = "S1_SPECKLE_SIZE"
    SUBSTITUTE_B8A = "SUBSTITUTE_B8A"
    RESAMPLING = "RESAMPLING"
    OUTPUT_FOLDER = "OUTPUT_FOLDER"
    S2_STACK = "S2_STACK"
    S1_STACK = "S1_STACK"
    DATES = "DATES"
    HELP = (
        "Turns downloaded Sentinel-2 L2A (and optionally Sentinel-1) data into the analysis-ready "
        "time stacks the CAMEO models read: one 10 m grid, Sentinel-2 bands B02 B03 B04 B05 B06 B07 "
        "B08 B8A B11 B12 as surface reflectance, clouds masked per pixel, cloudy dates dropped, and "
        "Sentinel-1 VV/VH (dB) matched to each Sentinel-2 date.",
        "<b>Inputs</b>: one raster per date in any GDAL format (bands recognised from their "
        "descriptions such as B02, B2 or 'B02 (490 nm)', or from Band order; the date from the "
        "metadata or the file name: YYYYMMDD, YYYY-MM-DD, SAFE names), NetCDF / openEO / Earth Engine "
        "cubes with a time dimension (give the 10 m and 20 m files together), NetCDF or Zarr cubes "
        "with a band dimension as xarray, stackstac, odc-stac, rioxarray or openEO write them "
        "(band_data(time, band, y, x), band names in the band coordinate), or Sentinel-2 SAFE "
        "folders/zips. Variables that are not rasters (strings, scalars, angles) are ignored. A cube's "
        "georeferencing comes from GDAL, else a CF grid_mapping / spatial_ref variable, else a crs "
        "attribute, and its x/y coordinates (which must be regularly spaced). 20 m bands are resampled to 10 m (bilinear by default), the SCL layer by "
        "nearest neighbour.",
        "<b>Scaling</b>: reflectance = (DN + BOA_ADD_OFFSET) / 10000. Products of processing "
        "baseline 04.00 and later (from 2022-01-25) carry BOA_ADD_OFFSET = -1000. With "
        "'Input is harmonised' on auto, the offset is taken from the metadata (BOA_ADD_OFFSET, "
        "PROCESSING_BASELINE, 'harmonized') and otherwise from the date; float reflectance inputs "
        "count as harmonised.",
        "<b>Mask</b>: a pixel is valid when its SCL class is 4, 5, 6, 7 or 11 (vegetation, bare, water, "
        "unclassified, snow; change with 'Valid mask values') or, with a cloud mask layer, where the "
        "mask is non-zero; and every band has data. Dates whose valid share of the extent is below "
        "'Minimum valid fraction' are dropped. Without SCL and mask, a pixel is valid where its values "
        "are finite, and the valid share counts the pixels that have data on at least one date.",
        "<b>Same-day acquisitions</b> (adjacent tiles or orbits, in one input or several) are merged per "
        "pixel: a valid observation beats an invalid one; where both are valid, the acquisition with more "
        "valid pixels in the extent wins. dates.csv counts the acquisitions of each date.",
        "<b>Take B8A from B08</b> (SUBSTITUTE_B8A, off by default): for inputs without B8A (many "
        "openEO composites). The stack records it (CAMEO_SUBSTITUTIONS), cameo:embed and cameo:predictgpp "
        "log it; it changes the embeddings somewhat (figures in the README).",
        "<b>Sentinel-1</b>: VV and VH in dB or linear power, any CRS and resolution, reprojected onto "
        "the 10 m grid; each Sentinel-2 date gets the nearest acquisition (ties: the earlier one), "
        "the gap in days is recorded, and gaps over 'Maximum Sentinel-1 gap' leave Sentinel-1 empty "
        "(NaN) for that date. Optional centred rolling mean over 3 acquisitions in linear power.",
        "<b>Speckle filter</b> (S1_SPECKLE_FILTER, S1_SPECKLE_SIZE): each Sentinel-1 acquisition is "
        "filtered in linear power on its own grid before it is resampled: Lee (default; smooths where "
        "the window looks like speckle, keeps field edges; the speckle level is estimated from each "
        "acquisition), boxcar (multi-look mean) or none, over a 5 x 5 window of Sentinel-1 pixels by "
        "default (3-11, odd). The bundled models were trained on Lee 5 x 5 stacks: cameo:embed warns "
        "when a stack was prepared otherwise.",
        "<b>Outputs</b> in the output folder: s2_stack.tif and s1_stack.tif (float32 GeoTIFF, one "
        "band per date and band, described e.g. '2018-08-04 B8A', NaN = invalid, metadata inside) "
        "and dates.csv (date, valid fraction, matched Sentinel-1 date and gap). Files are written "
        "under temporary names and renamed when complete; on any error nothing is left behind. "
        "The output folder must not already hold another run's stack. "
        "Processing runs block by block, so memory does not grow with the area.",
        "Same tool on the command line: python -m models.stack --help (from a CAMEO checkout).",
    )

    def initAlgorithm(self, config=None):  # noqa: N802 - QGIS API
        self.addParameter(QgsProcessingParameterMultipleLayers(
            self.S2, "Sentinel-2 L2A inputs (files, cubes or SAFE)", layerType=QgsProcessing.SourceType.TypeFile))
        self.addParameter(QgsProcessingParameterString(
            self.S2_BANDS, "Band order of inputs whose bands have no names [optional]", optional=True))
        self.addParameter(QgsProcessingParameterMultipleLayers(
            self.S2_MASK, "Cloud mask layer(s), replacing SCL [optional]",
            layerType=QgsProcessing.SourceType.TypeFile, optional=True))
        self.addParameter(QgsProcessingParameterMultipleLayers(
            self.S1, "Sentinel-1 VV/VH inputs [optional]", layerType=QgsProcessing.SourceType.TypeFile,
            optional=True))
        self.addParameter(QgsProcessingParameterExtent(
            self.EXTENT, "Processing extent (default: the Sentinel-2 area)", optional=True))
        self.addParameter(QgsProcessingParameterCrs(
            self.CRS, "Target CRS (default: the Sentinel-2 CRS)", optional=True))
        self.addParameter(QgsProcessingParameterNumber(
            self.MIN_VALID_FRACTION, "Minimum valid fraction of a date (0-1)",
            type=QgsProcessingParameterNumber.Type.Double, defaultValue=DEFAULT_MIN_VALID_FRACTION,
            minValue=0.0, maxValue=1.0))
        self.addParameter(QgsProcessingParameterNumber(
            self.MAX_S1_GAP_DAYS, "Maximum Sentinel-1 gap (days)", type=QgsProcessingParameterNumber.Type.Integer,
            defaultValue=DEFAULT_MAX_S1_GAP_DAYS, minValue=0))
        self.addAdvancedParameter(QgsProcessingParameterString(
            self.MASK_VALID_VALUES, "Valid mask values (default SCL 4,5,6,7,11; mask layer: non-zero)",
            optional=True))
        self.addAdvancedParameter(QgsProcessingParameterEnum(
            self.HARMONIZED, "Input is harmonised (-1000 offset already removed)",
            options=["auto (metadata, else date)", "yes", "no"], defaultValue=0))
        self.addAdvancedParameter(QgsProcessingParameterEnum(
            self.S1_UNITS, "Sentinel-1 input units", options=["auto", "dB", "linear power"], defaultValue=0))
        self.addAdvancedParameter(QgsProcessingParameterBoolean(
            self.S1_SMOOTHING, "Smooth Sentinel-1 (centred mean over 3 acquisitions)", defaultValue=True))
        self.addAdvancedParameter(QgsProcessingParameterEnum(
            self.S1_SPECKLE_FILTER, "Sentinel-1 speckle filter",
            options=["Lee (edge-preserving)", "boxcar (multi-look mean)", "none"], defaultValue=0))
        self.addAdvancedParameter(QgsProcessingParameterNumber(
            self.S1_SPECKLE_SIZE, "Speckle filter window (Sentinel-1 pixels, odd)",
            type=QgsProcessingParameterNumber.Type.Integer, defaultValue=DEFAULT_SPECKLE_SIZE,
            minValue=min(SPECKLE_SIZES), maxValue=max(SPECKLE_SIZES)))
        self.addAdvancedParameter(QgsProcessingParameterBoolean(
            self.SUBSTITUTE_B8A, "Take B8A from B08 where an input has no B8A", defaultValue=False))
        self.addAdvancedParameter(QgsProcessingParameterEnum(
            self.RESAMPLING, "Resampling of 20 m bands", options=list(RESAMPLING_CHOICES), defaultValue=0))
        self.addParameter(QgsProcessingParameterFolderDestination(self.OUTPUT_FOLDER, "Output folder"))
        self.addOutput(QgsProcessingOutputRasterLayer(self.S2_STACK, "Sentinel-2 stack"))
        self.addOutput(QgsProcessingOutputRasterLayer(self.S1_STACK, "Sentinel-1 stack"))
        self.addOutput(QgsProcessingOutputFile(self.DATES, "Dates table"))

    def _files(self, parameters, name, context):
        """File paths of a multiple-layers parameter; project layers become their sources."""
        paths = []
        for value in self.parameterAsFileList(parameters, name, context) or []:
            layer = QgsProcessingUtils.mapLayerFromString(value, context, False)
            paths.append(layer.source() if layer is not None else value)
        return paths

    def _enum(self, parameters, name, context, choices):
        return choices[self.parameterAsEnum(parameters, name, context)]

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        # The extent in its own CRS: models.stack reprojects it onto the target grid.
        extent = self.extent_bounds(parameters, self.EXTENT, context)
        extent_crs = _crs_text(self.parameterAsExtentCrs(parameters, self.EXTENT, context)) if extent else None
        crs = _crs_text(self.parameterAsCrs(parameters, self.CRS, context)) if parameters.get(self.CRS) else None
        with self.user_errors():
            from ..models.stack.options import StackOptions
            from ..models.stack.prepare import prepare_stack

            options = StackOptions(
                s2=self._files(parameters, self.S2, context),
                output_folder=self.parameterAsString(parameters, self.OUTPUT_FOLDER, context),
                s2_bands=self.parameterAsString(parameters, self.S2_BANDS, context) or None,
                s2_mask=self._files(parameters, self.S2_MASK, context) or None,
                s1=self._files(parameters, self.S1, context) or None,
                extent=extent, extent_crs=extent_crs, crs=crs,
                min_valid_fraction=self.parameterAsDouble(parameters, self.MIN_VALID_FRACTION, context),
                max_s1_gap_days=self.parameterAsInt(parameters, self.MAX_S1_GAP_DAYS, context),
                mask_valid_values=self.parameterAsString(parameters, self.MASK_VALID_VALUES, context) or None,
                harmonized=self._enum(parameters, self.HARMONIZED, context, HARMONIZED_CHOICES),
                s1_units=self._enum(parameters, self.S1_UNITS, context, S1_UNITS_CHOICES),
                s1_smoothing=self.parameterAsBool(parameters, self.S1_SMOOTHING, context),
                s1_speckle_filter=self._enum(parameters, self.S1_SPECKLE_FILTER, context, SPECKLE_FILTERS),
                s1_speckle_size=self.parameterAsInt(parameters, self.S1_SPECKLE_SIZE, context),
                resampling=self._enum(parameters, self.RESAMPLING, context, RESAMPLING_CHOICES),
                substitute_b8a=self.parameterAsBool(parameters, self.SUBSTITUTE_B8A, context),
            )
            result = prepare_stack(options=options, progress=feedback)
        outputs = result.outputs()
        for key, name in ((self.S2_STACK, "Sentinel-2 stack"), (self.S1_STACK, "Sentinel-1 stack")):
            if outputs[key] and context.project() is not None:
                context.addLayerToLoadOnCompletion(
                    outputs[key], QgsProcessingContext.LayerDetails(name, context.project(), key))
        feedback.pushInfo(f"Wrote {len(result.dates)} dates: {result.s2_stack}"
                          + (f", {result.s1_stack}" if result.s1_stack else "") + f", {result.dates_table}")
        return outputs


def _crs_text(crs):
    """A CRS as models.stack takes it (authority id, else WKT); None when it is not valid."""
    return (crs.authid() or crs.toWkt()) if crs.isValid() else None
