"""Notice failed raster writes (a full disk) that GDAL only reports, never raises.

When the disk fills up while a GeoTIFF is written, GDAL reports "No space left on
device" through its error handler but rasterio's `write()` and `close()` return as
if all went well, leaving a truncated file that looks finished. `WriteGuard` watches
those reports (rasterio logs them on the `rasterio._env` logger) and the free space
of the output folder, and turns a failed write into a `CameoInputError` *before*
the caller renames its temporary files into place:

    with WriteGuard(folder) as guard:   # an OSError / rasterio error on a full disk
        ... write, close ...            # becomes CameoInputError when leaving the block
        guard.check()                   # raise now if GDAL reported a write error
        ... rename into place ...
"""

import errno
import logging
import re
import shutil

from .errors import CameoInputError

_LOGGER = "rasterio._env"
_WRITE_ERROR = re.compile(
    r"No space left|Disk quota|disk full|Write error|write failed|IO error writing|I/O error|Read-only file system",
    re.IGNORECASE)


class _Recorder(logging.Handler):
    def __init__(self):
        super().__init__(logging.INFO)
        self.messages = []

    def emit(self, record):
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a logging handler must never raise
            return
        if _WRITE_ERROR.search(message):
            self.messages.append(message)


def free_bytes(folder):
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def disk_full_error(folder, detail=""):
    free = free_bytes(folder)
    room = f"{free / 2**20:.1f} MB free" if free is not None else "free space unknown"
    detail = f"; {detail}" if detail else ""
    return CameoInputError(
        f"Writing to {folder} failed: not enough disk space ({room}{detail}). Free some disk space or "
        "choose an output folder on another disk, then run again (the partial files were removed).")


def _first_gdal_message(messages):
    text = messages[0]
    match = re.search(r"msg='(.*?)'", text)
    return (match.group(1) if match else text)[:160]


class WriteGuard:
    """Context manager watching GDAL write errors and the free space of `folder`."""

    def __init__(self, folder):
        self.folder = str(folder)
        self._recorder = _Recorder()
        self._logger = logging.getLogger(_LOGGER)
        self._level = None

    def __enter__(self):
        return self.start()

    def start(self):
        self._level = self._logger.level
        if not self._logger.isEnabledFor(logging.INFO):
            self._logger.setLevel(logging.INFO)
        self._logger.addHandler(self._recorder)
        return self

    def failed(self):
        """The first GDAL write error seen so far, or '' if none."""
        return _first_gdal_message(self._recorder.messages) if self._recorder.messages else ""

    def check(self):
        """Raise CameoInputError if GDAL reported a failed write since the guard started."""
        message = self.failed()
        if message:
            raise self._error(message)
        if free_bytes(self.folder) == 0:
            raise disk_full_error(self.folder)

    def _error(self, message):
        if re.search(r"Read-only file system", message, re.IGNORECASE):
            return CameoInputError(
                f"Cannot write to {self.folder}: it is on a read-only file system (GDAL: {message}). "
                "Choose an output folder you can write to.")
        return disk_full_error(self.folder, f"GDAL: {message}")

    def converted(self, exc):
        """The CameoInputError that explains `exc` (a failed write), or None."""
        if exc is None or isinstance(exc, CameoInputError) or not isinstance(exc, Exception):
            return None
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return disk_full_error(self.folder, exc.strerror or "")
        if isinstance(exc, OSError) and exc.errno == errno.EROFS:
            return self._error("Read-only file system")
        if self.failed() or free_bytes(self.folder) == 0 or _WRITE_ERROR.search(str(exc)):
            return self._error(self.failed() or str(exc)[:160])
        return None

    def stop(self):
        self._logger.removeHandler(self._recorder)
        if self._level is not None:
            self._logger.setLevel(self._level)
            self._level = None

    def __exit__(self, exc_type, exc, tb):
        self.stop()
        better = self.converted(exc)
        if better is not None:
            raise better from exc
        return False
