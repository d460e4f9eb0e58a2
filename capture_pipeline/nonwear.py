"""Non-wear detection on the 30-s feature windows, as biobankAccelerometerAnalysis v2.3.0 does it.

Spec: ``shared/spec/features.md`` §3.12 (R8 ``get_wear_time_stats``). A window is *stationary* when xStd, yStd and
zStd are all below 13 mg. A run of consecutive stationary windows is *non-wear* when ``end > start + 60 min``, where
``start`` and ``end`` are the start times of the run's first and last windows. A worn device is never that still
for an hour: even in deep sleep the wrist moves every few minutes, and each movement breaks the run.

Notes on fidelity to the reference:

* "Consecutive" means adjacent rows in time order, as in the reference. A recording gap (no rows) between two
  stationary stretches therefore does not break the run; the gap's duration counts towards the 60 minutes.
* A window with a missing (NaN) SD is not stationary, so it breaks a run.
* The comparison is strict: a run whose first and last window starts are exactly 60 min apart is not non-wear.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .errors import InputError

#: Reference thresholds (spec §3.12).
STATIONARY_SD_G = 0.013
MIN_MINUTES = 60.0

#: Columns that are not features and keep their values in non-wear windows: the reference's per-window QC
#: integers (spec §3.5) and the flag itself.
KEPT_COLUMNS = ("time", "nonwear", "samples", "dataErrors", "clipsBeforeCalibr", "clipsAfterCalibr", "rawSamples")

SD_COLUMNS = ("xStd", "yStd", "zStd")


def window_times_ns(features: pd.DataFrame, time_column: str = "time") -> np.ndarray:
    """Window start times of a features table as int64 ns (naive), from a ``time`` column or a DatetimeIndex."""
    if time_column in features.columns:
        values = features[time_column]
    elif isinstance(features.index, pd.DatetimeIndex):
        values = features.index.to_series()
    else:
        raise InputError(None, f"features table has no '{time_column}' column and no DatetimeIndex")
    if pd.api.types.is_integer_dtype(values):
        return values.to_numpy(dtype=np.int64)
    times = pd.to_datetime(values)
    if getattr(times.dt, "tz", None) is not None:
        times = times.dt.tz_localize(None)
    return times.to_numpy(dtype="datetime64[ns]").view(np.int64)


def _runs(mask: np.ndarray):
    """First and last (inclusive) index of every run of True in a 1-D boolean array."""
    edges = np.diff(np.concatenate(([0], mask.astype(np.int8), [0])))
    return np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1


def detect_nonwear(features, min_minutes=MIN_MINUTES, sd_threshold_g=STATIONARY_SD_G, time_column="time"):
    """Flag the windows that belong to a non-wear episode.

    Parameters
    ----------
    features : pandas.DataFrame
        One row per window with ``xStd``, ``yStd``, ``zStd`` (g) and window start times (``time`` column or a
        DatetimeIndex). Rows need not be sorted.
    min_minutes : float
        A run of stationary windows is non-wear when its last window starts more than this many minutes after
        its first (reference: 60).
    sd_threshold_g : float
        Stationary: all three SDs below this (reference: 0.013 g).
    time_column : str
        Name of the time column.

    Returns
    -------
    numpy.ndarray of bool
        True for non-wear windows, in the row order of ``features``.
    """
    missing = [c for c in SD_COLUMNS if c not in features.columns]
    if missing:
        raise InputError(None, f"features table lacks the column(s) {', '.join(missing)} needed for non-wear")
    n = len(features)
    if n == 0:
        return np.zeros(0, dtype=bool)
    times = window_times_ns(features, time_column)
    order = np.argsort(times, kind="stable")
    sd = features[list(SD_COLUMNS)].to_numpy(dtype=np.float64)[order]
    with np.errstate(invalid="ignore"):
        still = np.all(sd < sd_threshold_g, axis=1)  # NaN compares False: not stationary
    first, last = _runs(still)
    t = times[order]
    long = (t[last] - t[first]) > np.int64(round(min_minutes * 60e9))
    # mark [first, last] of every long run with a +1/-1 difference array: one vectorised pass
    marks = np.zeros(n + 1, dtype=np.int64)
    np.add.at(marks, first[long], 1)
    np.add.at(marks, last[long] + 1, -1)
    flagged_sorted = np.cumsum(marks[:n]) > 0
    flagged = np.empty(n, dtype=bool)
    flagged[order] = flagged_sorted
    return flagged


def nonwear_episodes(features, nonwear=None, time_column="time", epoch_s=30.0, **detect_options) -> pd.DataFrame:
    """Table of non-wear episodes, like the reference's ``nonWearBouts`` file.

    Parameters
    ----------
    features : pandas.DataFrame
        As for `detect_nonwear`.
    nonwear : array of bool, optional
        Flags per row; computed with `detect_nonwear` (and ``detect_options``) when not given.
    epoch_s : float
        Window length, for the episode duration (last window start − first window start + one window).

    Returns
    -------
    pandas.DataFrame
        Columns ``start``, ``end`` (first and last window start, naive datetime64), ``windows``, ``duration_min``,
        ``xStdMean``, ``yStdMean``, ``zStdMean`` (g).
    """
    if nonwear is None:
        nonwear = detect_nonwear(features, time_column=time_column, **detect_options)
    times = window_times_ns(features, time_column)
    order = np.argsort(times, kind="stable")
    flags = np.asarray(nonwear, dtype=bool)[order]
    t = times[order]
    sd = features[list(SD_COLUMNS)].to_numpy(dtype=np.float64)[order]
    first, last = _runs(flags)
    # per-episode mean SD by cumulative sums: no loop over windows
    csum = np.vstack([np.zeros((1, 3)), np.cumsum(np.nan_to_num(sd), axis=0)])
    windows = last - first + 1
    means = (csum[last + 1] - csum[first]) / np.maximum(windows, 1)[:, None]
    return pd.DataFrame(
        {
            "start": t[first].view("datetime64[ns]"),
            "end": t[last].view("datetime64[ns]"),
            "windows": windows,
            "duration_min": (t[last] - t[first]) / 60e9 + epoch_s / 60.0,
            "xStdMean": means[:, 0],
            "yStdMean": means[:, 1],
            "zStdMean": means[:, 2],
        }
    )


def apply_nonwear(features, nonwear=None, keep=False, keep_columns=KEPT_COLUMNS, time_column="time", **detect_options):
    """Add the ``nonwear`` column and, unless ``keep``, set the features of non-wear windows to NaN.

    Parameters
    ----------
    features : pandas.DataFrame
        The per-window features (not modified).
    nonwear : array of bool, optional
        Flags per row; computed with `detect_nonwear` (and ``detect_options``: ``min_minutes``,
        ``sd_threshold_g``) when not given.
    keep : bool
        True: keep the feature values of non-wear windows (only add the flag).
    keep_columns : sequence of str
        Columns never set to NaN: time, the flag and the per-window QC counts. Every other column is a feature.

    Returns
    -------
    pandas.DataFrame
        A copy with a boolean ``nonwear`` column. Rows are never dropped.
    """
    if nonwear is None:
        nonwear = detect_nonwear(features, time_column=time_column, **detect_options)
    flags = np.asarray(nonwear, dtype=bool)
    if len(flags) != len(features):
        raise ValueError(f"nonwear has {len(flags)} flags for {len(features)} windows")
    out = features.copy()
    out["nonwear"] = flags
    if not keep and flags.any():
        cols = [c for c in out.columns if c not in keep_columns and c != time_column]
        for col in cols:  # columns that cannot hold NaN: integers to float, anything else to object
            if not pd.api.types.is_numeric_dtype(out[col]):
                out[col] = out[col].astype(object)
            elif not pd.api.types.is_float_dtype(out[col]):
                out[col] = out[col].astype(np.float64)
        out.loc[flags, cols] = np.nan
    return out


__all__ = ["detect_nonwear", "apply_nonwear", "nonwear_episodes", "window_times_ns"]
