"""File-to-feature-table benchmark: a synthetic 7-day, 100 Hz AX3 .cwa file to the 126 features per 30-s window.

Usage: python benchmarks/bench_features.py [--days 7] [--mode chunked|whole|both] [--threads N] [--clock wall|cpu]

The file (packed ±8 g, clock 1.2 % slow as on real devices, ~255 MB) is written once to benchmarks/_work/. Its
signal alternates rest, sleep, sitting movement and walking bouts, with posture changes and a slowly varying
temperature, so every kernel does representative work (quantile selection and FFT cost do not depend on the values,
but the resampler and the clip checks see realistic sample timing).

Each mode runs in a fresh process after the Numba kernels are compiled (on a small file), and reports wall time per
stage and the peak resident memory of the process (absolute, and above its baseline after imports):

* ``chunked`` (the way to run at scale): the file is read one day of blocks at a time
  (``read(path, blocks=(a, b))``) and fed to one `FeatureExtractor`, whose carried state makes the result identical
  to one pass; memory stays at about one day of samples;
* ``whole``: ``read(path)`` then ``extract_features(recording)``; memory holds the whole week of samples (~1.4 GB
  for time, xyz and temperature alone).

Stage times are wall-clock. The process CPU time (all threads) is printed too: on a shared machine the wall time
depends on the other jobs, the CPU time much less; wall time on an idle machine is about CPU time / threads.

Calibration is off (identity coefficients) so that only feature extraction is timed; the fit is a separate stage.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
WORK = HERE / "_work"
TRUE_FS = 98.8  # real AX3 clocks run ~1.2 % slow


def synthesise(path: pathlib.Path, days: float, seed: int = 0) -> None:
    """Write a `days`-long AX3 file with minute-by-minute activity states (float32 synthesis, ~3 GB while writing)."""
    from capture_pipeline.cwa_writer import write_cwa

    rng = np.random.default_rng(seed)
    n = int(days * 86400 * TRUE_FS)
    t0 = np.datetime64("2024-03-04T10:00:00", "ns").astype(np.int64)
    time = t0 + np.round(np.arange(n) * (1e9 / TRUE_FS)).astype(np.int64)
    secs = (np.arange(n, dtype=np.float64) / TRUE_FS).astype(np.float32)
    minute = (np.arange(n) // int(60 * TRUE_FS)).astype(np.int64)
    n_min = int(minute[-1]) + 1
    hour_of_day = (10 + np.arange(n_min) / 60.0) % 24
    night = (hour_of_day >= 23) | (hour_of_day < 7)
    # per-minute state: 0 rest, 1 sitting movement, 2 walking; nights are rest
    state = rng.choice(3, size=n_min, p=[0.45, 0.4, 0.15])
    state[night] = 0
    # per-minute orientation (unit gravity vector), changing every few minutes
    orient = rng.normal(size=(n_min // 5 + 1, 3))
    orient /= np.linalg.norm(orient, axis=1, keepdims=True)
    orient = np.repeat(orient, 5, axis=0)[:n_min].astype(np.float32)
    xyz = orient[minute]
    st = state[minute]
    amp = np.array([0.0, 0.08, 0.45], np.float32)[st]
    freq = np.array([0.0, 0.7, 1.9], np.float32)[st]
    for a, phase in enumerate((0.0, 1.3, 2.1)):
        xyz[:, a] += amp * np.sin(2 * np.pi * freq * secs + phase) * (1.0, 0.6, 0.4)[a]
    del secs, amp, freq
    xyz += rng.normal(0, 0.01, size=xyz.shape).astype(np.float32)
    temp = (25 + 4 * np.sin(np.arange(n_min) * (2 * np.pi / 1440)))[minute].astype(np.float32)
    write_cwa(path, time, xyz, temp, fs=100, range_g=8)


CHILD = r"""
import json, os, sys, time
import numpy as np
import numba
mode, path, small, threads, clock = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
numba.set_num_threads(threads)
import capture_pipeline as cp
from capture_pipeline.features import FeatureExtractor, extract_features
import capture_pipeline.features.extract as extract_module
if clock == "cpu":  # stage times as process CPU time (all threads) instead of wall time
    import types
    extract_module.time = types.SimpleNamespace(perf_counter=time.process_time)
stage_clock = time.process_time if clock == "cpu" else time.perf_counter

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) * 1024

# compile (or load cached) kernels on a small file
extract_features(cp.read(small), calibrate=False)
base = status("VmRSS")
with open("/proc/self/clear_refs", "w") as fh:  # reset the peak (VmHWM) to the current RSS
    fh.write("5")
stages = {"read": 0.0}
cpu0 = time.process_time()
t_all = time.perf_counter()
if mode == "whole":
    tic = stage_clock()
    rec = cp.read(path)
    stages["read"] += stage_clock() - tic
    fx = FeatureExtractor()
    table = fx.update(rec)
    n_samples = len(rec)
    del rec
else:
    n_blocks = (os.path.getsize(path) - 1024) // 512
    per_day = 86400 * 100 // 120
    fx = FeatureExtractor()
    tables = []
    n_samples = 0
    for a in range(0, n_blocks, per_day):
        tic = stage_clock()
        rec = cp.read(path, blocks=(a, a + per_day))
        stages["read"] += stage_clock() - tic
        n_samples += len(rec)
        tables.append(fx.update(rec))
        del rec
    tic = stage_clock()
    import pandas as pd
    table = pd.concat(tables, ignore_index=True)
    stages["concat"] = stage_clock() - tic
wall = time.perf_counter() - t_all
cpu = time.process_time() - cpu0
stages.update(fx.timings)
load = os.getloadavg()[0]
print(json.dumps({"mode": mode, "clock": clock, "wall_s": wall, "cpu_s": cpu, "load": load, "stages": stages, "windows": len(table), "samples": n_samples,
                  "peak_rss": status("VmHWM"), "base_rss": base, "threads": threads,
                  "finite": bool(np.isfinite(table.drop(columns="time").to_numpy(dtype=float)).all())}))
"""


def run_child(mode, path, small, threads, clock):
    out = subprocess.run([sys.executable, "-c", CHILD, mode, str(path), str(small), str(threads), clock],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def report(r):
    gb = 1024**3
    print(f"\n== mode {r['mode']}: {r['samples']:,} samples -> {r['windows']:,} windows, {r['threads']} threads")
    print(f"   wall {r['wall_s']:.2f} s, CPU {r['cpu_s']:.2f} s (all threads; 1-min load average at the end "
          f"{r['load']:.1f} on {os.cpu_count()} CPUs); peak RSS {r['peak_rss'] / gb:.2f} GB "
          f"({(r['peak_rss'] - r['base_rss']) / gb:.2f} GB above the {r['base_rss'] / gb:.2f} GB after imports)")
    print(f"   stage times ({'CPU time, all threads' if r['clock'] == 'cpu' else 'wall time'}):")
    for k, v in r["stages"].items():
        print(f"   {k:12s} {v:6.2f} s")
    print(f"   all features finite: {r['finite']}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=float, default=7)
    ap.add_argument("--mode", choices=["chunked", "whole", "both"], default="both")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                    help="measure stages in wall time or in process CPU time (robust on a shared machine)")
    args = ap.parse_args()
    WORK.mkdir(exist_ok=True)
    path = WORK / f"features_{args.days:g}d.cwa"
    small = WORK / "features_small.cwa"
    if not small.exists():
        synthesise(small, 0.01, seed=1)
    if not path.exists():
        print(f"writing {path} ...", flush=True)
        synthesise(path, args.days)
    print(f"file {path.name}: {path.stat().st_size / 1e6:.0f} MB")
    for mode in (["chunked", "whole"] if args.mode == "both" else [args.mode]):
        report(run_child(mode, path, small, args.threads, args.clock))


if __name__ == "__main__":
    main()
