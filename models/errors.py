"""Errors that CAMEO reports to users as they are, without a traceback.

Raise `CameoInputError` for anything the user can fix (a missing band, a bad date, an
extent outside the data); its message must name the problem and the fix. The QGIS
algorithms turn it into a QgsProcessingException, the command line tools into a
one-line message and exit status 2.
"""


class CameoError(RuntimeError):
    """Base class of the errors CAMEO reports to users without a traceback."""


class CameoInputError(CameoError, ValueError):
    """The input cannot be used; the message names the problem and the fix."""


class CameoCancelled(CameoError):
    """The user cancelled the run; partial outputs have been removed."""
