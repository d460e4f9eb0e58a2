"""Autocalibration of a file processed in chunks: the same stationary points and fit as one whole-file pass.

`capture_pipeline.calibration_fit.fit_calibration` needs the whole recording in memory (1.4 GB for a week at
100 Hz). Here each chunk computes the 10-s window sums of its own samples with the same Numba kernel
(`calibration_fit._window_sums`, windows counted from the file's first sample ``t0``), and returns the raw samples
of its first and last window runs, which may continue in the neighbouring chunks. `merge_window_sums` recomputes
those edge runs from the concatenated raw samples, so every window's sums are accumulated from the same first
sample over the same samples in the same order as in one pass: the points, and so the fit, are bit-identical.
"""

from __future__ import annotations

import math

import numpy as np

from .. import calibration_fit as cf
from ..calibration import CalibrationCoefficients


def _win_index(time, t0, win_ns):
    dt = time - t0
    return np.where(dt >= 0, dt // win_ns, -1)


def chunk_window_sums(time, xyz, temperature, t0, range_g, window_s=cf.WINDOW_S) -> dict:
    """Window sums of one chunk's own samples, with the raw samples of its first and last runs.

    Parameters
    ----------
    time, xyz, temperature : numpy.ndarray
        The chunk's own samples (int64 ns, float32 n×3 g, float32 °C or None).
    t0 : int
        Time (ns) of the file's first sample: windows are ``t0 + k * window_s``.
    range_g : float
        Device range (samples at or beyond it are clipped).

    Returns
    -------
    dict
        ``sums``: the arrays of `calibration_fit._window_sums` (one slot per run of samples in one window, in
        order); ``head``/``tail``: ``(time, xyz, temperature)`` of the first and last runs; ``n``: samples.
    """
    n = len(time)
    win_ns = np.int64(round(window_s * 1e9))
    has_temp = temperature is not None
    temp = temperature if has_temp else np.zeros(1, np.float32)
    if n == 0:
        return {"n": 0, "sums": None, "head": None, "tail": None}
    sums = cf._window_sums(time, np.ascontiguousarray(xyz), temp, has_temp, np.int64(t0), win_ns, float(range_g))
    w = _win_index(time, np.int64(t0), win_ns)
    change = np.flatnonzero(w[1:] != w[:-1]) + 1
    head_end = int(change[0]) if len(change) else n
    tail_start = int(change[-1]) if len(change) else 0

    def part(a, b):
        return (time[a:b].copy(), np.array(xyz[a:b], np.float32), None if not has_temp else temp[a:b].copy())

    return {"n": n, "sums": sums, "head": part(0, head_end), "tail": part(tail_start, n)}


def merge_window_sums(parts, t0, range_g, has_temp, window_s=cf.WINDOW_S):
    """The whole file's window sums from the chunks' `chunk_window_sums`, in file order (empty chunks allowed)."""
    win_ns = np.int64(round(window_s * 1e9))
    parts = [p for p in parts if p["n"]]
    pieces = []  # lists of the 7 arrays, in order
    pending = None  # raw samples of a run that may continue into the next chunk

    def sums_of(raw):
        t, x, tmp = raw
        return cf._window_sums(t, np.ascontiguousarray(x), tmp if has_temp else np.zeros(1, np.float32), has_temp,
                               np.int64(t0), win_ns, float(range_g))  # fmt: skip

    def cat(a, b):
        return (np.concatenate([a[0], b[0]]), np.concatenate([a[1], b[1]]),
                None if not has_temp else np.concatenate([a[2], b[2]]))  # fmt: skip

    for p in parts:
        sums, head, tail = p["sums"], p["head"], p["tail"]
        m = len(sums[0])
        lo = 0
        if pending is not None:
            last_w = _win_index(pending[0][-1:], np.int64(t0), win_ns)[0]
            first_w = _win_index(head[0][:1], np.int64(t0), win_ns)[0]
            if last_w == first_w:  # the open run goes on in this chunk
                if m == 1:
                    pending = cat(pending, head)
                    continue
                pieces.append(sums_of(cat(pending, head)))
                lo = 1
            else:
                pieces.append(sums_of(pending))
        if m - 1 > lo:  # runs lo .. m-2 lie wholly inside this chunk: its own sums are the one-pass sums
            pieces.append(tuple(a[lo : m - 1] for a in sums))
        pending = tail
    if pending is not None:
        pieces.append(sums_of(pending))
    if not pieces:
        return None
    return tuple(np.concatenate([pc[k] for pc in pieces]) for k in range(7))


def stationary_points_from_sums(sums, t0, fs, has_temp, window_s=cf.WINDOW_S, sd_threshold_g=cf.STATIONARY_SD_G,
                                min_fraction=0.5) -> dict:  # fmt: skip
    """`calibration_fit.stationary_points` computed from merged window sums (same steps, same result)."""
    win, count, shift, s1, s2, tsum, clipped = sums
    win_ns = np.int64(round(window_s * 1e9))
    cnt = count.astype(np.float64)[:, None]
    mean_d = s1 / cnt
    sd = np.sqrt(np.maximum(s2 / cnt - mean_d**2, 0.0))
    means = shift + mean_d
    temps = tsum / count if has_temp else np.zeros(len(count))
    _, first, seen = np.unique(win, return_index=True, return_counts=True)
    revisited = np.zeros(len(win), bool)
    if np.any(seen > 1):
        revisited = np.isin(win, win[first[seen > 1]])
    revisited |= win < 0
    expected = window_s * float(fs)
    short = count < min_fraction * expected
    has_clip = clipped > 0
    still = np.all(sd < sd_threshold_g, axis=1)
    zero = np.linalg.norm(means, axis=1) < 1e-8
    stuck = np.any((sd == 0) & (np.abs(means) > 1.5), axis=1)  # the reference's stuck-value rule
    use = still & ~short & ~has_clip & ~revisited & ~zero & ~stuck
    return {
        "xyz": means[use],
        "temperature": temps[use],
        "time": np.int64(t0) + win[use] * win_ns,
        "n_windows": int(len(np.unique(win[win >= 0]))),
        "n_stationary": int(use.sum()),
        "n_rejected_short": int((still & short).sum()),
        "n_rejected_clipped": int((still & has_clip & ~short).sum()),
        "n_rejected_out_of_order": int(len(np.unique(win[revisited & (win >= 0)]))),
        "n_rejected_zero": int((still & zero).sum()),
        "n_rejected_stuck": int((still & stuck & ~zero).sum()),
    }


def fit_from_points(
    pts,
    has_temp,
    window_s=cf.WINDOW_S,
    sd_threshold_g=cf.STATIONARY_SD_G,
    min_points=cf.MIN_POINTS,
    sphere_criterion_g=cf.SPHERE_CRITERION_G,
    max_iter=cf.MAX_ITER,
    min_improvement=cf.MIN_IMPROVEMENT,
    use_poor_fit=False,
) -> CalibrationCoefficients:
    """`calibration_fit.fit_calibration` from precomputed stationary points (same policy, same ``info``).

    Kept in step with `fit_calibration` by ``tests/test_batch_chunks.py``, which compares the two on whole files.
    """
    axes, temps = pts["xyz"], pts["temperature"]
    n = len(axes)
    info = {
        "method": "van Hees et al. 2014 iterative closest point, as biobankAccelerometerAnalysis v2.3.0",
        "source": "fitted",
        "applied": False,
        "reason": None,
        "too_few_points": n < min_points,
        "good_calibration": False,
        "n_stationary_points": n,
        "n_windows": pts["n_windows"],
        "n_rejected_short": pts["n_rejected_short"],
        "n_rejected_clipped": pts["n_rejected_clipped"],
        "n_rejected_out_of_order": pts["n_rejected_out_of_order"],
        "n_rejected_zero": pts["n_rejected_zero"],
        "n_rejected_stuck": pts["n_rejected_stuck"],
        "error_before_mg": None,
        "error_after_mg": None,
        "fit_error_mg": None,
        "static_min_g": None,
        "static_max_g": None,
        "temperature_available": has_temp,
        "iterations": 0,
        "fitted": None,
        "settings": {
            "window_s": window_s,
            "stationary_sd_g": sd_threshold_g,
            "min_points": min_points,
            "sphere_criterion_g": sphere_criterion_g,
            "max_iter": max_iter,
            "min_improvement": min_improvement,
            "use_poor_fit": use_poor_fit,
        },
    }
    if n > 0:
        error_before, _ = cf._rms_to_sphere(axes)
        info["error_before_mg"] = info["error_after_mg"] = error_before * 1000.0
        lo, hi = axes.min(axis=0), axes.max(axis=0)
        info["static_min_g"], info["static_max_g"] = lo.tolist(), hi.tolist()
        s = sphere_criterion_g
        info["good_calibration"] = bool(np.all(lo < -s) and np.all(hi > s))
    if n < min_points:
        info["reason"] = (
            f"too few stationary points ({n} < {min_points}): not enough still periods to calibrate; "
            "identity coefficients kept"
        )
        return CalibrationCoefficients(info=info)
    try:
        fit = cf.fit_sphere(axes, temps if has_temp else None, max_iter=max_iter, min_improvement=min_improvement)
        ok = all(np.all(np.isfinite(fit[k])) for k in ("offset", "gain", "temp_coef")) and math.isfinite(
            fit["error_after"]
        )
    except np.linalg.LinAlgError as exc:
        fit, ok = None, False
        info["reason"] = f"least-squares fit failed ({exc}); identity coefficients kept"
    if fit is not None and not ok:
        info["reason"] = "fit produced non-finite coefficients; identity coefficients kept"
    if not ok:
        info["good_calibration"] = False
        return CalibrationCoefficients(info=info)
    fitted = CalibrationCoefficients(
        offset=tuple(float(v) for v in fit["offset"]),
        gain=tuple(float(v) for v in fit["gain"]),
        temp_coef=tuple(float(v) for v in fit["temp_coef"]),
        mean_temp=float(fit["mean_temp"]),
    )
    info["fitted"] = {k: v for k, v in fitted.to_dict().items() if k != "info"}
    info["fit_error_mg"] = fit["error_after"] * 1000.0
    info["iterations"] = fit["iterations"]
    if not use_poor_fit:
        if not info["good_calibration"]:
            info["reason"] = (
                f"stationary points do not reach ±{sphere_criterion_g} g on every axis (too few orientations); "
                "identity coefficients kept"
            )
            return CalibrationCoefficients(info=info)
        if fit["error_after"] >= fit["error_before"]:
            info["reason"] = "fit does not lower the error to the unit sphere; identity coefficients kept"
            return CalibrationCoefficients(info=info)
    info["applied"] = True
    info["error_after_mg"] = info["fit_error_mg"]
    return CalibrationCoefficients(
        offset=fitted.offset, gain=fitted.gain, temp_coef=fitted.temp_coef, mean_temp=fitted.mean_temp, info=info
    )
