"""Batch feature extraction: many recordings to per-file feature tables and summaries, on Dask or serially.

>>> from capture_pipeline.batch import run_batch, JobOptions                     # doctest: +SKIP
>>> results = run_batch(["data/*.cwa"], "out", JobOptions(epoch_s=30), workers=4)  # doctest: +SKIP

See `runner.run_batch` and the ``capture-pipeline features`` command.
"""

from .job import JobOptions
from .outputs import BATCH_CSV, SUMMARY_DIR, features_path, summary_path
from .runner import FileResult, local_cluster, run_batch

__all__ = ["run_batch", "JobOptions", "FileResult", "local_cluster", "features_path", "summary_path", "BATCH_CSV",
           "SUMMARY_DIR"]  # fmt: skip
