#!/usr/bin/env python3
"""PNG previews for the demo: Sentinel-2 true colour beside the embedding RGB of a date.

    demo_previews.py S2_STACK RGB_TIF DATE OUTPUT_PNG

Both halves are enlarged 4x (nearest neighbour); true colour is B04/B03/B02 reflectance
stretched from 0 to 0.2, invalid pixels black.
"""

import sys
import warnings

import numpy as np
import rasterio
import rasterio.shutil
from rasterio.io import MemoryFile

sys.path.insert(0, __file__.rsplit("/scripts/", 1)[0])
from models.stack import read_stack_info  # noqa: E402

SCALE = 4


def true_colour(stack_path, date):
    info = read_stack_info(stack_path)
    t = [d.isoformat() for d in info.dates].index(date)
    bands = [t * len(info.bands) + info.bands.index(name) + 1 for name in ("B04", "B03", "B02")]
    with rasterio.open(stack_path) as data:
        rgb = data.read(bands)
    image = np.clip(np.nan_to_num(rgb, nan=0.0) / 0.2, 0, 1) * 255
    return image.astype(np.uint8)


def main(stack_path, rgb_path, date, output):
    with rasterio.open(rgb_path) as data:
        embedding = data.read()
    gap = np.zeros((3, embedding.shape[1], 2), np.uint8)
    image = np.concatenate([true_colour(stack_path, date), gap, embedding], axis=2)
    image = image.repeat(SCALE, axis=1).repeat(SCALE, axis=2)
    # A preview carries no georeferencing; rasterio warns about that, needlessly here.
    warnings.filterwarnings("ignore", category=rasterio.errors.NotGeoreferencedWarning)
    with MemoryFile() as memory:
        with memory.open(driver="GTiff", width=image.shape[2], height=image.shape[1], count=3,
                         dtype="uint8") as dataset:
            dataset.write(image)
            rasterio.shutil.copy(dataset, output, driver="PNG")


if __name__ == "__main__":
    main(*sys.argv[1:5])
