"""Qt-free numerics of CAMEO: model runtime, raster I/O, checks.

Nothing in this package imports qgis (the plugin's QGIS glue lives in `algorithms/`)
or torch (training lives in `models/train`, run offline). Modules use relative
imports only, so the package works both as `cameo.models` inside QGIS and as
`models` from a checkout.
"""
