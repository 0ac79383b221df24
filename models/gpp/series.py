"""Daily linear interpolation of a dated series and the 90-day windows of the GPP model.

Conventions (shared by training, evaluation and `cameo:predictgpp`):
- Days are integer day numbers (`models.days.day_numbers`: `datetime.date.toordinal()`).
- `daily_series`: values on every day from `start` to `stop` (inclusive), linearly
  interpolated between the two nearest valid observations around the day (the value
  itself on an observation day). A day gets NaN before the first or after the last valid
  observation, or inside a gap between consecutive valid observations longer than
  `max_gap` days (default: the window length).
- The window of day d is days d-89 .. d (`window_days` = 90, the last day is the target
  day); it is complete when all its days have a value.
"""

import numpy as np

from ..days import day_numbers  # noqa: F401 - the series' day numbers, imported from here by gpp

WINDOW_DAYS = 90


def interpolation_indices(obs_days, valid, days, max_gap):
    """For each day and series: (prev, next, weight_next, ok) over observations.

    obs_days [T] ascending; valid [T, P] bool; days [D] -> arrays [D, P].
    """
    obs_days = np.asarray(obs_days, np.int64)
    n = obs_days.shape[0]
    valid = np.asarray(valid, bool)
    if valid.ndim == 1:
        valid = valid[:, None]
    t_index = np.arange(n)[:, None]
    prev_obs = np.maximum.accumulate(np.where(valid, t_index, -1), axis=0)            # last valid <= t
    next_obs = np.minimum.accumulate(np.where(valid, t_index, n)[::-1], axis=0)[::-1]  # first valid >= t
    j_prev = np.searchsorted(obs_days, days, side="right") - 1   # last stack date <= day
    j_next = np.searchsorted(obs_days, days, side="left")        # first stack date >= day
    prev = np.where(j_prev[:, None] >= 0, prev_obs[np.clip(j_prev, 0, n - 1)], -1)
    nxt = np.where(j_next[:, None] < n, next_obs[np.clip(j_next, 0, n - 1)], n)
    ok = (prev >= 0) & (nxt < n)
    d_prev = obs_days[np.clip(prev, 0, n - 1)]
    d_next = obs_days[np.clip(nxt, 0, n - 1)]
    span = d_next - d_prev
    ok &= span <= max_gap
    with np.errstate(invalid="ignore", divide="ignore"):
        w = np.where(span > 0, (np.asarray(days)[:, None] - d_prev) / np.maximum(span, 1), 0.0)
    return np.clip(prev, 0, n - 1), np.clip(nxt, 0, n - 1), w.astype(np.float64), ok


def daily_series(obs_days, values, start, stop, max_gap=WINDOW_DAYS):
    """values [T, F] (NaN rows invalid) observed on obs_days -> daily [stop-start+1, F] (float64)."""
    values = np.asarray(values, np.float64)
    valid = np.all(np.isfinite(values), axis=1)
    days = np.arange(start, stop + 1)
    prev, nxt, w, ok = interpolation_indices(obs_days, valid[:, None], days, max_gap)
    prev, nxt, w, ok = prev[:, 0], nxt[:, 0], w[:, 0], ok[:, 0]
    out = values[prev] * (1.0 - w[:, None]) + values[nxt] * w[:, None]
    out[~ok] = np.nan
    return out


def window(daily, start, day, window_days=WINDOW_DAYS):
    """The window ending on `day` from a daily array starting on day `start` (None if out of range)."""
    i = day - start
    if i - window_days + 1 < 0 or i >= len(daily):
        return None
    return daily[i - window_days + 1:i + 1]


def build_windows(obs_days, values, target_days, window_days=WINDOW_DAYS, max_gap=None):
    """Complete windows [N, window_days, F] of the target days, and the indices of those kept."""
    max_gap = window_days if max_gap is None else max_gap
    target_days = np.asarray(target_days, np.int64)
    if len(target_days) == 0:
        return np.zeros((0, window_days, np.shape(values)[1])), np.zeros(0, np.int64)
    start = int(target_days.min()) - window_days + 1
    daily = daily_series(obs_days, values, start, int(target_days.max()), max_gap)
    xs, kept = [], []
    for k, day in enumerate(target_days):
        w = window(daily, start, int(day), window_days)
        if w is not None and np.all(np.isfinite(w)):
            xs.append(w)
            kept.append(k)
    if not xs:
        return np.zeros((0, window_days, np.shape(values)[1])), np.zeros(0, np.int64)
    return np.stack(xs), np.asarray(kept, np.int64)


def window_bins(windows, bins):
    """Bin means [N, F, bins] (the GPP model's input) of daily windows [N, window_days, F]:
    per feature, the means of consecutive days, oldest first."""
    windows = np.asarray(windows)
    n, days, features = windows.shape
    return windows.reshape(n, bins, days // bins, features).mean(2).transpose(0, 2, 1)


def bin_weights(obs_days, valid, target_days, window_days=WINDOW_DAYS, bins=9, max_gap=WINDOW_DAYS):
    """Exact linear weights of the window bin means on the observations, for one validity pattern.

    The daily interpolation (daily_series) is linear in the observations with weights that
    depend only on which observations are valid, so for a pixel with validity `valid` [T]:
    bin means [targets, bins, F] = weights [targets, bins, T] @ values [T, F] (invalid values
    taken as 0). Returns (weights, complete [targets]): a target's window is complete when
    every one of its days has an interpolated value."""
    obs_days = np.asarray(obs_days, np.int64)
    target_days = np.asarray(target_days, np.int64)
    start = int(target_days.min()) - window_days + 1
    days = np.arange(start, int(target_days.max()) + 1)
    prev, nxt, w, ok = (a[:, 0] for a in interpolation_indices(obs_days, np.asarray(valid)[:, None], days, max_gap))
    daily = np.zeros((len(days), len(obs_days)))
    rows = np.arange(len(days))
    np.add.at(daily, (rows, prev), 1.0 - w)
    np.add.at(daily, (rows, nxt), w)
    filled = np.concatenate([[0], np.cumsum(ok)])
    last = target_days - start                                          # index of each target day
    complete = filled[last + 1] - filled[last + 1 - window_days] == window_days
    index = last[:, None] - window_days + 1 + np.arange(window_days)[None, :]   # [targets, window]
    weights = daily[index].reshape(len(target_days), bins, window_days // bins, len(obs_days)).mean(2)
    return weights, complete
