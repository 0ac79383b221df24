"""Analysis-ready Sentinel-1/2 time stacks (Qt-free): read downloads, write CAMEO stacks.

See docs/stack-format.md for the output format and `prepare_stack` for the pipeline.
Names are imported lazily, so `models.stack.defaults` works without rasterio installed
(the QGIS dialog needs the defaults; running needs rasterio).
"""

import importlib

_EXPORTS = {
    "S1_BANDS": "format", "S2_BANDS": "format", "Stack": "format", "StackWriter": "format",
    "read_stack": "format", "read_stack_info": "format", "write_stack": "format",
    "prepare_stack": "prepare", "PreparedStack": "prepare", "StackOptions": "options",
    "match_s1_dates": "sentinel1", "target_grid": "grid",
    "DEFAULT_MAX_S1_GAP_DAYS": "defaults", "DEFAULT_MIN_VALID_FRACTION": "defaults",
    "DEFAULT_SCL_VALID": "defaults",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)
