"""Write valid Axivity `.cwa` files (AX3 packed or unpacked, AX6 6-axis) from samples with known times.

Used by the simulator, the tests and the benchmarks. The blocks are what the firmware writes (`spec/cwa.md`):
fractional timestamps anchored at the first sample of the next block with the backwards-compatibility shim
applied, per-block temperature, battery and light, and a 16-bit checksum. Values are quantised to the device
resolution (packed ±8 g: 4/256 g). Blocks are built with numpy in bounded chunks, never one at a time.
"""

from __future__ import annotations

import gzip
import os
import shutil
from urllib.parse import quote_plus

import numpy as np

from .readers.cwa import BLOCK_BYTES, BLOCK_DTYPE, HEADER_BYTES, METADATA_KEYS, TAG_AX

_RANGE_BITS = {16: 0x00, 8: 0x40, 4: 0x80, 2: 0xC0}
_PACKED_EXPONENT = {16: 3, 8: 2, 4: 1, 2: 0}  # firmware: e = 3 - (rate >> 6)
_AX6_ACCEL_CODE = {16: 3, 8: 4, 4: 5, 2: 6}  # counts per g = 2 ** (8 + code)
_SHORT_KEYS = {v: k for k, v in METADATA_KEYS.items()}
CHUNK_BLOCKS = 65536


def rate_code(fs: float, range_g: int) -> int:
    """The CWA rate code for a sample rate (6.25 … 3200 Hz) and range (±2, 4, 8, 16 g)."""
    if range_g not in _RANGE_BITS:
        raise ValueError(f"range_g must be one of {sorted(_RANGE_BITS)}, not {range_g}")
    code = 15 - np.log2(3200.0 / fs)
    if not (6 <= code <= 15 and float(code).is_integer()):
        raise ValueError(f"fs must be 3200 / 2**k Hz between 6.25 and 3200, not {fs}")
    return _RANGE_BITS[range_g] | int(code)


def pack_timestamps(seconds):
    """Packed CWA date-times of naive unix seconds (years 2000-2063)."""
    ts = np.asarray(seconds, dtype=np.int64).astype("datetime64[s]")
    year = ts.astype("datetime64[Y]").astype(np.int64) + 1970
    month = ts.astype("datetime64[M]").astype(np.int64) % 12 + 1
    day = (ts.astype("datetime64[D]") - ts.astype("datetime64[M]")).astype(np.int64) + 1
    sod = (ts - ts.astype("datetime64[D]")).astype(np.int64)
    if np.any((year < 2000) | (year > 2063)):
        raise ValueError("CWA timestamps can only hold the years 2000-2063")
    return (
        ((year - 2000) << 26) | (month << 22) | (day << 17) | ((sod // 3600) << 12) | ((sod // 60 % 60) << 6)
        | (sod % 60)
    ).astype(np.uint32)  # fmt: skip


def _header(device_type, device_id, session_id, code, sensor_config, start_s, end_s, firmware, metadata):
    h = np.full(HEADER_BYTES, 0xFF, dtype=np.uint8)
    b = h.view(np.uint8)
    b[0:2] = np.frombuffer(b"MD", np.uint8)
    b[2:4] = np.frombuffer(np.uint16(HEADER_BYTES - 4).tobytes(), np.uint8)
    b[4] = 0x64 if device_type == "AX6" else 0x00
    b[5:7] = np.frombuffer(np.uint16(device_id & 0xFFFF).tobytes(), np.uint8)
    b[7:11] = np.frombuffer(np.uint32(session_id).tobytes(), np.uint8)
    b[11:13] = np.frombuffer(np.uint16(device_id >> 16 if device_id >> 16 else 0xFFFF).tobytes(), np.uint8)
    stamps = pack_timestamps([start_s, end_s, start_s])
    b[13:17] = np.frombuffer(stamps[0].tobytes(), np.uint8)
    b[17:21] = np.frombuffer(stamps[1].tobytes(), np.uint8)
    b[21:25] = 0
    b[26] = 0
    b[35] = sensor_config
    b[36] = code
    b[37:41] = np.frombuffer(stamps[2].tobytes(), np.uint8)
    b[41] = firmware
    text = "&".join(f"{quote_plus(_SHORT_KEYS.get(k, k))}={quote_plus(str(v))}" for k, v in (metadata or {}).items())
    raw = text.encode("utf-8")
    if len(raw) > 448:
        raise ValueError(f"metadata text is {len(raw)} bytes; the header holds 448")
    b[64 : 64 + len(raw)] = np.frombuffer(raw, np.uint8)
    b[64 + len(raw) : 512] = 0x20
    return h.tobytes()


def write_cwa(
    path,
    time_ns,
    xyz,
    temperature=None,
    *,
    fs: float = 100.0,
    range_g: int = 8,
    packed: bool = True,
    gyro=None,
    gyro_range_dps: int = 2000,
    device_id: int = 0,
    session_id: int = 0,
    metadata: dict | None = None,
    light=None,
    battery_volts: float = 4.1,
    firmware: int = 44,
    sequence_start: int = 0,
) -> int:
    """Write samples as an Axivity CWA file; returns the number of data blocks written.

    Parameters
    ----------
    path : str or os.PathLike
        Output file; written to a temporary name, then renamed. A ``.gz`` suffix writes it gzip-compressed.
    time_ns : int64 array (n,)
        True sample times (naive device-local ns). Need not be at the nominal rate: real devices run 1-1.6 % slow.
    xyz : array (n, 3)
        Acceleration in g; clipped to the range.
    temperature : array (n,), optional
        °C; stored per block (block mean) as the raw ADC word of the UK-Biobank formula. Default 20 °C.
    fs : float
        Nominal (configured) rate in Hz.
    range_g : {2, 4, 8, 16}
    packed : bool
        AX3 packed 3×10-bit layout (default, 120 samples per block) or int16 (80 per block).
    gyro : array (n, 3), optional
        deg/s; writes an AX6 6-axis file (40 samples per block, int16).
    gyro_range_dps : {125, 250, 500, 1000, 2000}
    device_id, session_id, firmware : int
    metadata : dict, optional
        Header text, e.g. ``{"subject_code": "P001", "body_location": "left wrist"}``.
    light : array (n,), optional
        Raw 10-bit light per sample (block mean stored).
    battery_volts : float
    sequence_start : int
        sequenceId of the first block.
    """
    time_ns = np.asarray(time_ns, dtype=np.int64)
    xyz = np.asarray(xyz)  # converted to float64 one chunk at a time: a week is 60 M samples
    n = len(time_ns)
    if n == 0 or xyz.shape != (n, 3):
        raise ValueError(f"need n > 0 samples and xyz of shape (n, 3); got {n} times and xyz {xyz.shape}")
    if np.any(np.diff(time_ns) <= 0):
        raise ValueError("time_ns must be strictly increasing")
    ax6 = gyro is not None
    code = rate_code(fs, range_g)
    cap = 40 if ax6 else (120 if packed else 80)
    n_blocks = -(-n // cap)
    counts = np.full(n_blocks, cap, dtype=np.int64)
    counts[-1] = n - (n_blocks - 1) * cap

    # anchor = first sample of the next block, as the firmware's FIFO timestamp usually is (cwa.md §7.1)
    anchor = np.arange(1, n_blocks + 1, dtype=np.int64) * cap
    last_dt = time_ns[-1] - time_ns[-2] if n > 1 else int(1e9 / fs)
    t_anchor = np.where(anchor < n, time_ns[np.minimum(anchor, n - 1)], time_ns[-1] + (anchor - (n - 1)) * last_dt)
    whole = np.floor_divide(t_anchor, 1_000_000_000)
    f15 = ((t_anchor - whole * 1_000_000_000) * 32768) // 1_000_000_000
    f16 = f15 << 1
    ts_offset = cap - ((f16 * int(fs)) >> 16)

    temp_c = np.full(n, 20.0) if temperature is None else np.asarray(temperature, dtype=np.float64)
    block_mean = lambda v: np.add.reduceat(v, np.arange(0, n, cap)) / counts  # noqa: E731
    temp_raw = np.clip(np.round((block_mean(temp_c) * 1000.0 + 20500.0) / 150.0), 0, 1023).astype(np.uint16)
    light_raw = np.zeros(n_blocks, np.uint16) if light is None else np.clip(np.round(block_mean(np.asarray(light, float))), 0, 1023).astype(np.uint16)
    if ax6:
        a_code = _AX6_ACCEL_CODE[range_g]
        g_code = int(np.log2(8000 // gyro_range_dps))
        light_raw |= np.uint16((a_code << 13) | (g_code << 10))
    battery = np.uint8(np.clip(round(battery_volts * 1024 / 6 - 512), 0, 255))

    tmp = f"{os.fspath(path)}.partial"
    try:
        with open(tmp, "wb") as fh:
            fh.write(_header("AX6" if ax6 else "AX3", device_id, session_id, code,
                             (int(np.log2(8000 // gyro_range_dps)) if ax6 else 0xFF), int(whole[0]) - 1,
                             int(whole[-1]) + 1, firmware, metadata))  # fmt: skip
            for c0 in range(0, n_blocks, CHUNK_BLOCKS):
                c1 = min(n_blocks, c0 + CHUNK_BLOCKS)
                raw = np.zeros((c1 - c0, BLOCK_BYTES), dtype=np.uint8)
                blk = raw.view(BLOCK_DTYPE).reshape(-1)
                blk["tag"] = TAG_AX
                blk["length"] = BLOCK_BYTES - 4
                blk["fractional"] = 0x8000 | f15[c0:c1]
                blk["session"] = session_id
                blk["sequence"] = (sequence_start + np.arange(c0, c1)) & 0xFFFFFFFF
                blk["timestamp"] = pack_timestamps(whole[c0:c1])
                blk["light_scale"] = light_raw[c0:c1]
                blk["temperature"] = temp_raw[c0:c1]
                blk["events"] = np.where(np.arange(c0, c1) == 0, 1, 0)
                blk["battery"] = battery
                blk["rate"] = code
                blk["axes_bps"] = 0x62 if ax6 else (0x30 if packed else 0x32)
                blk["ts_offset"] = ts_offset[c0:c1]
                blk["count"] = counts[c0:c1]
                s0, s1 = c0 * cap, min(n, c1 * cap)
                _fill_payload(raw[:, 30:510], xyz[s0:s1].astype(np.float64),
                              None if gyro is None else np.asarray(gyro)[s0:s1].astype(np.float64), range_g,
                              packed, ax6, gyro_range_dps, cap)  # fmt: skip
                words = raw.view("<u2")
                blk["checksum"] = (-(words[:, :255].sum(axis=1, dtype=np.uint64))) & 0xFFFF
                fh.write(raw.tobytes())
        if os.fspath(path).endswith(".gz"):
            with open(tmp, "rb") as src, gzip.open(tmp + ".gz", "wb", compresslevel=6) as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
            os.replace(tmp + ".gz", tmp)
        os.replace(tmp, path)
    except BaseException:
        for leftover in (tmp, tmp + ".gz"):
            if os.path.exists(leftover):
                os.remove(leftover)
        raise
    return n_blocks


def _fill_payload(payload, xyz, gyro, range_g, packed, ax6, gyro_range_dps, cap):
    m = len(xyz)
    full = payload.shape[0] * cap
    if ax6:
        a_scale = 2.0 ** (8 + _AX6_ACCEL_CODE[range_g])
        vals = np.zeros((full, 6), dtype=np.int16)
        vals[:m, :3] = np.clip(np.round(gyro * 32768.0 / gyro_range_dps), -32768, 32767)
        vals[:m, 3:] = np.clip(np.round(xyz * a_scale), -32768, 32767)
        payload[:, : cap * 12] = vals.reshape(payload.shape[0], cap * 6).view(np.uint8)
    elif packed:
        e = _PACKED_EXPONENT[range_g]
        q = np.clip(np.round(xyz * 256.0 / (1 << e)), -512, 511).astype(np.int64) & 0x3FF
        v = np.zeros(full, dtype=np.uint32)
        v[:m] = (q[:, 0] | (q[:, 1] << 10) | (q[:, 2] << 20) | (e << 30)).astype(np.uint32)
        payload[:, :] = v.reshape(payload.shape[0], cap).view(np.uint8)
    else:
        vals = np.zeros((full, 3), dtype=np.int16)
        vals[:m] = np.clip(np.round(xyz * 256.0), -32768, 32767)
        payload[:, : cap * 6] = vals.reshape(payload.shape[0], cap * 3).view(np.uint8)

