"""Run under Xvfb by test_pixel_inspector.py: a real canvas, the inspector, one QTest click.

argv: config JSON path. Writes result.json (what the dock plotted), inspector.png (the dock
grabbed from the screen), series.csv and plots.png (its two export buttons' outputs).
"""

import json
import sys

config = json.load(open(sys.argv[1]))
sys.path.insert(0, config["plugins_dir"])

from qgis.core import QgsApplication, QgsDateTimeRange, QgsPointXY, QgsProject, QgsRasterLayer  # noqa: E402
from qgis.gui import QgsMapCanvas  # noqa: E402
from qgis.PyQt.QtCore import QDate, QDateTime, QPoint, Qt, QTime  # noqa: E402
from qgis.PyQt.QtTest import QTest  # noqa: E402

app = QgsApplication([], True)
app.initQgis()
from cameo.ui.pixel_inspector import PixelInspectorDock, PixelInspectorTool  # noqa: E402

layer = QgsRasterLayer(config["layer"], "embeddings")
assert layer.isValid(), config["layer"]
QgsProject.instance().addMapLayer(layer)
canvas = QgsMapCanvas()
canvas.setDestinationCrs(layer.crs())
canvas.setLayers([layer])
canvas.resize(400, 400)
canvas.show()
canvas.setExtent(layer.extent())
canvas.refresh()
dock = PixelInspectorDock()
dock.resize(520, 720)
dock.show()
tool = PixelInspectorTool(canvas, dock)
canvas.setMapTool(tool)
year, month, day = map(int, config["date"].split("-"))
start = QDateTime(QDate(year, month, day), QTime(0, 0))
canvas.setTemporalRange(QgsDateTimeRange(start, start.addDays(1)))
for _ in range(50):
    app.processEvents()
    QTest.qWait(20)
screen = canvas.getCoordinateTransform().transform(QgsPointXY(*config["point"]))
QTest.mouseClick(canvas.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                 QPoint(round(screen.x()), round(screen.y())))
for _ in range(20):
    app.processEvents()
    QTest.qWait(20)
out = config["out_dir"]
dock.grab().save(f"{out}/inspector.png")
dock.export_csv(f"{out}/series.csv")
dock.export_png(f"{out}/plots.png")
plotted = {name: [([d.isoformat() for d in x], [float(v) for v in y]) for x, y in lines]
           for name, lines in dock.plotted().items()}
date_lines = [[line.get_xdata()[0].isoformat() for line in ax.get_lines() if len(line.get_xdata()) == 2]
              for ax in dock.figure.axes]
json.dump({"row": dock.series.row, "col": dock.series.col, "label": dock.label.text(), "plotted": plotted,
           "date_lines": date_lines, "screen": [screen.x(), screen.y()]}, open(f"{out}/result.json", "w"))
app.exitQgis()
