"""`simulate_cohort`: a folder of simulated participants laid out like the CAPTURE-24 release.

::

    OUT/
      metadata.csv               pid,age,sex (CAPTURE-24 age groups)
      P001.csv.gz                time,x,y,z,annotation at exactly 100 Hz, calibrated      (format csv or both)
      cwa/P001.cwa               the raw device file: AX3, packed, ±8 g, true (slow) clock  (format cwa or both)
      annotations/P001.csv       start,end,annotation per bout, to go with the .cwa       (format cwa or both)
      truth/P001.json            what was simulated: bouts, non-wear, calibration error and correction, clock rate

The CSV files sit at the top level exactly as in the CAPTURE-24 release; the device files are kept apart in
``cwa/`` (and nothing else is there) so that ``capture-pipeline features OUT/cwa`` finds only them, and a
participant's CSV and CWA never share a folder (batch tools name outputs by participant id).

The CSV follows the CAPTURE-24 processing of the same device data: the samples as the device stores them
(packed, 4/256 g at ±8 g) are calibrated (the calibration error undone with the true coefficients) and resampled
by linear interpolation to an exact 100 Hz grid starting at the first sample.
The CWA file holds what the device recorded: calibration error included, on the device's own slow clock.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from .csvout import write_capture24_csv
from .participant import ParticipantTruth, _start_ns, simulate_participant

FORMATS = ("csv", "cwa", "both")


def _pids(participants) -> list[str]:
    if isinstance(participants, (int, np.integer)) and not isinstance(participants, bool):
        if not 1 <= participants <= 999:
            raise ValueError(f"participants must be between 1 and 999, got {participants}")
        return [f"P{i:03d}" for i in range(1, int(participants) + 1)]
    pids = list(participants)
    if not pids:
        raise ValueError("participants is empty")
    bad = [p for p in pids if not (isinstance(p, str) and p and all(c.isalnum() or c in "-_" for c in p))]
    if bad:
        raise ValueError(f"participant ids must be letters, digits, '-' or '_': {bad[:3]}")
    if len(set(pids)) != len(pids):
        raise ValueError("participant ids are not unique")
    return pids


#: Resolution of AX3 packed samples at ±8 g (spec/cwa.md §6.1) and the largest stored value.
PACKED_STEP_G = 4.0 / 256.0
PACKED_MAX_G = 511 * PACKED_STEP_G


def _resample_calibrated(rec, truth: ParticipantTruth, fs: float):
    """Device-resolution samples, calibrated, linearly interpolated to an exact ``1/fs`` grid from the first one."""
    step = int(round(1e9 / fs))
    t0 = int(rec.time[0])
    grid = t0 + np.arange((int(rec.time[-1]) - t0) // step + 1, dtype=np.int64) * step
    src = (rec.time - t0).astype(np.float64)
    dst = (grid - t0).astype(np.float64)
    cal = truth.calibration
    dtemp = rec.temperature.astype(np.float64) - cal.mean_temp
    out = np.empty((len(grid), 3), dtype=np.float32)
    for k in range(3):  # one axis at a time keeps a week's recording within memory
        stored = np.clip(np.round(rec.xyz[:, k] / PACKED_STEP_G) * PACKED_STEP_G, -8.0, PACKED_MAX_G)
        col = cal.offset[k] + cal.gain[k] * stored + cal.temp_coef[k] * dtemp
        out[:, k] = np.interp(dst, src, col)
    return grid, out


def _annotation_index(truth: ParticipantTruth, time_ns):
    """Index into a list of distinct annotation strings for each time ('' for unannotated)."""
    texts = sorted({b.annotation for b in truth.bouts} | {""})
    code = np.array([texts.index(b.annotation) for b in truth.bouts] + [texts.index("")], dtype=np.int64)
    return code[truth.bout_index(time_ns)], texts


def write_annotations(path, truth: ParticipantTruth) -> None:
    """Bout annotations as ``start,end,annotation`` (CAPTURE-24 time format; empty = unannotated)."""
    starts, ends = truth.bout_bounds_ns()
    fmt = lambda ns: pd.to_datetime(ns).strftime("%Y-%m-%d %H:%M:%S.%f")  # noqa: E731
    df = pd.DataFrame({"start": fmt(starts), "end": fmt(ends), "annotation": [b.annotation for b in truth.bouts]})
    tmp = f"{os.fspath(path)}.partial"
    df.to_csv(tmp, index=False, lineterminator="\n")
    os.replace(tmp, path)


def write_participant(out_dir, rec, truth: ParticipantTruth, format: str = "csv") -> dict:
    """Write one simulated participant (from `simulate_participant`) into ``out_dir``; returns the paths written.

    ``format`` is ``csv``, ``cwa`` or ``both``; the truth JSON is always written to ``out_dir/truth/PID.json``.
    The layout is described in the module docstring.
    """
    if format not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {format!r}")
    out_dir = os.fspath(out_dir)
    os.makedirs(os.path.join(out_dir, "truth"), exist_ok=True)
    pid = truth.pid
    paths = {}
    if format in ("cwa", "both"):
        from ..cwa_writer import write_cwa

        os.makedirs(os.path.join(out_dir, "cwa"), exist_ok=True)
        paths["cwa"] = os.path.join(out_dir, "cwa", f"{pid}.cwa")
        write_cwa(
            paths["cwa"], rec.time, rec.xyz, rec.temperature, fs=truth.fs, range_g=8, packed=True,
            device_id=truth.device_id, session_id=truth.session_id,
            metadata={"subject_code": pid, "body_location": "dominant wrist", "notes": "simulated"},
        )  # fmt: skip
        os.makedirs(os.path.join(out_dir, "annotations"), exist_ok=True)
        paths["annotations"] = os.path.join(out_dir, "annotations", f"{pid}.csv")
        write_annotations(paths["annotations"], truth)
    if format in ("csv", "both"):
        grid, xyz = _resample_calibrated(rec, truth, truth.fs)
        ann_index, texts = _annotation_index(truth, grid)
        paths["csv"] = os.path.join(out_dir, f"{pid}.csv.gz")
        write_capture24_csv(paths["csv"], grid, xyz, ann_index, texts)
        del grid, xyz, ann_index
    paths["truth"] = os.path.join(out_dir, "truth", f"{pid}.json")
    truth.save(paths["truth"])
    return paths


def simulate_cohort(
    out_dir,
    participants=4,
    hours: float = 24.0,
    seed: int = 0,
    format: str = "csv",
    *,
    start=None,
    fs: float = 100.0,
    progress=None,
) -> pd.DataFrame:
    """Simulate participants and write them to ``out_dir`` as CAPTURE-24-like files (see the module docstring).

    Parameters
    ----------
    out_dir : str or os.PathLike
        Created if missing. Existing files of the same names are replaced.
    participants : int or sequence of str
        A number N (ids P001…PNNN) or explicit ids.
    hours : float
        Length of each recording.
    seed : int
        Cohort seed: the same seed and ids give byte-identical files.
    format : {'csv', 'cwa', 'both'}
    start : datetime-like, optional
        Start of every recording; default: a per-participant random morning in 2014-2016.
    fs : float
        Configured sample rate (Hz), also the rate of the CSV grid.
    progress : callable, optional
        Called with a message after each participant (the CLI prints it).

    Returns
    -------
    pandas.DataFrame
        One row per participant: ``pid, age, sex`` and the paths written.
    """
    if format not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {format!r}")
    pids = _pids(participants)
    if hours is None or not np.isfinite(hours) or hours <= 0:
        raise ValueError(f"hours must be a positive number, got {hours!r}")
    if start is not None:
        _start_ns(start, None)  # fail before anything is written
    if format in ("cwa", "both"):
        from ..cwa_writer import rate_code

        rate_code(fs, 8)  # a rate a CWA file can hold (3200 / 2**k Hz)
    out_dir = os.fspath(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    rows = []
    for pid in pids:
        rec, truth = simulate_participant(pid, hours, seed, start, fs=fs, per_sample_annotation=False)
        paths = write_participant(out_dir, rec, truth, format)
        del rec
        rows.append({"pid": pid, "age": truth.person.age_group, "sex": truth.person.sex, **paths})
        if progress is not None:
            progress(f"{pid}: {hours:g} h, {', '.join(k for k in ('csv', 'cwa') if k in paths)} written")
    table = pd.DataFrame(rows)
    meta_path = os.path.join(out_dir, "metadata.csv")
    table[["pid", "age", "sex"]].to_csv(meta_path + ".partial", index=False, lineterminator="\n")
    os.replace(meta_path + ".partial", meta_path)
    return table
