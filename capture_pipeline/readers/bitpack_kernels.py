"""Numba kernels of the GENEActiv and ActiGraph readers: text-page parsing, hex and 12-bit unpacking, record scans.

Everything that runs per sample, per byte or per page/record lives here, over whole file buffers, so that the
readers themselves (`geneactiv.py`, `gt3x.py`) are vectorised numpy and never loop in Python per sample.
"""

from __future__ import annotations

import numba
import numpy as np

#: Value of each byte as a hexadecimal digit, -1 for anything else (GENEActiv pages use upper case; accept both).
HEX_VALUE = np.full(256, -1, np.int8)
HEX_VALUE[np.frombuffer(b"0123456789", np.uint8)] = np.arange(10)
HEX_VALUE[np.frombuffer(b"ABCDEF", np.uint8)] = np.arange(10, 16)
HEX_VALUE[np.frombuffer(b"abcdef", np.uint8)] = np.arange(10, 16)

NAT = np.iinfo(np.int64).min  # "no time" marker of `parse_datetimes`

# ---------------------------------------------------------------------------------------------------------------------
# GENEActiv: text pages
# ---------------------------------------------------------------------------------------------------------------------


@numba.njit(cache=True, nogil=True)
def page_lines(buf, marks, end, n_lines):
    """Split each page (from one 'Recorded Data' marker to the next) into its lines.

    Parameters
    ----------
    buf : uint8 array
        The whole file.
    marks : int64 array (p,)
        Byte offset of each page's marker line, ascending.
    end : int
        End of the data (file size).
    n_lines : int
        Lines a page should have (10: marker, 8 header lines, hex data).

    Returns
    -------
    lo, hi : int64 arrays (p, n_lines)
        Byte span of each line without its line terminator (CR LF or LF) and trailing spaces; -1 where the page has
        fewer lines.
    found : int64 array (p,)
        Non-empty lines found in the page (more than ``n_lines`` means the page has extra text).
    """
    p = marks.shape[0]
    lo = np.full((p, n_lines), -1, np.int64)
    hi = np.full((p, n_lines), -1, np.int64)
    found = np.zeros(p, np.int64)
    for k in range(p):
        stop = marks[k + 1] if k + 1 < p else end
        pos = marks[k]
        j = 0
        while pos < stop:
            e = pos
            while e < stop and buf[e] != 10:
                e += 1
            h = e
            while h > pos and (buf[h - 1] == 13 or buf[h - 1] == 32):  # CR of CR LF, and stray trailing spaces
                h -= 1
            if h > pos:  # blank lines (e.g. a trailing CR LF pair) carry nothing
                if j < n_lines:
                    lo[k, j] = pos
                    hi[k, j] = h
                j += 1
            pos = e + 1
        found[k] = j
    return lo, hi, found


@numba.njit(cache=True, nogil=True)
def parse_numbers(buf, lo, hi):
    """The decimal number after the first ':' of each span (e.g. 'Temperature:21.5'); NaN where there is none.

    Accepts an optional sign, digits and one decimal point, surrounded by spaces; anything else gives NaN.
    """
    out = np.full(lo.shape[0], np.nan)
    for k in range(lo.shape[0]):
        a, b = lo[k], hi[k]
        if a < 0:
            continue
        while a < b and buf[a] != 58:  # ':'
            a += 1
        a += 1
        while a < b and buf[a] == 32:
            a += 1
        while b > a and buf[b - 1] == 32:
            b -= 1
        if a >= b:
            continue
        sign = 1.0
        if buf[a] == 45 or buf[a] == 43:
            sign = -1.0 if buf[a] == 45 else 1.0
            a += 1
        val = 0.0
        scale = 0.0
        digits = 0
        ok = a < b
        for i in range(a, b):
            c = buf[i]
            if 48 <= c <= 57:
                val = val * 10.0 + (c - 48)
                digits += 1
                if scale > 0:
                    scale *= 10.0
            elif c == 46 and scale == 0.0:
                scale = 1.0
            else:
                ok = False
                break
        if ok and digits > 0:
            out[k] = sign * val / (scale if scale > 0 else 1.0)
    return out


@numba.njit(cache=True, nogil=True)
def _days_from_civil(y, m, d):
    # H. Hinnant's algorithm: days since 1970-01-01 of a proleptic Gregorian date
    y = y - (1 if m <= 2 else 0)
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    mp = (m + 9) % 12
    doy = (153 * mp + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


@numba.njit(cache=True, nogil=True)
def parse_datetimes(buf, lo, hi):
    """Naive ns since 1970 of 'Key:YYYY-MM-DD hh:mm:ss:mmm' spans (fields need no zero padding); `NAT` if invalid."""
    out = np.full(lo.shape[0], NAT, np.int64)
    f = np.zeros(7, np.int64)
    for k in range(lo.shape[0]):
        a, b = lo[k], hi[k]
        if a < 0:
            continue
        while a < b and buf[a] != 58:
            a += 1
        a += 1
        n = 0
        in_num = False
        for i in range(a, b + 1):
            c = buf[i] if i < b else 32
            if 48 <= c <= 57:
                if not in_num:
                    if n == 7:
                        n = 8  # too many fields
                        break
                    f[n] = 0
                    in_num = True
                f[n] = f[n] * 10 + (c - 48)
            else:
                if in_num:
                    n += 1
                    in_num = False
                if not (c == 45 or c == 58 or c == 32 or c == 46):  # '-', ':', ' ', '.'
                    n = 8
                    break
        if n != 7:
            continue
        y, mo, d, h, mi, s, ms = f[0], f[1], f[2], f[3], f[4], f[5], f[6]
        if not (1 <= mo <= 12 and 1 <= d <= 31 and h < 24 and mi < 60 and s < 61 and ms < 1000):
            continue
        sec = _days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s
        out[k] = sec * 1_000_000_000 + ms * 1_000_000
    return out


@numba.njit(cache=True, nogil=True)
def hex_spans_ok(buf, lo, n_chars, hex_value):
    """Whether the first ``n_chars[k]`` bytes from ``lo[k]`` are all hexadecimal digits, per span."""
    ok = np.ones(lo.shape[0], np.bool_)
    for k in range(lo.shape[0]):
        for i in range(lo[k], lo[k] + n_chars[k]):
            if hex_value[buf[i]] < 0:
                ok[k] = False
                break
    return ok


@numba.njit(cache=True, nogil=True)
def find_line_starts(buf, start, pattern):
    """Offsets (ascending) of every line that starts with ``pattern`` at or after ``start``."""
    n = buf.shape[0]
    m = pattern.shape[0]
    out = np.empty(max(16, (n - start) // 1000 + 16), np.int64)
    k = 0
    i = start
    while i + m <= n:
        if (i == 0 or buf[i - 1] == 10) and buf[i] == pattern[0]:
            same = True
            for j in range(1, m):
                if buf[i + j] != pattern[j]:
                    same = False
                    break
            if same:
                if k == out.shape[0]:
                    grown = np.empty(2 * k, np.int64)
                    grown[:k] = out
                    out = grown
                out[k] = i
                k += 1
                i += m
                continue
        # jump to the next line start
        while i < n and buf[i] != 10:
            i += 1
        i += 1
    return out[:k]


@numba.njit(cache=True, nogil=True)
def decode_geneactiv(buf, lo, counts, out_start, hex_value, gain, offset, lux_per_unit, xyz, light, button):
    """Unpack and calibrate GENEActiv hex samples: per 12 hex digits, x, y, z (12-bit two's complement), light
    (10 bits), button (1 bit) and one reserved bit, most significant first.

    Parameters
    ----------
    buf : uint8 array
        The whole file.
    lo, counts, out_start : int64 arrays (p,)
        Start of each page's hex data, samples to decode from it, output row of its first sample.
    gain, offset : float64 arrays (3,)
        Header calibration: ``g = (raw * 100 - offset) / gain``.
    lux_per_unit : float
        Lux per light unit (header ``Lux / Volts``).
    xyz : float32 array (n, 3)
        Calibrated acceleration in g (written).
    light : float32 array (n,)
        Light in lux (written).
    button : uint8 array (n,)
        Button state (written).

    Returns
    -------
    int
        Samples with any axis at the 12-bit limits (-2048 or 2047), i.e. clipped.
    """
    clipped = 0
    scale = 100.0 / gain  # (raw * 100 - offset) / gain as one multiply-add
    shift = offset / gain
    for k in range(lo.shape[0]):
        p = lo[k]
        o = out_start[k]
        for i in range(counts[k]):
            q = p + 12 * i
            sat = False
            for a in range(3):
                v = (
                    (np.int32(hex_value[buf[q + 3 * a]]) << 8)
                    | (np.int32(hex_value[buf[q + 3 * a + 1]]) << 4)
                    | np.int32(hex_value[buf[q + 3 * a + 2]])
                )
                v = (v ^ 0x800) - 0x800
                xyz[o + i, a] = v * scale[a] - shift[a]
                if v == -2048 or v == 2047:
                    sat = True
            last = (
                (np.int32(hex_value[buf[q + 9]]) << 8)
                | (np.int32(hex_value[buf[q + 10]]) << 4)
                | np.int32(hex_value[buf[q + 11]])
            )
            light[o + i] = (last >> 2) * lux_per_unit
            button[o + i] = (last >> 1) & 1
            if sat:
                clipped += 1
    return clipped


@numba.njit(cache=True, nogil=True)
def page_times(page_ns, step_ns, counts, out_start, time):
    """Per-sample times: each page's samples spread evenly from its page time with the page's sample interval."""
    for k in range(page_ns.shape[0]):
        o = out_start[k]
        t0 = page_ns[k]
        dt = step_ns[k]
        for i in range(counts[k]):
            time[o + i] = t0 + np.int64(np.round(i * dt))


# ---------------------------------------------------------------------------------------------------------------------
# ActiGraph: log records and 12-bit packed samples
# ---------------------------------------------------------------------------------------------------------------------

SEPARATOR = 0x1E


@numba.njit(cache=True, nogil=True)
def _record_ok(buf, pos, n):
    # a complete record at pos whose checksum (one's complement of the XOR of header and payload) holds
    if pos + 9 > n or buf[pos] != SEPARATOR:
        return False
    size = np.int64(buf[pos + 6]) | (np.int64(buf[pos + 7]) << 8)
    if pos + 9 + size > n:
        return False
    x = np.uint8(0)
    for i in range(pos, pos + 8 + size):
        x ^= buf[i]
    return np.uint8(~x) == buf[pos + 8 + size]


@numba.njit(cache=True, nogil=True)
def scan_records(buf):
    """Walk the log records of a ``log.bin`` buffer.

    A record is ``1E, type, uint32 LE timestamp, uint16 LE size, payload, checksum``. Zero bytes between records are
    allowed padding (skipped, counted). A record whose checksum fails is reported and skipped; when its size field
    is not followed by another record start the walk resynchronises at the next separator that starts a record
    with a valid checksum, and the bytes passed over are counted.

    Returns
    -------
    pos, rtype, ts, size : int64 arrays (r,)
        Offset, type, timestamp (s) and payload size of each record found (valid or not).
    ok : bool array (r,)
        Checksum holds.
    zero_bytes, skipped_bytes, truncated_bytes : int
        Padding zeros, bytes skipped while resynchronising, bytes of an incomplete record at the end.
    """
    n = buf.shape[0]
    cap = max(16, n // 9 + 1)
    pos_a = np.empty(cap, np.int64)
    typ = np.empty(cap, np.int64)
    ts = np.empty(cap, np.int64)
    size = np.empty(cap, np.int64)
    ok = np.empty(cap, np.bool_)
    r = 0
    zero_bytes = 0
    skipped = 0
    truncated = 0
    p = 0
    while p < n:
        c = buf[p]
        if c != SEPARATOR:
            if c == 0:
                zero_bytes += 1
            else:
                skipped += 1
            p += 1
            continue
        if p + 9 > n:
            truncated = n - p
            break
        sz = np.int64(buf[p + 6]) | (np.int64(buf[p + 7]) << 8)
        if p + 9 + sz > n:
            # an incomplete record at the end, or a corrupt size field: look for a later valid record first
            q = p + 1
            while q < n and not (buf[q] == SEPARATOR and _record_ok(buf, q, n)):
                q += 1
            if q >= n:
                truncated = n - p
                break
            skipped += q - p
            p = q
            continue
        good = _record_ok(buf, p, n)
        pos_a[r] = p
        typ[r] = buf[p + 1]
        ts[r] = (
            np.int64(buf[p + 2])
            | (np.int64(buf[p + 3]) << 8)
            | (np.int64(buf[p + 4]) << 16)
            | (np.int64(buf[p + 5]) << 24)
        )
        size[r] = sz
        ok[r] = good
        r += 1
        nxt = p + 9 + sz
        if good or nxt == n or (nxt < n and buf[nxt] == SEPARATOR and _record_ok(buf, nxt, n)):
            p = nxt
        else:
            q = p + 1
            while q < n and not (buf[q] == SEPARATOR and _record_ok(buf, q, n)):
                q += 1
            skipped += q - p - 9 - sz if q - p > 9 + sz else 0
            p = q
    return pos_a[:r], typ[:r], ts[:r], size[:r], ok[:r], zero_bytes, skipped, truncated


@numba.njit(cache=True, nogil=True)
def unpack12_yxz(buf, offsets, counts, out_start, raw):
    """Unpack ActiGraph 12-bit samples (36 bits each, y, x, z, most significant bit first) into raw x, y, z.

    Parameters
    ----------
    buf : uint8 array
        Bytes holding the packed streams.
    offsets, counts, out_start : int64 arrays (m,)
        Start byte of each stream (record payload), samples in it, output row of its first sample.
    raw : int16 array (n, 3)
        x, y, z (written).

    Returns
    -------
    int
        Samples with any axis at the 12-bit limits (clipped).
    """
    clipped = 0
    for k in range(offsets.shape[0]):
        base = offsets[k]
        o = out_start[k]
        for i in range(counts[k]):
            sat = False
            for a in range(3):
                bit = (3 * i + a) * 12
                q = base + (bit >> 3)
                if (bit & 7) == 0:
                    v = (np.int32(buf[q]) << 4) | (np.int32(buf[q + 1]) >> 4)
                else:
                    v = ((np.int32(buf[q]) & 0x0F) << 8) | np.int32(buf[q + 1])
                v = (v ^ 0x800) - 0x800
                # stored order is y, x, z
                raw[o + i, 1 if a == 0 else (0 if a == 1 else 2)] = v
                if v == -2048 or v == 2047:
                    sat = True
            if sat:
                clipped += 1
    return clipped


@numba.njit(cache=True, nogil=True)
def unpack_int16_xyz(buf, offsets, counts, out_start, raw):
    """Copy ActiGraph ACTIVITY2 samples (little-endian int16 x, y, z) into ``raw``; returns samples at full scale."""
    clipped = 0
    for k in range(offsets.shape[0]):
        base = offsets[k]
        o = out_start[k]
        for i in range(counts[k]):
            sat = False
            for a in range(3):
                q = base + 6 * i + 2 * a
                v = np.int32(buf[q]) | (np.int32(buf[q + 1]) << 8)
                v = (v ^ 0x8000) - 0x8000
                raw[o + i, a] = v
                if v <= -32767 or v == 32767:
                    sat = True
            if sat:
                clipped += 1
    return clipped


@numba.njit(cache=True, nogil=True)
def record_times_and_fill(rec_ns, counts, out_start, fill_start, fill_counts, period_ns, time, raw, filled):
    """Per-sample times of second-long records, and idle-sleep gaps filled with the last sample before them.

    Parameters
    ----------
    rec_ns : int64 array (m,)
        Record timestamps (ns); sample ``i`` of a record is at ``rec_ns + i * period_ns``.
    counts, out_start : int64 arrays (m,)
        Samples in each record and output row of its first sample.
    fill_start, fill_counts : int64 arrays (m,)
        Output row and number of filled samples *before* each record (0 where none); the filled samples continue
        one second after the previous record's timestamp at the same period.
    time : int64 array (n,), raw : int16 array (n, 3), filled : bool array (n,)
        Written: times, raw values of the filled rows (copied from the row before), and which rows are filled.
    """
    for k in range(rec_ns.shape[0]):
        f0 = fill_start[k]
        if fill_counts[k] > 0:
            t0 = rec_ns[k - 1] + 1_000_000_000
            for j in range(fill_counts[k]):
                time[f0 + j] = t0 + np.int64(np.round(j * period_ns))
                raw[f0 + j, 0] = raw[f0 - 1, 0]
                raw[f0 + j, 1] = raw[f0 - 1, 1]
                raw[f0 + j, 2] = raw[f0 - 1, 2]
                filled[f0 + j] = True
        o = out_start[k]
        for i in range(counts[k]):
            time[o + i] = rec_ns[k] + np.int64(np.round(i * period_ns))
            filled[o + i] = False
