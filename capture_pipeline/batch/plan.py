"""How one input file is split into chunks of data blocks that workers process independently.

A chunk *owns* data blocks ``[own_lo, own_hi)``: the scan step reads exactly those (QC, time base and
calibration sums add up over chunks to the whole file's). For the features it reads ``[read_lo, read_hi)``, the
owned blocks plus an overlap on each side, so that the windows it keeps — those starting from its first owned
sample up to the next chunk's first sample — have their full epoch-writer history and a converged low-pass filter.
"""

from __future__ import annotations

import gzip
import math
import os
import struct
from dataclasses import dataclass

from ..errors import InputError

#: Blocks per chunk: 72,000 AX3 packed blocks hold at most 8.64 M samples, one day at 100 Hz. Memory per chunk
#: is bounded by samples, not time, so the same number suits every rate.
DEFAULT_CHUNK_BLOCKS = 72_000
#: Seconds of data read before and after a chunk's own blocks for its features. The epoch writer needs one window
#: (30 s) of history and the 20 Hz Butterworth's memory decays below double precision within about a second;
#: 5 minutes leaves room for gaps and backward time steps near the boundary at a 1% extra read.
DEFAULT_OVERLAP_S = 300.0
#: Fewest samples a CWA data block holds when full (AX6 with gyroscope: 40), to turn seconds into blocks safely.
_MIN_SAMPLES_PER_BLOCK = 40
_BLOCK_BYTES = 512


@dataclass(frozen=True)
class Chunk:
    """Blocks ``[own_lo, own_hi)`` owned by a chunk and ``[read_lo, read_hi)`` read for its features."""

    index: int
    own_lo: int
    own_hi: int
    read_lo: int
    read_hi: int


@dataclass(frozen=True)
class FilePlan:
    """What a batch does with one input: plain data that can be shipped to a Dask worker."""

    path: str
    name: str
    format: str  # 'cwa' or 'csv'
    n_blocks: int  # CWA data blocks (0 for CSV)
    fs: float  # nominal rate from the header (CWA) or 0 (unknown until read)
    chunks: tuple  # of Chunk; one chunk covering everything = whole-file processing

    @property
    def chunked(self) -> bool:
        """True when the file is processed in more than one chunk."""
        return len(self.chunks) > 1


def _cwa_geometry(path):
    """``(n_blocks, fs)`` from the header and the (uncompressed) size, without reading the data blocks."""
    from ..readers.cwa import parse_header

    with open(path, "rb") as fh:
        compressed = fh.read(2) == b"\x1f\x8b"
    if compressed:
        try:
            with gzip.open(path, "rb") as fh:
                head = fh.read(1024)
        except (OSError, EOFError) as exc:
            raise InputError(path, f"gzip stream is corrupt or truncated ({exc})") from exc
        # ISIZE, the last 4 bytes of a gzip member: the uncompressed size modulo 2**32
        with open(path, "rb") as fh:
            fh.seek(-4, os.SEEK_END)
            size = struct.unpack("<I", fh.read(4))[0]
        if size < len(head) or os.path.getsize(path) > size + (1 << 32):  # multi-member or > 4 GiB: count
            size = 0
            with gzip.open(path, "rb") as fh:
                while block := fh.read(1 << 24):
                    size += len(block)
    else:
        size = os.path.getsize(path)
        with open(path, "rb") as fh:
            head = fh.read(1024)
    header = parse_header(head, path)
    n_blocks = max(0, (size - header["header_bytes"]) // _BLOCK_BYTES)
    fs = float(header.get("configured_fs") or 100.0)
    return n_blocks, fs


def plan_file(path, name, chunk_blocks=DEFAULT_CHUNK_BLOCKS, overlap_s=DEFAULT_OVERLAP_S) -> FilePlan:
    """Split an input into chunks (CWA) or keep it whole (CSV, or a CWA file of at most ``chunk_blocks`` blocks).

    Parameters
    ----------
    path : str
    name : str
        Output name (participant id).
    chunk_blocks : int
        Data blocks owned by each chunk.
    overlap_s : float
        Seconds of data read on each side of a chunk for its features.

    Raises
    ------
    InputError
        Missing, empty or unreadable file, or unknown format.
    """
    from ..readers import detect_format

    path = os.fspath(path)
    fmt = detect_format(path)
    if fmt != "cwa":
        return FilePlan(path, name, fmt, 0, 0.0, (Chunk(0, 0, 0, 0, 0),))
    n_blocks, fs = _cwa_geometry(path)
    if n_blocks == 0:
        raise InputError(path, "no data blocks after the header (file truncated?)")
    chunk_blocks = max(1, int(chunk_blocks))
    overlap = int(math.ceil(overlap_s * fs / _MIN_SAMPLES_PER_BLOCK)) + 2
    n_chunks = max(1, math.ceil(n_blocks / chunk_blocks))
    # equal chunks, so that the last one is not a sliver
    edges = [round(i * n_blocks / n_chunks) for i in range(n_chunks + 1)]
    chunks = tuple(
        Chunk(i, edges[i], edges[i + 1], max(0, edges[i] - overlap), min(n_blocks, edges[i + 1] + overlap))
        for i in range(n_chunks)
    )
    return FilePlan(path, name, "cwa", n_blocks, fs, chunks)
