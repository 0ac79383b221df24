"""Publishing the analyses' outputs whole or not at all.

models.rasterio_io.atomic_output with the analyses' creation profile ("analysis"): each
output (raster or text) is written under a hidden, locked sibling name (so that a later
run can sweep a killed run's leftovers) while a WriteGuard watches for a full disk;
`commit()` renames them all into place at the end, `abort()` (or any exception inside the
`with` block) removes them.
"""

import colorsys
import os

import rasterio

from ..errors import CameoInputError
from ..rasterio_io import atomic_output
from ..staging import report_swept, sweep_abandoned

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


class Publication(atomic_output):
    """The outputs of one run: `raster()` / `text()` stage them, `commit()` publishes all."""

    def __init__(self, folder, say=None):
        super().__init__(folder)
        self.say = say

    def stage(self, final, lock=True):
        path = os.path.abspath(final)
        stem, ext = os.path.splitext(os.path.basename(path))
        # Leftovers of a killed earlier run writing this same output (never other files).
        swept = sweep_abandoned(os.path.dirname(path), file_pattern=f".{stem}.tmp-*{ext}")
        if self.say:
            report_swept(self.say, swept)
        if os.path.isdir(path):
            raise CameoInputError(f"The output {path} is a folder: give a file name.")
        return super().stage(path, lock)

    def raster(self, path, **settings):
        """An open rasterio dataset writing (staged) to `path`; closed by commit()."""
        return super().raster(path, "analysis", **settings)

    def text(self, path, content):
        with open(self.stage(path), "w", encoding="utf-8", newline="") as handle:
            handle.write(content)

    def __exit__(self, exc_type, exc, tb):
        try:
            return super().__exit__(exc_type, exc, tb)
        except (rasterio.errors.RasterioIOError, PermissionError) as error:
            raise CameoInputError(f"Cannot write into {self.folder} ({str(error).strip()[:200]}): choose an output "
                                  "file in a folder you can write to.") from error
