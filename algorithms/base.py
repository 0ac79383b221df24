"""What every CAMEO Processing algorithm shares: naming, groups, help, errors, and the
parameter helpers several algorithms need (advanced parameters, extents).

Subclasses set the class attributes (parameter names as constants, as QGIS core's
algorithms do: `OUTPUT = "OUTPUT"`) and write `initAlgorithm` and `processAlgorithm`;
`processAlgorithm` stays thin and calls Qt-free code in `models/` inside
`self.user_errors()`, which turns CAMEO's own errors into QgsProcessingException.
"""

import contextlib
import os

from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsProcessingAlgorithm,
    QgsProcessingException,
    QgsProcessingParameterDefinition,
)
from qgis.PyQt.QtCore import QCoreApplication
from qgis.PyQt.QtGui import QIcon

from ..models.environment import MissingDependencyError, require
from ..models.errors import CameoError

# Group id -> display name. Groups appear in the toolbox once an algorithm uses them.
GROUPS = {
    "prepare": "Prepare",
    "embeddings": "Embeddings",
    "ecosystem": "Ecosystem",
    "utilities": "Utilities",
}

HELP_PARAGRAPH_BREAK = "<br><br>"

ICON_PATH = os.path.join(os.path.dirname(os.path.dirname(__file__)), "resources", "icon.svg")


def tr(text):
    return QCoreApplication.translate("CAMEO", text)


class CameoAlgorithm(QgsProcessingAlgorithm):
    """Base class: set NAME, DISPLAY_NAME, GROUP, HELP and REQUIRES in subclasses."""

    NAME = ""
    DISPLAY_NAME = ""
    GROUP = "utilities"
    # The help text: a tuple of paragraphs (QGIS's help panel shows HTML: <b>, <i> inline).
    HELP = ()
    # Import names of the Python packages the algorithm cannot run without.
    REQUIRES = ()

    def name(self):
        return self.NAME

    def displayName(self):  # noqa: N802 - QGIS API
        return tr(self.DISPLAY_NAME)

    def group(self):
        return tr(GROUPS[self.GROUP])

    def groupId(self):  # noqa: N802
        return self.GROUP

    def shortHelpString(self):  # noqa: N802
        return HELP_PARAGRAPH_BREAK.join(tr(paragraph) for paragraph in self.HELP)

    def icon(self):
        return QIcon(ICON_PATH)

    def createInstance(self):  # noqa: N802
        return type(self)()

    def checkParameterValues(self, parameters, context):  # noqa: N802
        # Fail before the run starts (and in the dialog) when a package is missing.
        try:
            require(*self.REQUIRES)
        except MissingDependencyError as error:
            return False, str(error)
        return super().checkParameterValues(parameters, context)

    @contextlib.contextmanager
    def user_errors(self):
        """Turn CAMEO's user-facing errors into QgsProcessingException (no traceback)."""
        try:
            require(*self.REQUIRES)
            yield
        except CameoError as error:  # includes MissingDependencyError
            raise QgsProcessingException(str(error)) from error

    def addAdvancedParameter(self, parameter):  # noqa: N802 - named like addParameter
        """addParameter, with the parameter in the dialog's "Advanced parameters" section."""
        parameter.setFlags(parameter.flags() | QgsProcessingParameterDefinition.Flag.FlagAdvanced)
        return self.addParameter(parameter)

    def extent_bounds(self, parameters, name, context, crs=None):
        """(xmin, ymin, xmax, ymax) of extent parameter `name` (in `crs` when given, else in the
        extent's own CRS), or None when the parameter is empty (the whole input)."""
        if not parameters.get(name):
            return None
        rect = self.parameterAsExtent(parameters, name, context, crs or QgsCoordinateReferenceSystem())
        return rect.xMinimum(), rect.yMinimum(), rect.xMaximum(), rect.yMaximum()
