"""Errors that CAMEO reports to users as they are, without a traceback.

Raise `CameoInputError` for anything the user can fix (a missing band, a bad date, an
extent outside the data); its message must name the problem and the fix. The QGIS
algorithms turn it into a QgsProcessingException, the command line tools (`models.cli`)
into a one-line message and exit status 2. `CameoRunError` is a run that failed although
its input was fine (exit status 1).
"""


class CameoError(RuntimeError):
    """Base class of the errors CAMEO reports to users without a traceback."""


class CameoInputError(CameoError, ValueError):
    """The input cannot be used; the message names the problem and the fix."""


class CameoRunError(CameoError):
    """The run could not finish although its input was usable (a cluster, a failed check)."""


class CameoCancelled(CameoError):
    """The user cancelled the run; partial outputs have been removed."""


def first_line(error, limit=200):
    """The first line of an exception's message (at most `limit` characters), or its type name
    when it has no message: what a one-line report quotes of an error from GDAL or onnxruntime."""
    text = str(error).strip()
    return text.splitlines()[0][:limit] if text else type(error).__name__
