"""Runs inside real QGIS desktop (`qgis --code tests/desktop_script.py`), for
tests/test_desktop_screenshot.py.

Opens the cameo:embed algorithm dialog the way the Processing toolbox does
(processing.createAlgorithmDialog), presses its Run code path (AlgorithmDialog.runAlgorithm:
a QgsProcessingAlgRunnerTask, then AlgorithmDialog.finish -> handleAlgorithmResults, which
loads the layers and runs CAMEO's post-processors), then sets the Temporal Controller to
one date, zooms to the layers, waits for the canvas to render and saves it. Writes what
was loaded to result.json and quits QGIS. Configuration: the JSON file named by
$CAMEO_DESKTOP_CONFIG ({"params": ..., "date_index": i, "other_date_index": j,
"out_dir": ..., "timeout": s}).
"""

import json
import os
import traceback

import processing
from qgis.core import QgsApplication, QgsDateTimeRange, QgsProject, QgsTemporalNavigationObject
from qgis.PyQt.QtCore import QDate, QDateTime, QTime, QTimer
from qgis.PyQt.QtWidgets import QApplication
from qgis.utils import iface

_CONFIG = json.load(open(os.environ["CAMEO_DESKTOP_CONFIG"]))
_OUT = _CONFIG["out_dir"]
_STATE = {"log": []}  # keeps the dialog, timers and connections alive


def _log(message):
    _STATE["log"].append(message)


def _finish(result):
    result["log"] = _STATE["log"]
    with open(os.path.join(_OUT, "result.json.part"), "w") as f:
        json.dump(result, f, indent=1)
    os.replace(os.path.join(_OUT, "result.json.part"), os.path.join(_OUT, "result.json"))
    QgsProject.instance().setDirty(False)
    QTimer.singleShot(0, lambda: QgsApplication.exit(0))


def _guard(function):
    def run(*args):
        try:
            function(*args)
        except Exception:  # report, never leave QGIS hanging
            _finish({"error": traceback.format_exc()})
    return run


def _watchdog():
    windows = [f"{type(w).__name__}: {w.windowTitle()}" for w in QApplication.topLevelWidgets() if w.isVisible()]
    _finish({"error": f"timed out after {_CONFIG['timeout']} s; visible windows: {windows}"})


def _range_json(span):
    return [span.begin().toString("yyyy-MM-ddTHH:mm:ss"), span.end().toString("yyyy-MM-ddTHH:mm:ss"),
            span.includeBeginning(), span.includeEnd()]


@_guard
def start():
    if QgsApplication.processingRegistry().algorithmById("cameo:embed") is None:
        raise RuntimeError("cameo:embed is not registered: the CAMEO plugin did not load")
    dialog = processing.createAlgorithmDialog("cameo:embed", _CONFIG["params"])
    _STATE["dialog"] = dialog
    dialog.show()
    _STATE["dialog_parameters"] = {k: str(v) for k, v in dialog.createProcessingParameters().items()}
    dialog.algorithmFinished.connect(_guard(on_finished))
    _log("runAlgorithm")
    dialog.runAlgorithm()  # what the dialog's Run button does


def on_finished(successful, results):
    _log(f"algorithmFinished successful={successful}")
    if not successful:
        raise RuntimeError(f"cameo:embed failed: {results}")
    _STATE["results"] = {k: str(v) for k, v in results.items()}
    QTimer.singleShot(0, _guard(show_date))  # let the dialog close first


def _layers_in_groups():
    groups = {}
    for group in QgsProject.instance().layerTreeRoot().findGroups(True):
        groups[group.name()] = [node.layer() for node in group.findLayers()]
    return groups


def show_date():
    # Without a window manager, QGIS 3.44 opens its window at about 1030 x 380 px (3.22
    # fills the screen): size it as a user's desktop would, the screen of Xvfb.
    iface.mainWindow().resize(1280, 800)
    canvas = iface.mapCanvas()
    groups = _layers_in_groups()
    _STATE["groups"] = groups
    dates = _STATE["results"]["DATES"].split(",")
    date = QDate.fromString(dates[_CONFIG["date_index"]], "yyyy-MM-dd")
    layers = [layer for members in groups.values() for layer in members]
    extent = layers[0].extent()
    for layer in layers[1:]:
        extent.combineExtentWith(layer.extent())
    canvas.setExtent(extent)
    _STATE["shots"] = []
    _STATE["pending"] = [(dates[_CONFIG["date_index"]], "canvas.png"),
                         (dates[_CONFIG["other_date_index"]], "canvas_other_date.png")]
    canvas.mapCanvasRefreshed.connect(_guard(on_rendered))
    _STATE["date"] = date
    next_shot()


def next_shot():
    iso, name = _STATE["pending"][0]
    date = QDate.fromString(iso, "yyyy-MM-dd")
    start = QDateTime(date, QTime(0, 0))
    # The Temporal Controller (the dock's navigation object) drives the canvas.
    controller = iface.mapCanvas().temporalController()
    controller.setNavigationMode(QgsTemporalNavigationObject.NavigationMode.FixedRange)
    controller.setTemporalExtents(QgsDateTimeRange(start, start.addDays(1), True, False))
    iface.mapCanvas().refresh()


def on_rendered():
    canvas = iface.mapCanvas()
    if canvas.isDrawing() or not _STATE["pending"]:
        return
    iso, name = _STATE["pending"][0]
    span = canvas.temporalRange()
    if span.begin().date().toString("yyyy-MM-dd") != iso:
        return  # a render of the previous state
    _STATE["pending"].pop(0)
    visible = [layer.name() for layer in canvas.layers()
               if not layer.temporalProperties().isActive()
               or layer.temporalProperties().isVisibleInTemporalRange(span)]
    path = os.path.join(_OUT, name)
    canvas.saveAsImage(path)
    _STATE["shots"].append({"date": iso, "path": path, "canvas_range": _range_json(span),
                            "map_settings_temporal": canvas.mapSettings().isTemporal(),
                            "visible_layers": visible})
    if name == "canvas.png":
        iface.mainWindow().grab().save(os.path.join(_OUT, "window.png"))
    if _STATE["pending"]:
        QTimer.singleShot(0, _guard(next_shot))
        return
    report()


def report():
    canvas = iface.mapCanvas()
    groups = {}
    for name, members in _STATE["groups"].items():
        groups[name] = [{"name": layer.name(), "source": layer.source(),
                         "temporal_active": layer.temporalProperties().isActive(),
                         "temporal_range": _range_json(layer.temporalProperties().fixedTemporalRange()),
                         "renderer": type(layer.renderer()).__name__} for layer in members]
    root_layers = [node.layer().name() for node in QgsProject.instance().layerTreeRoot().children()
                   if hasattr(node, "layer")]
    _finish({"results": _STATE["results"], "dialog_parameters": _STATE["dialog_parameters"],
             "groups": groups, "layers_outside_groups": root_layers,
             "project_layer_count": len(QgsProject.instance().mapLayers()),
             "canvas_size": [canvas.width(), canvas.height()], "shots": _STATE["shots"]})


QTimer.singleShot(int(_CONFIG["timeout"] * 1000), _watchdog)
QTimer.singleShot(0, start)
