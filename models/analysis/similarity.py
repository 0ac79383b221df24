"""Similarity to examples: how much each pixel's embedding looks like the examples', per date.

The embeddings share a large common part (every pixel's 7 values are far from 0), so a
plain cosine is close to 1 everywhere. The similarity is therefore the cosine between
the pixel's and the examples' embeddings both taken relative to that date's mean
embedding over the raster (the mean of its valid pixels):

    s(p, t) = cos(e(p, t) - m(t), x(t) - m(t)),  x(t) = mean of the examples' embeddings,

1 where a pixel deviates from the average exactly like the examples do, -1 for the
opposite; with one example pixel its own value is exactly 1 (the maximum). With every
date, one more band counts the dates on which the pixel is at least THRESHOLD similar.
Two passes over row blocks (the means, then the similarities): memory follows the block.
"""

import os
from dataclasses import dataclass

import numpy as np
from rasterio.windows import Window

from ..errors import CameoInputError
from ..progress import NullProgress, check_cancelled
from .inputs import band_indexes, block_windows, located_features, open_embeddings, pixels_at, read_pixels, \
    select_dates
from .defaults import SIMILARITY_THRESHOLD
from .output import Publication, check_writable

DEFAULT_THRESHOLD = SIMILARITY_THRESHOLD


@dataclass
class SimilarityRun:
    path: str
    dates: list
    example_pixels: int
    dates_without_examples: list
    band_names: list


def _valid_mean(values, axis=0):
    """Mean over `axis` of the finite rows, NaN where none. values: [n, T, E]."""
    ok = np.all(np.isfinite(values), axis=-1, keepdims=True)
    count = ok.sum(axis=axis)
    total = np.where(ok, values, 0.0).sum(axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def date_means(dataset, info, bands, blocks, progress):
    """m(t) [T, E]: every date's mean embedding over its valid pixels (float64, pass 1)."""
    n_dates, n_feat = len(bands) // len(info.features), len(info.features)
    total, count = np.zeros((n_dates, n_feat)), np.zeros((n_dates, 1))
    for number, block in enumerate(blocks, start=1):
        check_cancelled(progress)
        pixels, _ = read_pixels(dataset, bands, block)
        values = pixels.reshape(-1, n_dates, n_feat).astype(np.float64)
        ok = np.all(np.isfinite(values), axis=-1, keepdims=True)
        total += np.where(ok, values, 0.0).sum(axis=0)
        count += ok.sum(axis=0)
        progress.setProgress(50.0 * number / len(blocks))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def cosine(values, direction):
    """cos between values [n, T, E] and direction [T, E] per pixel and date; NaN where either is
    missing, 0 for a pixel exactly at the mean (it has no direction); clipped to [-1, 1]."""
    dot = np.einsum("nte,te->nt", values, direction)
    norms = np.linalg.norm(values, axis=-1) * np.linalg.norm(direction, axis=-1)[None]
    with np.errstate(invalid="ignore", divide="ignore"):
        result = np.where(norms > 0, dot / norms, 0.0)
    result[~np.isfinite(dot)] = np.nan
    return np.clip(result, -1.0, 1.0)


def _example_directions(dataset, info, bands, cells, means, progress):
    n_feat = len(info.features)
    examples = pixels_at(dataset, bands, cells, progress).astype(np.float64)
    centre = _valid_mean(examples.reshape(len(cells), -1, n_feat))  # [T, E]
    return centre - means


def similarity_to_examples(embeddings_path, output_path, *, points=None, polygons=None, date=None,
                           threshold=DEFAULT_THRESHOLD, progress=None):
    """Write the similarity raster (float32, NaN = no data) and return a SimilarityRun.

    points [(id, (x, y))] / polygons [(id, wkt)] in the stack's CRS: the examples (each
    polygon's pixels, each point's pixel). date: one YYYY-MM-DD, or None for every date
    plus the "dates similar" band."""
    progress = progress or NullProgress()
    check_writable(output_path, "similarity raster")
    info, dataset = open_embeddings(embeddings_path)
    with dataset:
        chosen = select_dates(info, date, "DATE")
        if date and len(chosen) != 1:
            raise CameoInputError(f"DATE {date!r} names {len(chosen)} dates: give one date, or leave it empty "
                                  "for all dates.")
        cells = sorted({cell for _, found in located_features(info, points, polygons, "examples") for cell in found})
        bands = band_indexes(info, chosen)
        blocks = block_windows(info, len(bands))
        means = date_means(dataset, info, bands, blocks, progress)
        direction = _example_directions(dataset, info, bands, cells, means, progress)
        dates = [info.dates[t] for t in chosen]
        missing = [d for d, ok in zip(dates, np.all(np.isfinite(direction), axis=1)) if not ok]
        if len(missing) == len(dates):
            raise CameoInputError(
                f"The {len(cells)} example pixel(s) have no embedding (no data) on any of the {len(dates)} chosen "
                "date(s): choose other examples or dates.")
        if missing:
            progress.pushInfo(f"The examples have no embedding on {len(missing)} date(s), left as no data: "
                              + ", ".join(d.isoformat() for d in missing[:6]) + (" ..." if len(missing) > 6 else ""))
        names = [f"{d.isoformat()} similarity" for d in dates]
        if date is None:
            names.append(f"dates with similarity >= {threshold:g}")
        _write(dataset, info, output_path, bands, blocks, means, direction, names, threshold, date is None,
               {"CAMEO_SIMILARITY_DATES": ",".join(d.isoformat() for d in dates),
                "CAMEO_SIMILARITY_THRESHOLD": f"{threshold:g}", "CAMEO_EXAMPLE_PIXELS": str(len(cells)),
                "CAMEO_SIMILARITY": "cosine of (embedding - date mean) and (examples' mean - date mean)",
                "CAMEO_EMBEDDINGS": os.path.basename(embeddings_path)}, progress)
    return SimilarityRun(os.path.abspath(output_path), dates, len(cells), missing, names)


def _write(dataset, info, output_path, bands, blocks, means, direction, names, threshold, summary, tags,
           progress):
    n_feat = len(info.features)
    with Publication(os.path.dirname(os.path.abspath(output_path)), progress.pushInfo) as outputs:
        out = outputs.raster(output_path, width=info.width, height=info.height, count=len(names),
                             dtype="float32", crs=info.crs, transform=info.transform, nodata=float("nan"))
        out.update_tags(**tags)
        for band, name in enumerate(names, start=1):
            out.set_band_description(band, name)
        for number, block in enumerate(blocks, start=1):
            check_cancelled(progress)
            pixels, _ = read_pixels(dataset, bands, block)
            values = pixels.reshape(len(pixels), -1, n_feat).astype(np.float64) - means[None]
            similarity = cosine(values, direction)  # [n, T]
            if summary:
                similar = np.sum(similarity >= threshold, axis=1).astype(np.float64)
                similar[~np.isfinite(similarity).any(axis=1)] = np.nan
                similarity = np.concatenate([similarity, similar[:, None]], axis=1)
            out.write(similarity.T.reshape(len(names), block.height, info.width).astype(np.float32),
                      window=Window(0, block.row_off, info.width, block.height))
            progress.setProgress(50.0 + 50.0 * number / len(blocks))
        check_cancelled(progress)
        outputs.commit()
