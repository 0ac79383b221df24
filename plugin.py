"""The CAMEO plugin object: registers the Processing provider, nothing else at load.

QGIS desktop calls `initGui`; `qgis_process` calls only `initProcessing`, with no
`iface`, so nothing here may assume a main window.
"""

from qgis.core import QgsApplication, QgsSettings
from qgis.PyQt.QtCore import QTimer

from .models.environment import install_command, missing_packages

# Which missing packages the user was last told about; told again only if that changes.
NOTICE_SETTING = "cameo/missing_packages_notice"


class CameoPlugin:
    def __init__(self, iface):
        self.iface = iface
        self.provider = None

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

    def unload(self):
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None

    def pending_dependency_notice(self):
        """The missing packages the user has not been told about yet, or [].

        Marks them as told: the dialog comes once per set of missing packages, and
        again only if that set changes (e.g. after installing one of two).
        """
        missing = missing_packages()
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
