"""Writing CAPTURE-24-style CSV files (``time,x,y,z,annotation``) fast.

pandas' ``to_csv`` formats about a million rows a minute on a slow machine; a CAPTURE-24 participant has ten
million. Here one compiled (numba) pass writes the rows straight into a byte buffer: fixed-point numbers with
six decimals, the date text looked up per day, and the annotation copied from a table.
"""

from __future__ import annotations

import gzip
import os

import numba
import numpy as np

_DECIMALS = 6
CHUNK_ROWS = 1 << 18
#: Largest magnitude written; the format has one integer digit.
MAX_ABS = 10.0 - 10.0**-_DECIMALS
_NS_PER_DAY = 86_400_000_000_000


@numba.njit(cache=True)
def _put_digits(buf, pos, value, width):
    for k in range(width - 1, -1, -1):
        buf[pos + k] = 48 + value % 10
        value //= 10
    return pos + width


@numba.njit(cache=True)
def _fill(buf, time_ns, xyz, ann_index, ann_bytes, ann_start, dates, day0):
    """Write the rows into ``buf``; returns the number of bytes used."""
    pos = 0
    scale = 10**_DECIMALS
    for i in range(len(time_ns)):
        t = time_ns[i]
        day = t // _NS_PER_DAY
        rem = t - day * _NS_PER_DAY
        d = day - day0
        for k in range(10):
            buf[pos + k] = dates[d, k]
        buf[pos + 10] = 32  # ' '
        sec = rem // 1_000_000_000
        pos = _put_digits(buf, pos + 11, sec // 3600, 2)
        buf[pos] = 58  # ':'
        pos = _put_digits(buf, pos + 1, (sec // 60) % 60, 2)
        buf[pos] = 58
        pos = _put_digits(buf, pos + 1, sec % 60, 2)
        buf[pos] = 46  # '.'
        pos = _put_digits(buf, pos + 1, (rem % 1_000_000_000) // 1000, 6)
        for a in range(3):
            buf[pos] = 44  # ','
            pos += 1
            v = min(max(np.float64(xyz[i, a]), -MAX_ABS), MAX_ABS)
            q = np.int64(np.rint(abs(v) * scale))
            if v < 0 and q > 0:  # never "-0.000000"
                buf[pos] = 45
                pos += 1
            buf[pos] = 48 + q // scale
            buf[pos + 1] = 46
            pos = _put_digits(buf, pos + 2, q % scale, _DECIMALS)
        buf[pos] = 44
        pos += 1
        j = ann_index[i]
        for k in range(ann_start[j], ann_start[j + 1]):
            buf[pos] = ann_bytes[k]
            pos += 1
        buf[pos] = 10  # '\n'
        pos += 1
    return pos


def _quote(text: str) -> bytes:
    """A CSV field: quoted (RFC 4180) only if it needs to be."""
    if any(c in text for c in ',"\n\r'):
        text = '"' + text.replace('"', '""') + '"'
    return text.encode("utf-8")


class _Table:
    """Annotation bytes and date text prepared once per file for `_fill`."""

    def __init__(self, time_ns: np.ndarray, annotations):
        fields = [_quote(a) for a in annotations]
        self.start = np.concatenate([[0], np.cumsum([len(f) for f in fields])]).astype(np.int64)
        self.bytes = np.frombuffer(b"".join(fields) + b"\0", dtype=np.uint8)
        self.longest = max([len(f) for f in fields] + [0])
        self.day0 = int(time_ns.min() // _NS_PER_DAY)
        n_days = int(time_ns.max() // _NS_PER_DAY) - self.day0 + 1
        days = np.arange(self.day0, self.day0 + n_days).astype("datetime64[D]")
        self.dates = np.frombuffer("".join(str(d) for d in days).encode("ascii"), dtype=np.uint8).reshape(n_days, 10)

    def row_bytes(self) -> int:
        """An upper bound of the bytes of one row."""
        return 26 + 3 * 10 + 2 + self.longest + 1

    def fill(self, buf, time_ns, xyz, ann_index) -> int:
        return _fill(buf, time_ns, xyz, ann_index, self.bytes, self.start, self.dates, self.day0)


def _prepare(time_ns, xyz, ann_index):
    return (
        np.ascontiguousarray(time_ns, dtype=np.int64),
        np.ascontiguousarray(xyz),
        np.ascontiguousarray(ann_index, dtype=np.int64),
    )


def rows_bytes(time_ns, xyz, ann_index, annotations) -> bytes:
    """The CSV text (bytes, no header) of rows ``time,x,y,z,annotations[ann_index[i]]``.

    Times are written ``YYYY-MM-DD hh:mm:ss.ffffff`` (microseconds truncated), x, y and z with six decimals
    (|values| above 9.999999 are clipped), and an empty annotation string gives an empty field (NA).
    """
    time_ns, xyz, ann_index = _prepare(time_ns, xyz, ann_index)
    if len(time_ns) == 0:
        return b""
    table = _Table(time_ns, annotations)
    buf = np.empty(len(time_ns) * table.row_bytes(), dtype=np.uint8)
    return buf[: table.fill(buf, time_ns, xyz, ann_index)].tobytes()


def write_capture24_csv(path, time_ns, xyz, ann_index, annotations, compresslevel: int = 1) -> None:
    """Write ``time,x,y,z,annotation`` rows as CAPTURE-24 does (gzip if ``path`` ends in ``.gz``).

    Written to a temporary name in the same folder and renamed. The gzip header carries no time stamp and a fixed
    name, so the same rows always give the same bytes.

    Parameters
    ----------
    path : str or os.PathLike
    time_ns : int64 array (n,)
    xyz : array (n, 3), g
    ann_index : int array (n,)
        Index into ``annotations`` per row.
    annotations : list of str
        Annotation strings; ``""`` writes an empty field (NA), as for unannotated periods in CAPTURE-24.
    compresslevel : int
        gzip level; 1 is several times faster than 6 and only ~15 % larger on this kind of text.
    """
    path = os.fspath(path)
    time_ns, xyz, ann_index = _prepare(time_ns, xyz, ann_index)
    if len(time_ns) == 0:
        raise ValueError("no rows to write")
    table = _Table(time_ns, annotations)
    buf = np.empty(min(CHUNK_ROWS, len(time_ns)) * table.row_bytes(), dtype=np.uint8)
    tmp = f"{path}.partial"
    base = os.path.basename(path)
    try:
        with open(tmp, "wb") as raw:
            if path.endswith(".gz"):
                fh = gzip.GzipFile(filename=base[:-3], mode="wb", fileobj=raw, compresslevel=compresslevel, mtime=0)
            else:
                fh = raw
            fh.write(b"time,x,y,z,annotation\n")
            for s in range(0, len(time_ns), CHUNK_ROWS):
                e = min(s + CHUNK_ROWS, len(time_ns))
                used = table.fill(buf, time_ns[s:e], xyz[s:e], ann_index[s:e])
                fh.write(memoryview(buf)[:used])
            if fh is not raw:
                fh.close()
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
