"""CAMEO QGIS plugin entry point.

QGIS imports this package under the folder name `cameo` and calls `classFactory`.
Imports stay inside the function so that importing the package never fails, even in a
QGIS whose Python lacks CAMEO's runtime dependencies.
"""


def classFactory(iface):  # noqa: N802 - name required by QGIS
    from .plugin import CameoPlugin

    return CameoPlugin(iface)
