"""Defaults and choices of the stack preparation, importable without rasterio (for the QGIS dialog)."""

import datetime as _dt

DEFAULT_MIN_VALID_FRACTION = 0.5
DEFAULT_MAX_S1_GAP_DAYS = 6
DEFAULT_SCL_VALID = (4, 5, 6, 7, 11)
DEFAULT_BLOCK_SIZE = 1024
RESOLUTION = 10.0
BASELINE_04_START = _dt.date(2022, 1, 25)
BASELINE_OFFSET_DN = -1000.0
HARMONIZED_CHOICES = ("auto", "yes", "no")
S1_UNITS_CHOICES = ("auto", "dB", "linear")
RESAMPLING_CHOICES = ("bilinear", "cubic")
S2_FILE = "s2_stack.tif"
S1_FILE = "s1_stack.tif"
DATES_FILE = "dates.csv"

# Sentinel-1 speckle filters (models/stack/speckle.py); Processing enum order: the default first.
SPECKLE_FILTERS = ("lee", "boxcar", "none")
DEFAULT_SPECKLE_FILTER = "lee"
DEFAULT_SPECKLE_SIZE = 5
SPECKLE_SIZES = (3, 5, 7, 9, 11)
