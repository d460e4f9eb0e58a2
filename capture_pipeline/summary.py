"""Per-file quality summary (``<name>.summary.json``), in the spirit of biobankAccelerometerAnalysis' summary.

Keys are flat, so that the summaries of many files collate into one table (`collate_summaries`). Where the reference tool has a key for the same fact, the same
name is used (``file-startTime``, ``calibration-xOffset(g)``, ``wearTime-overall(days)``,
``quality-goodWearTime`` ...). Values that cannot be computed (no features, no temperature) are ``null``, never
left out, so every summary has the same keys.

Two clip counts, on purpose: ``clips-samples`` is the reader's count of samples with an axis at the sensor's full
scale (for a packed AX3 at ±8 g that is 7.984 g), while ``clips-beforeCalibration``/``clips-afterCalibration``
sum the reference's per-window QC columns, which need |a| ≥ 8 g and so stay 0 for packed AX3 data.

Coverage: ``dataTime-hourOfDay<h>-(hrs)`` is recorded time per hour of the day from the samples (gaps excluded);
``wearTime-hourOfDay<h>-(hrs)`` is the wear time from the windows. ``quality-all24HoursCovered(...)`` is true when
all 24 hours of the day have some time; ``quality-goodWearTime`` adds the reference's "≥ 3 days of wear".
"""

from __future__ import annotations

import json
import math
import os

import numba
import numpy as np

from .atomic import write_json
from .calibration import CalibrationCoefficients

DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_NS_HOUR = 3_600_000_000_000
_NS_DAY = 24 * _NS_HOUR

#: Reference rule for `quality-goodWearTime` (R8): wear in all 24 hours of the day and at least 3 days of wear.
MIN_WEAR_DAYS = 3.0


@numba.njit(cache=True, nogil=True)
def _seconds_by_hour(time, max_step_ns):
    """Recorded seconds per hour of the day: each interval to the next sample (if not a gap) counts to its hour.

    The last sample of the file and the sample before each gap count one nominal period (``max_step_ns`` is
    ``gap_factor`` periods; the nominal period is ``max_step_ns / 2``), so a gap-free file of n samples at fs
    reports n / fs seconds.
    """
    out = np.zeros(24, np.float64)
    n = time.shape[0]
    period = max_step_ns / 2.0
    for i in range(n):
        hour = (time[i] // 3_600_000_000_000) % 24
        if i + 1 < n:
            d = time[i + 1] - time[i]
            step = d if (d > 0 and d <= max_step_ns) else period
        else:
            step = period
        out[hour] += step / 1e9
    return out


def _clean(value):
    """JSON-safe copy: numpy scalars and arrays to Python, NaN and ±inf to None."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, np.ndarray):
        return [_clean(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _round(x, digits):
    """``x`` rounded, or None when it is missing or not finite."""
    return None if x is None or not math.isfinite(x) else round(float(x), digits)


def _file_section(recording) -> dict:
    meta, qc = recording.meta, recording.qc
    path = meta.get("path")
    size = meta.get("file_size")
    if size is None and path and os.path.exists(path):
        size = os.path.getsize(path)
    n = len(recording)
    first = str(recording.time[:1].view("datetime64[ns]")[0]) if n else None
    last = str(recording.time[-1:].view("datetime64[ns]")[0]) if n else None
    measured = qc.get("measured_fs")
    if measured is None and n > 1 and recording.duration_s > 0:
        measured = (n - 1) / recording.duration_s
    gaps = qc.get("gaps") or []
    gap_lengths = [float(g["length_s"]) for g in gaps]
    return {
        "file-name": os.path.basename(path) if path else None,
        "file-path": path,
        "file-size(bytes)": size,
        "file-format": meta.get("format"),
        "device-type": meta.get("device_type"),
        "device-id": meta.get("device_id"),
        "device-sessionId": meta.get("session_id"),
        "device-firmware": meta.get("firmware"),
        "device-range(g)": meta.get("range_g"),
        "file-startTime": meta.get("start", first),
        "file-endTime": meta.get("end", last),
        "file-duration(days)": _round(recording.duration_s / 86400.0, 6),
        "file-firstDay(0=mon,6=sun)": int((recording.time[0] // _NS_DAY + 3) % 7) if n else None,
        "sampleRate-nominal(Hz)": float(recording.fs),
        "sampleRate-configured(Hz)": meta.get("configured_fs"),
        "sampleRate-measured(Hz)": _round(measured, 4) if measured is not None else None,
        "samples": int(qc.get("samples", n)),
        "blocks": qc.get("blocks"),
        "blocks-read": qc.get("blocks_read"),
        "blocks-corrupt": qc.get("corrupt_blocks"),
        "blocks-corruptIndices": qc.get("corrupt_block_indices"),
        "errs-gaps-num": int(qc.get("gap_count", len(gaps))),
        "errs-gaps-total(s)": _round(qc.get("gap_total_s", sum(gap_lengths)), 3),
        "errs-gaps-max(s)": _round(max(gap_lengths), 3) if gap_lengths else 0.0,
        "errs-timeBackwards": qc.get("time_backwards"),
        "clips-samples": qc.get("clipped_samples"),
        "temperature-available": recording.temperature is not None,
        "gyro-available": recording.gyro is not None,
    }


def _calibration_section(coef: CalibrationCoefficients) -> dict:
    info = coef.info or {}
    offset, gain, temp_coef, mean_temp = coef.arrays()
    out = {
        "calibration-source": info.get("source"),
        "calibration-applied": bool(info.get("applied", not coef.is_identity)),
        "calibration-reason": info.get("reason"),
        "calibration-errsBefore(mg)": _round(info.get("error_before_mg"), 3),
        "calibration-errsAfter(mg)": _round(info.get("error_after_mg"), 3),
        "calibration-fitError(mg)": _round(info.get("fit_error_mg"), 3),
    }
    for a, axis in enumerate("xyz"):
        out[f"calibration-{axis}Offset(g)"] = float(offset[a])
        out[f"calibration-{axis}Slope(g)"] = float(gain[a])
        out[f"calibration-{axis}Temp(C)"] = float(temp_coef[a])
    out["calibration-meanDeviceTemp(C)"] = float(mean_temp)
    out["calibration-numStaticPoints"] = info.get("n_stationary_points")
    lo, hi = info.get("static_min_g"), info.get("static_max_g")
    for a, axis in enumerate("XYZ"):
        out[f"calibration-static{axis}min(g)"] = None if lo is None else _round(lo[a], 4)
        out[f"calibration-static{axis}max(g)"] = None if hi is None else _round(hi[a], 4)
    out["calibration-fitted"] = info.get("fitted")
    out["quality-calibratedOnOwnData"] = info.get("source") == "fitted" and bool(info.get("applied"))
    out["quality-goodCalibration"] = bool(info.get("good_calibration", False))
    out["quality-calibrationTooFewPoints"] = info.get("too_few_points")
    return out


def _coverage(prefix, hours_by_hour):
    """Keys ``<prefix>-hourOfDay<h>-(hrs)`` (h = 0..23, as the reference names them) and how many hours of the
    day have any time at all. ``hours_by_hour`` None gives null values."""
    if hours_by_hour is None:
        return {f"{prefix}-hourOfDay{h}-(hrs)": None for h in range(24)}, None
    hours = [round(float(v), 6) for v in hours_by_hour]
    return {f"{prefix}-hourOfDay{h}-(hrs)": v for h, v in enumerate(hours)}, int(sum(v > 0 for v in hours))


def _wear_section(recording, features, options) -> dict:
    from .nonwear import detect_nonwear, nonwear_episodes, window_times_ns

    keys = {}
    # data coverage per hour of the day, from the samples themselves
    gap_factor = float(options.get("gap_factor", 2.0))
    max_step_ns = gap_factor * 1e9 / float(recording.fs)
    data_s = _seconds_by_hour(recording.time, max_step_ns) if len(recording) else np.zeros(24)
    data_hours, data_diurnal = _coverage("dataTime", data_s / 3600.0)
    keys["dataTime-overall(days)"] = _round(float(data_s.sum()) / 86400.0, 6)
    keys.update(data_hours)
    keys["dataTime-diurnalHrs"] = data_diurnal
    keys["quality-all24HoursCovered(data)"] = data_diurnal == 24

    wear_keys = [
        "features-windows", "features-epochPeriod(s)", "features-windowsWithMissingValues",
        "wearTime-numNonWearEpisodes(>1hr)", "wearTime-nonWearEpisodes", "wearTime-overall(days)",
        "nonWearTime-overall(days)", "wearTime-diurnalHrs", "wearTime-diurnalMins",
        "quality-all24HoursCovered(wear)", "quality-goodWearTime", "nonWear-minDuration(min)",
        "nonWear-stationarySD(g)",
    ] + [f"wearTime-{d}(hrs)" for d in DAYS]  # fmt: skip
    if features is None:
        keys.update({k: None for k in wear_keys})
        keys.update(_coverage("wearTime", None)[0])
        return keys

    epoch_s = float(options.get("epoch_s", 30.0))
    min_minutes = float(options.get("min_nonwear_minutes", 60.0))
    sd_threshold_g = float(options.get("stationary_sd_g", 0.013))
    if "nonwear" in features.columns:
        flags = features["nonwear"].to_numpy(dtype=bool)
    else:
        flags = detect_nonwear(features, min_minutes=min_minutes, sd_threshold_g=sd_threshold_g)
    keys["nonWear-minDuration(min)"] = min_minutes
    keys["nonWear-stationarySD(g)"] = sd_threshold_g
    times = window_times_ns(features)
    wear = ~flags
    numeric = features.drop(columns=[c for c in ("time", "nonwear") if c in features.columns]).select_dtypes("number")
    missing = 0
    if len(numeric.columns):
        missing = int((~np.isfinite(numeric.to_numpy(dtype=np.float64))).any(axis=1)[wear].sum())
    window_h = epoch_s / 3600.0
    hour = (times // _NS_HOUR) % 24
    weekday = (times // _NS_DAY + 3) % 7  # 1970-01-01 was a Thursday
    wear_by_hour = np.bincount(hour[wear], minlength=24) * window_h
    wear_by_day = np.bincount(weekday[wear], minlength=7) * window_h
    minute_of_day = (times // 60_000_000_000) % 1440
    episodes = nonwear_episodes(features, flags, epoch_s=epoch_s)
    wear_hours, wear_diurnal = _coverage("wearTime", wear_by_hour)
    wear_days = wear.sum() * epoch_s / 86400.0
    keys.update(
        {
            "features-windows": int(len(features)),
            "features-epochPeriod(s)": epoch_s,
            "features-windowsWithMissingValues": missing,
            "wearTime-numNonWearEpisodes(>1hr)": int(len(episodes)),
            "wearTime-nonWearEpisodes": [
                {"start": str(s), "end": str(e), "duration(min)": round(float(d), 2)}
                for s, e, d in zip(episodes["start"], episodes["end"], episodes["duration_min"])
            ],
            "wearTime-overall(days)": _round(wear_days, 6),
            "nonWearTime-overall(days)": _round(flags.sum() * epoch_s / 86400.0, 6),
            "wearTime-diurnalHrs": wear_diurnal,
            "wearTime-diurnalMins": int(len(np.unique(minute_of_day[wear]))),
            "quality-all24HoursCovered(wear)": wear_diurnal == 24,
            "quality-goodWearTime": bool(wear_diurnal == 24 and wear_days >= MIN_WEAR_DAYS),
        }
    )
    for d, day in enumerate(DAYS):
        keys[f"wearTime-{day}(hrs)"] = round(float(wear_by_day[d]), 6)
    keys.update(wear_hours)
    return keys


def summarise(recording, features=None, calibration=None, options=None) -> dict:
    """Quality summary of one recording.

    Parameters
    ----------
    recording : Recording
        As read (its ``meta`` and ``qc`` supply file, device and block facts).
    features : pandas.DataFrame, optional
        The per-window features of this recording (``time``, ``xStd``/``yStd``/``zStd``, optional ``nonwear``
        and QC columns). Without it, the wear-time keys are null.
    calibration : CalibrationCoefficients, optional
        The coefficients used for the features. Not given: resolved from ``options`` (``calibrate``,
        ``calibration`` = user file) with `capture_pipeline.calibration_fit.resolve_calibration`, i.e. fitted.
    options : dict, optional
        The options of the run; reported verbatim under ``options`` and read for ``epoch_s`` (30),
        ``min_nonwear_minutes`` (60), ``stationary_sd_g`` (0.013), ``gap_factor`` (2), ``calibrate`` (True),
        ``calibration``.

    Returns
    -------
    dict
        Flat, JSON-serialisable. Groups: ``file-*``, ``device-*``, ``sampleRate-*``, ``samples``, ``blocks*``,
        ``errs-*`` (gaps, backward time steps), ``clips-*`` (per sample from the reader; before/after calibration
        from the features' QC columns), ``calibration-*``, ``dataTime-*`` and ``wearTime-*`` (overall, per day of
        week, per hour of day ``...-hourOfDay<h>-(hrs)``), ``quality-*`` flags, ``software-*`` and ``options``.
    """
    from . import __version__
    from .calibration_fit import resolve_calibration

    options = dict(options or {})
    if calibration is None:
        calibration = resolve_calibration(
            recording, calibrate=options.get("calibrate", True), calibration=options.get("calibration")
        )
    out = {}
    out.update(_file_section(recording))
    if features is not None:
        for col, key in (("clipsBeforeCalibr", "clips-beforeCalibration"),
                         ("clipsAfterCalibr", "clips-afterCalibration")):  # fmt: skip
            out[key] = int(np.nansum(features[col].to_numpy(dtype=np.float64))) if col in features.columns else None
    else:
        out["clips-beforeCalibration"] = out["clips-afterCalibration"] = None
    out.update(_calibration_section(calibration))
    out.update(_wear_section(recording, features, options))
    out["software-name"] = "capture_pipeline"
    out["software-version"] = __version__
    out["options"] = options
    return _clean(out)


def summary_path(input_path, out_dir=None) -> str:
    """``<out_dir or input folder>/<input name without extension(s)>.summary.json`` (``.cwa.gz`` counts as one)."""
    base = os.path.basename(os.fspath(input_path))
    for ext in (".gz", ".cwa", ".CWA", ".csv", ".CSV"):
        if base.endswith(ext):
            base = base[: -len(ext)]
    folder = out_dir if out_dir is not None else os.path.dirname(os.path.abspath(os.fspath(input_path)))
    return os.path.join(folder, base + ".summary.json")


def write_json_atomic(path, obj) -> None:
    """Write ``obj`` as indented JSON to ``path`` via a temporary file in the same folder, then rename.

    A reader never sees a half-written file, and an interrupted run leaves no file of the final name.
    """
    write_json(path, _clean(obj), fsync=True, allow_nan=False)


def write_summary(path, summary: dict) -> None:
    """Write a summary from `summarise` to ``path`` atomically (see `write_json_atomic`)."""
    write_json_atomic(path, summary)


def collate_summaries(paths):
    """One table of many ``*.summary.json`` files: one row per file, one column per key.

    Nested values (``options``, ``calibration-fitted``) become dotted columns (``options.calibrate``); list
    values (corrupt block indices, non-wear episodes) stay lists in their cell.

    Parameters
    ----------
    paths : iterable of str or os.PathLike

    Returns
    -------
    pandas.DataFrame

    Raises
    ------
    InputError
        A file cannot be read or is not JSON.
    """
    import pandas as pd

    from .errors import InputError

    rows = []
    for path in paths:
        try:
            with open(path) as fh:
                rows.append(json.load(fh))
        except (OSError, ValueError) as exc:
            raise InputError(path, f"cannot read summary: {exc}") from exc
    return pd.json_normalize(rows, sep=".")


__all__ = ["summarise", "write_summary", "summary_path", "write_json_atomic", "collate_summaries"]
