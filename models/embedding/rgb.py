"""Embedding to RGB: the first three principal components, stretched to bytes.

The view the paper uses to show the spatial coherence of the embeddings. Works block by
block: pass 1 samples valid pixels to fit the components and the 2-98 % stretch, pass 2
projects and writes, so memory does not grow with the raster.
"""

import datetime
import os

import numpy as np
import rasterio
import rasterio.errors
from rasterio.windows import Window

from ..errors import CameoInputError, first_line
from ..progress import NullProgress, check_cancelled
from ..rasterio_io import atomic_output, read_dated_index

BLOCK_ROWS = 512
SAMPLE_PIXELS = 200_000
STRETCH_PERCENTILES = (2.0, 98.0)


def select_bands(dataset, date=None):
    """(1-based band indexes of one date's embedding, that date) in an embedding raster."""
    tags = dataset.tags()
    if "CAMEO_STACK_VERSION" in tags:
        raise CameoInputError(
            f"{os.path.basename(dataset.name)} is a CAMEO time stack (reflectance or backscatter), not an "
            "embedding: run cameo:embed on it first and give its embeddings.vrt or embedding_YYYY-MM-DD.tif.")
    index = read_dated_index(tags, dataset.count)
    if index is None:
        raise CameoInputError(
            f"{os.path.basename(dataset.name)} is not a CAMEO embedding (no CAMEO_DATE or CAMEO_DATES tag): "
            "give a file written by cameo:embed.")
    if index.single_date:  # one date's file
        if date is not None and date != index.dates[0]:
            raise CameoInputError(
                f"{os.path.basename(dataset.name)} holds the embedding of {index.dates[0]}, not {date}: "
                "leave DATE empty, or give the embeddings.vrt of all dates.")
        return list(range(1, dataset.count + 1)), index.dates[0]
    dates, per_date = index.dates, index.per_date  # the VRT of all dates written by cameo:embed
    if per_date < 3 or not index.complete(dataset.count):
        raise CameoInputError(
            f"{os.path.basename(dataset.name)} has {dataset.count} bands for {len(dates)} dates: it is not an "
            "embeddings.vrt written by cameo:embed. Give that file, or one embedding_YYYY-MM-DD.tif.")
    if date is None:
        date = dates[0]
    elif date not in dates:
        raise CameoInputError(
            f"Date {date} is not in {os.path.basename(dataset.name)}, which holds {len(dates)} dates "
            f"from {dates[0]} to {dates[-1]}: give one of them as YYYY-MM-DD, or leave DATE empty "
            "for the first.")
    t = dates.index(date)
    return list(range(t * per_date + 1, (t + 1) * per_date + 1)), date


def row_blocks(height, rows=BLOCK_ROWS):
    """Windows of `rows` full-width rows covering a raster of `height` rows (the last shorter)."""
    return [Window(0, row, None, min(rows, height - row)) for row in range(0, height, rows)]


def read_pixels(dataset, bands, block):
    """Values [n, len(bands)] (float32) of a row block's pixels, row-major, and a bool [n]: every
    band finite. A damaged file becomes a CameoInputError."""
    try:
        values = dataset.read(bands, window=Window(0, block.row_off, dataset.width, block.height),
                              out_dtype="float32")
    except rasterio.errors.RasterioIOError as error:
        first = first_line(error)
        raise CameoInputError(
            f"{os.path.basename(dataset.name)} is damaged or incomplete: GDAL cannot read it ({first}). "
            "Run cameo:embed again to rewrite it.") from error
    pixels = values.reshape(len(bands), -1).T  # [n, E]
    return pixels, np.all(np.isfinite(pixels), axis=1)


def sample_valid_pixels(dataset, bands, rng, progress, limit=SAMPLE_PIXELS):
    """float64 [n, len(bands)]: the valid pixels (every band finite), or about `limit` of them
    drawn uniformly with `rng` when the raster has more pixels; read block by block."""
    keep = limit / max(1, dataset.width * dataset.height)
    samples = []
    for block in row_blocks(dataset.height):
        check_cancelled(progress)
        pixels, valid = read_pixels(dataset, bands, block)
        pixels = pixels[valid]
        if keep < 1:
            pixels = pixels[rng.random(len(pixels)) < keep]
        samples.append(pixels)
    return np.concatenate(samples).astype(np.float64)


def fit_components(dataset, bands, rng, progress):
    """Mean [E], components [E, 3], stretch limits [2, 3] and the share of variance of each
    component [3], from a sample of valid pixels."""
    sample = sample_valid_pixels(dataset, bands, rng, progress)
    if len(sample) < 3:
        raise CameoInputError(
            f"{os.path.basename(dataset.name)} has fewer than 3 valid pixels for that date: "
            "pick another date or a larger extent.")
    mean = sample.mean(axis=0)
    _, singular, vt = np.linalg.svd(sample - mean, full_matrices=False)
    components = vt[:3].T
    explained = (singular ** 2 / np.sum(singular ** 2))[:3]
    # An eigenvector's sign is arbitrary: fix it so the largest loading is positive.
    largest = np.argmax(np.abs(components), axis=0)
    components *= np.sign(components[largest, np.arange(components.shape[1])])
    scores = (sample - mean) @ components
    limits = np.percentile(scores, STRETCH_PERCENTILES, axis=0)
    return mean, components, limits, explained


def to_bytes(scores, limits):
    """Scores [n, 3] -> bytes 1..255 by the linear stretch between limits[0] and limits[1]."""
    low, high = limits
    span = np.where(high > low, high - low, 1.0)
    scaled = np.clip((scores - low) / span, 0.0, 1.0)
    return (1 + np.round(scaled * 254)).astype(np.uint8)


def embedding_to_rgb(input_path, output_path, date=None, progress=None, seed=0):
    """Write the RGB view of one date of `input_path` to `output_path` (GeoTIFF, nodata 0)."""
    progress = progress or NullProgress()
    if date is not None:
        try:
            date = datetime.date.fromisoformat(str(date).strip()).isoformat()
        except ValueError as error:
            raise CameoInputError(f"DATE {date!r} is not a date of the form YYYY-MM-DD.") from error
    try:
        dataset = rasterio.open(input_path)
    except rasterio.errors.RasterioIOError as error:
        raise CameoInputError(f"Cannot open {input_path} as a raster: give a file written by cameo:embed.") from error
    with dataset:
        bands, date = select_bands(dataset, date)
        mean, components, limits, explained = fit_components(dataset, bands, np.random.default_rng(seed), progress)
        folder = os.path.dirname(os.path.abspath(output_path))
        if not os.path.isdir(folder):
            raise CameoInputError(f"The folder of the output {output_path} does not exist: create it or choose "
                                  "another output file.")
        try:
            with atomic_output(folder) as output:
                out = output.raster(output_path, "rgb", width=dataset.width, height=dataset.height,
                                    crs=dataset.crs, transform=dataset.transform)
                _write_rgb(out, dataset, bands, date, (mean, components, limits, explained), input_path, progress)
        except (rasterio.errors.RasterioIOError, PermissionError) as error:
            raise CameoInputError(f"Cannot write {output_path} ({str(error).strip()[:200]}): choose an "
                                  "output file in a folder you can write to.") from error
    return {"date": date, "mean": mean, "components": components, "limits": limits,
            "explained_variance": explained}


def _write_rgb(out, dataset, bands, date, fit, input_path, progress):
    """Project every row block of `dataset` on the fitted components and write the bytes to `out`."""
    mean, components, limits, explained = fit
    out.update_tags(CAMEO_DATE=date, CAMEO_SOURCE=os.path.basename(input_path),
                    CAMEO_PCA_EXPLAINED_VARIANCE=",".join(f"{v:.4f}" for v in explained))
    for band, name in enumerate(("PC1", "PC2", "PC3"), start=1):
        out.set_band_description(band, f"{date} {name}")
    blocks = row_blocks(dataset.height)
    for number, block in enumerate(blocks, start=1):
        check_cancelled(progress)
        pixels, valid = read_pixels(dataset, bands, block)
        rgb = np.zeros((len(pixels), 3), np.uint8)
        rgb[valid] = to_bytes((pixels[valid].astype(np.float64) - mean) @ components, limits)
        out.write(rgb.T.reshape(3, block.height, dataset.width),
                  window=Window(0, block.row_off, dataset.width, block.height))
        progress.setProgress(100.0 * number / len(blocks))
