"""Loading per-date outputs into QGIS desktop: one group, temporal properties, a style.

Processing loads the layers after the algorithm has finished (in the main thread); each
gets a post-processor that makes the Temporal Controller step through the dates and
puts the layers of one run in one group.
"""

import datetime

from qgis.core import (
    Qgis,
    QgsContrastEnhancement,
    QgsPalettedRasterRenderer,
    QgsDateTimeRange,
    QgsMultiBandColorRenderer,
    QgsProcessingContext,
    QgsProcessingLayerPostProcessorInterface,
    QgsRasterBandStats,
)
from qgis.PyQt.QtCore import QDate, QDateTime, QTime

# Post-processors must outlive processAlgorithm; Processing keeps only a pointer.
_KEEP_ALIVE = []


class DatedLayerPostProcessor(QgsProcessingLayerPostProcessorInterface):
    """Sets a one-day temporal range, moves the layer into `group_name`, applies `style`.

    `companions(layer)` may return more layers made from the same file (an overlay of
    another band): they get the same date and go into the group above the layer."""

    def __init__(self, date, group_name, style=None, companions=None):
        super().__init__()
        self.date, self.group_name, self.style, self.companions = date, group_name, style, companions

    def postProcessLayer(self, layer, context, feedback):  # noqa: N802 - QGIS API
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


class StylePostProcessor(QgsProcessingLayerPostProcessorInterface):
    """Applies `style` (a function of the layer) once Processing has loaded the layer."""

    def __init__(self, style):
        super().__init__()
        self.style = style

    def postProcessLayer(self, layer, context, feedback):  # noqa: N802 - QGIS API
        self.style(layer)


def style_on_load(context, path, style):
    """Apply `style` to the output `path` when Processing loads it (desktop); else nothing."""
    if context.willLoadLayerOnCompletion(path):
        post = StylePostProcessor(style)
        _KEEP_ALIVE.append(post)
        context.layerToLoadOnCompletionDetails(path).setPostProcessor(post)


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


def load_dated_layers(context, paths_and_dates, group_name, output_name, style=None, companions=None):
    """Ask Processing to load each (path, date) when the algorithm completes."""
    for path, date in paths_and_dates:
        if isinstance(date, str):
            date = datetime.date.fromisoformat(date)
        details = QgsProcessingContext.LayerDetails(date.isoformat(), context.project(), output_name)
        post = DatedLayerPostProcessor(date, group_name, style, companions)
        _KEEP_ALIVE.append(post)
        details.setPostProcessor(post)
        context.addLayerToLoadOnCompletion(path, details)
