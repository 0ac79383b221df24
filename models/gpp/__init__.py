"""GPP from CAMEO embeddings (issue 6), Qt-free and torch-free.

- `towers`: daily GPP readers (FLUXNET2015 FULLSET DD, date,GPP tables) with the quality
  filter, and Sentinel-2 footprint tables with the cloud/snow screen.
- `series`: daily linear interpolation and 90-day windows.
- `metrics`: RMSE, NRMSE, R2, bias, r.
- `footprint`: homogeneous-window embedding of footprint rows with the bundled encoders.
- `predict`: per-pixel GPP over an embeddings.vrt with the GPP ONNX model (needs rasterio).
- `cli`: `python -m models.gpp evaluate|predict`.

This package file imports nothing so that the QGIS plugin loads without numpy extras.
"""
