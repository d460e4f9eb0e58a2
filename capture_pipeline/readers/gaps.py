"""Time-base quality facts shared by all readers: gaps, backward steps and the measured rate."""

from __future__ import annotations

import numba
import numpy as np

#: At most this many gaps are listed one by one in the QC dict; the count is always exact.
MAX_LISTED_GAPS = 1000


@numba.njit(cache=True, nogil=True)
def _scan(time, limit_ns, max_listed):
    # one pass, no n-sized temporaries: a week at 100 Hz is 60 M samples
    gap_at = np.empty(max_listed, np.int64)
    gap_len = np.empty(max_listed, np.int64)
    n_gaps = 0
    gap_total = 0
    n_back = 0
    first_back = -1
    n_normal = 0
    normal_ns = 0
    for i in range(time.shape[0] - 1):
        d = time[i + 1] - time[i]
        if d <= 0:
            n_back += 1
            if first_back < 0:
                first_back = i + 1
        elif d > limit_ns:
            if n_gaps < max_listed:
                gap_at[n_gaps] = i
                gap_len[n_gaps] = d
            n_gaps += 1
            gap_total += d
        else:
            n_normal += 1
            normal_ns += d
    return gap_at, gap_len, n_gaps, gap_total, n_back, first_back, n_normal, normal_ns


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
    gap_at, gap_len, n_gaps, gap_total, n_back, first_back, n_normal, normal_ns = _scan(
        time, gap_factor * 1e9 / fs, MAX_LISTED_GAPS
    )
    listed = min(n_gaps, MAX_LISTED_GAPS)
    period_ns = 1e9 / fs
    out["gap_count"] = int(n_gaps)
    out["gap_total_s"] = float((gap_total - n_gaps * period_ns) / 1e9)
    starts = time[gap_at[:listed]].view("datetime64[ns]")
    out["gaps"] = [
        {"start": str(s), "length_s": round(float((d - period_ns) / 1e9), 6), "after_sample": int(i)}
        for s, d, i in zip(starts, gap_len[:listed], gap_at[:listed])
    ]
    out["time_backwards"] = int(n_back)
    out["first_backwards_sample"] = int(first_back) if first_back >= 0 else None
    if n_normal:
        out["measured_fs"] = float(n_normal / (normal_ns / 1e9))
    return out
