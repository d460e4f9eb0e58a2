"""The per-file and per-chunk steps of a batch: plain functions of plain data, run in-process or on Dask workers.

A file processed in chunks goes through::

    file_origin ──► scan_chunk × k ──► prepare_file ──► feature_chunk × k ──► finish_file
    (first sample)  (QC, time base,    (calibration,    (features of the     (non-wear, summary,
                     window sums)       window owners)   owned windows)       outputs written atomically)

A file of one chunk (or a CSV file) is processed by `process_whole`. Both give the same outputs for the same file
(``tests/test_batch_chunks.py``). Every step returns its own compute time (``seconds``) for the batch log.
"""

from __future__ import annotations

import contextlib
import functools
import time
from dataclasses import asdict, dataclass

import numpy as np

from .plan import FilePlan

GAP_FACTOR = 2.0  # the readers' default: an interval over 2 nominal periods is a gap


class FileError(Exception):
    """Why a file failed, as one message; picklable, so that it travels from a Dask worker to the client.

    (`InputError` itself cannot be unpickled: its ``__init__`` takes two arguments.)
    """


def describe(exc: BaseException) -> str:
    """One line for the batch log: the problem of an `InputError`, else the exception type and message."""
    from ..errors import InputError

    if isinstance(exc, FileError):
        return str(exc)
    if isinstance(exc, InputError):
        return exc.problem
    if isinstance(exc, MemoryError):
        return "MemoryError: out of memory (use smaller chunks: --chunk-blocks)"
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def task(fn):
    """Run a step; any exception becomes a `FileError` carrying `describe`'s message."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except FileError:
            raise
        except Exception as exc:  # noqa: BLE001 - one bad file must never stop the batch: report it
            raise FileError(describe(exc)) from None

    return wrapper


@dataclass(frozen=True)
class JobOptions:
    """Options that decide the outputs of a file (and so are part of its resumability fingerprint).

    Attributes
    ----------
    epoch_s : float
        Window length in seconds.
    calibrate : bool
        Autocalibrate each file on its own stationary periods (ignored when ``calibration`` is given).
    calibration : dict, optional
        Coefficients from a user file (`CalibrationCoefficients.to_dict`), applied to every file.
    calibration_path : str, optional
        Where ``calibration`` came from (reported in the summary's options only).
    mask_nonwear : bool
        True: feature values of non-wear windows are set to NaN; False: kept. The ``nonwear`` flag is always added.
    time_mode : str
        CWA time base ('anchor' or 'reference').
    timezone : str, optional
        IANA zone of the devices' clocks: adds ``time_utc`` and ``time_local`` columns
        (`capture_pipeline.timezone.add_time_columns`, clock fixed at the first window's offset); None: naive only.
    """

    epoch_s: float = 30.0
    calibrate: bool = True
    calibration: dict | None = None
    calibration_path: str | None = None
    mask_nonwear: bool = True
    time_mode: str = "anchor"
    timezone: str | None = None

    def coefficients(self):
        """The user's `CalibrationCoefficients`, or None when each file is fitted (or calibration is off)."""
        from ..calibration import CalibrationCoefficients

        return None if self.calibration is None else CalibrationCoefficients.from_dict(self.calibration)

    def summary_options(self) -> dict:
        """The ``options`` recorded in each summary (and read by `summarise` for ``epoch_s``)."""
        return {
            "epoch_s": self.epoch_s,
            "calibrate": self.calibrate,
            "calibration": self.calibration_path,
            "nonwear": "masked" if self.mask_nonwear else "kept",
            "time_mode": self.time_mode,
            "timezone": self.timezone,
        }

    def as_dict(self) -> dict:
        return asdict(self)


def _one_blas_thread():
    """Single-threaded BLAS while computing features.

    A worker process runs one task per core, so a BLAS thread pool per worker would only oversubscribe the cores;
    one thread also keeps any BLAS result independent of the worker's environment. (threadpoolctl comes with
    scikit-learn; without it the process setting is used.)
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover
        return contextlib.nullcontext()
    return threadpool_limits(1, user_api="blas")


def _read(plan: FilePlan, opts: JobOptions, blocks=None):
    from ..readers import read

    if plan.format == "cwa":
        kwargs = {"time_mode": opts.time_mode}
        if blocks is not None:
            kwargs["blocks"] = blocks
        return read(plan.path, format="cwa", **kwargs)
    return read(plan.path, format=plan.format)


# ---------------------------------------------------------------------------------------------------------------
# chunked path
@task
def file_origin(plan: FilePlan, opts: JobOptions) -> int:
    """Time (int64 ns) of the file's first sample: the origin of the calibration windows and of the epoch grid."""
    from ..errors import InputError

    lo, step = 0, 64
    while lo < plan.n_blocks:
        rec = _read(plan, opts, (lo, min(plan.n_blocks, lo + step)))
        if len(rec):
            return int(rec.time[0])
        lo, step = lo + step, step * 4  # leading blocks all corrupt: look further
    raise InputError(plan.path, "no samples in any data block")


@task
def scan_chunk(plan: FilePlan, index: int, opts: JobOptions, t0: int) -> dict:
    """Read a chunk's own blocks once: reader QC, time-base facts and (when fitting) the calibration window sums."""
    from ..readers.gaps import MAX_LISTED_GAPS, _scan
    from ..summary import _seconds_by_hour
    from .calibrate import chunk_window_sums

    tic = time.process_time()
    c = plan.chunks[index]
    rec = _read(plan, opts, (c.own_lo, c.own_hi))
    n = len(rec)
    limit = GAP_FACTOR * 1e9 / rec.fs
    out = {
        "n": n,
        "fs": float(rec.fs),
        "meta": rec.meta,
        "qc": {k: v for k, v in rec.qc.items() if k != "block_range"},
        "has_temp": rec.temperature is not None,
        "has_gyro": rec.gyro is not None,
        "first": int(rec.time[0]) if n else None,
        "last": int(rec.time[-1]) if n else None,
        "scan": _scan(rec.time, limit, MAX_LISTED_GAPS) if n else None,
        "hours_s": _seconds_by_hour(rec.time, limit) if n else np.zeros(24),
        "sums": None,
    }
    if n:
        gap_at, n_gaps = out["scan"][0], out["scan"][2]
        out["gap_times"] = [str(t) for t in rec.time[gap_at[: min(n_gaps, MAX_LISTED_GAPS)]].view("datetime64[ns]")]
    if opts.calibration is None and opts.calibrate:
        range_g = float(rec.meta.get("range_g") or np.inf)
        out["sums"] = chunk_window_sums(rec.time, rec.xyz, rec.temperature, t0, range_g)
    out["seconds"] = time.process_time() - tic
    return out


@task
def prepare_file(plan: FilePlan, opts: JobOptions, t0: int, scans: list) -> dict:
    """Calibration of the file and the window start range each chunk owns, from the scans."""
    from ..calibration_fit import resolve_calibration
    from .calibrate import fit_from_points, merge_window_sums, stationary_points_from_sums

    tic = time.process_time()
    has_temp = any(s["has_temp"] for s in scans if s["n"])
    if opts.calibration is not None or not opts.calibrate:
        coef = resolve_calibration(None, calibrate=opts.calibrate, calibration=opts.coefficients())
    else:
        first = next(s for s in scans if s["n"])
        range_g = float(first["meta"].get("range_g") or np.inf)
        sums = merge_window_sums([s["sums"] for s in scans], t0, range_g, has_temp)
        pts = stationary_points_from_sums(sums, t0, first["fs"], has_temp)
        coef = fit_from_points(pts, has_temp)
    firsts = [s["first"] for s in scans]
    present = [f for f in firsts if f is not None]
    # Windows are owned by start time: [first sample of this chunk, first sample of the next chunk with samples).
    # With a backward time step across a boundary the ranges would overlap: then run the chunks one after the
    # other with carried state instead (exact, one worker).
    sequential = any(b <= a for a, b in zip(present, present[1:]))
    bounds = []
    for i, f in enumerate(firsts):
        if f is None:
            bounds.append(None)
            continue
        nxt = next((g for g in firsts[i + 1 :] if g is not None), None)
        lo = None if f == present[0] else f
        bounds.append((lo, nxt))
    return {"origin": int(t0), "calibration": coef, "bounds": bounds, "sequential": sequential,
            "seconds": time.process_time() - tic}  # fmt: skip


def _extractor(opts: JobOptions, prep: dict, path):
    from ..features import FeatureExtractor

    return FeatureExtractor(calibration=prep["calibration"], epoch_s=opts.epoch_s, epoch_origin_ns=prep["origin"],
                            path=path)  # fmt: skip


@task
def feature_chunk(plan: FilePlan, index: int, opts: JobOptions, prep: dict) -> dict:
    """Features of the windows a chunk owns, computed from its blocks with overlap (see `plan`)."""
    import pandas as pd

    tic = time.process_time()
    bounds = prep["bounds"][index]
    if prep["sequential"]:
        table = _features_sequential(plan, opts, prep) if index == 0 else None
    elif bounds is None:
        table = None
    else:
        c = plan.chunks[index]
        rec = _read(plan, opts, (c.read_lo, c.read_hi))
        with _one_blas_thread():
            table = _extractor(opts, prep, plan.path).update(rec)
        del rec
        t = table["time"].to_numpy().view(np.int64)
        keep = np.ones(len(t), bool)
        if bounds[0] is not None:
            keep &= t >= bounds[0] // 1_000_000 * 1_000_000  # window starts are whole milliseconds
        if bounds[1] is not None:
            keep &= t < bounds[1] // 1_000_000 * 1_000_000
        table = table.loc[keep].reset_index(drop=True)
    return {"table": table if table is not None else pd.DataFrame(), "seconds": time.process_time() - tic}


def _features_sequential(plan, opts, prep):
    """All windows of the file with one streaming extractor fed the chunks' own blocks in order (exact)."""
    import pandas as pd

    fx = _extractor(opts, prep, plan.path)
    tables = []
    for c in plan.chunks:
        rec = _read(plan, opts, (c.own_lo, c.own_hi))
        if len(rec):
            with _one_blas_thread():
                tables.append(fx.update(rec))
        del rec
    return pd.concat(tables, ignore_index=True)


def merge_scans(scans: list, fs: float) -> tuple[dict, dict, dict]:
    """The whole file's reader ``meta`` and ``qc``, and time-base facts, from its chunks' scans.

    Returns
    -------
    meta, qc : dict
        As a whole-file `read` gives them (``qc`` keys from the readers and `readers.gaps.time_qc`).
    extra : dict
        ``first``/``last`` sample times, ``hours_s`` (recorded seconds per hour of day, as
        `summary._seconds_by_hour`), ``has_temp``, ``has_gyro``.
    """
    from ..readers.gaps import MAX_LISTED_GAPS

    full = [s for s in scans if s["n"]]
    meta = dict(full[0]["meta"])
    period = 1e9 / fs
    limit = GAP_FACTOR * period
    n_total = 0
    gaps, n_gaps, gap_total, n_back, first_back, n_normal, normal_ns = [], 0, 0, 0, None, 0, 0
    hours = np.zeros(24)
    prev_last = None

    def gap_entry(t_ns, d, idx):
        return {"start": str(np.int64(t_ns).astype("datetime64[ns]")), "length_s": round(float((d - period) / 1e9), 6),
                "after_sample": int(idx)}  # fmt: skip

    for s in full:
        gap_at, gap_len, k_gaps, k_total, k_back, k_first_back, k_normal, k_normal_ns = s["scan"]
        if prev_last is not None:  # the interval across the chunk boundary
            d = s["first"] - prev_last
            if d <= 0:
                n_back += 1
                first_back = n_total if first_back is None else first_back
            elif d > limit:
                if len(gaps) < MAX_LISTED_GAPS:
                    gaps.append(gap_entry(prev_last, d, n_total - 1))
                n_gaps += 1
                gap_total += d
            else:
                n_normal += 1
                normal_ns += d
            step = d if 0 < d <= limit else period
            hours[(prev_last // 3_600_000_000_000) % 24] += (step - period) / 1e9
        # this chunk's own intervals (its time array was scanned alone)
        listed = min(k_gaps, MAX_LISTED_GAPS)
        times_at = s["gap_times"]
        for j in range(listed):
            if len(gaps) >= MAX_LISTED_GAPS:
                break
            gaps.append({"start": times_at[j], "length_s": round(float((gap_len[j] - period) / 1e9), 6),
                         "after_sample": int(gap_at[j] + n_total)})  # fmt: skip
        n_gaps += int(k_gaps)
        gap_total += int(k_total)
        n_back += int(k_back)
        if k_first_back >= 0 and first_back is None:
            first_back = int(k_first_back + n_total)
        n_normal += int(k_normal)
        normal_ns += int(k_normal_ns)
        hours += s["hours_s"]
        n_total += s["n"]
        prev_last = s["last"]

    qc = {}
    rqc = [s["qc"] for s in scans]
    for key in ("blocks", "blocks_read", "corrupt_blocks", "overflow_blocks", "clipped_samples"):
        qc[key] = int(sum(q.get(key, 0) for q in rqc))
    qc["corrupt_block_indices"] = [i for q in rqc for i in q.get("corrupt_block_indices", [])]
    reasons = {}
    for q in rqc:
        for k, v in q.get("corrupt_reasons", {}).items():
            reasons[k] = reasons.get(k, 0) + int(v)
    qc["corrupt_reasons"] = reasons
    breaks = full[0]["qc"].get("segment_breaks", {})  # the reader computes these over the whole file
    qc["segment_breaks"] = breaks
    qc["segments"] = 1 + int(sum(breaks.values()))
    qc["truncated_bytes"] = full[0]["qc"].get("truncated_bytes", 0)
    volts = [q["battery_volts"] for q in rqc if q.get("battery_volts")]
    qc["battery_volts"] = [min(v[0] for v in volts), max(v[1] for v in volts)] if volts else None
    qc.update({
        "samples": int(n_total), "gap_count": int(n_gaps), "gaps": gaps,
        "gap_total_s": float((gap_total - n_gaps * period) / 1e9), "time_backwards": int(n_back),
        "first_backwards_sample": first_back,
        "measured_fs": float(n_normal / (normal_ns / 1e9)) if n_normal else None,
    })  # fmt: skip
    first, last = full[0]["first"], full[-1]["last"]
    meta["start"] = str(np.int64(first).astype("datetime64[ns]"))
    meta["end"] = str(np.int64(last).astype("datetime64[ns]"))
    extra = {"first": first, "last": last, "hours_s": hours, "has_temp": any(s["has_temp"] for s in full),
             "has_gyro": any(s["has_gyro"] for s in full)}  # fmt: skip
    return meta, qc, extra


def _proxy_recording(meta, qc, extra, fs):
    """A two-sample `Recording` carrying a whole file's meta, QC, first and last times, for `summarise`."""
    from ..recording import Recording

    t = np.array([extra["first"], extra["last"]], np.int64)
    return Recording(
        time=t, xyz=np.zeros((2, 3), np.float32), temperature=np.zeros(2, np.float32) if extra["has_temp"] else None,
        gyro=np.zeros((2, 3), np.float32) if extra["has_gyro"] else None, fs=fs, meta=meta, qc=qc,
    )  # fmt: skip


def _data_time_keys(hours_s) -> dict:
    """The ``dataTime-*`` summary keys from recorded seconds per hour of day (as `summary._wear_section`)."""
    from ..summary import _coverage

    hours, diurnal = _coverage("dataTime", np.asarray(hours_s) / 3600.0)
    keys = {"dataTime-overall(days)": round(float(np.sum(hours_s)) / 86400.0, 6)}
    keys.update(hours)
    keys["dataTime-diurnalHrs"] = diurnal
    keys["quality-all24HoursCovered(data)"] = diurnal == 24
    return keys


@task
def finish_file(plan: FilePlan, opts: JobOptions, fingerprint: dict, out_dir: str, scans: list, prep: dict,
                parts: list) -> dict:  # fmt: skip
    """Join the chunks' windows, flag non-wear, summarise and write the outputs of a chunked file."""
    import pandas as pd

    from ..summary import summarise

    tic = time.process_time()
    tables = [p["table"] for p in parts if len(p["table"])]
    features = pd.concat(tables, ignore_index=True) if tables else _empty_features()
    fs = next(s["fs"] for s in scans if s["n"])
    meta, qc, extra = merge_scans(scans, fs)
    features = _apply_nonwear(features, opts)
    summary = summarise(_proxy_recording(meta, qc, extra, fs), features, prep["calibration"], opts.summary_options())
    features = _add_time_zone(features, opts, qc)
    summary.update(_data_time_keys(extra["hours_s"]))
    summary = _with_batch_keys(summary, plan)
    from .outputs import write_outputs

    write_outputs(out_dir, plan.name, features, summary, meta, qc, prep["calibration"], fingerprint)
    own = time.process_time() - tic
    spent = own + prep["seconds"] + sum(s["seconds"] for s in scans) + sum(p["seconds"] for p in parts)
    return {"windows": int(len(features)), "seconds": spent}


# ---------------------------------------------------------------------------------------------------------------
# whole-file path
@task
def process_whole(plan: FilePlan, opts: JobOptions, fingerprint: dict, out_dir: str) -> dict:
    """Read the whole file, compute features, non-wear and summary, and write the outputs (small files, CSV)."""
    from ..calibration_fit import resolve_calibration
    from ..features import extract_features
    from ..summary import summarise
    from .outputs import write_outputs

    tic = time.process_time()
    rec = _read(plan, opts)
    coef = resolve_calibration(rec, calibrate=opts.calibrate, calibration=opts.coefficients())
    with _one_blas_thread():
        features = extract_features(rec, calibrate=True, calibration=coef, epoch_s=opts.epoch_s)
    features = _apply_nonwear(features, opts)
    summary = summarise(rec, features, coef, opts.summary_options())
    summary = _with_batch_keys(summary, plan)
    qc = {k: v for k, v in rec.qc.items() if k != "block_range"}
    features = _add_time_zone(features, opts, qc)
    write_outputs(out_dir, plan.name, features, summary, rec.meta, qc, coef, fingerprint)
    return {"windows": int(len(features)), "seconds": time.process_time() - tic}


def _apply_nonwear(features, opts):
    from ..nonwear import apply_nonwear

    return apply_nonwear(features, keep=not opts.mask_nonwear)


def _add_time_zone(features, opts, qc):
    """``time_utc``/``time_local`` columns when a zone is given; its QC (DST changes met) goes into ``qc``."""
    if opts.timezone is None:
        return features
    from ..timezone import add_time_columns

    info = {}
    features = add_time_columns(features, opts.timezone, qc=info)
    qc["timezone"] = info
    return features


def _with_batch_keys(summary, plan):
    summary = dict(summary)
    summary["participant"] = plan.name
    summary["batch-chunks"] = len(plan.chunks)
    return summary


def _empty_features():
    import pandas as pd

    from ..features.columns import FEATURE_COLUMNS, QC_COLUMNS

    cols = {"time": np.zeros(0, "datetime64[ns]")}
    cols.update({c: np.zeros(0) for c in FEATURE_COLUMNS})
    cols.update({c: np.zeros(0, np.int64) for c in QC_COLUMNS})
    return pd.DataFrame(cols)
