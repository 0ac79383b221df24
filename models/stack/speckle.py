"""Spatial speckle filters for Sentinel-1 backscatter, applied in linear power on the S1 file's own grid.

Speckle is multiplicative noise: in linear power a homogeneous field is its mean times a
random factor of mean 1 and squared coefficient of variation Cu^2 = 1 / ENL (equivalent
number of looks). Filtering happens before the values are resampled onto the Sentinel-2
grid, so the window is counted in pixels of the Sentinel-1 file, as in SNAP.

- `boxcar` (multi-look): the mean of the valid pixels in the size x size window. Divides
  the speckle variance by up to size^2, blurs edges by size // 2 pixels.
- `lee` (Lee 1980, minimum mean square error): out = m + W (I - m) with local mean m and
  W = (1 - Cu^2 / Ci^2) / (1 + Cu^2) clipped to [0, 1], where Ci^2 = local variance / m^2.
  Smooths where the window looks like speckle (Ci close to Cu), keeps edges and points
  (Ci >> Cu). Cu^2 is estimated once per acquisition and band as the median of Ci^2 over
  the central sample of the file (`estimate_noise`), so the result never depends on the
  processing blocks and no sensor ENL has to be assumed (files come multi-looked,
  resampled or averaged by the tools that exported them).
NaN (no data) pixels stay NaN and are left out of every window statistic.
"""

import numpy as np

from .defaults import DEFAULT_SPECKLE_FILTER, DEFAULT_SPECKLE_SIZE, SPECKLE_FILTERS


def _window_sums(array, size):
    """Sum of each pixel's size x size neighbourhood (zero outside the array).

    Summed per pixel in a fixed order, so a pixel's result does not depend on where the
    array was cut from the file (processing blocks give identical values).
    """
    r = size // 2
    windows = np.lib.stride_tricks.sliding_window_view(np.pad(array, r), (size, size))
    return windows.sum(axis=(-2, -1))


def local_moments(power, size):
    """(count, mean, variance) of the finite values in each pixel's size x size window (float64)."""
    finite = np.isfinite(power)
    values = np.where(finite, power, 0.0).astype("float64")
    count = _window_sums(finite.astype("float64"), size)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = _window_sums(values, size) / count
        variance = np.maximum(_window_sums(values * values, size) / count - mean * mean, 0.0)
    return count, mean, variance


def estimate_noise(power, size):
    """Cu^2 of an acquisition: the median squared coefficient of variation of its windows (NaN: none)."""
    count, mean, variance = local_moments(power, size)
    usable = (count >= size * size // 2 + 1) & (mean > 0) & np.isfinite(power)
    if not usable.any():
        return float("nan")
    return float(np.median(variance[usable] / (mean[usable] ** 2)))


def apply_filter(power, method, size, noise=None):
    """`power` (2-D linear backscatter, NaN = no data) filtered by `method` over size x size pixels."""
    if method == "none":
        return power
    count, mean, variance = local_moments(power, size)
    finite = np.isfinite(power)
    if method == "boxcar":
        out = mean
    elif method == "lee":
        if noise is None or not np.isfinite(noise):
            noise = estimate_noise(power, size)
        with np.errstate(invalid="ignore", divide="ignore"):
            ci2 = variance / (mean * mean)
            weight = np.clip((1.0 - noise / ci2) / (1.0 + noise), 0.0, 1.0)
        weight[~np.isfinite(weight)] = 0.0  # flat window (variance 0): its mean is the estimate
        out = mean + weight * (np.where(finite, power, 0.0) - mean)
    else:
        raise ValueError(f"unknown speckle filter {method!r}; one of {', '.join(SPECKLE_FILTERS)}")
    out = out.astype("float32")
    out[~finite] = np.nan
    return out


def describe(method, size):
    """The stack tag / log text of a filter setting."""
    if method == "none":
        return "none"
    return f"{method} {size}x{size} (Sentinel-1 file pixels, linear power)"


class SpeckleFilter:
    """A filter setting plus the noise level of each acquisition, estimated once per acquisition.

    `for_acquisition(key, sample)` gives the neighbourhood filter that `read_onto` applies
    (an object with `margin` and a call on a 2-D array); `sample()` returns the linear
    power of the acquisition's central window and is only called the first time a Lee
    filter meets `key`.
    """

    def __init__(self, method=DEFAULT_SPECKLE_FILTER, size=DEFAULT_SPECKLE_SIZE):
        if method not in SPECKLE_FILTERS:
            raise ValueError(f"unknown speckle filter {method!r}; one of {', '.join(SPECKLE_FILTERS)}")
        self.method, self.size, self.margin = method, int(size), int(size) // 2
        self._noise = {}

    def __bool__(self):
        return self.method != "none"

    def describe(self):
        return describe(self.method, self.size)

    def for_acquisition(self, key, sample):
        if self.method != "lee":
            return _Bound(self.margin, lambda power: apply_filter(power, self.method, self.size))
        if key not in self._noise:
            self._noise[key] = estimate_noise(sample(), self.size)
        noise = self._noise[key]
        return _Bound(self.margin, lambda power: apply_filter(power, "lee", self.size, noise))


class _Bound:
    def __init__(self, margin, function):
        self.margin, self._function = margin, function

    def __call__(self, power):
        return self._function(power)
