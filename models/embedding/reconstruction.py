"""Sentinel-2 reconstruction error of the embeddings: where the encoders are out of their depth.

The fusion model's S2 head and the S2 decoder, cut to the target date's centre pixel
(`cameo_s2_reconstruction.onnx`, exported by models/train), turn each 7-value embedding
back into the 10 Sentinel-2 reflectances of its pixel-date. The mean absolute difference
to the observed reflectances (clipped as the models see them) is small where the
embedding represents the pixel well and large where the pixel is unlike anything the
encoders were trained on. It exists only where the pixel-date has a valid observation.
"""

import numpy as np

from ..errors import CameoInputError
from ..rasterio_io import DatedRasterWriter

ERROR_NAME = "S2_RECONSTRUCTION_MAE"
ERROR_INDEX_NAME = "reconstruction_error.vrt"
ROLE = "s2_reconstruction"
_CHUNK = 65536  # pixel-dates per ONNX call: bounded memory on big tiles


def error_file_name(date):
    return f"reconstruction_error_{date.isoformat()}.tif"


class ReconstructionErrorWriter(DatedRasterWriter):
    """One single-band GeoTIFF per date (`error_file_name`) plus reconstruction_error.vrt."""

    def __init__(self, folder, dates, band_names, crs, transform, width, height, tags):
        super().__init__(folder, dates, band_names, crs, transform, width, height, tags,
                         prefix="reconstruction_error", index_name=ERROR_INDEX_NAME)


def check_reconstruction_model(models):
    if ROLE not in models.sessions:
        raise CameoInputError(
            "The model folder has no cameo_s2_reconstruction.onnx, so RECONSTRUCTION_ERROR cannot be computed: "
            "use the bundled models, or export the folder again with `python -m models.train export`.")


def reconstruction_error(models, embedding, s2_values, s2_bands):
    """[T, h, w] float32: mean |reconstruction - observation| over the S2 bands, in reflectance.

    embedding [T, E, h, w] (NaN = no embedding), s2_values [T, C, h, w] stack values
    (NaN = invalid) with bands `s2_bands`. NaN where either is missing.
    """
    spec = models.s2
    order = [list(s2_bands).index(band) for band in spec.bands]
    observed = np.clip(s2_values[:, order], spec.clip_min, spec.clip_max)           # [T, C, h, w]
    valid = np.all(np.isfinite(observed), axis=1) & np.all(np.isfinite(embedding), axis=1)
    out = np.full(valid.shape, np.nan, dtype="float32")
    t, y, x = np.nonzero(valid)
    for start in range(0, len(t), _CHUNK):
        s = slice(start, start + _CHUNK)
        feeds = {"embedding": np.ascontiguousarray(embedding[t[s], :, y[s], x[s]], dtype="float32")[None]}
        reconstruction = models.run(ROLE, feeds)[0][0]                               # [P, C]
        error = np.abs(reconstruction - observed[t[s], :, y[s], x[s]]).mean(axis=1)
        out[t[s], y[s], x[s]] = error.astype("float32")
    return out
