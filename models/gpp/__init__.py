"""GPP from CAMEO embeddings and the sun, Qt-free and torch-free.

- `towers`: daily and monthly GPP readers (FLUXNET2015 FULLSET DD/MM, date,GPP and
  YYYY-MM,GPP tables) with the quality filter, and Sentinel-2 footprint tables with the
  cloud/snow screen.
- `sun`: top-of-atmosphere radiation from latitude and day of year.
- `aoa`: the area of applicability (dissimilarity index and its threshold).
- `series`: daily linear interpolation, 90-day windows and their exact bin-mean weights.
- `metrics`: RMSE, NRMSE, R2, bias, r.
- `footprint`: homogeneous-window embedding of footprint rows with the bundled encoders,
  and a tower's windows with radiation and NIRv.
- `predict`: per-pixel GPP over an embeddings.vrt with the GPP ONNX model (needs rasterio).
- `cli`: `python -m models.gpp evaluate|predict`.

This package file imports nothing so that the QGIS plugin loads without numpy extras.
"""
