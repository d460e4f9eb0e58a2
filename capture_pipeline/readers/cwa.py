"""Axivity AX3/AX6 `.cwa` reader (`spec/cwa.md`).

Reading is in three vectorised stages: the 1024-byte header; the block table (every 512-byte block's fields,
checksum, timestamp and anchor, with numpy over all blocks at once); then the samples and their times, unpacked by
Numba kernels straight into the output arrays. Corrupt blocks are dropped and reported, never imputed.
"""

from __future__ import annotations

import gzip
import os
import struct
import warnings
from dataclasses import dataclass
from urllib.parse import unquote_plus

import numpy as np

from .. import memory
from ..errors import InputError
from ..recording import Recording
from . import cwa_kernels as K
from .gaps import time_qc

HEADER_BYTES = 1024
BLOCK_BYTES = 512

BLOCK_DTYPE = np.dtype(
    [
        ("tag", "<u2"),
        ("length", "<u2"),
        ("fractional", "<u2"),
        ("session", "<u4"),
        ("sequence", "<u4"),
        ("timestamp", "<u4"),
        ("light_scale", "<u2"),
        ("temperature", "<u2"),
        ("events", "u1"),
        ("battery", "u1"),
        ("rate", "u1"),
        ("axes_bps", "u1"),
        ("ts_offset", "<i2"),
        ("count", "<u2"),
        ("payload", "V480"),
        ("checksum", "<u2"),
    ]
)
assert BLOCK_DTYPE.itemsize == BLOCK_BYTES
HEAD_BYTES = 30  # the block fields before the sample payload
HEAD_DTYPE = np.dtype({name: BLOCK_DTYPE.fields[name] for name in BLOCK_DTYPE.names[:14]})
CHUNK_BLOCKS = 32768  # 16 MB of blocks read at a time: memory stays bounded and the page cache does the rest

TAG_AX = 0x5841  # "AX" little-endian
MAX_SAMPLES = {K.PACKED3: 120, K.INT16_3: 80, K.INT16_6: 40, K.INT16_9: 26}

#: Temperature formulas (°C from the raw ADC word); 'ukb' is the reference tool's and the default (cwa.md §5.4).
TEMPERATURE_FORMULAS = {
    "ukb": lambda raw: (raw.astype(np.float64) * 150.0 - 20500.0) / 1000.0,
    "mcp9700": lambda raw: (raw & 0x3FF).astype(np.float64) * 75.0 / 256.0 - 50.0,
    "skdh": lambda raw: ((raw & 0x3FF).astype(np.float64) - 171.0) / 3.142,
    "raw": lambda raw: (raw & 0x3FF).astype(np.float64),
}

METADATA_KEYS = {
    "_c": "study_centre", "_s": "study_code", "_i": "investigator", "_x": "exercise_code",
    "_v": "volunteer_num", "_p": "body_location", "_so": "setup_operator", "_n": "notes",
    "_b": "start_time", "_e": "end_time", "_ro": "recovery_operator", "_r": "retrieval_time",
    "_co": "comments", "_sc": "subject_code", "_se": "sex", "_h": "height", "_w": "weight",
    "_ha": "handedness", "_sn": "subject_notes",
}  # fmt: skip


def rate_hz(code):
    """Sample rate in Hz of CWA rate code(s): ``3200 / 2**(15 - (code & 15))``."""
    return 3200.0 / (1 << (15 - (np.asarray(code, dtype=np.int64) & 15)))


def range_g(code) -> int:
    """Accelerometer range (±g) of a CWA rate code: ``16 >> (code >> 6)``."""
    return 16 >> (int(code) >> 6)


def unpack_timestamps(v):
    """Decode packed CWA date-times to naive unix seconds.

    Parameters
    ----------
    v : array of uint32
        ``YYYYYYMM MMDDDDDh hhhhmmmm mmssssss`` values.

    Returns
    -------
    seconds : int64 array
        Seconds since 1970-01-01 of the naive (device-local) clock; meaningless where not valid.
    valid : bool array
        Whether every field is in range (month 1-12, day 1-31, h < 24, min < 60, s < 60).
    """
    v = np.asarray(v, dtype=np.int64)
    year = ((v >> 26) & 0x3F) + 2000
    month = (v >> 22) & 0xF
    day = (v >> 17) & 0x1F
    hour = (v >> 12) & 0x1F
    minute = (v >> 6) & 0x3F
    second = v & 0x3F
    valid = (month >= 1) & (month <= 12) & (day >= 1) & (day <= 31) & (hour < 24) & (minute < 60) & (second < 60)
    # days_from_civil (H. Hinnant), exact for the proleptic Gregorian calendar
    y = year - (month <= 2)
    era = y // 400
    yoe = y - era * 400
    mp = (month + 9) % 12
    doy = (153 * mp + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    days = era * 146097 + doe - 719468
    return days * 86400 + hour * 3600 + minute * 60 + second, valid


def _header_time(v: int):
    if v == 0:
        return "always"
    if v == 0xFFFFFFFF:
        return "never"
    s, ok = unpack_timestamps(np.array([v], dtype=np.uint32))
    return str(np.datetime64(int(s[0]), "s")) if ok[0] else None


def _parse_metadata(text: bytes) -> dict:
    text = text.rstrip(b"\x20\x00\xff").lstrip(b"&?")
    out = {}
    for part in text.decode("latin-1").split("&"):
        if not part:
            continue
        key, _, value = part.partition("=")
        key = unquote_plus(key)
        out[METADATA_KEYS.get(key, key)] = unquote_plus(value)
    return out


def parse_header(buf, path=None) -> dict:
    """Decode the CWA header ("MD" sector) fields (cwa.md §2).

    Parameters
    ----------
    buf : bytes-like
        At least the first 1024 bytes of the file.
    path : optional
        For error messages.

    Returns
    -------
    dict
        ``header_bytes``, ``hardware_type``, ``device_type``, ``device_id``, ``session_id``, ``logging_start``,
        ``logging_end``, ``last_change``, ``rate_code``, ``configured_fs``, ``range_g``, ``sensor_config``,
        ``gyro_range_dps``, ``firmware``, ``flash_led``, ``metadata``.
    """
    if len(buf) < HEADER_BYTES:
        raise InputError(path, f"too short for a CWA file: {len(buf)} bytes, the header alone is {HEADER_BYTES}")
    b = bytes(buf[:HEADER_BYTES])
    if b[:2] != b"MD":
        raise InputError(path, "not a CWA file: the first two bytes are not the 'MD' header tag")
    (packet_length,) = struct.unpack_from("<H", b, 2)
    hw = b[4]
    lower, session, upper = struct.unpack_from("<HIH", b, 5)
    start, end = struct.unpack_from("<II", b, 13)
    sensor_config, rate = b[35], b[36]
    (last_change,) = struct.unpack_from("<I", b, 37)
    device_id = lower | ((0 if upper == 0xFFFF else upper) << 16)
    gyro_dps = None
    if sensor_config not in (0x00, 0xFF) and 2 <= (sensor_config & 0x0F) <= 6:
        gyro_dps = 8000 >> (sensor_config & 0x0F)
    return {
        "header_bytes": packet_length + 4 if packet_length + 4 == HEADER_BYTES else HEADER_BYTES,
        "hardware_type": hw,
        "device_type": "AX6" if hw == 0x64 else "AX3",
        "device_id": int(device_id),
        "session_id": int(session),
        "logging_start": _header_time(start),
        "logging_end": _header_time(end),
        "last_change": _header_time(last_change),
        "rate_code": rate,
        "configured_fs": float(rate_hz(rate)) if rate else None,
        "range_g": range_g(rate) if rate else None,
        "sensor_config": sensor_config,
        "gyro_range_dps": gyro_dps,
        "firmware": b[41],
        "flash_led": b[26],
        "metadata": _parse_metadata(b[64:HEADER_BYTES]),
    }


class _BlockSource:
    """The data blocks of a CWA file, read in bounded chunks (gzip files are decompressed in memory once)."""

    def __init__(self, path):
        self.path = path
        with open(path, "rb") as fh:
            self.compressed = fh.read(2) == b"\x1f\x8b"
        if self.compressed:
            try:
                with gzip.open(path, "rb") as fh:
                    self.mem = np.frombuffer(fh.read(), dtype=np.uint8)
            except (OSError, EOFError) as exc:
                raise InputError(path, f"gzip stream is corrupt or truncated ({exc})") from exc
            size = len(self.mem)
            head = self.mem[:HEADER_BYTES].tobytes()
        else:
            self.mem = None
            size = os.path.getsize(path)
            if size == 0:
                raise InputError(path, "file is empty (0 bytes)")
            with open(path, "rb") as fh:
                head = fh.read(HEADER_BYTES)
        self.header = parse_header(head, path)
        self.start = self.header["header_bytes"]
        self.n_blocks = max(0, (size - self.start) // BLOCK_BYTES)
        self.trailing = max(0, size - self.start - self.n_blocks * BLOCK_BYTES)

    def chunks(self, lo: int, hi: int):
        """Yield ``(first_block, uint8 array (k, 512))`` covering data blocks ``lo:hi``."""
        if self.mem is not None:
            for b0 in range(lo, hi, CHUNK_BLOCKS):
                b1 = min(hi, b0 + CHUNK_BLOCKS)
                yield b0, self.mem[self.start + b0 * BLOCK_BYTES : self.start + b1 * BLOCK_BYTES].reshape(-1, BLOCK_BYTES)
            return
        buf = np.empty((min(CHUNK_BLOCKS, max(hi - lo, 1)), BLOCK_BYTES), dtype=np.uint8)
        with open(self.path, "rb") as fh:
            fh.seek(self.start + lo * BLOCK_BYTES)
            for b0 in range(lo, hi, CHUNK_BLOCKS):
                k = min(hi, b0 + CHUNK_BLOCKS) - b0
                got = fh.readinto(memoryview(buf[:k]).cast("B"))
                if got != k * BLOCK_BYTES:
                    raise InputError(self.path, "file changed size while being read")
                yield b0, buf[:k]

    def heads_and_checksums(self):
        """Every block's 30 header bytes (as HEAD_DTYPE records) and whether its checksum holds."""
        heads = np.empty((self.n_blocks, HEAD_BYTES), dtype=np.uint8)
        ok = np.empty(self.n_blocks, dtype=bool)
        for b0, arr in self.chunks(0, self.n_blocks):
            heads[b0 : b0 + len(arr)] = arr[:, :HEAD_BYTES]
            ok[b0 : b0 + len(arr)] = K.block_checksums_ok(arr.view("<u2"))
        return heads.view(HEAD_DTYPE).reshape(-1), ok


@dataclass
class BlockTable:
    """Per-block facts of a CWA file, computed for all blocks at once."""

    fields: np.ndarray  # HEAD_DTYPE records: the header fields of every data block
    valid: np.ndarray  # bool: usable block
    reasons: dict  # reason -> bool mask of blocks failing that check
    count: np.ndarray  # int64 samples per block (0 where invalid)
    whole_s: np.ndarray  # int64 timestamp seconds
    f16: np.ndarray  # int64 fraction of a second in 1/65536 s (0 without fractional timestamps)
    fs: np.ndarray  # float64 nominal rate per block
    rel_anchor: np.ndarray  # int64 anchor index relative to the block's first sample (shim undone)


def block_table(f: np.ndarray, checksum_ok: np.ndarray) -> BlockTable:
    """Validate every data block and decode its time anchor (cwa.md §7.2, §8).

    Parameters
    ----------
    f : HEAD_DTYPE records
        The header fields of every block.
    checksum_ok : bool array
        Whether each block's 16-bit word sum is 0.

    A block is valid when its tag is "AX" with packetLength 508, its layout is known, its sample count fits,
    its checksum holds (not checked for the very old rate-code-0 format) and its timestamp decodes.
    """
    axes = f["axes_bps"].astype(np.int64)
    rate = f["rate"].astype(np.int64)
    count = f["count"].astype(np.int64)
    capacity = np.select(
        [axes == K.PACKED3, axes == K.INT16_3, axes == K.INT16_6, axes == K.INT16_9],
        [120, 80, 40, 26],
        0,
    )
    whole_s, ts_ok = unpack_timestamps(f["timestamp"])
    checksum_ok = checksum_ok | (rate == 0)
    is_ax = f["tag"] == TAG_AX
    reasons = {
        "not a data block": ~is_ax,
        "bad packet length": is_ax & (f["length"] != 508),
        "unknown sample layout": is_ax & (capacity == 0),
        "sample count too large": is_ax & (capacity > 0) & ((count > capacity) | (count == 0)),
        "checksum failed": is_ax & ~checksum_ok,
        "invalid timestamp": is_ax & ~ts_ok,
    }
    valid = np.ones(len(f), dtype=bool)
    for mask in reasons.values():
        valid &= ~mask
    fractional = f["fractional"].astype(np.int64)
    has_frac = (fractional & 0x8000) != 0
    f16 = np.where(has_frac, (fractional & 0x7FFF) << 1, 0)
    fs = np.where(rate == 0, f["ts_offset"].astype(np.float64), rate_hz(rate))
    # the device used an integer rate when it applied the shim, so 12.5 Hz counts as 12 (cwa.md §7.2)
    shim = (f16 * fs.astype(np.int64)) >> 16
    rel = np.where(rate == 0, 0, f["ts_offset"].astype(np.int64) + np.where(has_frac, shim, 0))
    return BlockTable(f, valid, reasons, np.where(valid, count, 0), whole_s, f16, fs, rel)


_TABLE_CACHE: dict = {}


def _cached_block_table(src: _BlockSource) -> BlockTable:
    """The block table of the file, kept for the last file read in chunks (``blocks=``), so that the chunks of one
    file scan its headers and checksums once; keyed by path, size and modification time (a changed file is
    rescanned)."""
    st = os.stat(src.path)
    key = (os.path.abspath(src.path), st.st_size, st.st_mtime_ns)
    table = _TABLE_CACHE.get(key)
    if table is None:
        table = block_table(*src.heads_and_checksums())
        _TABLE_CACHE.clear()
        _TABLE_CACHE[key] = table
    return table


def segment_starts(t: BlockTable, idx: np.ndarray, rate_tolerance: float = 0.1):
    """Which valid blocks start a new continuous segment, and why (cwa.md §7.5 step 2).

    Parameters
    ----------
    t : BlockTable
    idx : int64 array
        Indices of the valid blocks, in file order.
    rate_tolerance : float
        Relative deviation from the nominal rate beyond which two anchors are not trusted to be continuous.

    Returns
    -------
    starts : bool array (len(idx),)
    reasons : dict of reason -> count
    """
    f = t.fields[idx]
    n = len(idx)
    starts = np.zeros(n, dtype=bool)
    if n == 0:
        return starts, {}
    starts[0] = True
    anchor_ns = t.whole_s[idx] * 1_000_000_000 + np.round(t.f16[idx] * (1e9 / 65536)).astype(np.int64)
    dt = np.diff(anchor_ns) / 1e9
    d_idx = t.count[idx][:-1] + t.rel_anchor[idx][1:] - t.rel_anchor[idx][:-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        implied = d_idx / dt
    nominal = t.fs[idx][1:]
    checks = {
        "missing or corrupt block": np.diff(idx) != 1,
        "logging resumed": (f["events"][1:] & 1) != 0,
        "sequence break": (f["sequence"][1:].astype(np.int64) - f["sequence"][:-1]) % (1 << 32) != 1,
        "session, rate or layout change": (f["session"][1:] != f["session"][:-1])
        | (f["rate"][1:] != f["rate"][:-1])
        | (f["axes_bps"][1:] != f["axes_bps"][:-1])
        | ((f["light_scale"][1:] >> 10) != (f["light_scale"][:-1] >> 10)),
        "time not increasing": dt <= 0,
        "implied rate off nominal": (dt > 0) & (np.abs(implied / nominal - 1) > rate_tolerance),
    }
    reasons = {}
    for name, mask in checks.items():
        new = mask & ~starts[1:]
        reasons[name] = int(new.sum())
        starts[1:] |= mask
    return starts, {k: v for k, v in reasons.items() if v}


def read_cwa(
    path,
    time_mode: str = "anchor",
    temperature_formula: str = "ukb",
    keep_raw: bool = False,
    blocks: tuple | None = None,
    rate_tolerance: float = 0.1,
    gap_factor: float = 2.0,
) -> Recording:
    """Read an Axivity AX3/AX6 ``.cwa`` file (optionally gzip-compressed).

    Parameters
    ----------
    path : str or os.PathLike
    time_mode : {'anchor', 'reference'}
        'anchor' (default): per-sample times interpolated piecewise-linearly through the block anchors of each
        continuous segment (cwa.md §7.5) — the device's true clock, not ``start + i/fs``.
        'reference': the time base of the biobankAccelerometerAnalysis v2.3.0 reader (features.md §3.1), needed to
        reproduce its 126-feature output exactly.
    temperature_formula : {'ukb', 'mcp9700', 'skdh', 'raw'}
        'ukb' (default) is ``(raw*150 - 20500)/1000`` °C, as UK Biobank and the reference tool compute it.
    keep_raw : bool
        Also return ``extra['temperature_raw']`` (uint16 ADC word), ``extra['light']`` (raw 10-bit light) and
        ``extra['battery']`` (volts), per sample.
    blocks : (start, stop), optional
        Read only data blocks ``start:stop`` (0-based, as in ``qc['corrupt_block_indices']``). Times are those of a
        whole-file read, so a file can be read in chunks.
    rate_tolerance : float
        Segments are split where two anchors imply a rate this far (relative) from nominal.
    gap_factor : float
        An interval between consecutive samples longer than ``gap_factor / fs`` is reported as a gap.

    Returns
    -------
    Recording
        ``qc`` holds ``blocks``, ``blocks_read``, ``corrupt_blocks``, ``corrupt_block_indices``,
        ``corrupt_reasons``, ``segments``, ``segment_breaks``, ``overflow_blocks``, ``truncated_bytes``,
        ``samples``, ``clipped_samples``, ``gaps``, ``time_backwards``, ``measured_fs``.

    Raises
    ------
    InputError
        Not a CWA file, header truncated, or no valid data block.
    """
    path = os.fspath(path)
    if time_mode not in ("anchor", "reference"):
        raise ValueError(f"time_mode must be 'anchor' or 'reference', not {time_mode!r}")
    if temperature_formula not in TEMPERATURE_FORMULAS:
        raise ValueError(f"temperature_formula must be one of {sorted(TEMPERATURE_FORMULAS)}")
    src = _BlockSource(path)
    header, n_blocks, trailing = src.header, src.n_blocks, src.trailing
    if trailing:
        warnings.warn(f"{path}: last block truncated ({trailing} of {BLOCK_BYTES} bytes); ignored and reported in QC")
    if n_blocks == 0:
        raise InputError(path, "no data blocks after the header (file truncated?)")
    # a chunked read (blocks=) reuses the table of the previous read of the same file; a whole read rescans
    t = _cached_block_table(src) if blocks is not None else block_table(*src.heads_and_checksums())

    valid_idx = np.flatnonzero(t.valid)
    if len(valid_idx) == 0:
        raise InputError(path, f"none of the {n_blocks} data blocks is valid (corrupt or not a CWA recording)")
    starts, breaks = segment_starts(t, valid_idx, rate_tolerance)
    seg_of_valid = np.cumsum(starts) - 1
    counts_valid = t.count[valid_idx]
    # position of each valid block's first sample within its segment
    csum = np.cumsum(counts_valid) - counts_valid
    seg_offset = csum[starts][seg_of_valid]
    pos_valid = csum - seg_offset

    lo, hi = (0, n_blocks) if blocks is None else (max(0, int(blocks[0])), min(n_blocks, int(blocks[1])))
    sel = (valid_idx >= lo) & (valid_idx < hi)
    block_idx = valid_idx[sel]
    counts = counts_valid[sel]
    out_start = np.cumsum(counts) - counts
    n = int(counts.sum())

    f = t.fields
    fs_nominal = float(header["configured_fs"] or t.fs[valid_idx[0]])
    xyz = memory.empty((n, 3), np.float32)
    has_gyro = bool(np.any(f["axes_bps"][valid_idx] >= K.INT16_6))
    gyro = memory.empty((n if has_gyro else 0, 3), np.float32)
    rng = float(header["range_g"] or range_g(f["rate"][valid_idx[0]]))
    axes_sel = f["axes_bps"][block_idx].astype(np.int64)
    scale_sel = f["light_scale"][block_idx].astype(np.int64)
    n_clipped = 0
    for b0, arr in src.chunks(lo, hi):
        a, b = np.searchsorted(block_idx, [b0, b0 + len(arr)])
        if a < b:
            n_clipped += K.decode_samples(arr, block_idx[a:b] - b0, out_start[a:b], counts[a:b], axes_sel[a:b],
                                          scale_sel[a:b], rng, xyz, gyro)  # fmt: skip

    time = memory.empty(n, np.int64)
    if time_mode == "anchor":
        anchor_idx = (pos_valid + t.rel_anchor[valid_idx]).astype(np.float64)
        anchor_ns = t.whole_s[valid_idx] * 1_000_000_000 + np.round(t.f16[valid_idx] * (1e9 / 65536)).astype(np.int64)
        seg_anchor_start = np.append(np.flatnonzero(starts), len(valid_idx)).astype(np.int64)
        K.anchor_times(
            seg_anchor_start, anchor_idx, anchor_ns, seg_of_valid[sel].astype(np.int64), pos_valid[sel],
            out_start, counts, t.fs[block_idx], time,
        )  # fmt: skip
    else:
        first, last = _reference_block_times(t, valid_idx)
        K.spread_block_times(first[sel], last[sel], out_start, counts, time)

    temp_raw = f["temperature"][block_idx]
    temperature = memory.empty(n, np.float32)
    K.fill_per_block(TEMPERATURE_FORMULAS[temperature_formula](temp_raw).astype(np.float32), out_start, counts,
                     temperature)  # fmt: skip
    extra = {}
    if keep_raw:
        extra["temperature_raw"] = np.repeat(temp_raw, counts)
        extra["light"] = np.repeat(f["light_scale"][block_idx] & 0x3FF, counts)
        extra["battery"] = np.repeat(_battery_volts(f["battery"][block_idx]).astype(np.float32), counts)

    corrupt_mask = ~t.valid[lo:hi]
    corrupt_idx = np.flatnonzero(corrupt_mask) + lo
    meta = {
        "format": "cwa",
        "path": os.path.abspath(path),
        "file_size": os.path.getsize(path),
        "compressed": src.compressed,
        **{k: v for k, v in header.items() if k != "header_bytes"},
        "time_mode": time_mode,
        "temperature_formula": temperature_formula,
    }
    qc = {
        "blocks": hi - lo,
        "blocks_read": int(len(block_idx)),
        "corrupt_blocks": int(len(corrupt_idx)),
        "corrupt_block_indices": corrupt_idx.tolist(),
        "corrupt_reasons": {
            k: int(v[lo:hi].sum()) for k, v in t.reasons.items() if v[lo:hi].any()
        },
        "segments": int(len(np.unique(seg_of_valid[sel]))),
        "segment_breaks": breaks,
        "overflow_blocks": int(((f["events"][block_idx] & 0x30) != 0).sum()),
        "truncated_bytes": int(trailing),
        "clipped_samples": int(n_clipped),
        "battery_volts": _battery_range(f["battery"][block_idx]),
    }
    if blocks is not None:
        qc["block_range"] = [lo, hi]
    qc.update(time_qc(time, fs_nominal, gap_factor))
    if n:
        meta["start"] = str(time[:1].view("datetime64[ns]")[0])
        meta["end"] = str(time[-1:].view("datetime64[ns]")[0])
    return Recording(
        time=time,
        xyz=xyz,
        temperature=temperature,
        gyro=gyro if has_gyro else None,
        fs=fs_nominal,
        meta=meta,
        qc=qc,
        extra=extra,
    )


def _reference_block_times(t: BlockTable, valid_idx: np.ndarray):
    """The v2.3.0 reader's per-block first/last sample times over the valid blocks (features.md §3.1)."""
    f = t.fields[valid_idx]
    frac = t.f16[valid_idx]
    has_frac = (f["fractional"] & 0x8000) != 0
    t_block = t.whole_s[valid_idx] * 1_000_000_000 + (1e9 * frac / 65536).astype(np.int64)
    # the reference assumes 1 Hz in blocks without a fractional timestamp (its quirk, reproduced)
    fs = np.where(f["rate"] == 0, t.fs[valid_idx], np.where(has_frac, t.fs[valid_idx], 1.0))
    fs = np.where(fs <= 0, 1.0, fs)
    off = t.rel_anchor[valid_idx]
    # the reference takes 6 bytes per sample for every int16 layout (so it misreads AX6; times only here)
    max_samples = np.where((f["axes_bps"] & 0xF) == 2, 80, 120).astype(np.int64)
    return K.reference_block_times(t_block.astype(np.int64), off.astype(np.int64), t.count[valid_idx], max_samples,
                                   fs.astype(np.float64))


def _battery_volts(b):
    # firmware stores ADC - 512 without halving (cwa.md §5.5)
    return (b.astype(np.float64) + 512.0) * 6.0 / 1024.0


def _battery_range(b):
    if len(b) == 0:
        return None
    v = _battery_volts(b)
    return [round(float(v.min()), 4), round(float(v.max()), 4)]
