"""Throughput of ``capture-pipeline features`` on synthetic week-long CWA files, for 1 and 2 Dask workers.

Usage: python benchmarks/bench_batch.py [--files 2] [--days 7] [--workers 1 2] [--chunk-blocks 72000] [--single]

Writes one synthetic week (AX3 packed, 100 Hz, about 255 MB; postures, walking bouts, nights and a non-wear
afternoon) to benchmarks/_work/batch/ once and copies it under other names. For each worker count it starts a
`distributed.LocalCluster` of single-threaded worker processes (startup not timed), runs the batch into a fresh
folder and prints:

* participant-days per minute (wall clock) and the scaling from 1 to N workers (efficiency = speed-up / N);
* CPU seconds per participant-day (the sum of the tasks' process times: meaningful even when the machine is shared);
* peak resident memory of each worker process (``ru_maxrss``);
* the core-hours for 100,000 week-long files implied by the CPU time.

``--single`` also times one file on N workers (a file's day-chunks spread over workers).
"""

from __future__ import annotations

import argparse
import os
import pathlib
import resource
import shutil
import sys
import time

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
WORK = HERE / "_work" / "batch"


def synthesise(path: pathlib.Path, days: float, seed: int = 0) -> None:
    """A week of wrist data at 100 Hz, written in day pieces' worth of memory (about 3 GB peak)."""
    from capture_pipeline.cwa_writer import write_cwa

    fs = 100.0
    n = int(days * 86400 * fs)
    rng = np.random.default_rng(seed)
    t0 = np.datetime64("2024-03-04T10:00:00", "ns").astype(np.int64)
    sec = np.arange(n, dtype=np.float64) / fs
    time_ns = t0 + np.round(sec * 1e9 * 1.012).astype(np.int64)  # device clock 1.2 % slow
    hour = ((sec / 3600.0) + 10) % 24
    minute = (sec // 60).astype(np.int64)
    # posture changes every few minutes (random orientation per 7-minute slot), still at night
    slots = rng.normal(size=(minute[-1] // 7 + 2, 3))
    slots /= np.linalg.norm(slots, axis=1, keepdims=True)
    g = slots[minute // 7].astype(np.float32)
    xyz = g + rng.normal(0, 0.01, (n, 3)).astype(np.float32)
    del g
    awake = (hour >= 7) & (hour < 23)
    walking = awake & (rng.random(minute[-1] + 1) < 0.15)[minute]
    ph = (2 * np.pi * 1.9 * sec[walking]).astype(np.float32)
    xyz[walking] += 0.5 * np.stack([np.sin(ph), np.cos(ph), np.sin(0.5 * ph)], axis=1)
    del ph, walking
    day = (sec // 86400).astype(np.int64)
    offwrist = (day == 2) & (hour >= 13) & (hour < 16)  # three hours on a table
    xyz[offwrist] = np.float32([0, 0, -1])
    temp = (30 + 3 * np.sin(2 * np.pi * sec / 86400)).astype(np.float32)
    temp[offwrist] = 22
    write_cwa(path, time_ns, xyz, temp, fs=fs, range_g=8, device_id=4242, session_id=seed)


def files(n_files: int, days: float) -> list[str]:
    WORK.mkdir(parents=True, exist_ok=True)
    first = WORK / f"week_{days:g}d_0.cwa"
    if not first.exists():
        tic = time.perf_counter()
        synthesise(first, days)
        print(f"wrote {first} ({first.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - tic:.0f} s")
    out = [str(first)]
    for k in range(1, n_files):
        p = WORK / f"week_{days:g}d_{k}.cwa"
        if not p.exists():
            shutil.copyfile(first, p)
        out.append(str(p))
    return out


def _worker_peak_rss():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _worker_cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def run_once(inputs, workers: int, chunk_blocks: int):
    """Wall time, results and per-worker peak RSS of one batch on a fresh local cluster."""
    from distributed import Client

    from capture_pipeline.batch import JobOptions, local_cluster, run_batch

    out = WORK / f"out_{workers}w_{len(inputs)}f"
    shutil.rmtree(out, ignore_errors=True)
    with local_cluster(workers) as cluster, Client(cluster) as client:
        client.wait_for_workers(workers)
        cpu0 = client.run(_worker_cpu)
        tic = time.perf_counter()
        results = run_batch(inputs, out, JobOptions(), client=client, chunk_blocks=chunk_blocks, progress=False)
        wall = time.perf_counter() - tic
        busy = [v - cpu0[k] for k, v in client.run(_worker_cpu).items()]
        peaks = sorted(client.run(_worker_peak_rss).values())
    bad = [r for r in results if r.status != "done"]
    if bad:
        sys.exit(f"benchmark batch failed: {bad}")
    return wall, results, peaks, out, busy


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=2)
    ap.add_argument("--days", type=float, default=7.0)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--chunk-blocks", type=int, default=72_000)
    ap.add_argument("--single", action="store_true", help="also time one file on the largest worker count")
    args = ap.parse_args(argv)

    inputs = files(args.files, args.days)
    # compile (or load cached) Numba kernels once, outside the timings
    from capture_pipeline.batch import JobOptions, run_batch

    small = WORK / "warmup.cwa"
    if not small.exists():
        synthesise(small, 0.05)
    run_batch([str(small)], WORK / "out_warmup", JobOptions(), workers=0, chunk_blocks=1000, progress=False)

    import json

    print(f"machine: {os.cpu_count()} cores, load average before: {os.getloadavg()[0]:.1f}")
    rows = []
    runs = [(w, inputs) for w in args.workers]
    if args.single:
        runs.append((max(args.workers), inputs[:1]))
    for w, files_in in runs:
        load0 = os.getloadavg()[0]
        wall, results, peaks, out, busy = run_once(files_in, w, args.chunk_blocks)
        days = 0.0
        for r in results:
            with open(out / "_summary" / f"{r.name}.summary.json") as fh:
                days += json.load(fh)["file-duration(days)"]
        cpu = sum(r.seconds for r in results)
        rate = days / (wall / 60)
        rows.append((w, len(files_in), rate))
        print(f"{w} worker(s), {len(files_in)} file(s), {days:.2f} participant-days: wall {wall:.1f} s -> "
              f"{rate:.2f} participant-days/min; CPU {cpu / days:.2f} s per participant-day; "
              f"{sum(r.windows for r in results):,} windows; peak RSS per worker "
              f"{', '.join(f'{p / 2**20:.0f}' for p in peaks)} MiB; load average {load0:.1f} -> "
              f"{os.getloadavg()[0]:.1f}")  # fmt: skip
        # Load-independent view of the parallelism: how evenly the work was spread (1 = perfectly; the speed-up
        # dedicated cores would give is about w * balance), and how much of w cores the workers actually got.
        print(f"    worker CPU seconds {', '.join(f'{b:.1f}' for b in busy)}: balance {sum(busy) / (w * max(busy)):.0%}, "
              f"cores obtained {sum(busy) / wall:.2f} of {w}")  # fmt: skip
        last_cpu_per_day = cpu / days
    base = next((r for w, n, r in rows if w == min(args.workers) and n == len(inputs)), None)
    for w, n, r in rows:
        if base and w != min(args.workers) and n == len(inputs):
            s, w0 = r / base, min(args.workers)
            print(f"scaling {w0} -> {w} workers: {s:.2f}x (efficiency {s / (w / w0):.0%})")
    core_h = 100_000 * 7 * last_cpu_per_day / 3600
    print(f"100,000 week-long files at {last_cpu_per_day:.2f} CPU s per participant-day: {core_h:,.0f} core-hours "
          f"({core_h / 64:,.0f} h on 64 cores)")  # fmt: skip


if __name__ == "__main__":
    main()
