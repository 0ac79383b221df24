"""QGIS Processing glue: one algorithm per module, all numerics in `models/`."""
