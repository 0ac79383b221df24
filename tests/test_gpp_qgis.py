"""GPP layers in QGIS: the colour ramp, and the companion layer that greys pixels outside the AOA."""

import datetime

import numpy as np
import rasterio
from affine import Affine
from qgis.core import QgsProcessingContext, QgsProcessingFeedback, QgsProject, QgsRasterLayer
from qgis.PyQt.QtGui import QColor


def test_pixels_outside_the_area_of_applicability_are_greyed(qgis_app, tmp_path):
    from cameo.algorithms.layer_loading import AOA_GREY, DatedLayerPostProcessor, aoa_overlay, ramp_style

    path = tmp_path / "gpp_2019-06-20.tif"
    gpp = np.array([[2.0, 8.0], [12.0, np.nan]], np.float32)
    di = np.array([[0.10, 0.90], [0.449, np.nan]], np.float32)     # threshold 0.45
    with rasterio.open(path, "w", driver="GTiff", width=2, height=2, count=2, dtype="float32",
                       crs="EPSG:32631", transform=Affine(10, 0, 500000, 0, -10, 5600000), nodata=float("nan")) as out:
        out.write(np.stack([gpp, di]))
    project = QgsProject.instance()
    layer = QgsRasterLayer(str(path), "2019-06-20")
    project.addMapLayer(layer)
    context = QgsProcessingContext()
    context.setProject(project)
    date = datetime.date(2019, 6, 20)
    DatedLayerPostProcessor(date, "CAMEO GPP (t)", ramp_style(), aoa_overlay(0.45)).postProcessLayer(
        layer, context, QgsProcessingFeedback())
    group = project.layerTreeRoot().findGroup("CAMEO GPP (t)")
    layers = [node.layer() for node in group.findLayers()]
    assert len(layers) == 2 and layers[1] is layer          # the overlay is drawn above the GPP layer
    overlay = layers[0]
    assert overlay.name() == "2019-06-20 outside AOA" and overlay.renderer().band() == 2
    assert overlay.temporalProperties().fixedTemporalRange() == layer.temporalProperties().fixedTemporalRange()
    block = overlay.renderer().block(2, overlay.extent(), 2, 2)
    colour = QColor.fromRgba(block.color(0, 1))               # DI 0.90 > 0.45: grey, mostly opaque
    grey, alpha = AOA_GREY[0], AOA_GREY[3]                    # blocks hold premultiplied ARGB
    assert colour.alpha() == alpha
    assert (colour.red(), colour.green(), colour.blue()) == (round(grey * alpha / 255),) * 3
    for row, col in ((0, 0), (1, 0)):                          # inside: fully transparent
        assert QColor.fromRgba(block.color(row, col)).alpha() == 0
    gpp_block = layer.renderer().block(1, layer.extent(), 2, 2)
    low, high = QColor.fromRgba(gpp_block.color(0, 0)), QColor.fromRgba(gpp_block.color(1, 0))
    assert low.alpha() == 255 and high.alpha() == 255 and low != high  # the ramp colours GPP
    project.removeMapLayers([overlay.id(), layer.id()])
