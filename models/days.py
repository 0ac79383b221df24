"""Day numbers: the one way CAMEO turns dates into integers (stack dates, tower and
footprint dates, GPP windows, the day offsets of the embedding windows)."""

import datetime

import numpy as np

_ORDINAL_OF_1970 = datetime.date(1970, 1, 1).toordinal()


def day_number(date):
    """`datetime.date.toordinal()` of a date, datetime, numpy datetime64 or ISO date string."""
    if hasattr(date, "toordinal"):
        return date.toordinal()
    return int(np.datetime64(str(date), "D").astype(np.int64)) + _ORDINAL_OF_1970


def day_numbers(dates):
    """int64 [T] day numbers (`day_number`) of `dates`."""
    return np.asarray([day_number(d) for d in dates], np.int64)
