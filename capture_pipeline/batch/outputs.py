"""Output files of a batch and how they are written: atomically, and so that ``read_parquet(DIR)`` works.

Layout of the output directory ``DIR``::

    DIR/<name>.features.parquet        one per input: the feature table (+ participant, nonwear columns)
    DIR/_summary/<name>.summary.json   one per input: the per-file summary
    DIR/_batch.csv                     every input of the last run: status, error, seconds, windows

pyarrow's dataset discovery (used by ``pandas.read_parquet(DIR)`` and ``dask.dataframe.read_parquet(DIR)``) reads
every file under DIR as Parquet except names starting with ``_`` or ``.``; a plain ``batch.csv`` or
``<name>.summary.json`` beside the Parquet files makes ``pandas.read_parquet(DIR)`` fail. Hence the ``_`` names.
Temporary files are hidden (``.<name>....tmp``) and renamed into place when complete.
"""

from __future__ import annotations

import glob
import os

from ..atomic import atomic_path

SUMMARY_DIR = "_summary"
BATCH_CSV = "_batch.csv"
PARTICIPANT_KEY = b"capture_pipeline.participant"
CALIBRATION_KEY = b"capture_pipeline.calibration"


def features_path(out_dir, name) -> str:
    return os.path.join(out_dir, f"{name}.features.parquet")


def summary_path(out_dir, name) -> str:
    return os.path.join(out_dir, SUMMARY_DIR, f"{name}.summary.json")


def features_table(features, name, meta, qc, calibration, fingerprint):
    """The feature table as a pyarrow Table: a ``participant`` column first, metadata under ``capture_pipeline.*``."""
    import pyarrow as pa

    from ..parquet_io import META_KEY, QC_KEY, _json
    from .manifest import BATCH_KEY

    table = pa.Table.from_pandas(features, preserve_index=False)
    participant = pa.DictionaryArray.from_arrays(pa.array([0] * len(features), pa.int32()), pa.array([name]))
    table = table.add_column(0, "participant", participant)
    md = {
        META_KEY: _json({**meta, "participant": name}),
        QC_KEY: _json(qc),
        PARTICIPANT_KEY: name.encode(),
        CALIBRATION_KEY: _json(calibration.to_dict()),
        BATCH_KEY: _json(fingerprint),
    }
    return table.replace_schema_metadata(md)


def write_parquet_atomic(table, path) -> None:
    """Write under a hidden temporary name in the same folder, fsync, then rename into place."""
    import pyarrow.parquet as pq

    with atomic_path(path, fsync=True) as tmp:
        pq.write_table(table, tmp, compression="zstd")


def write_outputs(out_dir, name, features, summary, meta, qc, calibration, fingerprint) -> None:
    """Write the summary, then the features file (whose fingerprint marks the input as done)."""
    from ..summary import write_summary

    os.makedirs(os.path.join(out_dir, SUMMARY_DIR), exist_ok=True)
    write_summary(summary_path(out_dir, name), summary)
    table = features_table(features, name, meta, qc, calibration, fingerprint)
    write_parquet_atomic(table, features_path(out_dir, name))


def remove_stale_temporaries(out_dir) -> int:
    """Delete temporary files a killed run left (hidden ``.*.tmp`` of our outputs); returns how many.

    Run it only while no other batch writes to the same directory.
    """
    n = 0
    patterns = [os.path.join(out_dir, ".*.features.parquet.*.tmp"), os.path.join(out_dir, f".{BATCH_CSV}.*.tmp"),
                os.path.join(out_dir, SUMMARY_DIR, ".*.summary.json.*.tmp")]  # fmt: skip
    for pattern in patterns:
        for path in glob.glob(pattern):
            try:
                os.unlink(path)
                n += 1
            except FileNotFoundError:
                pass
    return n


def write_batch_csv(out_dir, rows) -> str:
    """Write the batch log (``input, name, status, error, seconds, windows``) atomically; returns its path."""
    import csv

    path = os.path.join(out_dir, BATCH_CSV)
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["input", "name", "status", "error", "seconds", "windows"])
            for r in rows:
                sec = "" if r.get("seconds") is None else f"{r['seconds']:.3f}"
                win = "" if r.get("windows") is None else str(r["windows"])
                w.writerow([r["input"], r.get("name", ""), r["status"], r.get("error") or "", sec, win])
    return path


def read_participant(parquet_path) -> str | None:
    """The participant id stored in a features file's metadata."""
    import pyarrow.parquet as pq

    md = pq.read_schema(parquet_path).metadata or {}
    raw = md.get(PARTICIPANT_KEY)
    return raw.decode() if raw else None


__all__ = ["features_path", "summary_path", "write_outputs", "remove_stale_temporaries", "write_batch_csv",
           "read_participant"]  # fmt: skip
