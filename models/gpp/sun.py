"""Daily top-of-atmosphere solar radiation from latitude and day of year (astronomy only).

FAO Irrigation and Drainage Paper 56 (Allen et al. 1998), equations 21-25: extraterrestrial
radiation Ra = 24 * 60 / pi * Gsc * dr * (ws sin(phi) sin(delta) + cos(phi) cos(delta) sin(ws))
in MJ m-2 d-1, with the solar constant Gsc = 0.0820 MJ m-2 min-1, the inverse relative
Earth-Sun distance dr, the solar declination delta and the sunset hour angle ws (clipped
so that polar day and polar night come out right). It needs no data: the GPP model's
light-use-efficiency form multiplies it by an efficiency that the embeddings set, so GPP
follows the sun by construction.
"""

import datetime

import numpy as np

SOLAR_CONSTANT = 0.0820  # MJ m-2 min-1
UNITS = "MJ m-2 d-1"


def day_of_year(day_numbers):
    """Day of year (1..366) of ordinal day numbers (datetime.date.toordinal())."""
    day_numbers = np.asarray(day_numbers, np.int64)
    unique, inverse = np.unique(day_numbers, return_inverse=True)
    doy = np.asarray([datetime.date.fromordinal(int(d)).timetuple().tm_yday for d in unique], np.int64)
    return doy[inverse].reshape(day_numbers.shape)


def toa_radiation(latitude_deg, doy):
    """Daily extraterrestrial radiation (MJ m-2 d-1); latitude and doy broadcast together."""
    phi = np.radians(np.asarray(latitude_deg, np.float64))
    j = np.asarray(doy, np.float64)
    dr = 1.0 + 0.033 * np.cos(2.0 * np.pi * j / 365.0)
    delta = 0.409 * np.sin(2.0 * np.pi * j / 365.0 - 1.39)
    ws = np.arccos(np.clip(-np.tan(phi) * np.tan(delta), -1.0, 1.0))
    ra = 24.0 * 60.0 / np.pi * SOLAR_CONSTANT * dr * (
        ws * np.sin(phi) * np.sin(delta) + np.cos(phi) * np.cos(delta) * np.sin(ws))
    return np.maximum(ra, 0.0)


def toa_radiation_days(latitude_deg, day_numbers):
    """toa_radiation for ordinal day numbers [D] at latitudes [...] -> [..., D]."""
    doy = day_of_year(day_numbers)
    return toa_radiation(np.asarray(latitude_deg, np.float64)[..., None], doy)


def check_latitude(latitude, what="latitude"):
    """A latitude in degrees north, or a clear error."""
    from ..errors import CameoInputError

    try:
        value = float(latitude)
    except (TypeError, ValueError) as error:
        raise CameoInputError(f"The {what} '{latitude}' is not a number: give degrees north, e.g. 50.89.") from error
    if not -90.0 <= value <= 90.0:
        raise CameoInputError(f"The {what} {value} is outside -90..90 degrees: give degrees north "
                              "(negative in the southern hemisphere), not a projected coordinate.")
    return value
