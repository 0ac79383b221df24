"""Raster output and the dated-raster format: the one home for how CAMEO writes files.

- `PROFILES` / `profile(name)`: the named GeoTIFF creation profiles (as rio-cogeo's
  profiles.py), and `COG_COPY` for the cloud-optimised copies;
- `atomic_output`: outputs published whole or not at all (rio-cogeo's
  TemporaryRasterFile, for several files): each is written under a hidden, locked name
  (a `.<name>.tmp-*` sibling, or a file in a hidden `.cameo-partial-*` staging folder) and
  renamed into place only when everything succeeded; a failed write (a full disk, which
  GDAL only reports) becomes one clear CameoInputError and leaves nothing;
- `check_output_folder` (`refuse_other_run` then `make_output_folder`): the output-folder
  check, with one wording;
- `DatedRasterWriter` and `read_dated_index`: the writer and the reader of the dated
  rasters of cameo:embed and cameo:predictgpp (one GeoTIFF per date plus a VRT listing all
  dates, with the CAMEO_DATES / CAMEO_FEATURES / CAMEO_DATE tags).

Staged items carry an flock for as long as their run lives (models.staging), so the next
run into a folder can remove what a killed run left. rasterio and numpy are imported where
they are used: models.manifest writes through atomic_output, and cameo:checkinstall must
work without them.
"""

import glob
import os
import shutil
import tempfile
import uuid
from dataclasses import dataclass, field
from xml.sax.saxutils import escape

from .errors import CameoInputError
from .staging import StagingLock, lock_staging_folder, sweep_abandoned
from .writeguard import WriteGuard

TILE = 256

PROFILES = {
    # CAMEO time stacks: float32, band-interleaved (one band per date and band), BigTIFF when needed.
    "stack": {"driver": "GTiff", "dtype": "float32", "nodata": float("nan"), "tiled": True,
              "blockxsize": TILE, "blockysize": TILE, "interleave": "band", "compress": "deflate",
              "predictor": 3, "zlevel": 1, "BIGTIFF": "IF_SAFER",
              "NUM_THREADS": "ALL_CPUS"},  # DEFLATE compression of tiles in worker threads
    # The per-date rasters of embeddings and GPP while they are written (then copied to COG):
    # scratch, so the fastest DEFLATE level (its files were no larger than at level 6) ...
    "dated": {"driver": "GTiff", "dtype": "float32", "nodata": float("nan"), "tiled": True,
              "blockxsize": TILE, "blockysize": TILE, "compress": "deflate", "predictor": 3,
              "zlevel": 1, "interleave": "pixel", "NUM_THREADS": "ALL_CPUS"},
    # ... or none at all when a run's scratch files are small (SMALL_SCRATCH_BYTES in all).
    "dated_small": {"driver": "GTiff", "dtype": "float32", "nodata": float("nan"), "tiled": True,
                    "blockxsize": TILE, "blockysize": TILE, "interleave": "pixel"},
    # 8-bit RGB views (0 = no data).
    "rgb": {"driver": "GTiff", "count": 3, "dtype": "uint8", "nodata": 0, "photometric": "RGB",
            "tiled": True, "blockxsize": TILE, "blockysize": TILE, "compress": "deflate"},
    # Class and score rasters of the analyses (dtype and nodata per output).
    "analysis": {"driver": "GTiff", "tiled": True, "blockxsize": TILE, "blockysize": TILE,
                 "compress": "deflate", "BIGTIFF": "IF_SAFER"},
}

# Scratch files of a run up to this size are written uncompressed: no compression on the way
# in and none to undo on the way out (0.9 of the time of GPP maps of 512 x 512 px x 24 dates).
SMALL_SCRATCH_BYTES = 1 << 30

# rasterio.shutil.copy options of the published cloud-optimised GeoTIFFs.
# DEFLATE (read by every GDAL) at level 1: 0.70-0.79 of level 6's time, and the files of
# float32 embeddings with the floating-point predictor are no larger (measured in the model
# card). NUM_THREADS compresses tiles in worker threads: the same bytes, 0.73 of the time on 2 cores.
COG_COPY = {"driver": "COG", "COMPRESS": "DEFLATE", "LEVEL": "1", "PREDICTOR": "YES", "BLOCKSIZE": str(TILE),
            "OVERVIEW_RESAMPLING": "AVERAGE", "NUM_THREADS": "ALL_CPUS"}


def profile(name, **settings):
    """A copy of the creation profile `name`, with `settings` (width, height, crs...) added."""
    return {**PROFILES[name], **settings}


# ----------------------------------------------------------------------------- atomic outputs

# Names of temporary_path's files, for sweeping those of runs that died (models.staging).
STAGED_FILES = ".*.tmp-*"
STAGING_PREFIX = ".cameo-partial-"


def temporary_path(path):
    """A unique hidden sibling name for writing `path` before the atomic rename."""
    folder, name = os.path.split(os.path.abspath(path))
    stem, ext = os.path.splitext(name)
    return os.path.join(folder, f".{stem}.tmp-{uuid.uuid4().hex[:8]}{ext}")


def remove_quietly(path):
    for candidate in (path, path + ".aux.xml"):
        try:
            os.remove(candidate)
        except FileNotFoundError:
            pass


class atomic_output:  # noqa: N801 - used like a function: `with atomic_output(folder) as out:`
    """Outputs of one run, published whole or not at all.

        with atomic_output(folder) as out:
            path = out.stage(final)        # write this hidden, locked stand-in of `final`
            dataset = out.raster(final, "stack", width=..., ...)   # or an open dataset on one
        # leaving the block: datasets closed, GDAL's write errors checked, all renamed in order;
        # an exception: everything staged removed (and the folder, if `remove_folder`)

    `staging=True` stages into a hidden `.cameo-partial-*` folder inside `folder` (swept
    when a killed run left it; `swept` names those removed) instead of sibling names.
    `guard=False` leaves watching GDAL's write errors to the caller. Without the `with`
    block, call `commit()` or `abort()`.
    """

    def __init__(self, folder, *, staging=False, guard=True, remove_folder=False):
        self.folder = folder
        self.remove_folder = remove_folder
        self._staged = []      # (temporary, final or None for scratch files, lock or None)
        self._datasets = []
        self.swept, self.staging, self._folder_lock = [], None, None
        if staging:
            self.swept = sweep_abandoned(folder, folder_prefix=STAGING_PREFIX)  # of runs that were killed
            self.staging = tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=folder)
            self._folder_lock = lock_staging_folder(self.staging)
        self._guard = WriteGuard(folder).start() if guard else None

    def stage(self, final, lock=True):
        """The path to write `final` to until commit()."""
        final = os.path.abspath(final)
        if self.staging is not None:
            temporary, lock = os.path.join(self.staging, os.path.basename(final)), False
        else:
            temporary = temporary_path(final)
        self._staged.append((temporary, final, StagingLock(temporary) if lock else None))
        return temporary

    def scratch(self, name):
        """A staged working file that is removed, never published."""
        path = os.path.join(self.staging, name) if self.staging is not None else temporary_path(
            os.path.join(self.folder, name))
        self._staged.append((path, None, None))
        return path

    def raster(self, final, profile_name, **settings):
        """An open rasterio dataset writing the staged `final`; closed by commit() or abort()."""
        import rasterio

        dataset = rasterio.open(self.stage(final, lock=False), "w", **profile(profile_name, **settings))
        self._datasets.append(dataset)
        temporary, final, _ = self._staged[-1]
        self._staged[-1] = (temporary, final, StagingLock(temporary) if self.staging is None else None)
        return dataset

    def commit(self):
        """Close the datasets, check for failed writes, rename every staged output into place."""
        for dataset in self._datasets:
            if not dataset.closed:
                dataset.close()
        if self._guard is not None:
            self._guard.check()  # GDAL reports a full disk without raising: publish no truncated file
        for temporary, final, lock in self._staged:
            if final is not None:
                remove_quietly(temporary + ".aux.xml")
                os.replace(temporary, final)
            else:
                remove_quietly(temporary)
            if lock is not None:
                lock.release()
        self._staged = []
        self._finish()

    def abort(self):
        """Remove everything staged (best effort: also while handling another error)."""
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
        self._finish()
        if self.remove_folder:
            try:
                os.rmdir(self.folder)
            except OSError:
                pass

    def _finish(self):
        if self._guard is not None:
            self._guard.stop()
        if self.staging is not None:
            shutil.rmtree(self.staging, ignore_errors=True)
            self._folder_lock.release()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc_type is None:
                try:
                    self.commit()
                except BaseException as error:
                    self._fail(error)
                    raise
                return False
            self._fail(exc)
            return False
        finally:
            if self._guard is not None:
                self._guard.stop()

    def _fail(self, exc):
        """Remove what was staged; a failed write becomes the CameoInputError that explains it."""
        self.abort()
        better = self._guard.converted(exc) if self._guard is not None else None
        if better is not None:
            raise better from exc


# ----------------------------------------------------------------------------- output folders

def make_output_folder(folder):
    """Create `folder` if needed and check that it is writable; True if this call created it.

    The one wording of every CAMEO output-folder error: it names the folder and the fix."""
    created = not os.path.isdir(folder)
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as error:
        raise CameoInputError(f"Cannot create the output folder {folder} ({error.strerror}): "
                              "choose a folder you can write to.") from error
    if not os.access(folder, os.W_OK):
        if created:
            os.rmdir(folder)
        raise CameoInputError(f"The output folder {folder} is not writable: choose a folder you can write to.")
    return created


def refuse_other_run(folder, what, names=(), pattern=None):
    """Refuse a folder that already holds outputs of another run: any of `names`
    (all listed in the message), or files matching `pattern` (the first one named)."""
    if not os.path.isdir(folder):
        return
    existing = [name for name in names if os.path.exists(os.path.join(folder, name))]
    if pattern is None:
        if existing:
            raise CameoInputError(
                f"The output folder {folder} already holds {what} of another run ({', '.join(existing)}): "
                "choose an empty folder, or delete those files first.")
        return
    existing += [os.path.basename(p) for p in sorted(glob.glob(os.path.join(glob.escape(folder), pattern)))]
    if existing:
        raise CameoInputError(
            f"The output folder {folder} already holds {what} of another run "
            f"({existing[0]} and {len(existing) - 1} more): choose an empty "
            "folder, or delete those files first.")


def check_output_folder(folder, what, names=(), pattern=None):
    """The output-folder check: refuse another run's outputs, then create `folder` if needed
    and check that it is writable; True if it was created."""
    refuse_other_run(folder, what, names, pattern)
    return make_output_folder(folder)


# ----------------------------------------------------------------------------- dated rasters

DATES_TAG = "CAMEO_DATES"        # the VRT of all dates: ISO dates, comma-separated
NAMES_TAG = "CAMEO_FEATURES"     # the VRT: the band names of each date
DATE_TAG = "CAMEO_DATE"          # one date's file


class DatedRasterWriter:
    """One GeoTIFF per date (`<prefix>_YYYY-MM-DD.tif`, cloud-optimised) plus a VRT of all dates.

    Tiles are written with `write`; `publish()` converts to COG, writes the VRT and moves all
    into the folder (the VRT last: it marks a complete run), `abort()` removes everything.
    band_tags: {band number: {tag: value}} added to every date's file (e.g. units);
    band_units: {band number: unit} set as GDAL band units.
    """

    def __init__(self, folder, dates, band_names, crs, transform, width, height, tags, *,
                 prefix="embedding", index_name="embeddings.vrt", band_tags=None, band_units=None):
        self.folder = folder
        self.dates = list(dates)
        self.feature_names = list(band_names)
        self.crs, self.transform = crs, transform
        self.width, self.height = width, height
        self.tags = dict(tags)
        self.prefix, self.index_name = prefix, index_name
        self.band_tags, self.band_units = dict(band_tags or {}), dict(band_units or {})
        self._output = atomic_output(folder, staging=True, guard=False)
        self.swept, self.staging = self._output.swept, self._output.staging
        self._datasets = []
        scratch_bytes = 4 * len(self.dates) * len(self.feature_names) * width * height
        self._scratch_profile = "dated_small" if scratch_bytes <= SMALL_SCRATCH_BYTES else "dated"
        try:
            for date in self.dates:
                self._datasets.append(self._create(self._output.scratch("raw_" + self.file_name(date)), date))
        except Exception:
            self.abort()
            raise

    def file_name(self, date):
        return f"{self.prefix}_{date.isoformat()}.tif"

    def _create(self, path, date):
        import rasterio

        dataset = rasterio.open(path, "w", **profile(
            self._scratch_profile, width=self.width, height=self.height, count=len(self.feature_names), crs=self.crs,
            transform=self.transform))
        dataset.update_tags(**{DATE_TAG: date.isoformat()}, **self.tags)
        for band, name in enumerate(self.feature_names, start=1):
            dataset.set_band_description(band, name)
            dataset.update_tags(band, FEATURE=name, DATE=date.isoformat())
        for band, unit in self.band_units.items():
            dataset.set_band_unit(band, unit)
        for band, band_tags in self.band_tags.items():
            dataset.update_tags(band, **band_tags)
        return dataset

    def write(self, t, values, row, col):
        """Write `values` [E, h, w] of date index t at (row, col) of the output grid."""
        from rasterio.windows import Window

        _, height, width = values.shape
        self._datasets[t].write(values.astype("float32", copy=False), window=Window(col, row, width, height))

    def publish(self):
        """Convert to COG, write the VRT index, move all into the folder. Returns their paths."""
        from concurrent.futures import ThreadPoolExecutor

        import rasterio.shutil

        from .runtime.specs import default_workers

        def convert(date):
            name = self.file_name(date)
            raw = os.path.join(self.staging, "raw_" + name)
            rasterio.shutil.copy(raw, self._output.stage(os.path.join(self.folder, name)), **COG_COPY)
            os.remove(raw)
            return name

        try:
            self.close()
            # Two files at once keep the cores busy while the other writes its header and overviews.
            with ThreadPoolExecutor(min(2, default_workers())) as pool:
                names = list(pool.map(convert, self.dates))
            self._write_index(self._output.stage(os.path.join(self.folder, self.index_name)), names)
            self._output.commit()
        except BaseException:
            self.abort()
            raise
        return [os.path.join(self.folder, name) for name in names], os.path.join(self.folder, self.index_name)

    def abort(self):
        """Remove everything this run wrote."""
        self.close()
        self._output.abort()

    def close(self):
        """Flush and close the per-date files (publish and abort do it too)."""
        for dataset in self._datasets:
            if not dataset.closed:
                dataset.close()

    def _write_index(self, path, names):
        a, b, c, d, e, f = self.transform[:6]
        lines = [f'<VRTDataset rasterXSize="{self.width}" rasterYSize="{self.height}">',
                 f'  <SRS dataAxisToSRSAxisMapping="1,2">{escape(self.crs.to_wkt())}</SRS>',
                 f"  <GeoTransform>{c!r}, {a!r}, {b!r}, {f!r}, {d!r}, {e!r}</GeoTransform>",
                 "  <Metadata>",
                 f'    <MDI key="{DATES_TAG}">{",".join(d.isoformat() for d in self.dates)}</MDI>',
                 f'    <MDI key="{NAMES_TAG}">{",".join(self.feature_names)}</MDI>']
        lines += [f'    <MDI key="{escape(k)}">{escape(str(v))}</MDI>' for k, v in sorted(self.tags.items())]
        lines.append("  </Metadata>")
        for number, (date, name, source_band, feature) in enumerate(self._index_bands(names), start=1):
            lines += [
                f'  <VRTRasterBand dataType="Float32" band="{number}">',
                f"    <Description>{date.isoformat()} {feature}</Description>",
                "    <NoDataValue>nan</NoDataValue>",
                f'    <Metadata><MDI key="DATE">{date.isoformat()}</MDI>'
                f'<MDI key="FEATURE">{feature}</MDI></Metadata>',
                "    <SimpleSource>",
                f'      <SourceFilename relativeToVRT="1">{escape(name)}</SourceFilename>',
                f"      <SourceBand>{source_band}</SourceBand>",
                "    </SimpleSource>",
                "  </VRTRasterBand>"]
        lines.append("</VRTDataset>")
        with open(path, "w", encoding="utf-8") as handle:
            handle.write("\n".join(lines) + "\n")

    def _index_bands(self, names):
        for date, name in zip(self.dates, names):
            for source_band, feature in enumerate(self.feature_names, start=1):
                yield date, name, source_band, feature


@dataclass
class DatedIndex:
    """What the tags of a dated raster say: all dates (a VRT) or one date (one date's file)."""

    dates: list          # ISO date strings as written; one element for one date's file
    names: list          # band names of each date (CAMEO_FEATURES); [] when not recorded
    per_date: int        # bands per date
    single_date: bool    # True: one date's file (CAMEO_DATE)
    tags: dict = field(default_factory=dict)

    def parsed_dates(self):
        """The dates as datetime.date; ValueError when one is garbled."""
        import datetime

        return [datetime.date.fromisoformat(d) for d in self.dates]

    def complete(self, count):
        """True when `count` bands are exactly per_date bands for every date."""
        return self.per_date * len(self.dates) == count


def read_dated_index(tags, count):
    """The DatedIndex of a raster with these dataset tags and `count` bands, or None if it is none."""
    if DATES_TAG in tags:
        dates = [d for d in tags[DATES_TAG].split(",")]
        names = [n for n in tags.get(NAMES_TAG, "").split(",") if n]
        return DatedIndex(dates, names, count // max(len(dates), 1), False, dict(tags))
    if DATE_TAG in tags:
        return DatedIndex([tags[DATE_TAG]], [], count, True, dict(tags))
    return None
