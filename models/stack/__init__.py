"""Analysis-ready Sentinel-1/2 time stacks (Qt-free): read downloads, write CAMEO stacks.

See docs/stack-format.md for the output format and `prepare_stack` for the pipeline.
"""

from .format import S1_BANDS, S2_BANDS, Stack, StackWriter, read_stack, read_stack_info, write_stack
from .prepare import (
    DEFAULT_MAX_S1_GAP_DAYS,
    DEFAULT_MIN_VALID_FRACTION,
    DEFAULT_SCL_VALID,
    match_s1_dates,
    prepare_stack,
)

__all__ = [
    "DEFAULT_MAX_S1_GAP_DAYS", "DEFAULT_MIN_VALID_FRACTION", "DEFAULT_SCL_VALID", "S1_BANDS", "S2_BANDS",
    "Stack", "StackWriter", "match_s1_dates", "prepare_stack", "read_stack", "read_stack_info", "write_stack",
]
