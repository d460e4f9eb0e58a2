"""CSV reader: CAPTURE-24 (`time,x,y,z,annotation`), OMGUI exports without header, and user layouts.

Parsing is pyarrow's multi-threaded CSV reader, streamed in blocks so a large file never needs a second full copy
as text. Content decides the layout: a header row or not, ISO or unix times, g or m/s².
"""

from __future__ import annotations

import gzip
import os
import re

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from ..errors import InputError
from ..recording import Recording
from .gaps import time_qc

STANDARD_GRAVITY = 9.80665
_ISO = re.compile(rb"^\s*\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?\s*$")
_NUMBER = re.compile(rb"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$")
_TIME_FORMATS = ("auto", "iso", "unix_s", "unix_ms")
_UNITS = ("auto", "g", "m/s2")


def _is_gzip(path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(2) == b"\x1f\x8b"


def _head_lines(path) -> tuple[bytes, bytes]:
    """The first two lines (the second is empty when there is none), decompressed if needed."""
    with (gzip.open if _is_gzip(path) else open)(path, "rb") as fh:
        first = fh.readline(1 << 16).rstrip(b"\r\n")
        second = fh.readline(1 << 16).rstrip(b"\r\n")
    return first, second


def _sniff(path, first: bytes):
    """Column names to read, and whether the first row is a header."""
    fields = first.split(b",")
    if not first.strip():
        raise InputError(path, "the first line is empty; expected a CSV header or data row")
    is_data = _ISO.match(fields[0]) is not None or _NUMBER.match(fields[0]) is not None
    if not is_data:
        names = [f.strip().decode("utf-8", "replace") for f in fields]
        return names, True
    # headerless OMGUI export: time,x,y,z[,gx,gy,gz]
    if len(fields) == 4:
        return ["time", "x", "y", "z"], False
    if len(fields) == 7:
        return ["time", "x", "y", "z", "gx", "gy", "gz"], False
    raise InputError(
        path, f"headerless CSV with {len(fields)} columns; expected 4 (time,x,y,z) or 7 (time,x,y,z,gx,gy,gz)"
    )


def read_csv(
    path,
    time_col: str = "time",
    xyz_cols=("x", "y", "z"),
    annotation_col: str | None = "annotation",
    time_format: str = "auto",
    units: str = "auto",
    fs: float | None = None,
    block_size: int = 64 << 20,
    gap_factor: float = 2.0,
) -> Recording:
    """Read accelerometer samples from a CSV file (optionally gzip-compressed).

    Parameters
    ----------
    path : str or os.PathLike
    time_col, xyz_cols : str
        Column names when the file has a header (CAPTURE-24: ``time``, ``x``, ``y``, ``z``). Headerless OMGUI
        exports are recognised from the first row: ``time,x,y,z`` or ``time,x,y,z,gx,gy,gz``.
    annotation_col : str or None
        Column of annotation strings (CAPTURE-24), kept in ``extra['annotation']`` (object array, None where
        empty). Ignored when absent.
    time_format : {'auto', 'iso', 'unix_s', 'unix_ms'}
        'auto' decides from the first value: ``YYYY-MM-DD hh:mm:ss[.f]`` is ISO, a number above 1e11 is unix
        milliseconds, otherwise unix seconds. Times are naive (no time zone), kept as written.
    units : {'auto', 'g', 'm/s2'}
        'auto' takes m/s² when the median vector magnitude is above 4 (gravity is 1 g or 9.81 m/s²), and says so
        in ``meta['units']`` and ``meta['units_reason']``.
    fs : float, optional
        Nominal sample rate; by default estimated from the median interval.
    block_size : int
        Bytes of text parsed per streamed block.
    gap_factor : float
        Intervals longer than ``gap_factor / fs`` are reported as gaps.

    Returns
    -------
    Recording
        ``temperature`` is None unless the file has a ``temperature`` column; gyroscope columns ``gx,gy,gz`` go to
        ``gyro``. Samples stay in file order: times that go backwards are counted in ``qc['time_backwards']``.

    Raises
    ------
    InputError
        Missing columns, text in a numeric column (with the column and the value), unparsable times, no rows.
    """
    path = os.fspath(path)
    if time_format not in _TIME_FORMATS:
        raise ValueError(f"time_format must be one of {_TIME_FORMATS}")
    if units not in _UNITS:
        raise ValueError(f"units must be one of {_UNITS}")
    first, second = _head_lines(path)
    names, has_header = _sniff(path, first)
    if not has_header:
        time_col, xyz_cols = "time", ("x", "y", "z")
    missing = [c for c in (time_col, *xyz_cols) if c not in names]
    if missing:
        raise InputError(path, f"missing column(s) {', '.join(missing)}; the header has {', '.join(names)}")
    first_time = first.split(b",")[names.index(time_col)] if not has_header else _second_line_time(
        path, second, names.index(time_col)
    )
    if time_format == "auto":
        time_format = _guess_time_format(path, first_time)
    gyro_cols = [c for c in ("gx", "gy", "gz") if c in names]
    wanted = [time_col, *xyz_cols, *gyro_cols]
    if "temperature" in names:
        wanted.append("temperature")
    has_annotation = annotation_col is not None and annotation_col in names
    if has_annotation:
        wanted.append(annotation_col)
    column_types = {c: pa.float64() for c in (*xyz_cols, *gyro_cols)}
    if "temperature" in names:
        column_types["temperature"] = pa.float64()
    column_types[time_col] = pa.timestamp("ns") if time_format == "iso" else pa.float64()
    if has_annotation:
        column_types[annotation_col] = pa.string()

    read_options = pacsv.ReadOptions(
        column_names=None if has_header else names, block_size=block_size, use_threads=True
    )
    convert_options = pacsv.ConvertOptions(
        column_types=column_types,
        include_columns=wanted,
        strings_can_be_null=True,
        quoted_strings_can_be_null=True,
        timestamp_parsers=["%Y-%m-%d %H:%M:%S", pacsv.ISO8601] if time_format == "iso" else None,
    )
    stream = pa.input_stream(path, compression="gzip" if _is_gzip(path) else None)
    pieces = {c: [] for c in wanted}
    try:
        with pacsv.open_csv(stream, read_options=read_options, convert_options=convert_options) as reader:
            for batch in reader:
                for c in wanted:
                    pieces[c].append(batch.column(c))
    except pa.ArrowInvalid as exc:
        raise InputError(path, _explain_arrow_error(exc, names)) from exc
    finally:
        stream.close()
    n = sum(len(p) for p in pieces[time_col])
    if n == 0:
        raise InputError(path, "no data rows")

    time = _to_ns(path, pieces[time_col], time_format)
    xyz = np.empty((n, 3), dtype=np.float32)
    for k, c in enumerate(xyz_cols):
        xyz[:, k] = _to_float(path, c, pieces[c])
    gyro = None
    if len(gyro_cols) == 3:
        gyro = np.empty((n, 3), dtype=np.float32)
        for k, c in enumerate(gyro_cols):
            gyro[:, k] = _to_float(path, c, pieces[c])
    temperature = _to_float(path, "temperature", pieces["temperature"]).astype(np.float32) if "temperature" in pieces else None
    meta_units, reason = _resolve_units(xyz, units)
    if meta_units == "m/s2":
        xyz /= np.float32(STANDARD_GRAVITY)
    extra = {}
    if has_annotation:
        extra["annotation"] = np.concatenate(
            [np.asarray(p.to_numpy(zero_copy_only=False), dtype=object) for p in pieces[annotation_col]]
        )
    if fs is None:
        fs = _estimate_fs(time)
    meta = {
        "format": "csv",
        "path": os.path.abspath(path),
        "file_size": os.path.getsize(path),
        "header": has_header,
        "columns": names,
        "time_format": time_format,
        "units": meta_units,
        "units_reason": reason,
        "device_type": None,
        "device_id": None,
        "session_id": None,
        "configured_fs": None,
        "range_g": None,
        "firmware": None,
        "start": str(time[:1].view("datetime64[ns]")[0]),
        "end": str(time[-1:].view("datetime64[ns]")[0]),
    }
    qc = {"clipped_samples": 0}
    qc.update(time_qc(time, fs, gap_factor))
    return Recording(time=time, xyz=xyz, temperature=temperature, gyro=gyro, fs=float(fs), meta=meta, qc=qc,
                     extra=extra)


def _second_line_time(path, line: bytes, col: int) -> bytes:
    if not line:
        raise InputError(path, "no data rows after the header")
    fields = line.split(b",")
    if col >= len(fields):
        raise InputError(path, f"the first data row has {len(fields)} fields, fewer than the header")
    return fields[col]


def _guess_time_format(path, value: bytes) -> str:
    if _ISO.match(value):
        return "iso"
    if _NUMBER.match(value):
        return "unix_ms" if abs(float(value)) > 1e11 else "unix_s"
    raise InputError(path, f"cannot tell the time format from the first time value {value[:40]!r}")


def _explain_arrow_error(exc, names) -> str:
    msg = str(exc)
    m = re.search(r"column #(\d+)", msg)
    if m and int(m.group(1)) < len(names):
        col = names[int(m.group(1))]
        bad = re.search(r"invalid value '([^']*)'", msg)
        what = f"value {bad.group(1)!r}" if bad else "a value"
        return f"column '{col}' holds {what} that is not a number or time ({msg})"
    return f"cannot parse as CSV: {msg}"


def _combine(chunks):
    return pa.chunked_array(chunks) if chunks else pa.chunked_array([], type=pa.float64())


def _to_float(path, name, chunks) -> np.ndarray:
    arr = _combine(chunks)
    if arr.null_count:
        first = int(np.flatnonzero(arr.is_null().to_numpy(zero_copy_only=False))[0])
        raise InputError(path, f"column '{name}' is empty in data row {first + 1}")
    return arr.to_numpy()


def _to_ns(path, chunks, time_format) -> np.ndarray:
    arr = _combine(chunks)
    if arr.null_count:
        first = int(np.flatnonzero(arr.is_null().to_numpy(zero_copy_only=False))[0])
        raise InputError(path, f"time is empty in data row {first + 1}")
    if time_format == "iso":
        return arr.cast(pa.int64()).to_numpy()
    v = arr.to_numpy()
    if not np.all(np.isfinite(v)):
        raise InputError(path, "time column holds non-finite values")
    per_unit_us = 1_000_000 if time_format == "unix_s" else 1_000
    # float64 resolves ~0.24 µs at today's unix seconds, so round the fraction to whole µs: this recovers the
    # printed value exactly for up to 6 decimals (sub-µs digits in a CSV are not kept)
    whole = np.floor(v)
    us = whole.astype(np.int64) * per_unit_us + np.round((v - whole) * per_unit_us).astype(np.int64)
    return us * 1000


def _resolve_units(xyz, units):
    if units != "auto":
        return units, "given"
    step = max(1, len(xyz) // 100_000)
    vm = np.sqrt((xyz[::step].astype(np.float64) ** 2).sum(axis=1))
    med = float(np.median(vm))
    if med > 4.0:
        return "m/s2", f"auto: median vector magnitude {med:.3f} > 4, taken as m/s2 and divided by {STANDARD_GRAVITY}"
    return "g", f"auto: median vector magnitude {med:.3f} <= 4, taken as g"


def _estimate_fs(time) -> float:
    if len(time) < 2:
        return 100.0
    d = np.diff(time[: min(len(time), 100_001)])
    d = d[d > 0]
    if len(d) == 0:
        return 100.0
    return float(round(1e9 / np.median(d), 3))
