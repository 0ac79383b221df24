"""Whole-stack embedding: tiling, halos, per-date outputs (Qt-free, over models.runtime).

`job.embed_stacks` runs a job, `rgb.embedding_to_rgb` draws one date. This package
file imports nothing, so `models.embedding.defaults` works without rasterio or
onnxruntime (the QGIS dialog needs the defaults; running needs the packages).
"""
