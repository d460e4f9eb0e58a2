"""Run a batch: serially in this process, on a local Dask cluster, or on an existing Dask scheduler.

The three give identical outputs: every file goes through the same plain functions of `job`; Dask only decides
where and when they run. Files are submitted a few at a time (twice the number of worker threads in flight), so
100,000 inputs never become millions of tasks on the scheduler at once.
"""

from __future__ import annotations

import os
import sys
import time
from collections import deque
from dataclasses import dataclass

from . import job
from .inputs import assign_names, expand_inputs
from .manifest import fingerprint, is_done
from .outputs import features_path, remove_stale_temporaries, summary_path, write_batch_csv
from .plan import DEFAULT_CHUNK_BLOCKS, DEFAULT_OVERLAP_S, plan_file

#: Environment of local Dask worker processes: one thread each, so N workers use N cores (Numba's and BLAS's
#: own thread pools would otherwise each take every core).
WORKER_ENV = {"NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
CSV_EVERY_S = 30.0
#: Memory a worker needs for a day chunk of a 100 Hz file (measured peak 0.6-0.9 GB), with headroom.
WORKER_MEMORY = 1.5 * 2**30


@dataclass
class FileResult:
    """One row of ``_batch.csv``."""

    input: str
    name: str
    status: str  # 'done', 'skipped' or 'failed'
    error: str | None = None
    seconds: float | None = None  # CPU seconds spent on the file (all its tasks)
    windows: int | None = None

    def row(self) -> dict:
        return dict(self.__dict__)


def run_file(plan, opts, fp, out_dir, on_chunk=None) -> dict:
    """All steps of one file in this process (the serial path); ``on_chunk()`` is called per finished chunk."""
    if not plan.chunked:
        res = job.process_whole(plan, opts, fp, out_dir)
        if on_chunk:
            on_chunk()
        return res
    t0 = job.file_origin(plan, opts)
    scans = [job.scan_chunk(plan, i, opts, t0) for i in range(len(plan.chunks))]
    prep = job.prepare_file(plan, opts, t0, scans)
    parts = []
    for i in range(len(plan.chunks)):
        parts.append(job.feature_chunk(plan, i, opts, prep))
        if on_chunk:
            on_chunk()
    return job.finish_file(plan, opts, fp, out_dir, scans, prep, parts)


def submit_file(client, plan, opts, fp, out_dir):
    """Submit one file's task graph; returns ``(final future, chunk futures)`` (the same one for a whole file)."""
    tag = f"{plan.name}-{os.urandom(4).hex()}"
    if not plan.chunked:
        fin = client.submit(job.process_whole, plan, opts, fp, out_dir, key=f"whole-{tag}")
        return fin, [fin]
    k = range(len(plan.chunks))
    t0 = client.submit(job.file_origin, plan, opts, key=f"origin-{tag}")
    scans = [client.submit(job.scan_chunk, plan, i, opts, t0, key=f"scan-{tag}-{i}") for i in k]
    prep = client.submit(job.prepare_file, plan, opts, t0, scans, key=f"prepare-{tag}")
    feats = [client.submit(job.feature_chunk, plan, i, opts, prep, key=f"features-{tag}-{i}") for i in k]
    fin = client.submit(job.finish_file, plan, opts, fp, out_dir, scans, prep, feats, key=f"finish-{tag}")
    return fin, feats


class _Progress:
    """tqdm bar over chunks (a whole file counts one), with files and windows done and the windows rate."""

    def __init__(self, total_chunks, n_files, enabled):
        self.bar = None
        self.n_files = n_files
        self.files = self.failed = self.windows = 0
        self.start = time.perf_counter()
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=total_chunks, unit="chunk", dynamic_ncols=True, smoothing=0.05)
            self._postfix()

    def _postfix(self):
        if self.bar is not None:
            rate = self.windows / max(1e-9, time.perf_counter() - self.start)
            self.bar.set_postfix_str(f"files {self.files}/{self.n_files}, failed {self.failed}, "
                                     f"windows {self.windows:,} ({rate:,.0f}/s)", refresh=False)  # fmt: skip

    def chunk(self, n=1):
        if self.bar is not None:
            self.bar.update(n)

    def file(self, result: FileResult):
        self.files += 1
        self.failed += result.status == "failed"
        self.windows += result.windows or 0
        self._postfix()
        if self.bar is not None:
            self.bar.refresh()

    def write(self, line):
        if self.bar is not None:
            self.bar.write(line, file=sys.stderr)
        else:
            print(line, file=sys.stderr, flush=True)

    def close(self):
        if self.bar is not None:
            self.bar.close()


def run_batch(
    inputs,
    out_dir,
    options: job.JobOptions | None = None,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    client=None,
    chunk_blocks: int = DEFAULT_CHUNK_BLOCKS,
    overlap_s: float = DEFAULT_OVERLAP_S,
    progress: bool | None = None,
    log=None,
) -> list[FileResult]:
    """Compute features, non-wear and summary for many recordings; skip those already done.

    Parameters
    ----------
    inputs : iterable of str
        Files, directories and glob patterns (see `inputs.expand_inputs`).
    out_dir : str
        Output directory (created); see `outputs` for its layout.
    options : JobOptions
        Epoch length, calibration and non-wear handling.
    workers : int, optional
        0: run serially in this process, no Dask. N > 0: a local Dask cluster of N single-threaded worker
        processes. None (default): `default_workers` (one per core, at most one per 1.5 GB of memory). Ignored
        with ``scheduler`` or ``client``.
    scheduler : str, optional
        Address of a running Dask scheduler (``tcp://host:8786``); its workers must see ``out_dir`` and the inputs
        at the same paths.
    client : distributed.Client, optional
        Use this client (e.g. one of a dask-jobqueue cluster).
    chunk_blocks, overlap_s
        Chunking of CWA files (`plan.plan_file`); they do not change the results.
    progress : bool, optional
        Show a tqdm bar; default: when stderr is a terminal.
    log : callable, optional
        Called with one line per failed file (default: written to stderr).

    Returns
    -------
    list of FileResult
        One per input, in input order; also written to ``out_dir/_batch.csv``.
    """
    options = options or job.JobOptions()
    # absolute paths: Dask workers may run in other folders (and on other machines sharing the file system)
    out_dir = os.path.abspath(os.fspath(out_dir))
    os.makedirs(out_dir, exist_ok=True)
    remove_stale_temporaries(out_dir)
    if progress is None:
        progress = sys.stderr.isatty()

    results: list[FileResult | None] = []
    todo = []  # (index, plan, fingerprint, path as given)
    for path, name, problem in assign_names(expand_inputs(inputs)):
        i = len(results)
        if problem:
            results.append(FileResult(path, name, "failed", problem))
            continue
        try:
            fp = fingerprint(path, options)
        except OSError as exc:
            results.append(FileResult(path, name, "failed", f"cannot read file: {exc.strerror or exc}"))
            continue
        if is_done(features_path(out_dir, name), summary_path(out_dir, name), fp):
            results.append(FileResult(path, name, "skipped"))
            continue
        try:
            plan = plan_file(os.path.abspath(path), name, chunk_blocks=chunk_blocks, overlap_s=overlap_s)
        except Exception as exc:  # noqa: BLE001 - any planning failure is this file's failure
            results.append(FileResult(path, name, "failed", job.describe(exc)))
            continue
        results.append(None)
        todo.append((i, plan, fp, path))

    bar = _Progress(sum(len(e[1].chunks) for e in todo), len(todo), progress)
    bar.failed = sum(r is not None and r.status == "failed" for r in results)
    say = log or bar.write
    for r in results:
        if r is not None and r.status == "failed":
            say(f"FAILED {r.input}: {r.error}")

    def record(i, res: FileResult):
        results[i] = res
        bar.file(res)
        if res.status == "failed":
            say(f"FAILED {res.input}: {res.error}")

    last_csv = [time.monotonic()]
    unfinished = {i: (given, plan.name) for i, plan, _, given in todo}

    def checkpoint(force=False):
        if force or time.monotonic() - last_csv[0] > CSV_EVERY_S:
            write_batch_csv(out_dir, [_row(r, unfinished, k) for k, r in enumerate(results)])
            last_csv[0] = time.monotonic()

    try:
        if client is None and scheduler is None and workers == 0:
            _run_serial(todo, options, out_dir, bar, record, checkpoint)
        elif todo:
            _run_dask(todo, options, out_dir, bar, record, checkpoint, workers, scheduler, client)
    finally:
        bar.close()
        checkpoint(force=True)
    return results


def _row(r, unfinished, k):
    if r is not None:
        return r.row()
    path, name = unfinished[k]
    return FileResult(path, name, "failed", "interrupted before this file finished; rerun to complete").row()


def _run_serial(todo, options, out_dir, bar, record, checkpoint):
    for i, plan, fp, given in todo:
        try:
            res = run_file(plan, options, fp, out_dir, on_chunk=bar.chunk)
            record(i, FileResult(given, plan.name, "done", None, res["seconds"], res["windows"]))
        except job.FileError as exc:
            record(i, FileResult(given, plan.name, "failed", str(exc)))
        checkpoint()


def default_workers() -> int:
    """One worker per core, but no more than the memory holds at `WORKER_MEMORY` each."""
    from distributed.system import MEMORY_LIMIT

    return max(1, min(os.cpu_count() or 1, int(MEMORY_LIMIT // WORKER_MEMORY)))


def local_cluster(workers=None, **kwargs):
    """A `distributed.LocalCluster` of single-threaded worker processes (default: `default_workers`)."""
    import logging

    from distributed import LocalCluster

    n = workers or default_workers()
    return LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None,
                        silence_logs=logging.ERROR, env=dict(WORKER_ENV), **kwargs)  # fmt: skip


def _run_dask(todo, options, out_dir, bar, record, checkpoint, workers, scheduler, client):
    from distributed import Client, as_completed

    cluster = own_client = None
    if client is None:
        if scheduler is not None:
            client = own_client = Client(scheduler)
        else:
            cluster = local_cluster(workers)
            client = own_client = Client(cluster)
    try:
        pending = deque(todo)
        ac = as_completed()
        what = {}  # future key -> (kind, todo entry)
        counted = {}  # file index -> chunks counted on the bar
        inflight = set()

        def limit():
            return max(2, 2 * sum(client.nthreads().values()))

        def submit_some():
            while pending and len(inflight) < limit():
                entry = pending.popleft()
                i, plan, fp, _ = entry
                fin, chunks = submit_file(client, plan, options, fp, out_dir)
                counted[i] = 0
                inflight.add(i)
                for f in chunks:
                    if f is not fin:
                        what[f.key] = ("chunk", entry)
                        ac.add(f)
                what[fin.key] = ("file", entry)
                ac.add(fin)

        submit_some()
        for fut in ac:
            kind, (i, plan, fp, given) = what.pop(fut.key)
            if kind == "chunk":
                if fut.status == "finished":
                    counted[i] += 1
                    bar.chunk()
                continue
            if fut.status == "finished":
                res = fut.result()
                record(i, FileResult(given, plan.name, "done", None, res["seconds"], res["windows"]))
            else:
                record(i, FileResult(given, plan.name, "failed", _future_error(fut)))
            bar.chunk(len(plan.chunks) - counted.pop(i))
            inflight.discard(i)
            del fut
            submit_some()
            checkpoint()
    finally:
        if own_client is not None:
            own_client.close()
        if cluster is not None:
            cluster.close()


def _future_error(fut) -> str:
    try:
        exc = fut.exception()
    except Exception as err:  # noqa: BLE001 - e.g. the exception itself could not be deserialised
        return job.describe(err)
    if type(exc).__name__ == "KilledWorker":
        return "a worker died while processing this file (out of memory or crashed); see the worker logs"
    if type(exc).__name__ == "CancelledError":
        return "cancelled (the Dask cluster went away?)"
    return job.describe(exc)
