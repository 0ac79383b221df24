"""Publishing the analyses' outputs whole or not at all.

Each output (raster or text) is written under a hidden sibling name (the stacks'
`temporary_path`, locked like them so that a later run can sweep a killed run's
leftovers) while a WriteGuard watches for a full disk; `commit()` renames them all into
place at the end, `abort()` (or any exception inside the `with` block) removes them.
"""

import colorsys
import os

import rasterio

from ..errors import CameoInputError
from ..stack.format import remove_quietly, temporary_path
from ..staging import StagingLock, report_swept, sweep_abandoned
from ..writeguard import WriteGuard

RASTER_PROFILE = dict(driver="GTiff", tiled=True, blockxsize=256, blockysize=256, compress="deflate",
                      BIGTIFF="IF_SAFER")
# Qualitative colours for classes and clusters (ColorBrewer Set1 + Dark2), then evenly spread hues.
PALETTE = [(228, 26, 28), (55, 126, 184), (77, 175, 74), (152, 78, 163), (255, 127, 0), (255, 255, 51),
           (166, 86, 40), (247, 129, 191), (27, 158, 119), (217, 95, 2), (117, 112, 179), (102, 166, 30)]


def class_colour(code):
    """RGBA of class code 1, 2, ... (0 is no data)."""
    if code <= len(PALETTE):
        return PALETTE[code - 1] + (255,)
    r, g, b = colorsys.hsv_to_rgb((code * 0.618034) % 1.0, 0.75, 0.9)
    return (int(r * 255), int(g * 255), int(b * 255), 255)


def check_writable(path, what):
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder) or not os.access(folder, os.W_OK):
        raise CameoInputError(f"Cannot write the {what} {path}: its folder does not exist or is not writable. "
                              "Choose an output file in a folder you can write to.")


class Publication:
    """The outputs of one run: `raster()` / `text()` stage them, `commit()` publishes all."""

    def __init__(self, folder, say=None):
        self.folder = folder
        self.say = say
        self._staged = []  # (temporary, final, lock)
        self._datasets = []
        self._guard = WriteGuard(folder)

    def __enter__(self):
        self._guard.start()
        return self

    def _stage(self, path):
        path = os.path.abspath(path)
        stem, ext = os.path.splitext(os.path.basename(path))
        # Leftovers of a killed earlier run writing this same output (never other files).
        swept = sweep_abandoned(os.path.dirname(path), file_pattern=f".{stem}.tmp-*{ext}")
        if self.say:
            report_swept(self.say, swept)
        if os.path.isdir(path):
            raise CameoInputError(f"The output {path} is a folder: give a file name.")
        temporary = temporary_path(path)
        self._staged.append((temporary, path, None))
        return temporary

    def raster(self, path, **profile):
        """An open rasterio dataset writing (staged) to `path`; closed by commit()."""
        temporary = self._stage(path)
        dataset = rasterio.open(temporary, "w", **{**RASTER_PROFILE, **profile})
        self._datasets.append(dataset)
        self._staged[-1] = (temporary, os.path.abspath(path), StagingLock(temporary))
        return dataset

    def text(self, path, content):
        temporary = self._stage(path)
        with open(temporary, "w", encoding="utf-8", newline="") as handle:
            handle.write(content)

    def commit(self):
        for dataset in self._datasets:
            dataset.close()
        self._guard.check()  # GDAL reports a full disk without raising: publish no truncated file
        for temporary, final, lock in self._staged:
            remove_quietly(temporary + ".aux.xml")
            os.replace(temporary, final)
            if lock is not None:
                lock.release()
        self._staged = []

    def abort(self):
        for dataset in self._datasets:
            if not dataset.closed:
                try:
                    dataset.close()
                except Exception:  # noqa: BLE001 - best effort clean-up
                    pass
        for temporary, _, lock in self._staged:
            remove_quietly(temporary)
            if lock is not None:
                lock.release()
        self._staged = []

    def __exit__(self, exc_type, exc, tb):
        self._guard.stop()
        if exc_type is None:
            return False
        self.abort()
        better = self._guard.converted(exc)
        if better is not None:
            raise better from exc
        if isinstance(exc, (rasterio.errors.RasterioIOError, PermissionError)):
            raise CameoInputError(f"Cannot write into {self.folder} ({str(exc).strip()[:200]}): choose an output "
                                  "file in a folder you can write to.") from exc
        return False
