"""Autocalibration to local gravity (van Hees et al. 2014), as biobankAccelerometerAnalysis v2.3.0 does it.

Spec: ``shared/spec/features.md`` §3.3. Two steps:

1. **Stationary points** (`stationary_points`). The recording is cut into 10-s windows starting at the first
   sample. A window whose per-axis standard deviation is below 13 mg on all three axes is a *stationary point*:
   its mean (x, y, z) must lie on the unit sphere, since the device then measures gravity only. One Numba pass
   over the raw samples gives every window's count, mean, SD and mean temperature.
2. **Fit** (`fit_sphere`). Iterative closest point: per axis ``a' = offset + gain·a + temp_coef·(T − meanT)``;
   each iteration projects the calibrated points onto the sphere and refits the three coefficients of each axis
   by least squares. The coefficients with the lowest RMS error are kept.

Differences from the reference, and why:

* The reference computes the window SD on the 10-s epoch *resampled* to 1000 points; here it is computed on the raw
  samples (at 100 Hz these agree to well below the 13-mg threshold's resolution; resampling a stationary signal
  changes its SD by interpolation smoothing only).
* Windows with fewer than half the expected samples, with an out-of-range (clipped) sample, with a stuck axis
  (SD 0 and |mean| > 1.5 g, the reference's stuck-value rule), or revisited by out-of-order timestamps are not used
  (the reference drops epochs with ``dataErrors``); their counts are reported.
* What is *applied* is a policy on top of the fit. The reference applies the fit whenever it has more than 5
  points, even when the stationary points do not reach ±0.3 g on every axis (``goodCalibration`` = 0). By default
  this module keeps the identity in that case, and when the fit does not lower the error, as GGIR and actipy do,
  because a fit from one or two orientations can make the data worse. ``use_poor_fit=True`` restores the reference
  behaviour. The fitted values are always reported in ``info['fitted']``.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from .calibration import IDENTITY, CalibrationCoefficients
from .errors import InputError

#: Defaults of the reference tool (R5/R8 in the spec).
WINDOW_S = 10.0
STATIONARY_SD_G = 0.013
SPHERE_CRITERION_G = 0.3
MAX_ITER = 1000
MIN_IMPROVEMENT = 1e-4
#: Fewest stationary points for a fit. The reference fits from 6 points, which is 9 parameters from 18 numbers;
#: 50 points (about 8 minutes of stillness in all) is actipy's default and is met by any multi-day wrist file.
MIN_POINTS = 50


@numba.njit(cache=True, nogil=True)
def _window_sums(time, xyz, temperature, has_temp, t0, win_ns, range_g):
    """One pass over the samples: per 10-s window, sums about the window's first sample (for a stable variance).

    Windows are "slots" opened each time the window index changes, so memory is proportional to the number of
    windows actually present, not to the time span (a corrupt far-future timestamp cannot blow it up). A window
    revisited by out-of-order samples gets a second slot; the caller detects and rejects such windows.
    """
    n = time.shape[0]
    # first pass over the time stamps only: number of slots
    n_slots = 0
    prev = np.int64(-1)
    for i in range(n):
        dt = time[i] - t0
        w = dt // win_ns if dt >= 0 else np.int64(-1)
        if i == 0 or w != prev:
            n_slots += 1
            prev = w
    win = np.empty(n_slots, np.int64)
    count = np.zeros(n_slots, np.int64)
    shift = np.zeros((n_slots, 3), np.float64)
    s1 = np.zeros((n_slots, 3), np.float64)
    s2 = np.zeros((n_slots, 3), np.float64)
    tsum = np.zeros(n_slots, np.float64)
    clipped = np.zeros(n_slots, np.int64)
    slot = -1
    prev = np.int64(-1)
    for i in range(n):
        dt = time[i] - t0
        w = dt // win_ns if dt >= 0 else np.int64(-1)
        if i == 0 or w != prev:
            slot += 1
            prev = w
            win[slot] = w
            for a in range(3):
                shift[slot, a] = xyz[i, a]
        count[slot] += 1
        clip = False
        for a in range(3):
            v = np.float64(xyz[i, a])
            d = v - shift[slot, a]
            s1[slot, a] += d
            s2[slot, a] += d * d
            if abs(v) >= range_g:
                clip = True
        if clip:
            clipped[slot] += 1
        if has_temp:
            tsum[slot] += temperature[i]
    return win, count, shift, s1, s2, tsum, clipped


def stationary_points(recording, window_s=WINDOW_S, sd_threshold_g=STATIONARY_SD_G, min_fraction=0.5):
    """Means and temperatures of the stationary windows of a recording.

    Parameters
    ----------
    recording : Recording
        Raw (uncalibrated) samples.
    window_s : float
        Window length in seconds (reference: 10).
    sd_threshold_g : float
        A window is stationary when the population SD of every axis is below this (reference: 0.013 g).
    min_fraction : float
        Windows with fewer than this fraction of the ``window_s * fs`` expected samples are not used.

    Returns
    -------
    dict
        ``xyz`` (m×3 float64, window means in g), ``temperature`` (m, °C; zeros when the recording has none),
        ``time`` (m, int64 ns window starts), and the counts ``n_windows``, ``n_stationary``,
        ``n_rejected_short``, ``n_rejected_clipped``, ``n_rejected_zero``, ``n_rejected_stuck`` (still windows not
        used because too short, with a clipped sample, with a zero mean, or with an axis stuck beyond 1.5 g) and ``n_rejected_out_of_order`` (windows, still or not,
        revisited by out-of-order time stamps).
    """
    n = len(recording)
    if n == 0:
        raise InputError(recording.meta.get("path"), "recording has no samples; cannot calibrate")
    win_ns = np.int64(round(window_s * 1e9))
    t0 = np.int64(recording.time[0])
    has_temp = recording.temperature is not None
    temperature = recording.temperature if has_temp else np.zeros(1, np.float32)
    range_g = float(recording.meta.get("range_g") or np.inf)
    win, count, shift, s1, s2, tsum, clipped = _window_sums(
        recording.time, np.ascontiguousarray(recording.xyz), temperature, has_temp, t0, win_ns, range_g
    )
    return points_from_window_sums(
        (win, count, shift, s1, s2, tsum, clipped), t0, recording.fs, has_temp, window_s=window_s,
        sd_threshold_g=sd_threshold_g, min_fraction=min_fraction,
    )  # fmt: skip


def points_from_window_sums(sums, t0, fs, has_temp, window_s=WINDOW_S, sd_threshold_g=STATIONARY_SD_G,
                            min_fraction=0.5) -> dict:  # fmt: skip
    """The stationary points from per-window sums (`_window_sums`), so a chunked pass can merge sums and then
    select exactly the points of a whole-file pass. Parameters and result as `stationary_points`; ``t0`` is the
    time (ns) of the first sample, ``fs`` the nominal rate."""
    win, count, shift, s1, s2, tsum, clipped = sums
    win_ns = np.int64(round(window_s * 1e9))
    cnt = count.astype(np.float64)[:, None]
    mean_d = s1 / cnt
    sd = np.sqrt(np.maximum(s2 / cnt - mean_d**2, 0.0))
    means = shift + mean_d
    temps = tsum / count if has_temp else np.zeros(len(count))

    # a window index met in two slots was revisited by out-of-order samples: reject all its slots
    _, first, seen = np.unique(win, return_index=True, return_counts=True)
    revisited = np.zeros(len(win), bool)
    if np.any(seen > 1):
        revisited = np.isin(win, win[first[seen > 1]])
    revisited |= win < 0  # samples before the first one
    expected = window_s * float(fs)
    short = count < min_fraction * expected
    has_clip = clipped > 0
    still = np.all(sd < sd_threshold_g, axis=1)
    # an all-zero mean (a stuck device) cannot be projected onto the sphere
    zero = np.linalg.norm(means, axis=1) < 1e-8
    # the reference's stuck-value data error (spec §3.8): an axis with SD 0 and |mean| > 1.5 g
    stuck = np.any((sd == 0) & (np.abs(means) > 1.5), axis=1)
    use = still & ~short & ~has_clip & ~revisited & ~zero & ~stuck
    n_windows = int(len(np.unique(win[win >= 0])))
    return {
        "xyz": means[use],
        "temperature": temps[use],
        "time": np.int64(t0) + win[use] * win_ns,
        "n_windows": n_windows,
        "n_stationary": int(use.sum()),
        "n_rejected_short": int((still & short).sum()),
        "n_rejected_clipped": int((still & has_clip & ~short).sum()),
        "n_rejected_out_of_order": int(len(np.unique(win[revisited & (win >= 0)]))),
        "n_rejected_zero": int((still & zero).sum()),
        "n_rejected_stuck": int((still & stuck & ~zero).sum()),
    }


def _rms_to_sphere(curr):
    """Reference error: RMS over all n×3 components of (point − its projection on the unit sphere), in g."""
    target = curr / np.sqrt(np.sum(np.square(curr), axis=1))[:, None]
    return float(np.sqrt(np.mean(np.square(curr - target)))), target


def fit_sphere(xyz, temperature=None, max_iter=MAX_ITER, min_improvement=MIN_IMPROVEMENT):
    """Iterative closest-point fit of offset, gain and temperature coefficient to the unit sphere.

    This is the reference algorithm line by line (spec §3.3 items 3-5; R8 ``getCalibrationCoefs``).

    Parameters
    ----------
    xyz : array_like, shape (m, 3)
        Stationary-window means in g.
    temperature : array_like, shape (m,), optional
        Their mean temperatures in °C. None: no temperature term (coefficients stay 0).
    max_iter : int
        The loop runs ``range(1, max_iter)``, as in the reference.
    min_improvement : float
        Stop when the relative RMS improvement over the best so far falls below this.

    Returns
    -------
    dict
        ``offset``, ``gain``, ``temp_coef`` (float64 arrays of 3), ``mean_temp`` (°C), ``error_before`` and
        ``error_after`` (RMS in g, the latter of the best coefficients), ``iterations``.

    Raises
    ------
    numpy.linalg.LinAlgError
        If a least-squares step fails.
    """
    axes = np.asarray(xyz, dtype=np.float64)
    if temperature is None:
        temps = np.zeros((len(axes), 1))
        mean_temp = 0.0
    else:
        temps = np.asarray(temperature, dtype=np.float64).reshape(-1, 1)
        mean_temp = float(np.mean(temps))
        temps = temps - mean_temp
    offset = np.zeros(3)
    gain = np.ones(3)
    temp_coef = np.zeros(3)
    best = (offset.copy(), gain.copy(), temp_coef.copy())
    best_error = math.inf
    curr = offset + axes * gain + temps * temp_coef
    error_before, target = _rms_to_sphere(curr)
    design = np.empty((len(axes), 3))
    design[:, 0] = 1.0
    design[:, 2] = temps[:, 0]
    iterations = 0
    for _ in range(1, max_iter):
        iterations += 1
        for a in range(3):
            design[:, 1] = curr[:, a]
            # minimum-norm least squares = the pseudo-inverse solution statsmodels' OLS gives; it returns a
            # temperature coefficient of 0 when the temperature column is all zero (no or constant temperature)
            (i_a, s_a, t_a), *_ = np.linalg.lstsq(design, target[:, a], rcond=None)
            offset[a] = i_a + offset[a] * s_a
            gain[a] = s_a * gain[a]
            temp_coef[a] = t_a + temp_coef[a] * s_a
        curr = offset + axes * gain + temps * temp_coef
        rms, target = _rms_to_sphere(curr)
        improvement = (best_error - rms) / best_error if math.isfinite(best_error) else math.nan
        if rms < best_error:
            best = (offset.copy(), gain.copy(), temp_coef.copy())
            best_error = rms
        if improvement < min_improvement:
            break
    return {
        "offset": best[0],
        "gain": best[1],
        "temp_coef": best[2],
        "mean_temp": mean_temp,
        "error_before": error_before,
        "error_after": best_error,
        "iterations": iterations,
    }


def fit_calibration(
    recording,
    window_s=WINDOW_S,
    sd_threshold_g=STATIONARY_SD_G,
    min_points=MIN_POINTS,
    sphere_criterion_g=SPHERE_CRITERION_G,
    max_iter=MAX_ITER,
    min_improvement=MIN_IMPROVEMENT,
    use_poor_fit=False,
) -> CalibrationCoefficients:
    """Fit calibration coefficients to a recording's own stationary periods (van Hees et al. 2014).

    Parameters
    ----------
    recording : Recording
        Raw samples in g; temperature is used when present.
    window_s, sd_threshold_g : float
        Stationary windows: ``window_s`` long, SD below ``sd_threshold_g`` on every axis (reference 10 s, 13 mg).
    min_points : int
        With fewer stationary windows the identity is returned, flagged ``too_few_points``.
    sphere_criterion_g : float
        ``good_calibration`` requires the stationary means to reach below ``-sphere_criterion_g`` and above
        ``+sphere_criterion_g`` on every axis (reference 0.3 g).
    max_iter, min_improvement
        Loop control of `fit_sphere`.
    use_poor_fit : bool
        False (default): keep the identity when ``good_calibration`` is false or the fit does not lower the error.
        True: return the fit regardless, as the reference tool does.

    Returns
    -------
    CalibrationCoefficients
        Its ``info`` dict (JSON-serialisable) holds: ``method``, ``source`` ('fitted'), ``applied`` (whether the
        coefficients are a fit or the identity), ``reason`` (why not applied, else None), ``too_few_points``,
        ``good_calibration``, ``n_stationary_points``, ``n_windows``, the ``n_rejected_*`` counts, ``error_before_mg``,
        ``error_after_mg`` (with the returned coefficients), ``fit_error_mg`` (of the fit, even if not applied),
        ``static_min_g``/``static_max_g`` (per axis, uncalibrated), ``temperature_available``, ``iterations``,
        ``fitted`` (the fitted coefficients) and the settings used.
    """
    pts = stationary_points(recording, window_s=window_s, sd_threshold_g=sd_threshold_g)
    return fit_from_points(
        pts, recording.temperature is not None, window_s=window_s, sd_threshold_g=sd_threshold_g,
        min_points=min_points, sphere_criterion_g=sphere_criterion_g, max_iter=max_iter,
        min_improvement=min_improvement, use_poor_fit=use_poor_fit,
    )  # fmt: skip


def fit_from_points(
    pts,
    has_temp,
    window_s=WINDOW_S,
    sd_threshold_g=STATIONARY_SD_G,
    min_points=MIN_POINTS,
    sphere_criterion_g=SPHERE_CRITERION_G,
    max_iter=MAX_ITER,
    min_improvement=MIN_IMPROVEMENT,
    use_poor_fit=False,
) -> CalibrationCoefficients:
    """`fit_calibration` from precomputed stationary points (`stationary_points` or `points_from_window_sums`);
    ``has_temp`` says whether the recording had temperature. Same policy, same ``info``."""
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
        error_before, _ = _rms_to_sphere(axes)
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
        fit = fit_sphere(axes, temps if has_temp else None, max_iter=max_iter, min_improvement=min_improvement)
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


def resolve_calibration(recording, calibrate=True, calibration=None, **fit_options) -> CalibrationCoefficients:
    """The coefficients to use for a recording, from the usual user choices.

    Parameters
    ----------
    recording : Recording
    calibrate : bool
        False: calibration switched off (identity, ``info['applied']`` False, reason "switched off").
    calibration : CalibrationCoefficients, dict, str or os.PathLike, optional
        Coefficients given by the user (an object, a dict as in ``to_dict``, or a JSON file path); they take
        precedence over fitting.
    **fit_options
        Passed to `fit_calibration`.

    Returns
    -------
    CalibrationCoefficients
    """
    if calibration is not None:
        if isinstance(calibration, CalibrationCoefficients):
            coef = calibration
        elif isinstance(calibration, dict):
            coef = CalibrationCoefficients.from_dict(calibration)
        else:
            coef = CalibrationCoefficients.from_json(calibration)
        info = dict(coef.info)
        info.update(source="user", applied=not coef.is_identity)
        return CalibrationCoefficients(coef.offset, coef.gain, coef.temp_coef, coef.mean_temp, info=info)
    if not calibrate:
        return CalibrationCoefficients(info={"source": "off", "applied": False, "reason": "calibration switched off"})
    return fit_calibration(recording, **fit_options)


__all__ = [
    "fit_calibration",
    "fit_sphere",
    "stationary_points",
    "resolve_calibration",
    "IDENTITY",
]
