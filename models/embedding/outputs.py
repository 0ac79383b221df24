"""Embedding outputs: one cloud-optimised GeoTIFF per date plus a VRT listing all dates.

Everything is written into a hidden staging folder inside the output folder and moved
into place only when the whole run succeeded, the VRT last: a cancelled, failed or
killed run leaves no file that looks like a finished output. A killed run's staging
folder is removed by the next run into the same folder (models.staging).
"""

import glob
import os
import shutil
import tempfile
from xml.sax.saxutils import escape

import numpy as np
import rasterio
import rasterio.shutil
from rasterio.windows import Window

from ..errors import CameoInputError
from ..staging import lock_staging_folder, sweep_abandoned

INDEX_NAME = "embeddings.vrt"
STAGING_PREFIX = ".cameo-partial-"


def date_file_name(date):
    return f"embedding_{date.isoformat()}.tif"


def check_output_folder(folder, pattern="embedding_*.tif", index_name=INDEX_NAME, what="embeddings"):
    """Create `folder` if needed; refuse one that already holds another run's outputs
    (files matching `pattern`, or `index_name`), or that is not writable."""
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as error:
        raise CameoInputError(f"Cannot create the output folder {folder} ({error.strerror}): "
                              "choose a folder you can write to.") from error
    existing = sorted(glob.glob(os.path.join(glob.escape(folder), pattern)))
    if os.path.exists(os.path.join(folder, index_name)):
        existing.insert(0, os.path.join(folder, index_name))
    if existing:
        raise CameoInputError(
            f"The output folder {folder} already holds {what} of another run "
            f"({os.path.basename(existing[0])} and {len(existing) - 1} more): choose an empty "
            "folder, or delete those files first.")
    if not os.access(folder, os.W_OK):
        raise CameoInputError(f"The output folder {folder} is not writable: choose another one.")


class EmbeddingWriter:
    """Collects tiles of the per-date embeddings and publishes the files at the end.

    Subclasses (the GPP rasters of models/gpp) change the file names through
    `file_name` and `INDEX_NAME`, and per-file settings through `_create`.
    """

    INDEX_NAME = INDEX_NAME

    def file_name(self, date):
        return date_file_name(date)

    def __init__(self, folder, dates, feature_names, crs, transform, width, height, tags):
        self.folder = folder
        self.dates = list(dates)
        self.feature_names = list(feature_names)
        self.crs, self.transform = crs, transform
        self.width, self.height = width, height
        self.tags = dict(tags)
        self.swept = sweep_abandoned(folder, folder_prefix=STAGING_PREFIX)  # of runs that were killed
        self.staging = tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=folder)
        self._lock = lock_staging_folder(self.staging)
        self._datasets = []
        try:
            for date in self.dates:
                self._datasets.append(self._create(os.path.join(self.staging, "raw_" + self.file_name(date)),
                                                   date))
        except Exception:
            self.abort()
            raise

    def _create(self, path, date):
        dataset = rasterio.open(
            path, "w", driver="GTiff", width=self.width, height=self.height,
            count=len(self.feature_names), dtype="float32", crs=self.crs, transform=self.transform,
            nodata=float("nan"), tiled=True, blockxsize=256, blockysize=256, compress="deflate",
            predictor=3, interleave="pixel")
        dataset.update_tags(CAMEO_DATE=date.isoformat(), **self.tags)
        for band, name in enumerate(self.feature_names, start=1):
            dataset.set_band_description(band, name)
            dataset.update_tags(band, FEATURE=name, DATE=date.isoformat())
        return dataset

    def write(self, t, values, row, col):
        """Write `values` [E, h, w] of date index t at (row, col) of the output grid."""
        _, height, width = values.shape
        self._datasets[t].write(values.astype(np.float32, copy=False), window=Window(col, row, width, height))

    def publish(self):
        """Convert to COG, write the VRT index, move all into the folder. Returns their paths."""
        try:
            self.close()
            names = []
            for date in self.dates:
                name = self.file_name(date)
                raw = os.path.join(self.staging, "raw_" + name)
                rasterio.shutil.copy(raw, os.path.join(self.staging, name), driver="COG",
                                     COMPRESS="DEFLATE", PREDICTOR="YES", BLOCKSIZE="256",
                                     OVERVIEW_RESAMPLING="AVERAGE")
                os.remove(raw)
                names.append(name)
            self._write_index(os.path.join(self.staging, self.INDEX_NAME), names)
            for name in names + [self.INDEX_NAME]:  # the index last: it marks a complete run
                os.replace(os.path.join(self.staging, name), os.path.join(self.folder, name))
            shutil.rmtree(self.staging, ignore_errors=True)
            self._lock.release()
        except BaseException:
            self.abort()
            raise
        return [os.path.join(self.folder, name) for name in names], os.path.join(self.folder, self.INDEX_NAME)

    def abort(self):
        """Remove everything this run wrote."""
        self.close()
        shutil.rmtree(self.staging, ignore_errors=True)
        self._lock.release()

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
                 f'    <MDI key="CAMEO_DATES">{",".join(d.isoformat() for d in self.dates)}</MDI>',
                 f'    <MDI key="CAMEO_FEATURES">{",".join(self.feature_names)}</MDI>']
        lines += [f'    <MDI key="{escape(k)}">{escape(str(v))}</MDI>' for k, v in sorted(self.tags.items())]
        lines.append("  </Metadata>")
        band = 0
        for date, name in zip(self.dates, names):
            for source_band, feature in enumerate(self.feature_names, start=1):
                band += 1
                lines += [
                    f'  <VRTRasterBand dataType="Float32" band="{band}">',
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
