"""Time-base quality facts shared by all readers: gaps, backward steps and the measured rate."""

from __future__ import annotations

import numpy as np

#: At most this many gaps are listed one by one in the QC dict; the count is always exact.
MAX_LISTED_GAPS = 1000


def time_qc(time: np.ndarray, fs: float, gap_factor: float = 2.0) -> dict:
    """Gaps, backward steps and measured sample rate of a per-sample time base.

    Parameters
    ----------
    time : int64 array
        Per-sample times in ns, in file order.
    fs : float
        Nominal sample rate in Hz.
    gap_factor : float
        An interval longer than ``gap_factor / fs`` is a gap.

    Returns
    -------
    dict
        ``samples``; ``gap_count``; ``gaps``: list of ``{"start": ISO time of the last sample before the gap,
        "length_s": seconds without samples beyond one nominal period, "after_sample": its index}`` (the first
        `MAX_LISTED_GAPS`); ``gap_total_s``; ``time_backwards``: number of steps where the time decreases or
        stays the same, ``first_backwards_sample`` (or None); ``measured_fs``: samples per second over the
        intervals that are neither gaps nor backward steps (None with fewer than two samples).
    """
    n = len(time)
    out = {"samples": int(n), "gap_count": 0, "gaps": [], "gap_total_s": 0.0, "time_backwards": 0,
           "first_backwards_sample": None, "measured_fs": None}  # fmt: skip
    if n < 2:
        return out
    d = np.diff(time)
    limit = gap_factor * 1e9 / fs
    gap_at = np.flatnonzero(d > limit)
    back_at = np.flatnonzero(d <= 0)
    normal = (d > 0) & (d <= limit)
    period_ns = 1e9 / fs
    lengths = (d[gap_at] - period_ns) / 1e9
    out["gap_count"] = int(len(gap_at))
    out["gap_total_s"] = float(lengths.sum())
    starts = time[gap_at[:MAX_LISTED_GAPS]].view("datetime64[ns]")
    out["gaps"] = [
        {"start": str(s), "length_s": round(float(l), 6), "after_sample": int(i)}
        for s, l, i in zip(starts, lengths[:MAX_LISTED_GAPS], gap_at[:MAX_LISTED_GAPS])
    ]
    out["time_backwards"] = int(len(back_at))
    out["first_backwards_sample"] = int(back_at[0] + 1) if len(back_at) else None
    if normal.any():
        out["measured_fs"] = float(normal.sum() / (d[normal].sum() / 1e9))
    return out
