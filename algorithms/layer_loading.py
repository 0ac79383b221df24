"""Loading outputs into QGIS desktop: one group, temporal properties, and the styles of
CAMEO's layers (RGB of embeddings, GPP colour ramp, AOA overlay, class labels).

Processing loads the layers after the algorithm has finished (in the main thread); each
gets a post-processor that makes the Temporal Controller step through the dates and
puts the layers of one run in one group.
"""

import datetime

from qgis.core import (
    Qgis,
    QgsColorRampShader,
    QgsContrastEnhancement,
    QgsDateTimeRange,
    QgsMultiBandColorRenderer,
    QgsPalettedRasterRenderer,
    QgsProcessingContext,
    QgsProcessingLayerPostProcessorInterface,
    QgsRasterBandStats,
    QgsRasterLayer,
    QgsRasterShader,
    QgsSingleBandPseudoColorRenderer,
    QgsStyle,
)
from qgis.PyQt import sip
from qgis.PyQt.QtCore import QDate, QDateTime, QTime
from qgis.PyQt.QtGui import QColor

GPP_STYLE_MAX = 15.0  # g C m-2 d-1: the same colours on every date
AOA_GREY = (128, 128, 128, 190)  # outside the area of applicability: greyed over the GPP colours


class RetainedPostProcessor(QgsProcessingLayerPostProcessorInterface):
    """A post-processor that Python keeps alive until Processing has called it.

    The context owns the C++ side, but the Python side of a Python subclass would be
    garbage-collected once processAlgorithm returns, and Processing would then call a
    dead object. `pending` holds every post-processor that may still be called: each new
    one drops those already called (never one during its own call) and those whose
    context is gone (sip reports its C++ side deleted), so it holds at most the layers
    of the runs still open. Subclasses write `apply(layer, context)`."""

    pending = []

    def __init__(self):
        super().__init__()
        self.called = False
        RetainedPostProcessor.pending = [post for post in RetainedPostProcessor.pending
                                         if not post.called and not sip.isdeleted(post)]
        RetainedPostProcessor.pending.append(self)

    def postProcessLayer(self, layer, context, feedback):  # noqa: N802 - QGIS API
        try:
            self.apply(layer, context)
        finally:
            self.called = True

    def apply(self, layer, context):
        raise NotImplementedError


class DatedLayerPostProcessor(RetainedPostProcessor):
    """Sets a one-day temporal range, moves the layer into `group_name`, applies `style`.

    `companions(layer)` may return more layers made from the same file (an overlay of
    another band): they get the same date and go into the group above the layer."""

    def __init__(self, date, group_name, style=None, companions=None):
        super().__init__()
        self.date, self.group_name, self.style, self.companions = date, group_name, style, companions

    def apply(self, layer, context):
        set_date(layer, self.date)
        if self.style is not None:
            self.style(layer)
        project = context.project()
        if project is None:
            return
        move_into_group(project, layer, self.group_name)
        for extra in (self.companions(layer) if self.companions else []):
            set_date(extra, self.date)
            project.addMapLayer(extra, False)
            group = project.layerTreeRoot().findGroup(self.group_name)
            group.insertLayer(0, extra)


class StylePostProcessor(RetainedPostProcessor):
    """Applies `style` (a function of the layer) once Processing has loaded the layer."""

    def __init__(self, style):
        super().__init__()
        self.style = style

    def apply(self, layer, context):
        self.style(layer)


def style_on_load(context, path, style):
    """Apply `style` to the output `path` when Processing loads it (desktop); else nothing."""
    if context.willLoadLayerOnCompletion(path):
        context.layerToLoadOnCompletionDetails(path).setPostProcessor(StylePostProcessor(style))


def class_labels_style(labels):
    """A style function: band 1 paletted in the file's colour table, class code i + 1 labelled labels[i]."""

    def apply(layer):
        provider = layer.dataProvider()
        classes = QgsPalettedRasterRenderer.colorTableToClassData(provider.colorTable(1))
        for item in classes:
            if 1 <= int(item.value) <= len(labels):
                item.label = labels[int(item.value) - 1]
        classes = [item for item in classes if 1 <= int(item.value) <= len(labels)]
        layer.setRenderer(QgsPalettedRasterRenderer(provider, 1, classes))
        layer.triggerRepaint()

    return apply


def set_date(layer, date):
    """Make `layer` valid for the whole day `date` in the Temporal Controller."""
    start = QDateTime(QDate(date.year, date.month, date.day), QTime(0, 0))
    properties = layer.temporalProperties()
    properties.setMode(Qgis.RasterTemporalMode.FixedTemporalRange)
    properties.setFixedTemporalRange(QgsDateTimeRange(start, start.addDays(1), True, False))
    properties.setIsActive(True)


def move_into_group(project, layer, group_name):
    root = project.layerTreeRoot()
    node = root.findLayer(layer.id())
    if node is None:
        return
    group = root.findGroup(group_name) or root.insertGroup(0, group_name)
    if node.parent() is not group:
        group.addChildNode(node.clone())
        node.parent().removeChildNode(node)


def rgb_style(red=1, green=2, blue=3):
    """A style function: three bands as RGB, each stretched between its min and max."""

    def apply(layer):
        provider = layer.dataProvider()
        renderer = QgsMultiBandColorRenderer(provider, red, green, blue)
        setters = (renderer.setRedContrastEnhancement, renderer.setGreenContrastEnhancement,
                   renderer.setBlueContrastEnhancement)
        for band, setter in zip((red, green, blue), setters):
            stats = provider.bandStatistics(band, QgsRasterBandStats.Stats.Min | QgsRasterBandStats.Stats.Max)
            enhancement = QgsContrastEnhancement(provider.dataType(band))
            enhancement.setContrastEnhancementAlgorithm(
                QgsContrastEnhancement.ContrastEnhancementAlgorithm.StretchToMinimumMaximum)
            enhancement.setMinimumValue(stats.minimumValue)
            enhancement.setMaximumValue(stats.maximumValue)
            setter(enhancement)
        layer.setRenderer(renderer)
        layer.triggerRepaint()

    return apply


def ramp_style(minimum=0.0, maximum=GPP_STYLE_MAX, ramp_name="Viridis"):
    """A style function: band 1 as a continuous colour ramp over a fixed range (default: GPP, g C m-2 d-1)."""

    def apply(layer):
        ramp = QgsStyle.defaultStyle().colorRamp(ramp_name)
        shader_function = QgsColorRampShader(minimum, maximum, ramp, QgsColorRampShader.Type.Interpolated)
        shader_function.classifyColorRamp(9, -1)
        shader = QgsRasterShader()
        shader.setRasterShaderFunction(shader_function)
        renderer = QgsSingleBandPseudoColorRenderer(layer.dataProvider(), 1, shader)
        renderer.setClassificationMin(minimum)
        renderer.setClassificationMax(maximum)
        layer.setRenderer(renderer)
        layer.triggerRepaint()

    return apply


def aoa_overlay(threshold):
    """Companion layers: band AOA_DI of the same file, grey where DI > threshold, else transparent."""

    def make(gpp_layer):
        layer = QgsRasterLayer(gpp_layer.source(), f"{gpp_layer.name()} outside AOA", "gdal")
        shader_function = QgsColorRampShader(0.0, threshold, None, QgsColorRampShader.Type.Discrete)
        shader_function.setColorRampItemList([
            QgsColorRampShader.ColorRampItem(threshold, QColor(0, 0, 0, 0), "inside the area of applicability"),
            QgsColorRampShader.ColorRampItem(float("inf"), QColor(*AOA_GREY),
                                             f"outside (AOA_DI > {threshold:.3g})")])
        shader = QgsRasterShader()
        shader.setRasterShaderFunction(shader_function)
        layer.setRenderer(QgsSingleBandPseudoColorRenderer(layer.dataProvider(), 2, shader))
        return [layer]

    return make


def load_dated_layers(context, paths_and_dates, group_name, output_name, style=None, companions=None):
    """Ask Processing to load each (path, date) when the algorithm completes."""
    for path, date in paths_and_dates:
        if isinstance(date, str):
            date = datetime.date.fromisoformat(date)
        details = QgsProcessingContext.LayerDetails(date.isoformat(), context.project(), output_name)
        details.setPostProcessor(DatedLayerPostProcessor(date, group_name, style, companions))
        context.addLayerToLoadOnCompletion(path, details)
