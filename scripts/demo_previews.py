#!/usr/bin/env python3
"""PNG previews for the demo: Sentinel-2 true colour beside a CAMEO raster of a date.

    demo_previews.py S2_STACK RASTER DATE OUTPUT_PNG [BAND]

RASTER is drawn as: a 3-band byte raster (embedding RGB) as it is; one band with a
colour table (clusters, classes) in its colours; any other band (BAND, default 1, e.g.
a similarity) as a blue-white-red ramp from -1 to 1. Both halves are enlarged 4x
(nearest neighbour); true colour is B04/B03/B02 reflectance stretched from 0 to 0.2,
invalid pixels black.
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


def as_rgb(path, band=1):
    """uint8 [3, H, W] of a CAMEO raster, drawn as the module docstring says."""
    with rasterio.open(path) as data:
        if data.count == 3 and data.dtypes[0] == "uint8":
            return data.read()
        values = data.read(band)
        try:
            colours = data.colormap(band)
        except ValueError:  # no colour table
            colours = None
    if colours is not None:
        table = np.zeros((256, 3), np.uint8)
        for code, rgba in colours.items():
            table[code] = rgba[:3]
        return table[values].transpose(2, 0, 1)
    x = np.clip(np.nan_to_num(values.astype(float), nan=0.0), -1, 1)
    white = 1 - np.abs(x)
    red = np.where(x > 0, 1.0, white)
    blue = np.where(x < 0, 1.0, white)
    image = (np.stack([red, white, blue]) * 255).astype(np.uint8)
    image[:, ~np.isfinite(values)] = 0
    return image


def main(stack_path, raster_path, date, output, band="1"):
    embedding = as_rgb(raster_path, int(band))
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
    main(*sys.argv[1:6])
