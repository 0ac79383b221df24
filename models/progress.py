"""Progress reporting and cancellation without Qt.

Long-running numerics take a `progress` object with the same three methods as
QgsProcessingFeedback (`setProgress`, `pushInfo`, `isCanceled`), so the algorithms pass
their feedback straight through and the command line passes `ConsoleProgress`.
"""

import sys

from .errors import CameoCancelled


class NullProgress:
    """Reports nothing and is never cancelled."""

    def setProgress(self, percent):  # noqa: N802 - QgsProcessingFeedback's name
        pass

    def pushInfo(self, message):  # noqa: N802
        pass

    def isCanceled(self):  # noqa: N802
        return False


class ConsoleProgress(NullProgress):
    """Prints messages and a coarse percentage to stderr."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self._last_decile = -1

    def setProgress(self, percent):  # noqa: N802
        decile = int(percent // 10)
        if decile != self._last_decile:
            self._last_decile = decile
            print(f"{percent:5.1f} %", file=self.stream, flush=True)

    def pushInfo(self, message):  # noqa: N802
        print(message, file=self.stream, flush=True)


def check_cancelled(progress):
    """Raise CameoCancelled if the user asked to stop; call between units of work."""
    if progress is not None and progress.isCanceled():
        raise CameoCancelled("Cancelled by the user.")
