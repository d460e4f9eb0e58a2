"""Read-time and peak-memory benchmark of the CWA reader on a synthetic 7-day, 100 Hz AX3 file.

Usage: python benchmarks/bench_read_cwa.py [--days 7]

The file (about 258 MB, packed ±8 g, clock 1.2 % slow as on real devices) is written once to benchmarks/_work/.
The read runs in a fresh single-threaded process (the reader's kernels are serial; NUMBA_NUM_THREADS=1) after the
Numba kernels are compiled, and reports wall and CPU time (user + system, which includes the page faults of the
fresh output arrays), the process's peak resident memory above its baseline, and that peak over the bytes of the
returned arrays.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import subprocess
import sys
import time

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
WORK = HERE / "_work"


def synthesise(path: pathlib.Path, days: float) -> None:
    from capture_pipeline.cwa_writer import write_cwa

    n = int(days * 86400 * 100 * 0.988)
    t0 = np.datetime64("2024-03-04T10:00:00", "ns").astype(np.int64)
    t = t0 + np.round(np.arange(n) * (1e9 / 98.8)).astype(np.int64)
    rng = np.random.default_rng(0)
    phase = np.arange(n) * (2 * np.pi / (100 * 3600))  # posture changes over hours
    xyz = np.stack([np.sin(phase), np.cos(phase) * 0.6, np.cos(phase) * 0.8], axis=1)
    xyz += rng.normal(0, 0.02, xyz.shape)
    temp = 25 + 5 * np.sin(phase / 24)
    write_cwa(path, t, xyz, temp, fs=100, range_g=8)


CHILD = r"""
import os, sys, time, resource
os.environ.setdefault("NUMBA_NUM_THREADS", "1")
import numpy as np
import capture_pipeline as cp
from capture_pipeline.cwa_writer import write_cwa
def rss_peak():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM"):
            return int(line.split()[1]) * 1024
def rss_now():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) * 1024
# compile the kernels (cached) on a small file first
small = sys.argv[2]
t = np.datetime64("2024-01-01", "ns").astype(np.int64) + np.arange(2400) * 10_000_000
write_cwa(small, t, np.zeros((2400, 3)) + [0, 0, 1])
cp.read(small); cp.read(small, time_mode="reference")
base = rss_now()
with open("/proc/self/clear_refs", "w") as fh:  # reset VmHWM to the current RSS (Linux >= 4.0)
    fh.write("5")
t0, c0 = time.perf_counter(), os.times()
rec = cp.read(sys.argv[1], time_mode=sys.argv[3])
wall, c1 = time.perf_counter() - t0, os.times()
cpu = (c1.user - c0.user) + (c1.system - c0.system)
arrays = rec.time.nbytes + rec.xyz.nbytes + rec.temperature.nbytes
print(wall, rss_peak() - base, arrays, len(rec), cpu)
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=float, default=7.0)
    args = ap.parse_args()
    WORK.mkdir(exist_ok=True)
    path = WORK / f"synthetic_{args.days:g}d.cwa"
    if not path.exists():
        t0 = time.perf_counter()
        synthesise(path, args.days)
        print(f"wrote {path.name}: {path.stat().st_size / 1e6:.0f} MB in {time.perf_counter() - t0:.1f} s")
    env = dict(os.environ, NUMBA_NUM_THREADS="1", OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    print(f"{'time mode':>10} {'wall s':>8} {'cpu s':>6} {'peak MB':>9} {'arrays MB':>10} {'peak/arrays':>12} "
          f"{'samples':>12}")  # fmt: skip
    for mode in ("anchor", "reference"):
        out = subprocess.run(
            [sys.executable, "-c", CHILD, str(path), str(WORK / "small.cwa"), mode],
            capture_output=True, text=True, env=env, check=True,
        ).stdout.split()  # fmt: skip
        wall, peak, arrays, n, cpu = float(out[0]), int(out[1]), int(out[2]), int(out[3]), float(out[4])
        print(f"{mode:>10} {wall:8.2f} {cpu:6.2f} {peak / 1e6:9.0f} {arrays / 1e6:10.0f} {peak / arrays:12.2f} {n:12,d}")


if __name__ == "__main__":
    main()
