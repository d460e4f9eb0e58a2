"""`read(path) -> Recording`: one entry point for every supported device file, format detected from content."""

from __future__ import annotations

import gzip
import os

from ..errors import InputError, UnknownFormatError
from ..recording import Recording

#: Formats `read` understands, keyed by the name `detect_format` returns.
FORMATS = ("cwa", "csv")


def _head(path, n: int = 4096) -> tuple[bytes, bool]:
    """The first ``n`` bytes of the (decompressed) content and whether the file is gzip-compressed."""
    with open(path, "rb") as fh:
        raw = fh.read(n)
    if raw[:2] == b"\x1f\x8b":
        try:
            with gzip.open(path, "rb") as fh:
                return fh.read(n), True
        except (OSError, EOFError) as exc:
            raise InputError(path, f"gzip-compressed but cannot be decompressed ({exc})") from exc
    return raw, False


def detect_format(path) -> str:
    """Name of the format of ``path`` ('cwa' or 'csv'), decided from the content, not the file name.

    Raises
    ------
    InputError
        The file does not exist or is empty.
    UnknownFormatError
        The content matches no supported format.
    """
    if not os.path.exists(path):
        raise InputError(path, "file not found")
    if os.path.isdir(path):
        raise InputError(path, "is a directory, not a recording file")
    if os.path.getsize(path) == 0:
        raise InputError(path, "file is empty (0 bytes)")
    head, _ = _head(path)
    if not head:
        raise InputError(path, "file is empty after decompression")
    if head[:2] == b"MD":
        return "cwa"
    if head[:4] == b"PK\x03\x04":
        raise UnknownFormatError(path, "looks like an ActiGraph .gt3x (zip) file, which this version cannot read")
    if head.startswith(b"Device Identity"):
        raise UnknownFormatError(path, "looks like a GENEActiv .bin file, which this version cannot read")
    if _looks_like_text(head):
        return "csv"
    raise UnknownFormatError(
        path, "content is neither an Axivity CWA file (no 'MD' header) nor a CSV text file"
    )


def _looks_like_text(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    try:
        text = head.decode("utf-8", errors="strict")
    except UnicodeDecodeError:
        # a multi-byte character may be cut at the end of the sample
        try:
            text = head[:-4].decode("utf-8", errors="strict")
        except UnicodeDecodeError:
            return False
    printable = sum(c.isprintable() or c in "\r\n\t" for c in text)
    return printable >= 0.99 * len(text) and ("," in text or "\t" in text or ";" in text)


def read(path, format: str | None = None, **options) -> Recording:
    """Read a device file into a `Recording`.

    Parameters
    ----------
    path : str or os.PathLike
        An Axivity ``.cwa`` file (optionally gzip-compressed) or a CSV file (optionally ``.gz``).
    format : {'cwa', 'csv'}, optional
        Skip detection and read as this format.
    **options
        Passed to the format's reader: `capture_pipeline.readers.cwa.read_cwa` or
        `capture_pipeline.readers.csv.read_csv`.

    Returns
    -------
    Recording

    Raises
    ------
    capture_pipeline.InputError
        Naming the file and the problem, for any input that cannot be read.
    """
    path = os.fspath(path)
    fmt = format or detect_format(path)
    if fmt == "cwa":
        from .cwa import read_cwa

        return read_cwa(path, **options)
    if fmt == "csv":
        from .csv import read_csv

        return read_csv(path, **options)
    raise UnknownFormatError(path, f"unknown format {fmt!r}; supported: {', '.join(FORMATS)}")
