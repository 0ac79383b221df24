"""k-means clusters of embeddings (scikit-learn's KMeans).

The features of a pixel are its embeddings on the chosen dates, stacked (7 values per
date); pixels without a value on every chosen date get no data (0). KMeans is fitted on
the valid pixels, or on a uniform sample of them on larger rasters (drawn with the seed; at
most 200,000 pixels and 256 MB of features), then every block is assigned to its nearest
centre: memory follows the block and the sample, not the raster. Classes are 1..K (uint8, a colour table).
"""

import json
import os
from dataclasses import dataclass

import numpy as np
from rasterio.windows import Window

from ..embedding.rgb import SAMPLE_PIXELS, sample_valid_pixels
from ..environment import require
from ..errors import CameoInputError
from ..progress import NullProgress, check_cancelled
from .inputs import band_indexes, block_windows, open_embeddings, read_pixels, select_dates
from .defaults import MAX_CLASSES
from .output import Publication, check_writable, class_colour

N_INIT = 10
SAMPLE_BYTES = 256 * 2**20  # float64 features of the k-means sample, at most


@dataclass
class ClusterRun:
    path: str
    dates: list
    centres: np.ndarray
    fitted_pixels: int
    inertia: float


def check_class_count(k):
    if not 2 <= int(k) <= MAX_CLASSES:
        raise CameoInputError(f"K = {k} clusters: give between 2 and {MAX_CLASSES}.")


def fit_kmeans(sample, k, seed):
    """scikit-learn's KMeans on sample [n, F] (float64), as cameo:cluster fits it."""
    from sklearn.cluster import KMeans

    return KMeans(n_clusters=k, n_init=N_INIT, random_state=seed).fit(sample)


def write_classes(dataset, info, bands, output_path, predict, n_classes, tags, progress, extra=None,
                  start_percent=0.0, texts=()):
    """Write predict(pixels [n, F] float64) -> codes 1..n_classes of every valid pixel (0 elsewhere),
    block by block, with a colour table; `extra` = (path, band names, function -> [n, B] float32)
    writes a second, float32 raster from the same blocks; `texts` = [(path, content)]. All are
    published together, only when complete."""
    blocks = block_windows(info, len(bands))
    with Publication(os.path.dirname(os.path.abspath(output_path)), progress.pushInfo) as outputs:
        grid = dict(width=info.width, height=info.height, crs=info.crs, transform=info.transform)
        out = outputs.raster(output_path, count=1, dtype="uint8", nodata=0, **grid)
        out.update_tags(**tags)
        out.set_band_description(1, "class")
        out.write_colormap(1, {0: (0, 0, 0, 0), **{c: class_colour(c) for c in range(1, n_classes + 1)}})
        second = None
        if extra:
            second = outputs.raster(extra[0], count=len(extra[1]), dtype="float32", nodata=float("nan"), **grid)
            second.update_tags(**tags)
            for band, name in enumerate(extra[1], start=1):
                second.set_band_description(band, name)
        for number, block in enumerate(blocks, start=1):
            check_cancelled(progress)
            window = Window(0, block.row_off, info.width, block.height)
            pixels, valid = read_pixels(dataset, bands, block)
            codes = np.zeros(len(pixels), np.uint8)
            if valid.any():
                codes[valid] = predict(pixels[valid].astype(np.float64))
            out.write(codes.reshape(1, block.height, info.width), window=window)
            if second is not None:
                values = np.full((len(pixels), len(extra[1])), np.nan, np.float32)
                if valid.any():
                    values[valid] = extra[2](pixels[valid].astype(np.float64))
                second.write(values.T.reshape(len(extra[1]), block.height, info.width), window=window)
            progress.setProgress(start_percent + (100.0 - start_percent) * number / len(blocks))
        check_cancelled(progress)
        for path, content in texts:
            outputs.text(path, content)
        outputs.commit()


def cluster_embeddings(embeddings_path, output_path, *, k, seed=0, dates=None, progress=None,
                       sample_limit=None):
    """Write the k-means class raster of the chosen dates (None = all); returns a ClusterRun."""
    require("sklearn")
    progress = progress or NullProgress()
    check_class_count(k)
    check_writable(output_path, "cluster raster")
    info, dataset = open_embeddings(embeddings_path)
    with dataset:
        chosen = select_dates(info, dates)
        bands = band_indexes(info, chosen)
        if sample_limit is None:
            sample_limit = min(SAMPLE_PIXELS, SAMPLE_BYTES // (8 * len(bands)))
        sample = sample_valid_pixels(dataset, bands, np.random.default_rng(seed), progress, sample_limit)
        if len(sample) < k:
            raise CameoInputError(
                f"K = {k} clusters need at least {k} pixels with an embedding on every chosen date, but "
                f"{os.path.basename(embeddings_path)} has {len(sample)}: choose K <= {len(sample)}, fewer "
                "dates, or a larger raster.")
        progress.pushInfo(f"Fitting k-means (K = {k}, seed {seed}) on {len(sample):,} pixels x "
                          f"{sample.shape[1]} features ({len(chosen)} dates)")
        model = fit_kmeans(sample, k, seed)
        check_cancelled(progress)
        chosen_dates = [info.dates[t] for t in chosen]
        feature_names = [f"{d.isoformat()} {f}" for d in chosen_dates for f in info.features]
        tags = {"CAMEO_CLUSTER_K": str(k), "CAMEO_CLUSTER_SEED": str(seed),
                "CAMEO_CLUSTER_DATES": ",".join(d.isoformat() for d in chosen_dates),
                "CAMEO_CLUSTER_FEATURES": ",".join(feature_names),
                "CAMEO_CLUSTER_CENTRES": json.dumps(np.round(model.cluster_centers_, 6).tolist()),
                "CAMEO_CLUSTER_FITTED_PIXELS": str(len(sample)),
                "CAMEO_EMBEDDINGS": os.path.basename(embeddings_path)}
        write_classes(dataset, info, bands, output_path, lambda x: model.predict(x) + 1, k, tags, progress,
                      start_percent=30.0)
    return ClusterRun(os.path.abspath(output_path), chosen_dates, model.cluster_centers_, len(sample),
                      float(model.inertia_))
