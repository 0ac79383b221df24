"""Embed whole Sentinel-2 (+ Sentinel-1) stacks tile by tile into per-date embedding files.

Memory is bounded by the tile size: one tile (all dates, with its 7 px halo) is read,
embedded by the dense runtime (`models.runtime.embed_tile`, which computes each frame's
spatial features once and shares them across the dates that use the frame) and written
before the next one is read. Results do not depend on the tile size (no seams): tiles
overlap only through their halos, read from the same raster.
"""

import contextlib
import os
import time
from dataclasses import dataclass

import numpy as np
import rasterio
from rasterio.windows import Window, from_bounds

from ..errors import CameoInputError
from ..progress import NullProgress, check_cancelled
from ..staging import report_swept
from ..writeguard import WriteGuard
from ..runtime import date_window, embed_tile, load_models
from ..stack import read_stack_info
from ..stack.format import GDAL_CACHE_BYTES
from .defaults import DEFAULT_TILE_SIZE, DEVICES
from ..rasterio_io import check_output_folder
from .outputs import INDEX_NAME, EmbeddingWriter
from .reconstruction import (ERROR_INDEX_NAME, ERROR_NAME, ReconstructionErrorWriter, check_reconstruction_model,
                             reconstruction_error)
from .tiles import read_with_halo, tile_grid

@dataclass
class EmbeddingRun:
    index_path: str  # the VRT listing every date (T x E bands)
    files: list  # one GeoTIFF per date
    dates: list
    pixel_dates: int
    seconds: float
    providers: list
    error_index_path: str = None  # reconstruction_error.vrt (with reconstruction_error=True)
    error_files: list = None

    @property
    def pixel_dates_per_second(self):
        return self.pixel_dates / self.seconds if self.seconds > 0 else float("inf")


def execution_providers(device):
    """ONNX Runtime providers for DEVICE ('auto': CUDA when onnxruntime offers it)."""
    import onnxruntime

    available = onnxruntime.get_available_providers()
    if device not in DEVICES:
        raise CameoInputError(f"Unknown device {device!r}: use one of {', '.join(DEVICES)}.")
    if device == "cuda" and "CUDAExecutionProvider" not in available:
        raise CameoInputError(
            "Device 'cuda' was asked for, but this onnxruntime has no CUDA support "
            f"(providers: {', '.join(available)}). Install onnxruntime-gpu, or use device 'auto' or 'cpu'.")
    if device in ("auto", "cuda") and "CUDAExecutionProvider" in available:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def check_stack_pair(s2, s1):
    """The S2 (and S1) stack infos are CAMEO stacks of their modality, on one grid and dates."""
    if s2.modality != "S2":
        raise CameoInputError(
            f"{s2.path} is a {s2.modality or 'non-CAMEO'} stack, not Sentinel-2: give the s2_stack.tif "
            "written by cameo:preparestack as the Sentinel-2 stack.")
    if s1 is None:
        return
    if s1.modality != "S1":
        raise CameoInputError(
            f"{s1.path} is a {s1.modality or 'non-CAMEO'} stack, not Sentinel-1: give the s1_stack.tif "
            "written by cameo:preparestack as the Sentinel-1 stack.")
    if (s1.crs != s2.crs or tuple(s1.transform) != tuple(s2.transform)
            or (s1.width, s1.height) != (s2.width, s2.height)):
        raise CameoInputError(
            "The Sentinel-1 and Sentinel-2 stacks are not on the same grid: prepare them together "
            "with one cameo:preparestack run.")
    if list(s1.dates) != list(s2.dates):
        raise CameoInputError(
            "The Sentinel-1 stack is matched to other dates than the Sentinel-2 stack: prepare them "
            "together with one cameo:preparestack run.")


def pixel_window(info, bounds=None):
    """Pixel window of `bounds` (xmin, ymin, xmax, ymax in the stack CRS) clipped to the raster."""
    full = Window(0, 0, info.width, info.height)
    if bounds is None:
        return full
    xmin, ymin, xmax, ymax = bounds
    if not (xmax > xmin and ymax > ymin):
        raise CameoInputError(f"The extent {bounds} is empty: draw or type an extent with some area.")
    window = from_bounds(xmin, ymin, xmax, ymax, transform=info.transform)
    window = window.round_offsets(op="floor").round_lengths(op="ceil")
    try:
        return window.intersection(full)
    except Exception as error:  # rasterio raises WindowError when they do not meet
        raise CameoInputError(
            f"The extent {tuple(round(v, 2) for v in bounds)} does not overlap the stack "
            f"{os.path.basename(info.path)}: choose an extent inside the data, or leave it empty.") from error


def has_observation(valid, halo, frames):
    """[T, h, w] bool: the pixel has a valid S2 observation in some frame of its window."""
    centre = valid[:, halo:valid.shape[1] - halo, halo:valid.shape[2] - halo]
    n_dates = centre.shape[0]
    out = np.empty_like(centre)
    for t in range(n_dates):
        indices = [i for i in date_window(t, n_dates, frames)[0] if i >= 0]
        out[t] = centre[indices].any(axis=0)
    return out


@dataclass
class EmbeddingPlan:
    """The checked inputs of one embedding run, set up by `plan_embedding` for the
    single-process engine and the Dask runner alike."""

    s2: object  # stack info (read_stack_info) of the Sentinel-2 stack
    s1: object  # the same of the Sentinel-1 stack, or None
    window: Window  # the extent's pixel window in the stacks
    tiles: list  # tile_grid(window, tile size)

    @property
    def grid(self):
        """(crs, transform, width, height) of the output rasters."""
        window = self.window
        return (self.s2.crs, rasterio.windows.transform(window, self.s2.transform), int(window.width),
                int(window.height))

    def check_models(self, models):
        """The models take the stacks' bands in their order (CameoInputError otherwise)."""
        models.s2.check_bands(self.s2.bands, "Sentinel-2 stack")
        if self.s1 is not None:
            models.s1.check_bands(self.s1.bands, "Sentinel-1 stack")

    def output_tags(self, models):
        """Dataset tags of every embedding file: models and stacks it was made from."""
        s2, s1 = self.s2, self.s1
        tags = {"CAMEO_MODEL_NAME": models.name, "CAMEO_MODEL_VERSION": models.version,
                "CAMEO_S1_SPECKLE_FILTER": s1.tags.get("CAMEO_SPECKLE_FILTER", "none") if s1 else "none",
                "CAMEO_S2_STACK": os.path.basename(s2.path), "CAMEO_S2_STACK_PATH": os.path.abspath(s2.path),
                "CAMEO_S1_STACK": os.path.basename(s1.path) if s1 else "none"}
        substitution = s2.tags.get("CAMEO_SUBSTITUTIONS")
        if substitution:  # an input without B8A, prepared with SUBSTITUTE_B8A: the embeddings carry it on
            tags["CAMEO_S2_SUBSTITUTIONS"] = substitution
        return tags

    def notes(self, models):
        """What the user should know about these inputs before the run (lines of text)."""
        notes, n_dates, frames = [], len(self.s2.dates), models.s2.frames
        if self.s1 is not None:
            notes += _speckle_filter_warning(models, self.s1)
        if n_dates < frames:
            notes.append(
                f"Note: the stack has {n_dates} date(s), fewer than the {frames} of a model window; the "
                f"missing {frames - n_dates} frame(s) of every window are padding that the models ignore, "
                "so each embedding sees less temporal context. Give a longer time series for full windows.")
        substitution = self.s2.tags.get("CAMEO_SUBSTITUTIONS")
        if substitution:
            notes.append(f"Note: the Sentinel-2 stack's band B8A was taken from B08 ({substitution}): the "
                         "embeddings differ somewhat from those of real B8A.")
        return notes

    def writer(self, output_folder, models):
        """The EmbeddingWriter of the per-date files over the window."""
        return EmbeddingWriter(output_folder, self.s2.dates, models.output_names, *self.grid,
                               self.output_tags(models))


def _speckle_filter_warning(models, s1):
    """[a warning] when the S1 stack was filtered otherwise than the stacks the S1 encoder was
    trained on, else []."""
    expected = models.metadata.get("s1_frame", {}).get("cameo_s1_speckle_filter")
    found = s1.tags.get("CAMEO_SPECKLE_FILTER", "none")
    if expected and found != expected:
        return [f"Warning: the Sentinel-1 stack's speckle filter is '{found}', the model {models.name} "
                f"{models.version} was trained on stacks filtered '{expected}': the Sentinel-1 part of the "
                "embeddings is off its training distribution. Prepare the stack again with the default "
                "S1_SPECKLE_FILTER / S1_SPECKLE_SIZE."]
    return []


def plan_embedding(s2_path, output_folder, *, s1_path=None, bounds=None, tile_size=DEFAULT_TILE_SIZE):
    """Check the inputs of an embedding run and create its output folder; returns an EmbeddingPlan.

    bounds: (xmin, ymin, xmax, ymax) in the stacks' CRS, None for the whole stack. Every
    problem is a CameoInputError raised before a model is loaded or a file written.
    """
    if int(tile_size) < 1:
        raise CameoInputError(f"Tile size {tile_size} must be at least 1 pixel.")
    s2 = read_stack_info(s2_path)
    s1 = read_stack_info(s1_path) if s1_path else None
    check_stack_pair(s2, s1)
    window = pixel_window(s2, bounds)
    check_output_folder(output_folder, "embeddings", names=(INDEX_NAME,), pattern="embedding_*.tif")
    return EmbeddingPlan(s2, s1, window, tile_grid(window, int(tile_size)))


class _TileProgress:
    """Maps the runtime's per-tile percentage into the run's overall percentage."""

    def __init__(self, outer, start, span):
        self.outer, self.start, self.span = outer, start, span

    def setProgress(self, percent):  # noqa: N802 - QgsProcessingFeedback's name
        self.outer.setProgress(self.start + self.span * percent / 100.0)

    def pushInfo(self, message):  # noqa: N802
        self.outer.pushInfo(message)

    def isCanceled(self):  # noqa: N802
        return self.outer.isCanceled()


def embed_one_tile(models, tile, s2, s2_data, s1=None, s1_data=None, progress=None):
    """Embeddings [T, E, h, w] float32 of one `tile`, NaN where no valid observation.

    s2 / s1: stack infos (`read_stack_info`); s2_data / s1_data: the same stacks open
    in rasterio. The one code path of every engine (single-process and distributed):
    reads the tile with its halo, runs the dense runtime, applies the no-data rule.
    """
    s2_values = read_with_halo(s2_data, tile, models.halo, len(s2.bands))
    s1_values = read_with_halo(s1_data, tile, models.halo, len(s1.bands)) if s1 is not None else None
    embedding = embed_tile(
        models, s2_values, s2.dates, s2_bands=s2.bands,
        s1_values=s1_values, s1_bands=s1.bands if s1 is not None else None,
        s1_gap_days=s1.s1_gap_days if s1 is not None else None, progress=progress)
    observed = has_observation(np.all(np.isfinite(s2_values), axis=1), models.halo, models.s2.frames)
    embedding[np.broadcast_to(~observed[:, None], embedding.shape)] = np.nan
    return embedding


def embed_stacks(s2_path: str, output_folder: str, *, s1_path: str = None, bounds: tuple = None,
                 tile_size: int = DEFAULT_TILE_SIZE, threads: int = None, device: str = "auto",
                 models_dir: str = None, reconstruction_error: bool = False, progress=None) -> EmbeddingRun:
    """Embed every date of the S2 (+ S1) stack over `bounds`; returns an EmbeddingRun.

    reconstruction_error: also write, per date, the Sentinel-2 reconstruction error of each
    pixel (models/embedding/reconstruction.py)."""
    progress = progress or NullProgress()
    providers = execution_providers(device)
    created = not os.path.isdir(output_folder)
    plan = plan_embedding(s2_path, output_folder, s1_path=s1_path, bounds=bounds, tile_size=tile_size)
    if reconstruction_error:
        check_output_folder(output_folder, "reconstruction errors", names=(ERROR_INDEX_NAME,),
                            pattern="reconstruction_error_*.tif")
    try:
        return _embed(plan, output_folder, threads, providers, models_dir, progress, reconstruction_error)
    except BaseException:
        if created:  # leave no empty folder behind either
            with contextlib.suppress(OSError):
                os.rmdir(output_folder)
        raise


def _embed(plan, output_folder, threads, providers, models_dir, progress, with_error=False):
    models = load_models(models_dir, threads=threads, providers=providers)
    plan.check_models(models)
    if with_error:
        check_reconstruction_model(models)
    progress.pushInfo(f"Model {models.name} {models.version}; ONNX Runtime providers: "
                      f"{', '.join(providers)}; threads: {models.workers}"
                      f"{'' if threads else ' (all cores)'}")
    for note in plan.notes(models):
        progress.pushInfo(note)
    s2, s1, window, tiles = plan.s2, plan.s1, plan.window, plan.tiles
    n_dates = len(s2.dates)
    tags, grid = plan.output_tags(models), plan.grid
    writer = EmbeddingWriter(output_folder, s2.dates, models.output_names, *grid, tags)
    report_swept(progress.pushInfo, writer.swept)
    error_writer = None
    if with_error:
        error_writer = ReconstructionErrorWriter(output_folder, s2.dates, [ERROR_NAME], *grid,
                                                 {**tags, "CAMEO_UNITS": "reflectance (mean absolute error, 10 bands)"})
    started = time.perf_counter()
    done_pixels = 0
    observed = 0
    total_pixels = sum(tile.pixels for tile in tiles)
    # GDAL's block cache otherwise grows to 5 % of RAM with the dirty blocks of the T output
    # files; bounded, peak memory depends on the tile size, not on the raster size.
    # The guard turns a failed write (a full disk) into one clear CameoInputError on the way out.
    with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_BYTES), WriteGuard(output_folder) as guard:
        try:
            with rasterio.open(s2.path) as s2_data, (rasterio.open(s1.path) if s1 else contextlib.nullcontext()) as s1_data:
                for number, tile in enumerate(tiles, start=1):
                    check_cancelled(progress)
                    tile_progress = _TileProgress(progress, 100.0 * done_pixels / total_pixels,
                                                  100.0 * tile.pixels / total_pixels)
                    embedding = embed_one_tile(models, tile, s2, s2_data, s1, s1_data, progress=tile_progress)
                    observed += int(np.isfinite(embedding[:, 0]).sum())
                    at = (tile.row - int(window.row_off), tile.col - int(window.col_off))
                    for t in range(n_dates):
                        writer.write(t, embedding[t], *at)
                    if error_writer is not None:
                        error = reconstruction_error(models, embedding, read_with_halo(s2_data, tile, 0, len(s2.bands)),
                                                     s2.bands)
                        for t in range(n_dates):
                            error_writer.write(t, error[t][None], *at)
                    done_pixels += tile.pixels
                    elapsed = time.perf_counter() - started
                    progress.pushInfo(f"Tile {number}/{len(tiles)}: {done_pixels * n_dates / elapsed:,.0f} "
                                      "pixel-dates/s so far")
            check_cancelled(progress)
            if observed == 0:
                raise CameoInputError(
                    f"{os.path.basename(s2.path)} has no valid Sentinel-2 observation in the extent (every value is "
                    "NaN): the embeddings would all be no data. Choose an extent with clear dates, or prepare the "
                    "stack again with cameo:preparestack.")
            writers = [w for w in (error_writer, writer) if w is not None]
            for w in writers:
                w.close()  # flush the raw files now, so a failed write shows before publishing
            guard.check()  # GDAL reports a full disk without raising: publish no truncated file
            error_files = error_index = None
            if error_writer is not None:  # first: the embeddings' index marks a complete run
                error_files, error_index = error_writer.publish()
            try:
                files, index_path = writer.publish()
            except BaseException:
                for path in (error_files or []) + ([error_index] if error_index else []):
                    with contextlib.suppress(OSError):
                        os.remove(path)
                raise
        except BaseException:
            writer.abort()
            if error_writer is not None:
                error_writer.abort()
            raise
    seconds = time.perf_counter() - started
    return EmbeddingRun(index_path, files, list(s2.dates), total_pixels * n_dates, seconds, providers,
                        error_index, error_files)

