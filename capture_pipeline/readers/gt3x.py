"""ActiGraph ``.gt3x`` reader (GT3X+, wGT3X+, wGT3X-BT, ActiSleep, GT9X Link; and the older NHANES-era layout).

A ``.gt3x`` file is a zip archive with ``info.txt`` (``Key: Value`` lines: serial number, sample rate, start date
in .NET ticks, acceleration scale, ...) and either

* ``log.bin``: log records ``1E, type, uint32 LE timestamp (s), uint16 LE payload size, payload, checksum`` where the
  checksum is the one's complement of the XOR of header and payload. ACTIVITY (0x00) records hold one second of
  samples as 12-bit two's complement y, x, z packed most significant bit first; ACTIVITY2 (0x1A) records hold
  little-endian int16 x, y, z. An ACTIVITY/ACTIVITY2 record with a 1-byte payload marks a USB connection, not data.
  Timestamps are the device's local clock, kept naive like every reader here. Or
* ``activity.bin`` (devices with firmware up to 2.5.0): one continuous stream of 12-bit y, x, z samples from the
  start date at the sample rate.

Counts are divided by "Acceleration Scale" from ``info.txt`` (when absent: 341 LSB/g for NEO/CLE/MRA serials, 256 for
MOS/TAS). ActiGraph's software also rounds to 3 decimals; we keep the exact quotient.

Idle sleep mode: to save battery, devices stop sampling while still and write no ACTIVITY records, logging EVENT
(0x03) records with payload 0x08 (enter idle sleep) and 0x09 (leave). ActiGraph's own software fills such periods
with the last sample before them, repeated at the sample rate; so does this reader (``fill_idle_sleep=True``). The
filled samples are marked in ``extra['idle_sleep']`` and listed in ``qc['idle_sleep']``.
"""

from __future__ import annotations

import os
import warnings
import zipfile

import numpy as np

from .. import memory
from ..errors import InputError
from ..recording import Recording
from . import bitpack_kernels as K
from .gaps import time_qc

ZIP_MAGIC = b"PK\x03\x04"
TICKS_AT_UNIX_EPOCH = 621_355_968_000_000_000  # .NET ticks (100 ns since 0001-01-01) of 1970-01-01
ACTIVITY, BATTERY, EVENT, LUX, ACTIVITY2 = 0x00, 0x02, 0x03, 0x05, 0x1A
EVENT_IDLE_SLEEP_ENTER, EVENT_IDLE_SLEEP_EXIT = 0x08, 0x09
#: At most this many filled periods are listed one by one in the QC; the counts are always exact.
MAX_LISTED = 1000


def parse_info(text: str) -> dict:
    """``info.txt`` as ``{key: value}`` (stripped strings)."""
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            out[key.strip()] = value.strip()
    return out


def ticks_to_ns(ticks) -> int | None:
    """.NET ticks (100 ns since 0001-01-01, device-local) to naive ns since 1970; None for 0 or unreadable."""
    try:
        t = int(ticks)
    except (TypeError, ValueError):
        return None
    return None if t <= 0 else (t - TICKS_AT_UNIX_EPOCH) * 100


def _float(value):
    try:
        return float(str(value).replace(",", "."))  # some locales write "4,03"
    except ValueError:
        return None


def acceleration_scale(info: dict) -> float:
    """LSB per g: ``Acceleration Scale`` from info.txt, else by serial prefix (NEO/CLE/MRA 341, others 256)."""
    scale = _float(info.get("Acceleration Scale", ""))
    if scale and scale > 0:
        return scale
    serial = info.get("Serial Number", "")
    return 341.0 if serial[:3] in ("NEO", "CLE", "MRA") else 256.0


def _open(path):
    try:
        z = zipfile.ZipFile(path)
    except zipfile.BadZipFile as exc:
        raise InputError(path, f"not a readable .gt3x (zip) file: {exc}") from exc
    names = set(z.namelist())
    if "info.txt" not in names:
        raise InputError(path, "zip archive without info.txt: not an ActiGraph .gt3x file")
    if "log.bin" not in names and "activity.bin" not in names:
        raise InputError(path, "zip archive without log.bin or activity.bin: not an ActiGraph .gt3x file")
    return z


def _member(z, name, path) -> np.ndarray:
    try:
        return np.frombuffer(z.read(name), np.uint8)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:  # CRC errors are BadZipFile
        raise InputError(path, f"{name} inside the zip is corrupt or truncated ({exc})") from exc


def read_gt3x(path, fill_idle_sleep: bool = True, gap_factor: float = 2.0) -> Recording:
    """Read an ActiGraph ``.gt3x`` file.

    Parameters
    ----------
    path : str or os.PathLike
    fill_idle_sleep : bool
        Fill the seconds without ACTIVITY records between two records with the last sample before them (as
        ActiGraph's software does for idle sleep mode). False leaves them as gaps (reported by the time QC).
    gap_factor : float
        An interval longer than ``gap_factor`` sample periods is reported as a gap.

    Returns
    -------
    Recording
        ``xyz`` in g, no temperature. ``extra['idle_sleep']`` (bool) marks filled samples (log.bin layout only).
        ``meta`` has ``device_id`` (serial number), ``device_type``, ``firmware``, ``configured_fs``,
        ``acceleration_scale``, ``range_g``, ``logging_start``, ``last_sample_time``, ``utc_offset_s`` (from
        info.txt "TimeZone"), ``layout`` ('log.bin' or 'activity.bin') and ``info``. ``qc`` has ``records``,
        ``activity_records``, ``corrupt_records``, ``corrupt_record_indices``, ``usb_connection_records``,
        ``odd_size_records``, ``skipped_bytes``, ``zero_padding_bytes``, ``truncated_bytes``, ``idle_sleep``
        (``events_enter``, ``events_exit``, ``filled_periods``, ``filled_samples``, ``filled_s``, ``periods``
        listed with ``start``, ``length_s`` and ``after_idle_sleep_event``), ``battery_volts``,
        ``clipped_samples`` and the time checks of `capture_pipeline.readers.gaps.time_qc`.

    Raises
    ------
    InputError
        Not a zip, missing members, corrupt zip member, bad sample rate, or no activity data.
    """
    path = os.fspath(path)
    with _open(path) as z:
        info = parse_info(_member(z, "info.txt", path).tobytes().decode("utf-8", errors="replace"))
        layout = "log.bin" if "log.bin" in z.namelist() else "activity.bin"
        buf = _member(z, layout, path)
    fs = _float(info.get("Sample Rate", ""))
    if not fs or fs <= 0:
        raise InputError(path, f"info.txt has no positive 'Sample Rate' ({info.get('Sample Rate')!r})")
    scale = acceleration_scale(info)
    if layout == "log.bin":
        time, raw, filled, qc = _read_log(buf, fs, fill_idle_sleep, path)
    else:
        time, raw, filled, qc = _read_activity_bin(buf, fs, info, path)

    n = len(time)
    xyz = memory.empty((n, 3), np.float32)
    np.multiply(raw, np.float32(1.0 / scale), out=xyz, casting="unsafe")
    amax = _float(info.get("Acceleration Max", ""))
    serial = info.get("Serial Number")
    meta = {
        "format": "gt3x",
        "path": os.path.abspath(path),
        "file_size": os.path.getsize(path),
        "layout": layout,
        "device_type": info.get("Device Type") or (serial[:3] if serial else None),
        "device_id": serial,
        "session_id": None,
        "firmware": info.get("Firmware"),
        "configured_fs": fs,
        "acceleration_scale": scale,
        "range_g": amax if amax else (6.0 if scale == 341.0 else 8.0),
        "logging_start": _iso(ticks_to_ns(info.get("Start Date"))),
        "last_sample_time": _iso(ticks_to_ns(info.get("Last Sample Time"))),
        "time_zone": info.get("TimeZone"),
        "utc_offset_s": _offset_s(info.get("TimeZone")),
        "info": info,
    }
    qc.update(time_qc(time, fs, gap_factor))
    if n:
        meta["start"] = str(time[:1].view("datetime64[ns]")[0])
        meta["end"] = str(time[-1:].view("datetime64[ns]")[0])
    extra = {} if filled is None else {"idle_sleep": filled}
    return Recording(time=time, xyz=xyz, temperature=None, gyro=None, fs=fs, meta=meta, qc=qc, extra=extra)


def _iso(ns):
    return None if ns is None else str(np.datetime64(ns, "ns"))


def _offset_s(zone):
    # info.txt "TimeZone: 02:00:00" or "-05:00:00"
    if not zone:
        return None
    sign = -1 if zone.strip().startswith("-") else 1
    parts = zone.strip().lstrip("+-").split(":")
    try:
        h, m, s = (int(float(p)) for p in (parts + ["0", "0"])[:3])
    except ValueError:
        return None
    return sign * (h * 3600 + m * 60 + s)


def _read_log(buf, fs, fill, path):
    pos, rtype, ts, size, ok, zero_bytes, skipped, truncated = K.scan_records(buf)
    if truncated:
        warnings.warn(f"{path}: log.bin ends with an incomplete record ({truncated} bytes); ignored and reported in QC")
    is_act = (rtype == ACTIVITY) | (rtype == ACTIVITY2)
    usb = is_act & (size == 1)
    act = np.flatnonzero(is_act & ok & (size > 1))
    corrupt = np.flatnonzero(~ok)
    if len(act) == 0:
        raise InputError(path, f"log.bin has no valid activity record ({len(pos)} records, {len(corrupt)} corrupt)")
    typ_a = rtype[act]
    counts = np.where(typ_a == ACTIVITY, size[act] * 8 // 36, size[act] // 6).astype(np.int64)
    expected = int(round(fs))
    odd = int((counts != expected).sum())

    # filled samples before each record: whole missing seconds since the previous record, at the sample rate
    rec_s = ts[act]
    missing_s = np.zeros(len(act), np.int64)
    if fill and len(act) > 1:
        missing_s[1:] = np.maximum(np.diff(rec_s) - 1, 0)
    per_s = np.int64(expected)
    fill_counts = missing_s * per_s
    total = counts + fill_counts
    fill_start = np.cumsum(total) - total
    out_start = fill_start + fill_counts
    n = int(total.sum())

    raw = memory.empty((n, 3), np.int16)
    offsets = pos[act] + 8
    m12 = typ_a == ACTIVITY
    clipped = K.unpack12_yxz(buf, offsets[m12], counts[m12], out_start[m12], raw)
    clipped += K.unpack_int16_xyz(buf, offsets[~m12], counts[~m12], out_start[~m12], raw)
    time = memory.empty(n, np.int64)
    filled = memory.empty(n, np.bool_)
    K.record_times_and_fill(rec_s * 1_000_000_000, counts, out_start, fill_start, fill_counts, 1e9 / fs, time, raw,
                            filled)  # fmt: skip

    # a filled period is explained when the device logged "enter idle sleep" between the records around it
    ev = ok & (rtype == EVENT) & (size >= 1)
    ev_code = np.where(ev, buf[np.minimum(pos + 8, len(buf) - 1)], -1)
    enter_ts = np.sort(ts[ev_code == EVENT_IDLE_SLEEP_ENTER])
    gap_idx = np.flatnonzero(missing_s > 0)
    # enter events up to each bounding timestamp: more at the later one means one fell inside
    before = np.searchsorted(enter_ts, rec_s[gap_idx - 1], side="left")
    until = np.searchsorted(enter_ts, rec_s[gap_idx], side="right")
    explained = until > before
    listed = gap_idx[:MAX_LISTED]
    periods = [
        {"start": str(np.datetime64(int(s) + 1, "s")), "length_s": int(m), "after_idle_sleep_event": bool(e)}
        for s, m, e in zip(rec_s[listed - 1], missing_s[listed], explained[:MAX_LISTED])
    ]
    bat = ok & (rtype == BATTERY) & (size == 2)
    bat_mv = buf[pos[bat] + 8].astype(np.int64) | (buf[pos[bat] + 9].astype(np.int64) << 8)
    qc = {
        "records": int(len(pos)),
        "activity_records": int(len(act)),
        "corrupt_records": int(len(corrupt)),
        "corrupt_record_indices": corrupt[:MAX_LISTED].tolist(),
        "corrupt_activity_records": int((is_act & ~ok).sum()),
        "usb_connection_records": int(usb.sum()),
        "odd_size_records": odd,
        "skipped_bytes": int(skipped),
        "zero_padding_bytes": int(zero_bytes),
        "truncated_bytes": int(truncated),
        "clipped_samples": int(clipped),
        "idle_sleep": {
            "filled": bool(fill),
            "events_enter": int((ev_code == EVENT_IDLE_SLEEP_ENTER).sum()),
            "events_exit": int((ev_code == EVENT_IDLE_SLEEP_EXIT).sum()),
            "filled_periods": int(len(gap_idx)),
            "filled_samples": int(fill_counts.sum()),
            "filled_s": int(missing_s.sum()),
            "periods_without_event": int((~explained).sum()),
            "periods": periods,
        },
        "battery_volts": [round(bat_mv.min() / 1000, 3), round(bat_mv.max() / 1000, 3)] if len(bat_mv) else None,
    }
    if len(corrupt):
        warnings.warn(f"{path}: {len(corrupt)} log records fail their checksum and were skipped; reported in QC")
    return time, raw, filled, qc


def _read_activity_bin(buf, fs, info, path):
    start = ticks_to_ns(info.get("Start Date"))
    if start is None:
        raise InputError(path, "info.txt has no 'Start Date' (needed to time activity.bin samples)")
    n = len(buf) * 8 // 36
    if n == 0:
        raise InputError(path, "activity.bin holds no complete sample")
    raw = memory.empty((n, 3), np.int16)
    clipped = K.unpack12_yxz(buf, np.zeros(1, np.int64), np.array([n], np.int64), np.zeros(1, np.int64), raw)
    time = start + np.round(np.arange(n) * (1e9 / fs)).astype(np.int64)
    leftover_bits = len(buf) * 8 - n * 36
    qc = {"records": None, "activity_records": None, "corrupt_records": 0, "clipped_samples": int(clipped),
          "truncated_bytes": int(leftover_bits // 8), "idle_sleep": None}  # fmt: skip
    return time, raw, None, qc
