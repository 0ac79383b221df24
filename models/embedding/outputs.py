"""Embedding outputs: one cloud-optimised GeoTIFF per date plus a VRT listing all dates.

The dated-raster writer of models.rasterio_io with the embeddings' names
(`embedding_YYYY-MM-DD.tif`, `embeddings.vrt`). Everything is written into a hidden
staging folder inside the output folder and moved into place only when the whole run
succeeded, the VRT last: a cancelled, failed or killed run leaves no file that looks like
a finished output. A killed run's staging folder is removed by the next run into the same
folder (models.staging).
"""

from ..rasterio_io import STAGING_PREFIX, DatedRasterWriter  # noqa: F401 - STAGING_PREFIX: imported from here

INDEX_NAME = "embeddings.vrt"

# The embeddings' writer: DatedRasterWriter's defaults are the embeddings' file names.
EmbeddingWriter = DatedRasterWriter


def date_file_name(date):
    return f"embedding_{date.isoformat()}.tif"

