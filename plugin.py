"""The CAMEO plugin object: registers the Processing provider, nothing else at load.

QGIS desktop calls `initGui`; `qgis_process` calls only `initProcessing`, with no
`iface`, so nothing here may assume a main window.
"""

from qgis.core import QgsApplication, QgsSettings
from qgis.PyQt.QtCore import QTimer

from .models.environment import install_command, missing_optional_packages, missing_packages

# Which missing packages the user was last told about; told again only if that changes.
NOTICE_SETTING = "cameo/missing_packages_notice"


class CameoPlugin:
    def __init__(self, iface):
        self.iface = iface
        self.provider = None
        self.inspector_action = self.inspector_dock = self.inspector_tool = None

    def initProcessing(self):  # noqa: N802 - QGIS API
        if self.provider is not None:
            return
        from .algorithms.provider import CameoProvider

        provider = CameoProvider()
        # addProvider refuses (and deletes) a provider whose id is taken, e.g. when
        # another copy of CAMEO is loaded: then this instance owns nothing to unload.
        if QgsApplication.processingRegistry().addProvider(provider):
            self.provider = provider

    def initGui(self):  # noqa: N802 - QGIS API
        self.initProcessing()
        if self.iface is not None:
            # Once the main window is up, not while QGIS is still loading plugins.
            QTimer.singleShot(0, self.notify_missing_dependencies)
            self.add_pixel_inspector()

    def add_pixel_inspector(self):
        """A toolbar button that makes the canvas's map tool the pixel inspector."""
        from qgis.PyQt.QtGui import QIcon
        from qgis.PyQt.QtWidgets import QAction

        from .algorithms.base import ICON_PATH
        from .ui.pixel_inspector import TITLE

        self.inspector_action = QAction(QIcon(ICON_PATH), TITLE, self.iface.mainWindow())
        self.inspector_action.setCheckable(True)
        self.inspector_action.triggered.connect(self.start_pixel_inspector)
        self.iface.addToolBarIcon(self.inspector_action)

    def start_pixel_inspector(self):
        # matplotlib is imported only now: the plugin loads without it.
        from .models.environment import MissingDependencyError, require
        from .ui.pixel_inspector import TITLE, PixelInspectorDock, PixelInspectorTool, dock_area

        try:
            require("matplotlib", "rasterio")
        except MissingDependencyError as error:
            self.inspector_action.setChecked(False)
            self.iface.messageBar().pushCritical(TITLE, str(error))
            return

        if self.inspector_dock is None:
            self.inspector_dock = PixelInspectorDock(self.iface.mainWindow())
            self.iface.addDockWidget(dock_area(), self.inspector_dock)
            self.inspector_tool = PixelInspectorTool(self.iface.mapCanvas(), self.inspector_dock)
            self.inspector_tool.setAction(self.inspector_action)
        self.inspector_dock.setVisible(True)
        self.iface.mapCanvas().setMapTool(self.inspector_tool)

    def unload(self):
        if self.inspector_action is not None:
            if self.inspector_tool is not None:
                self.iface.mapCanvas().unsetMapTool(self.inspector_tool)
            if self.inspector_dock is not None:
                self.iface.removeDockWidget(self.inspector_dock)
                self.inspector_dock.deleteLater()
            self.iface.removeToolBarIcon(self.inspector_action)
            self.inspector_action = self.inspector_dock = self.inspector_tool = None
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None

    def pending_dependency_notice(self):
        """The missing packages the user has not been told about yet, or [].

        Marks them as told: the dialog comes once per set of missing packages, and
        again only if that set changes (e.g. after installing one of two).
        """
        missing = missing_packages() + missing_optional_packages()
        settings = QgsSettings()
        key = ",".join(missing)
        told = settings.value(NOTICE_SETTING, "", type=str)
        settings.setValue(NOTICE_SETTING, key)
        return missing if missing and key != told else []

    def notify_missing_dependencies(self):
        missing = self.pending_dependency_notice()
        if missing:
            from .ui.missing_dependencies import MissingDependenciesDialog

            MissingDependenciesDialog(missing, install_command(missing),
                                      parent=self.iface.mainWindow()).exec()
