"""GENEActiv ``.bin`` reader (ActivInsights GENEActiv Original and Sleep).

The file is text: a header of ``key:value`` lines in sections ("Device Identity", "Calibration Data", "Memory
Status", ...), then pages. Each page is a ``Recorded Data`` line, eight ``key:value`` lines (serial code, sequence
number, page time, unassigned, temperature, battery voltage, device status, measurement frequency) and one line of
hexadecimal samples: 12 hex digits per sample holding x, y, z as 12-bit two's complement, then 10 bits of light, one
button bit and one reserved bit. Normally 300 samples (3600 hex digits) per page.

Calibration is the manufacturer's, from the header: ``g = (raw * 100 - offset) / gain`` per axis, and
``lux = light * Lux / Volts``.

Times: the page time (ms resolution) is the time of the page's first sample. Within a page the samples are spread
at the interval the page times themselves show (next page time minus this one, over the samples of this page) when
the next page follows without a gap; otherwise at the header rate. This matters because the header states rates
rounded to 0.1 Hz: "85.7 Hz" pages are exactly 3.5 s apart (the true rate is 600/7 Hz).

Reading is vectorised: numpy finds the page markers, Numba kernels (`bitpack_kernels`) split pages into lines,
parse the numbers and unpack the hex for all pages at once.
"""

from __future__ import annotations

import gzip
import os
import warnings

import numpy as np

from .. import memory
from ..errors import InputError
from ..recording import Recording
from . import bitpack_kernels as K
from .gaps import time_qc

MAGIC = b"Device Identity"
MARKER = b"Recorded Data"
PAGE_LINES = 10  # marker, 8 header lines, hex data
SAMPLE_HEX = 12
#: Keys expected at lines 1..8 of a page, checked for every page (a page with others is corrupt).
PAGE_KEYS = (b"Device Unique Serial Code:", b"Sequence Number:", b"Page Time:", b"Unassigned:", b"Temperature:",
             b"Battery voltage:", b"Device Status:", b"Measurement Frequency:")  # fmt: skip
#: A page time step may differ this much (relative) from the nominal page duration and still be used as the
#: page's own rate; anything else is a gap (or overlap) and the page is spread at the header rate.
PAGE_STEP_TOLERANCE = 0.01


def _load(path) -> np.ndarray:
    with open(path, "rb") as fh:
        gz = fh.read(2) == b"\x1f\x8b"
    try:
        if gz:
            with gzip.open(path, "rb") as fh:
                return np.frombuffer(fh.read(), np.uint8)
        # mapped, not copied: a week of text is over a gigabyte and is read once, front to back
        return np.memmap(path, np.uint8, mode="r")
    except (OSError, EOFError) as exc:
        raise InputError(path, f"cannot be read or decompressed ({exc})") from exc


def parse_header(text: str, path=None) -> dict:
    """The file header as ``{section: {key: value}}`` (values stripped strings), in file order.

    Raises
    ------
    InputError
        The text does not start with the GENEActiv "Device Identity" section.
    """
    if not text.startswith(MAGIC.decode()):
        raise InputError(path, "not a GENEActiv .bin file: it does not start with the 'Device Identity' header")
    sections: dict[str, dict[str, str]] = {}
    current = None
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        if ":" not in line:
            current = sections.setdefault(line, {})
            continue
        key, _, value = line.partition(":")
        if current is None:
            current = sections.setdefault("", {})
        current[key.strip()] = value.strip()
    return sections


def _number(sections, section, key, path, required=True):
    value = sections.get(section, {}).get(key)
    try:
        return float(value.split()[0])
    except (AttributeError, IndexError, ValueError):
        if required:
            raise InputError(path, f"header field '{section} / {key}' is missing or not a number ({value!r})") from None
        return None


def _utc_offset_s(zone: str | None):
    # "GMT +01:00" -> 3600; None when absent or unreadable
    if not zone:
        return None
    s = zone.upper().replace("GMT", "").replace("UTC", "").strip()
    if not s:
        return 0
    sign = -1 if s[0] == "-" else 1
    hh, _, mm = s.lstrip("+-").partition(":")
    try:
        return sign * (int(hh) * 3600 + int(mm or 0) * 60)
    except ValueError:
        return None


def _find_markers(buf: np.ndarray, start: int) -> np.ndarray:
    """Offsets of every ``Recorded Data`` line start at or after ``start``."""
    return K.find_line_starts(buf, start, np.frombuffer(MARKER, np.uint8))


def _keys_ok(buf, lo, hi) -> np.ndarray:
    """Per page: lines 1..8 start with the expected keys."""
    ok = np.ones(len(lo), bool)
    for j, key in enumerate(PAGE_KEYS, start=1):
        k = np.frombuffer(key, np.uint8)
        has = (lo[:, j] >= 0) & (hi[:, j] - lo[:, j] >= len(k))
        idx = np.where(has, lo[:, j], 0)[:, None] + np.arange(len(k))
        idx = np.minimum(idx, len(buf) - 1)
        ok &= has & np.all(buf[idx] == k, axis=1)
    return ok


def read_geneactiv(path, gap_factor: float = 2.0) -> Recording:
    """Read a GENEActiv ``.bin`` file (optionally gzip-compressed).

    Parameters
    ----------
    path : str or os.PathLike
    gap_factor : float
        An interval between consecutive samples longer than ``gap_factor`` sample periods is reported as a gap.

    Returns
    -------
    Recording
        ``xyz`` calibrated g, ``temperature`` °C (per page), ``extra['light']`` lux (float32) and
        ``extra['button']`` (uint8). ``meta`` has ``device_id`` (serial code, a string), ``configured_fs``,
        ``range_g``, ``firmware``, ``calibration``, ``utc_offset_s`` (from the header's "Time Zone") and the whole
        ``header``. ``qc`` has ``pages_declared`` (header "Number of Pages"), ``pages`` (found), ``pages_read``,
        ``corrupt_pages``, ``corrupt_page_indices``, ``corrupt_reasons``, ``truncated_last_page`` (samples kept from
        an incomplete last page, or 0), ``truncated_bytes``, ``battery_volts``, ``clipped_samples`` and the time
        checks of `capture_pipeline.readers.gaps.time_qc`.

    Raises
    ------
    InputError
        Not a GENEActiv file, header fields missing, or no readable page.

    Warns
    -----
    UserWarning
        Fewer pages than the header declares, or an incomplete last page (both also in the QC).
    """
    path = os.fspath(path)
    if os.path.getsize(path) == 0:
        raise InputError(path, "file is empty (0 bytes)")
    buf = _load(path)
    if buf[: len(MAGIC)].tobytes() != MAGIC:
        raise InputError(path, "not a GENEActiv .bin file: it does not start with the 'Device Identity' header")
    marks = _find_markers(buf, 0)
    header_end = int(marks[0]) if len(marks) else len(buf)
    sections = parse_header(buf[:header_end].tobytes().decode("latin-1"), path)
    if not len(marks):
        raise InputError(path, "no 'Recorded Data' page after the header (file truncated?)")
    cal = sections.get("Calibration Data", {})
    gains = np.array([_number(sections, "Calibration Data", f"{a} gain", path) for a in "xyz"])
    offsets = np.array([_number(sections, "Calibration Data", f"{a} offset", path) for a in "xyz"])
    if np.any(gains == 0):
        raise InputError(path, f"calibration gain of zero in the header ({cal})")
    volts = _number(sections, "Calibration Data", "Volts", path, required=False)
    lux = _number(sections, "Calibration Data", "Lux", path, required=False)
    fs_header = _number(sections, "Configuration Info", "Measurement Frequency", path)
    if not fs_header or fs_header <= 0:
        raise InputError(path, f"measurement frequency in the header is not positive ({fs_header})")
    pages_declared = _number(sections, "Memory Status", "Number of Pages", path, required=False)

    lo, hi, found = K.page_lines(buf, marks, len(buf), PAGE_LINES)
    n_pages = len(marks)
    is_last = np.arange(n_pages) == n_pages - 1
    seq = K.parse_numbers(buf, lo[:, 2], hi[:, 2])
    page_ns = K.parse_datetimes(buf, lo[:, 3], hi[:, 3])
    temp = K.parse_numbers(buf, lo[:, 5], hi[:, 5])
    battery = K.parse_numbers(buf, lo[:, 6], hi[:, 6])
    page_fs = K.parse_numbers(buf, lo[:, 8], hi[:, 8])
    data_lo, data_len = lo[:, 9], np.where(lo[:, 9] >= 0, hi[:, 9] - lo[:, 9], 0)
    n_samples = data_len // SAMPLE_HEX
    hex_ok = K.hex_spans_ok(buf, np.maximum(data_lo, 0), n_samples * SAMPLE_HEX, K.HEX_VALUE)

    reasons = {
        "page structure (lines missing or extra)": found != PAGE_LINES,
        "page header keys": ~_keys_ok(buf, lo, hi),
        "page time": page_ns == K.NAT,
        "temperature or frequency not a number": np.isnan(temp) | np.isnan(page_fs),
        "hex data (non-hex characters)": ~hex_ok,
        # only the last page may end part-way through a sample (a truncated file)
        "hex data length": ((data_len % SAMPLE_HEX) != 0) & ~is_last | (n_samples == 0),
    }
    bad = np.zeros(n_pages, bool)
    for m in reasons.values():
        bad |= m
    good = np.flatnonzero(~bad)
    if len(good) == 0:
        raise InputError(path, f"none of the {n_pages} pages is readable (corrupt or not a GENEActiv recording)")

    truncated_bytes = int(data_len[-1] % SAMPLE_HEX) if not bad[-1] else 0
    truncated_last = int(n_samples[-1]) if truncated_bytes else 0
    if truncated_bytes:
        warnings.warn(f"{path}: last page incomplete ({truncated_last} whole samples kept, {truncated_bytes} hex "
                      f"digits of a partial sample ignored); reported in QC")  # fmt: skip
    if pages_declared is not None and n_pages < pages_declared:
        warnings.warn(f"{path}: header declares {int(pages_declared)} pages, the file holds {n_pages} (truncated?); "
                      "reported in QC")  # fmt: skip

    counts = n_samples[good].astype(np.int64)
    out_start = np.cumsum(counts) - counts
    n = int(counts.sum())
    xyz = memory.empty((n, 3), np.float32)
    light = memory.empty(n, np.float32)
    button = memory.empty(n, np.uint8)
    lux_per_unit = lux / volts if volts and lux else 1.0  # without the header's Lux/Volts: raw light units
    clipped = K.decode_geneactiv(buf, data_lo[good], counts, out_start, K.HEX_VALUE, gains, offsets, lux_per_unit,
                                 xyz, light, button)  # fmt: skip

    time = memory.empty(n, np.int64)
    K.page_times(page_ns[good], _page_steps(page_ns[good], seq[good], counts, fs_header), counts, out_start, time)
    temperature = np.repeat(temp[good].astype(np.float32), counts)

    ident = sections.get("Device Identity", {})
    caps = sections.get("Device Capabilities", {})
    config = sections.get("Configuration Info", {})
    rng = caps.get("Accelerometer Range", "")
    try:
        range_g = float(rng.split("to")[-1])
    except ValueError:
        range_g = None
    meta = {
        "format": "geneactiv",
        "path": os.path.abspath(path),
        "file_size": os.path.getsize(path),
        "device_type": ident.get("Device Type") or "GENEActiv",
        "device_model": ident.get("Device Model"),
        "device_id": ident.get("Device Unique Serial Code"),
        "session_id": None,
        "firmware": ident.get("Device Firmware Version"),
        "configured_fs": fs_header,
        "range_g": range_g,
        "calibration": {"gain": gains.tolist(), "offset": offsets.tolist(), "volts": volts, "lux": lux},
        "logging_start": config.get("Start Time"),
        "time_zone": config.get("Time Zone"),
        "utc_offset_s": _utc_offset_s(config.get("Time Zone")),
        "header": sections,
    }
    corrupt_idx = np.flatnonzero(bad)
    qc = {
        "pages_declared": None if pages_declared is None else int(pages_declared),
        "pages": int(n_pages),
        "pages_read": int(len(good)),
        "corrupt_pages": int(len(corrupt_idx)),
        "corrupt_page_indices": corrupt_idx.tolist(),
        "corrupt_reasons": {k: int(v.sum()) for k, v in reasons.items() if v.any()},
        "truncated_last_page": truncated_last,
        "truncated_bytes": truncated_bytes,
        "clipped_samples": int(clipped),
        "battery_volts": [round(float(np.nanmin(battery[good])), 4), round(float(np.nanmax(battery[good])), 4)]
        if np.isfinite(battery[good]).any()
        else None,
    }
    qc.update(time_qc(time, fs_header, gap_factor))
    if n:
        meta["start"] = str(time[:1].view("datetime64[ns]")[0])
        meta["end"] = str(time[-1:].view("datetime64[ns]")[0])
    return Recording(time=time, xyz=xyz, temperature=temperature, gyro=None, fs=fs_header, meta=meta, qc=qc,
                     extra={"light": light, "button": button})  # fmt: skip


def _page_steps(page_ns, seq, counts, fs):
    """Sample interval (ns) of each page: from its time to the next page's when that follows on, else ``1/fs``."""
    nominal = np.full(len(page_ns), 1e9 / fs)
    if len(page_ns) < 2:
        return nominal
    step = np.diff(page_ns).astype(np.float64) / counts[:-1]
    consecutive = np.diff(seq) == 1
    near = np.abs(step / nominal[:-1] - 1.0) <= PAGE_STEP_TOLERANCE
    nominal[:-1] = np.where(consecutive & near, step, nominal[:-1])
    # the last page (and pages before gaps) take the rate measured over the regular pages, if any
    regular = consecutive & near
    if regular.any():
        measured = float(np.diff(page_ns)[regular].sum() / counts[:-1][regular].sum())
        tail = np.append(~regular, True)
        nominal[tail] = measured
    return nominal
