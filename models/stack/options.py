"""The settings of one stack preparation: what `cameo:preparestack` and `python -m models.stack` fill in.

Both build a `StackOptions`; `checked()` turns the user's values (lists or single paths,
text lists, numbers as text) into the normalised form the steps use, or stops with one
clear `CameoInputError` that names the parameter.
"""

import dataclasses
import os
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

from ..errors import CameoInputError
from .defaults import (
    DEFAULT_BLOCK_SIZE,
    DEFAULT_MAX_S1_GAP_DAYS,
    DEFAULT_MIN_VALID_FRACTION,
    DEFAULT_SPECKLE_FILTER,
    DEFAULT_SPECKLE_SIZE,
    HARMONIZED_CHOICES,
    RESAMPLING_CHOICES,
    S1_UNITS_CHOICES,
    SPECKLE_FILTERS,
    SPECKLE_SIZES,
)


@dataclass
class StackOptions:
    """Inputs and parameters of `prepare_stack` (names as the algorithm's parameters, lower case)."""

    s2: Sequence[str]
    output_folder: str
    s2_bands: object = None            # 'B02,B03,...;B05,...' or a list of orders
    s2_mask: Optional[Sequence[str]] = None
    s1: Optional[Sequence[str]] = None
    extent: Optional[Tuple[float, float, float, float]] = None  # (xmin, ymin, xmax, ymax)
    extent_crs: Optional[str] = None
    crs: Optional[str] = None
    min_valid_fraction: float = DEFAULT_MIN_VALID_FRACTION
    max_s1_gap_days: float = DEFAULT_MAX_S1_GAP_DAYS
    mask_valid_values: object = None   # '4,5,6' or a list of integers
    harmonized: str = "auto"
    s1_units: str = "auto"
    s1_smoothing: bool = True
    resampling: str = "bilinear"
    block_size: int = DEFAULT_BLOCK_SIZE
    substitute_b8a: bool = False
    s1_speckle_filter: str = DEFAULT_SPECKLE_FILTER
    s1_speckle_size: int = DEFAULT_SPECKLE_SIZE

    def checked(self):
        """A copy with paths as lists, numbers as numbers and mask values parsed; bad values raise."""
        s2, s1, mask = as_list(self.s2), as_list(self.s1), as_list(self.s2_mask)
        if not s2:
            raise CameoInputError("No Sentinel-2 input given. Give one or more Sentinel-2 L2A files (S2).")
        if not self.output_folder:
            raise CameoInputError("No output folder given. Set OUTPUT_FOLDER.")
        check_choice("HARMONIZED", self.harmonized, HARMONIZED_CHOICES)
        check_choice("S1_UNITS", self.s1_units, S1_UNITS_CHOICES)
        check_choice("RESAMPLING", self.resampling, RESAMPLING_CHOICES)
        check_choice("S1_SPECKLE_FILTER", self.s1_speckle_filter, SPECKLE_FILTERS)
        if int(self.s1_speckle_size) not in SPECKLE_SIZES:
            raise CameoInputError(f"S1_SPECKLE_SIZE must be one of {', '.join(map(str, SPECKLE_SIZES))} (an odd "
                                  f"window in Sentinel-1 pixels), not {self.s1_speckle_size}.")
        min_valid_fraction = float(self.min_valid_fraction)
        if not 0.0 <= min_valid_fraction <= 1.0:
            raise CameoInputError(f"MIN_VALID_FRACTION must be between 0 and 1, not {min_valid_fraction}.")
        max_s1_gap_days = float(self.max_s1_gap_days)
        if max_s1_gap_days < 0:
            raise CameoInputError(f"MAX_S1_GAP_DAYS must be 0 or more, not {max_s1_gap_days:g}.")
        return dataclasses.replace(
            self, s2=s2, s1=s1, s2_mask=mask, min_valid_fraction=min_valid_fraction,
            max_s1_gap_days=max_s1_gap_days, mask_valid_values=parse_valid_values(self.mask_valid_values),
            block_size=int(self.block_size), s1_speckle_size=int(self.s1_speckle_size))


def as_list(value):
    """Paths as a list of strings: None, one path or several."""
    if value is None:
        return []
    if isinstance(value, (str, os.PathLike)):
        return [str(value)] if str(value) else []
    return [str(v) for v in value if str(v)]


def parse_band_orders(text):
    """'B02,B03,B04,B08;B05,B06,...' -> [['B02','B03','B04','B08'], ['B05',...]]."""
    if not text:
        return []
    if not isinstance(text, str):
        text = ";".join(",".join(o) if not isinstance(o, str) else o for o in text)
    orders = []
    for group in text.split(";"):
        names = [n.strip() for n in group.replace(" ", ",").split(",") if n.strip()]
        if names:
            orders.append(names)
    return orders


def parse_valid_values(text):
    """'4,5,6' (or a list) -> (4, 5, 6); empty -> None (the default rule)."""
    if text is None or (isinstance(text, str) and not text.strip()):
        return None
    if isinstance(text, str):
        try:
            return tuple(int(v) for v in text.replace(";", ",").split(",") if v.strip())
        except ValueError as error:
            raise CameoInputError(
                f"Mask valid values '{text}' are not a list of integers. Write them comma-separated, e.g. 4,5,6,7,11."
            ) from error
    return tuple(int(v) for v in text)


def check_choice(name, value, choices):
    if value not in choices:
        raise CameoInputError(f"{name} must be one of {', '.join(choices)}, not '{value}'.")
