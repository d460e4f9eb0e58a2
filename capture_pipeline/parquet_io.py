"""Parquet files of samples and tables, with metadata and QC in the key-value metadata, written atomically."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .atomic import atomic_path
from .recording import Recording

META_KEY = b"capture_pipeline.meta"
QC_KEY = b"capture_pipeline.qc"


def _json(obj) -> bytes:
    return json.dumps(obj, default=_jsonable, sort_keys=True).encode()


def _jsonable(v):
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    return str(v)


def write_table_atomic(table: pa.Table, path, **kwargs) -> None:
    """Write a pyarrow Table to Parquet under a temporary name, then rename, so no half-written file remains."""
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, **kwargs)


def recording_table(rec: Recording) -> pa.Table:
    """The samples of a Recording as a pyarrow Table (time as naive timestamp[ns]) with meta and QC attached."""
    cols = {
        "time": pa.array(rec.time.view("datetime64[ns]")),
        "x": rec.xyz[:, 0],
        "y": rec.xyz[:, 1],
        "z": rec.xyz[:, 2],
    }
    if rec.temperature is not None:
        cols["temperature"] = rec.temperature
    if rec.gyro is not None:
        cols.update(gx=rec.gyro[:, 0], gy=rec.gyro[:, 1], gz=rec.gyro[:, 2])
    for name, arr in rec.extra.items():
        cols[name] = pa.array(arr, type=pa.string()) if arr.dtype == object else arr
    table = pa.table(cols)
    meta = dict(table.schema.metadata or {})
    meta[META_KEY] = _json({**rec.meta, "fs": rec.fs})
    meta[QC_KEY] = _json(rec.qc)
    return table.replace_schema_metadata(meta)


def write_recording(rec: Recording, path, compression: str = "zstd") -> None:
    """Write a Recording's samples to ``path`` (Parquet), metadata and QC under ``capture_pipeline.*`` keys."""
    write_table_atomic(recording_table(rec), path, compression=compression)


def read_metadata(path) -> tuple[dict, dict]:
    """The ``(meta, qc)`` dicts stored in a Parquet file written by this package."""
    md = pq.read_schema(path).metadata or {}
    return json.loads(md.get(META_KEY, b"{}")), json.loads(md.get(QC_KEY, b"{}"))
