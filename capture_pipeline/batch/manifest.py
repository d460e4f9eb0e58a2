"""Resumability: the fingerprint that says an output was made from this input with these options."""

from __future__ import annotations

import json
import os

#: Parquet key-value metadata key holding the fingerprint of the run that wrote a features file.
BATCH_KEY = b"capture_pipeline.batch"


def input_fingerprint(path) -> dict:
    """Size and modification time (ns) of an input: cheap, and changed by any rewrite of the file."""
    st = os.stat(path)
    return {"size": int(st.st_size), "mtime_ns": int(st.st_mtime_ns)}


def fingerprint(path, options) -> dict:
    """Everything an output depends on: the input's fingerprint, the job options and the package version.

    Parameters
    ----------
    path : str
        The input file.
    options : JobOptions
        The options of the run (chunking and worker counts are not part of it: they do not change the output).
    """
    from .. import __version__

    return {
        "input": os.path.abspath(path),
        **input_fingerprint(path),
        "options": options.as_dict(),
        "version": __version__,
    }


def _normal(obj):
    """Round-trip through JSON so that tuples/lists and numpy scalars compare equal to what was stored."""
    return json.loads(json.dumps(obj, sort_keys=True, default=str))


def stored_fingerprint(parquet_path) -> dict | None:
    """The fingerprint in a features file's metadata, or None (missing, unreadable or written by something else)."""
    import pyarrow.parquet as pq

    try:
        md = pq.read_schema(parquet_path).metadata or {}
        raw = md.get(BATCH_KEY)
        return json.loads(raw) if raw else None
    except (OSError, ValueError, TypeError):
        return None
    except Exception:  # noqa: BLE001 - pyarrow raises its own errors for a damaged file: treat as not done
        return None


def is_done(parquet_path, summary_path, expected: dict) -> bool:
    """Whether both outputs exist and the features file was written from the same input with the same options."""
    if not (os.path.isfile(parquet_path) and os.path.isfile(summary_path)):
        return False
    stored = stored_fingerprint(parquet_path)
    return stored is not None and stored == _normal(expected)
