"""Loading per-date outputs into QGIS desktop: one group, temporal properties, a style.

Processing loads the layers after the algorithm has finished (in the main thread); each
gets a post-processor that makes the Temporal Controller step through the dates and
puts the layers of one run in one group.
"""

import datetime

from qgis.core import (
    Qgis,
    QgsContrastEnhancement,
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
    """Sets a one-day temporal range, moves the layer into `group_name`, applies `style`."""

    def __init__(self, date, group_name, style=None):
        super().__init__()
        self.date, self.group_name, self.style = date, group_name, style

    def postProcessLayer(self, layer, context, feedback):  # noqa: N802 - QGIS API
        set_date(layer, self.date)
        if self.style is not None:
            self.style(layer)
        project = context.project()
        if project is not None:
            move_into_group(project, layer, self.group_name)


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


def load_dated_layers(context, paths_and_dates, group_name, output_name, style=None):
    """Ask Processing to load each (path, date) when the algorithm completes."""
    for path, date in paths_and_dates:
        if isinstance(date, str):
            date = datetime.date.fromisoformat(date)
        details = QgsProcessingContext.LayerDetails(date.isoformat(), context.project(), output_name)
        post = DatedLayerPostProcessor(date, group_name, style)
        _KEEP_ALIVE.append(post)
        details.setPostProcessor(post)
        context.addLayerToLoadOnCompletion(path, details)
