"""The batch runner and the ``features`` command: failures, resuming, readers, Dask clusters, being killed."""

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from test_batch_data import write_synthetic_cwa, write_synthetic_csv

from capture_pipeline.batch import JobOptions, run_batch
from capture_pipeline.batch.inputs import assign_names, expand_inputs
from capture_pipeline.batch.manifest import BATCH_KEY
from workflows.cli import main

CHUNK = "900"  # blocks per chunk: the 150-min test files are cut into 9 chunks


@pytest.fixture(scope="module")
def good_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("inputs")
    write_synthetic_cwa(d / "p1.cwa", minutes=150, seed=1, gap_at_min=70)
    write_synthetic_cwa(d / "p2.cwa", minutes=100, seed=2)
    write_synthetic_csv(d / "p3.csv", minutes=15, seed=3)
    return d


def _inputs(tmp_path, good_files, bad=True):
    d = tmp_path / "in"
    shutil.copytree(good_files, d)
    if bad:
        with open(good_files / "p2.cwa", "rb") as fh:  # a CWA header followed by garbage: no valid data block
            head = fh.read(1024)
        (d / "corrupt.cwa").write_bytes(head + os.urandom(512 * 40))
        (d / "empty.cwa").write_bytes(b"")
    return d


def _log(out):
    with open(out / "_batch.csv", newline="") as fh:
        return {os.path.basename(r["input"]): r for r in csv.DictReader(fh)}


def _features(out):
    return {n: pd.read_parquet(out / f"{n}.features.parquet") for n in ("p1", "p2", "p3")}


def _summaries(out):
    """The summaries, less the input's folder (``file-path``), which differs when the inputs were copied."""
    out = {n: json.loads((out / "_summary" / f"{n}.summary.json").read_text()) for n in ("p1", "p2", "p3")}
    for s in out.values():
        assert s.pop("file-path").endswith(s["file-name"])
    return out


def assert_same_outputs(a, b):
    fa, fb = _features(a), _features(b)
    for n in fa:
        pd.testing.assert_frame_equal(fa[n], fb[n], check_exact=True)
    assert _summaries(a) == _summaries(b)


@pytest.fixture(scope="module")
def serial_out(tmp_path_factory, good_files):
    """The reference: the three good files through the serial path."""
    out = tmp_path_factory.mktemp("serial")
    rc = main(["features", str(good_files), "--out", str(out), "--workers", "0", "--chunk-blocks", CHUNK, "--quiet"])
    assert rc == 0
    return out


def test_bad_files_listed_exit_nonzero_rerun_skips(tmp_path, good_files, serial_out, capsys):
    d = _inputs(tmp_path, good_files)
    out = tmp_path / "out"
    args = ["features", str(d), "--out", str(out), "--workers", "0", "--chunk-blocks", CHUNK]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert err.count("FAILED") == 2 and "empty.cwa: file is empty (0 bytes)" in err
    log = _log(out)
    assert {k: v["status"] for k, v in log.items()} == {
        "p1.cwa": "done", "p2.cwa": "done", "p3.csv": "done", "corrupt.cwa": "failed", "empty.cwa": "failed"}
    assert "none of the 40 data blocks is valid" in log["corrupt.cwa"]["error"]
    assert log["empty.cwa"]["error"] == "file is empty (0 bytes)"
    assert int(log["p1.cwa"]["windows"]) == 296 and float(log["p1.cwa"]["seconds"]) > 0
    assert not (out / "corrupt.features.parquet").exists() and not (out / "_summary" / "empty.summary.json").exists()
    assert_same_outputs(serial_out, out)

    assert main(args + ["--quiet"]) == 1  # rerun: the good ones are skipped, the bad ones fail again
    log = _log(out)
    assert [log[k]["status"] for k in ("p1.cwa", "p2.cwa", "p3.csv")] == ["skipped"] * 3
    assert log["corrupt.cwa"]["status"] == "failed"

    os.utime(d / "p2.cwa", ns=(time.time_ns(), time.time_ns()))  # touched input: recomputed
    assert main(args[:1] + [str(d / "p1.cwa"), str(d / "p2.cwa")] + args[2:] + ["--quiet"]) == 0
    assert [r["status"] for r in _log(out).values()] == ["skipped", "done"]
    assert main(args[:1] + [str(d / "p1.cwa")] + args[2:] + ["--quiet", "--epoch-s", "10"]) == 0
    assert _log(out)["p1.cwa"]["status"] == "done"  # other options: recomputed
    assert 3 * 296 - 3 <= pq.read_metadata(out / "p1.features.parquet").num_rows <= 3 * 296 + 3


def test_dataset_reads_in_one_call(serial_out):
    files = _features(serial_out)
    both = pd.read_parquet(serial_out)
    assert len(both) == sum(len(f) for f in files.values()) == 296 + 200 + 30
    assert set(both["participant"].astype(str)) == {"p1", "p2", "p3"}
    import dask.dataframe as dd

    lazy = dd.read_parquet(str(serial_out))
    assert len(lazy.compute()) == len(both) and "enmoTrunc" in lazy.columns
    md = pq.read_schema(serial_out / "p1.features.parquet").metadata
    meta = json.loads(md[b"capture_pipeline.meta"])
    assert meta["participant"] == "p1" and meta["device_id"] == 1001 and meta["format"] == "cwa"
    assert json.loads(md[BATCH_KEY])["options"]["epoch_s"] == 30.0
    assert json.loads(md[b"capture_pipeline.qc"])["gap_count"] == 1
    # non-wear: the 72 flat minutes of p1 are flagged and masked
    p1 = files["p1"]
    assert 130 <= p1["nonwear"].sum() <= 150 and p1.loc[p1["nonwear"], "xMean"].isna().all()


def test_keep_nonwear_and_names(tmp_path, good_files):
    out = tmp_path / "o"
    rc = main(["features", str(good_files / "p3.csv"), str(good_files / "p2.cwa"), "--out", str(out), "--workers",
               "0", "--keep-nonwear", "--no-calibrate", "--quiet", "--timezone", "Europe/London",
               "--chunk-blocks", CHUNK])  # fmt: skip
    assert rc == 0
    s = json.loads((out / "_summary" / "p3.summary.json").read_text())
    assert s["calibration-source"] == "off" and s["options"]["nonwear"] == "kept"
    assert s["options"]["timezone"] == "Europe/London"
    df = pd.read_parquet(out)
    assert str(df["time_local"].dt.tz) == "Europe/London" and len(df) == 200 + 30
    # 1 March, GMT: local = UTC = the naive device clock
    assert (df["time_utc"].dt.tz_localize(None) == df["time"]).all()
    qc = json.loads(pq.read_schema(out / "p2.features.parquet").metadata[b"capture_pipeline.qc"])
    assert qc["timezone"]["timezone"] == "Europe/London" and qc["timezone"]["dst_transitions"] == []
    assert main(["features", str(good_files), "--out", str(out), "--timezone", "Mars/Olympus"]) == 2
    a = tmp_path / "a"
    b = tmp_path / "b"
    a.mkdir(), b.mkdir()
    (a / "x.cwa").write_bytes(b"1"), (b / "x.CWA.gz").write_bytes(b"2"), (a / "notes.txt").write_text("")
    named = assign_names(expand_inputs([str(a), str(b / "*.gz"), str(a / "x.cwa")]))
    assert [(os.path.basename(p), n, bool(e)) for p, n, e in named] == [("x.cwa", "x", False), ("x.CWA.gz", "x", True)]


@pytest.mark.slow
def test_local_cluster_two_processes_same_as_serial(tmp_path, good_files, serial_out):
    out = tmp_path / "dask"
    results = run_batch([str(good_files)], out, JobOptions(), workers=2, chunk_blocks=int(CHUNK), progress=False)
    assert [r.status for r in results] == ["done"] * 3
    assert_same_outputs(serial_out, out)


def _dask_cli():
    return os.path.join(os.path.dirname(sys.executable), "dask")


@pytest.mark.slow
def test_separate_scheduler_and_worker_processes_same_as_serial(tmp_path, good_files, serial_out):
    sf = tmp_path / "scheduler.json"
    env = dict(os.environ, NUMBA_NUM_THREADS="1")
    sched = subprocess.Popen([_dask_cli(), "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                              "--scheduler-file", str(sf)], env=env, stderr=subprocess.DEVNULL)  # fmt: skip
    work = None
    try:
        for _ in range(600):
            if sf.exists() and sf.stat().st_size:
                break
            time.sleep(0.1)
        address = json.loads(sf.read_text())["address"]
        assert address.startswith("tcp://127.0.0.1:")
        work = subprocess.Popen([_dask_cli(), "worker", address, "--nworkers", "2", "--nthreads", "1", "--host",
                                 "127.0.0.1", "--no-dashboard"], env=env, stderr=subprocess.DEVNULL)  # fmt: skip
        from distributed import Client

        with Client(address) as c:
            c.wait_for_workers(2, timeout=120)
        out = tmp_path / "remote"
        rc = main(["features", str(good_files), "--out", str(out), "--scheduler", address, "--chunk-blocks", CHUNK,
                   "--quiet"])  # fmt: skip
        assert rc == 0
        assert_same_outputs(serial_out, out)
    finally:
        for p in (work, sched):
            if p is not None:
                p.terminate()
                p.wait(timeout=60)


def _leftovers(out):
    return [f for root, _, files in os.walk(out) for f in files if f.endswith(".tmp") or ".partial" in f]


@pytest.mark.parametrize("sig", [signal.SIGTERM, pytest.param(signal.SIGKILL, marks=pytest.mark.slow)])
def test_killed_midway_then_rerun_completes(tmp_path, good_files, serial_out, sig):
    d = tmp_path / "in"
    d.mkdir()
    for k in range(4):  # p1 four times under other names: enough work to be caught in the middle
        shutil.copy(good_files / "p1.cwa", d / f"k{k}.cwa")
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "workflows.cli", "features", str(d), "--out", str(out), "--workers", "0",
           "--chunk-blocks", CHUNK, "--quiet"]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=os.path.dirname(os.path.dirname(__file__)), stderr=subprocess.PIPE)
    deadline = time.time() + 240
    while time.time() < deadline and not (out / "k0.features.parquet").exists():
        time.sleep(0.05)
    assert (out / "k0.features.parquet").exists(), proc.stderr.read().decode() if proc.poll() is not None else ""
    time.sleep(0.5)  # into the next file
    proc.send_signal(sig)
    rc = proc.wait(timeout=120)
    assert rc == (143 if sig == signal.SIGTERM else -9)
    done = sorted(p.name for p in out.glob("*.features.parquet"))
    assert 1 <= len(done) < 4
    if sig == signal.SIGTERM:
        assert _leftovers(out) == []  # the handler unwinds: temporaries removed, log written
        log = _log(out)
        assert log["k0.cwa"]["status"] == "done" and log["k3.cwa"]["status"] == "failed"
        assert "interrupted" in log["k3.cwa"]["error"]
    for name in done:  # whatever was written is complete
        pq.read_table(out / name)
    assert len(pd.read_parquet(out)) == 296 * len(done)  # hidden temporaries never confuse the readers

    rc = subprocess.run(cmd, cwd=os.path.dirname(os.path.dirname(__file__)), timeout=600).returncode
    assert rc == 0 and _leftovers(out) == []
    statuses = [r["status"] for r in _log(out).values()]
    assert statuses.count("skipped") == len(done) and statuses.count("done") == 4 - len(done)
    ref = pd.read_parquet(serial_out / "p1.features.parquet").drop(columns="participant")
    for k in range(4):
        got = pd.read_parquet(out / f"k{k}.features.parquet").drop(columns="participant")
        pd.testing.assert_frame_equal(got, ref, check_exact=True)
    np.testing.assert_array_equal(pd.read_parquet(out)["participant"].astype(str).unique(), ["k0", "k1", "k2", "k3"])


def test_other_device_formats_are_batch_inputs(tmp_path):
    from capture_pipeline.batch.inputs import expand_inputs, output_name

    for name in ("a.cwa", "b.csv.gz", "c.bin", "d.bin.gz", "e.gt3x", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    found = [os.path.basename(p) for p in expand_inputs([str(tmp_path)])]
    assert found == ["a.cwa", "b.csv.gz", "c.bin", "d.bin.gz", "e.gt3x"]
    assert [output_name(p) for p in found] == ["a", "b", "c", "d", "e"]
