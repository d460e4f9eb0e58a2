"""`read(path) -> Recording`: one entry point for every supported device file, format detected from content."""

from __future__ import annotations

import gzip
import os

from ..errors import InputError, UnknownFormatError
from ..recording import Recording

#: Formats `read` understands, keyed by the name `detect_format` returns.
FORMATS = ("cwa", "csv", "geneactiv", "gt3x")


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
    """Name of the format of ``path`` ('cwa', 'csv', 'geneactiv' or 'gt3x'), decided from the content, not the name.

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
    head, compressed = _head(path)
    if not head:
        raise InputError(path, "file is empty after decompression")
    if head[:2] == b"MD":
        return "cwa"
    if head[:4] == b"PK\x03\x04":
        if compressed:
            raise UnknownFormatError(path, "a gzip-compressed zip archive; decompress it first")
        return _zip_format(path)
    if head.startswith(b"Device Identity"):
        return "geneactiv"
    if _looks_like_text(head):
        return "csv"
    raise UnknownFormatError(
        path, "content is neither an Axivity CWA file (no 'MD' header) nor a CSV text file"
    )


def _zip_format(path) -> str:
    # a zip is an ActiGraph .gt3x when it holds info.txt and log.bin (or the older activity.bin)
    import zipfile

    try:
        with zipfile.ZipFile(path) as z:
            names = set(z.namelist())
    except zipfile.BadZipFile as exc:
        raise InputError(path, f"starts like a zip (.gt3x) archive but cannot be opened as one ({exc})") from exc
    if "info.txt" in names and ("log.bin" in names or "activity.bin" in names):
        return "gt3x"
    raise UnknownFormatError(path, "a zip archive without info.txt and log.bin/activity.bin, so not an ActiGraph .gt3x")


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
        An Axivity ``.cwa`` file (optionally gzip-compressed), a CSV file (optionally ``.gz``), a GENEActiv ``.bin``
        file (optionally gzip-compressed) or an ActiGraph ``.gt3x`` file.
    format : {'cwa', 'csv', 'geneactiv', 'gt3x'}, optional
        Skip detection and read as this format.
    **options
        Passed to the format's reader: `capture_pipeline.readers.cwa.read_cwa`,
        `capture_pipeline.readers.csv.read_csv`, `capture_pipeline.readers.geneactiv.read_geneactiv` or
        `capture_pipeline.readers.gt3x.read_gt3x`.

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
    if fmt == "geneactiv":
        from .geneactiv import read_geneactiv

        return read_geneactiv(path, **options)
    if fmt == "gt3x":
        from .gt3x import read_gt3x

        return read_gt3x(path, **options)
    raise UnknownFormatError(path, f"unknown format {fmt!r}; supported: {', '.join(FORMATS)}")
