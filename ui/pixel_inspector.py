"""The pixel inspector: click a pixel of a CAMEO embedding or GPP layer, see it through time.

A map tool (`PixelInspectorTool`) and a dock (`PixelInspectorDock`) with three plots from
matplotlib's Qt backend: Sentinel-2 NDVI with a true-colour swatch per date, the
embedding features, and GPP; the Temporal Controller's date as a vertical line; buttons
that export the series as CSV and the plots as PNG. The numbers come from
models.analysis.pixel_series (Qt-free).
"""

import datetime
import os

from qgis.core import QgsCoordinateTransform, QgsProject, QgsRasterLayer
from qgis.gui import QgsMapToolEmitPoint
from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

TITLE = "CAMEO pixel inspector"


def is_cameo_layer(layer):
    """A raster layer written by cameo:embed or cameo:predictgpp (judged from its metadata)."""
    if not isinstance(layer, QgsRasterLayer) or not os.path.isfile(layer.source()):
        return False
    import rasterio

    try:
        with rasterio.open(layer.source()) as data:
            tags = data.tags()
    except Exception:  # noqa: BLE001 - any unreadable layer is simply not ours
        return False
    return "CAMEO_DATES" in tags or "CAMEO_DATE" in tags


class PixelInspectorDock(QDockWidget):
    """Plots of one pixel's series; `show_series` fills it, `set_date` moves the date line."""

    def __init__(self, parent=None):
        super().__init__(TITLE, parent)
        from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
        from matplotlib.figure import Figure

        self.setObjectName("CameoPixelInspector")
        self.series = None
        self.date = None
        self.figure = Figure(figsize=(5, 6), tight_layout=True)
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.label = QLabel("Click a pixel of a CAMEO embedding or GPP layer.")
        self.label.setWordWrap(True)
        self.csv_button = QPushButton("Export CSV...")
        self.png_button = QPushButton("Export PNG...")
        self.csv_button.clicked.connect(lambda: self.export_csv())
        self.png_button.clicked.connect(lambda: self.export_png())
        for button in (self.csv_button, self.png_button):
            button.setEnabled(False)
        buttons = QHBoxLayout()
        buttons.addWidget(self.csv_button)
        buttons.addWidget(self.png_button)
        body = QWidget()
        layout = QVBoxLayout(body)
        layout.addWidget(self.label)
        layout.addWidget(self.canvas, 1)
        layout.addLayout(buttons)
        self.setWidget(body)

    def show_series(self, series, layer_name=""):
        self.series = series
        where = f"row {series.row}, column {series.col}" + (f" of {layer_name}" if layer_name else "")
        self.label.setText(where)
        for button in (self.csv_button, self.png_button):
            button.setEnabled(True)
        self.redraw()

    def set_date(self, date):
        self.date = date
        if self.series is not None:
            self.redraw()

    def redraw(self):
        import numpy as np

        series = self.series
        self.figure.clear()
        axes = self.figure.subplots(3, 1, sharex=True)
        ndvi = series.ndvi
        if ndvi is not None:
            axes[0].plot(series.s2_dates, ndvi, "-", color="0.6", linewidth=0.8)
            colours = np.clip(np.stack([series.reflectance[b] for b in ("B04", "B03", "B02")], 1) / 0.2, 0, 1)
            colours = np.nan_to_num(colours, nan=0.0)
            axes[0].scatter(series.s2_dates, ndvi, c=colours, s=36, edgecolors="0.3", linewidths=0.5)
        axes[0].set_ylabel("NDVI (dots: true colour)")
        if series.embeddings is not None:
            for f, name in enumerate(series.features):
                axes[1].plot(series.embedding_dates, series.embeddings[:, f], ".-", label=name, linewidth=0.8)
            axes[1].legend(fontsize=6, ncol=4)
        axes[1].set_ylabel("embedding")
        if series.gpp is not None:
            axes[2].plot(series.gpp_dates, series.gpp, ".-", color="tab:green")
            if series.gpp_aoa_di is not None:
                outside = series.gpp_aoa_di > series.aoa_threshold
                axes[2].scatter(np.asarray(series.gpp_dates)[outside], series.gpp[outside], s=40, marker="x",
                                color="0.3", label="outside the area of applicability", zorder=3)
                if outside.any():
                    axes[2].legend(fontsize=6)
        axes[2].set_ylabel("GPP (g C m-2 d-1)")
        if self.date is not None:
            for ax in axes:
                ax.axvline(self.date, color="tab:red", linewidth=1)
        self.figure.autofmt_xdate()
        self.canvas.draw()

    def plotted(self):
        """{axes title: [(x dates, y values) per line]} of what is drawn (for checks and tests)."""
        result = {}
        for ax in self.figure.axes:
            lines = [line for line in ax.get_lines() if len(line.get_xdata()) > 2]
            result[ax.get_ylabel()] = [(list(line.get_xdata()), list(line.get_ydata())) for line in lines]
        return result

    def export_csv(self, path=None):
        from ..models.analysis.pixel_series import series_csv

        path = path or QFileDialog.getSaveFileName(self, "Export the series", "", "CSV files (*.csv)")[0]
        if path:
            with open(path, "w", encoding="utf-8", newline="") as handle:
                handle.write(series_csv(self.series))
        return path

    def export_png(self, path=None):
        path = path or QFileDialog.getSaveFileName(self, "Export the plots", "", "PNG images (*.png)")[0]
        if path:
            self.figure.savefig(path, dpi=120)
        return path


class PixelInspectorTool(QgsMapToolEmitPoint):
    """Clicks on the canvas -> the series of that pixel of the active (or first) CAMEO layer."""

    def __init__(self, canvas, dock):
        super().__init__(canvas)
        self.dock = dock
        self.canvasClicked.connect(self.inspect)
        canvas.temporalRangeChanged.connect(self.follow_temporal_controller)

    def cameo_layer(self):
        current = self.canvas().currentLayer()
        if is_cameo_layer(current):
            return current
        return next((layer for layer in self.canvas().layers() if is_cameo_layer(layer)), None)

    def follow_temporal_controller(self):
        begin = self.canvas().temporalRange().begin()
        if begin.isValid():
            day = begin.date()
            self.dock.set_date(datetime.date(day.year(), day.month(), day.day()))

    def inspect(self, point, button=None):
        from ..models.analysis.pixel_series import pixel_series

        layer = self.cameo_layer()
        if layer is None:
            self.dock.label.setText("No CAMEO embedding or GPP layer on the map: load one first.")
            return None
        transform = QgsCoordinateTransform(self.canvas().mapSettings().destinationCrs(), layer.crs(),
                                           QgsProject.instance().transformContext())
        where = transform.transform(point)
        series = pixel_series(layer.source(), where.x(), where.y())
        if series is None:
            self.dock.label.setText(f"That point is outside {layer.name()}.")
            return None
        self.follow_temporal_controller()
        self.dock.show_series(series, layer.name())
        self.dock.setVisible(True)
        return series


def dock_area():
    return Qt.DockWidgetArea.RightDockWidgetArea
