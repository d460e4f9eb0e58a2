"""Chunked processing of a CWA file gives the whole-file results: calibration, QC, summary and features."""

import gzip
import json
import shutil

import numpy as np
import pandas as pd
import pytest
from test_batch_data import write_synthetic_cwa, write_synthetic_csv

import capture_pipeline as cp
from capture_pipeline.batch import job
from capture_pipeline.batch.calibrate import (
    chunk_window_sums,
    fit_from_points,
    merge_window_sums,
    stationary_points_from_sums,
)
from capture_pipeline.batch.manifest import fingerprint
from capture_pipeline.batch.plan import plan_file
from capture_pipeline.batch.runner import run_file
from capture_pipeline.calibration_fit import fit_calibration, stationary_points



@pytest.fixture(scope="module")
def cwa_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("chunks") / "p.cwa"
    write_synthetic_cwa(path, minutes=150, gap_at_min=70)
    return path


def _sums_in_chunks(rec, edges):
    t0 = int(rec.time[0])
    parts = [chunk_window_sums(rec.time[a:b], rec.xyz[a:b], rec.temperature[a:b], t0, 8.0)
             for a, b in zip(edges[:-1], edges[1:])]  # fmt: skip
    return merge_window_sums(parts, t0, 8.0, True)


@pytest.mark.parametrize("step", [997, 1000, 2500, 77_777])
def test_window_sums_merge_exactly(cwa_file, step):
    # steps shorter than a 10-s window (1000 samples) make runs that span two or three chunks
    rec = cp.read(cwa_file)
    whole = _sums_in_chunks(rec, [0, len(rec)])
    edges = list(range(0, len(rec), step)) + [len(rec)]
    merged = _sums_in_chunks(rec, edges)
    assert len(merged[0]) == len(whole[0]) > 800
    for a, b in zip(whole, merged):
        np.testing.assert_array_equal(a, b)


def test_points_and_fit_equal_calibration_fit(cwa_file):
    rec = cp.read(cwa_file)
    t0 = int(rec.time[0])
    edges = list(range(0, len(rec), 12_345)) + [len(rec)]
    sums = _sums_in_chunks(rec, edges)
    pts = stationary_points_from_sums(sums, t0, rec.fs, True)
    ref = stationary_points(rec)
    assert pts.keys() == ref.keys()
    for k in ref:
        np.testing.assert_array_equal(pts[k], ref[k], err_msg=k)
    ours, theirs = fit_from_points(pts, True), fit_calibration(rec)
    assert ours == theirs and ours.info == theirs.info
    assert theirs.info["applied"] and theirs.info["n_stationary_points"] > 500


def _run(path, out, chunk_blocks, name, **opts):
    options = job.JobOptions(**opts)
    plan = plan_file(str(path), name, chunk_blocks=chunk_blocks, overlap_s=60)
    res = run_file(plan, options, fingerprint(str(path), options), str(out))
    return plan, res


def _outputs(out, name):
    df = pd.read_parquet(out / f"{name}.features.parquet").drop(columns="participant")
    with open(out / "_summary" / f"{name}.summary.json") as fh:
        summary = json.load(fh)
    for k in ("participant", "batch-chunks"):
        summary.pop(k)
    return df, summary


def assert_same_features(a, b):
    """Bit-identical, every column (the features' DFTs do not depend on how windows are batched)."""
    assert list(a.columns) == list(b.columns) and len(a) == len(b)
    pd.testing.assert_frame_equal(a, b, check_exact=True)


@pytest.mark.parametrize("chunk_blocks", [700, pytest.param(2222, marks=pytest.mark.slow)])
def test_chunked_file_equals_whole_file(cwa_file, tmp_path, chunk_blocks):
    plan_w, res_w = _run(cwa_file, tmp_path, 10**9, "whole")
    plan_c, res_c = _run(cwa_file, tmp_path, chunk_blocks, "chunked")
    assert len(plan_w.chunks) == 1 and len(plan_c.chunks) == -(-plan_c.n_blocks // chunk_blocks)
    assert res_w["windows"] == res_c["windows"] > 280
    fw, sw = _outputs(tmp_path, "whole")
    fc, sc = _outputs(tmp_path, "chunked")
    assert_same_features(fw, fc)
    assert sw == sc  # summary: calibration, QC, gaps, data and wear time all identical
    assert sw["calibration-applied"] and sw["errs-gaps-num"] == 1 and sw["wearTime-numNonWearEpisodes(>1hr)"] == 1
    assert fc["nonwear"].sum() > 100 and fc.loc[fc["nonwear"], "enmoTrunc"].isna().all()
    # the same window grid and window count as extract_features on the whole recording
    ref = cp.features.extract_features(cp.read(cwa_file))
    assert_same_features(ref, fw.drop(columns="nonwear").where(~fw["nonwear"], ref, axis=0))


@pytest.mark.slow
def test_corrupt_blocks_and_gzip_chunked(cwa_file, tmp_path):
    bad = tmp_path / "bad.cwa"
    shutil.copy(cwa_file, bad)
    with open(bad, "r+b") as fh:  # break the checksums of blocks 500 and 1201 (the second at a chunk edge)
        for b in (500, 1201):
            fh.seek(1024 + 512 * b + 100)
            fh.write(b"\xff\x00\xff")
    gz = tmp_path / "bad.cwa.gz"
    with open(bad, "rb") as src, gzip.open(gz, "wb") as dst:
        dst.write(src.read())
    assert plan_file(str(gz), "g").n_blocks == plan_file(str(bad), "b").n_blocks
    _run(bad, tmp_path, 10**9, "whole")
    _run(gz, tmp_path, 600, "gz")
    fw, sw = _outputs(tmp_path, "whole")
    fg, sg = _outputs(tmp_path, "gz")
    assert sw["blocks-corrupt"] == 2 and sw["blocks-corruptIndices"] == [500, 1201]
    assert_same_features(fw, fg)
    differ = {k for k in sw if sw[k] != sg[k]}
    assert differ == {"file-name", "file-path", "file-size(bytes)"}, differ


def test_calibration_options(cwa_file, tmp_path):
    _run(cwa_file, tmp_path, 10**9, "off_w", calibrate=False)
    _run(cwa_file, tmp_path, 700, "off_c", calibrate=False)
    user = {"offset": [0.1, 0, 0], "gain": [1, 1, 1], "temp_coef": [0, 0, 0], "mean_temp": 20.0}
    _run(cwa_file, tmp_path, 700, "user", calibration=user, calibration_path="c.json")
    fw, sw = _outputs(tmp_path, "off_w")
    fc, sc = _outputs(tmp_path, "off_c")
    fu, su = _outputs(tmp_path, "user")
    assert_same_features(fw, fc)
    assert sw == sc and sw["calibration-source"] == "off" and not sw["calibration-applied"]
    assert su["calibration-source"] == "user" and su["calibration-xOffset(g)"] == 0.1
    assert not np.allclose(fu["xMean"], fc["xMean"])
    np.testing.assert_allclose(fu["xMean"].dropna() - fc["xMean"].dropna(), 0.1, atol=1e-6)


def test_csv_input_whole_path(tmp_path):
    path = tmp_path / "c.csv"
    write_synthetic_csv(path, minutes=12)
    plan, res = _run(path, tmp_path, 10, "c")
    assert plan.format == "csv" and not plan.chunked
    df, summary = _outputs(tmp_path, "c")
    assert res["windows"] == len(df) == 24  # 12 min * 1.004 (slow clock) = 24.1 windows; the partial one is not written
    assert summary["file-format"] == "csv"


def test_sequential_fallback_equals_parallel_chunks(cwa_file, tmp_path):
    # used when a backward time step across a chunk boundary would make the chunks' window ranges overlap
    options = job.JobOptions()
    plan = plan_file(str(cwa_file), "seq", chunk_blocks=1500, overlap_s=60)
    t0 = job.file_origin(plan, options)
    scans = [job.scan_chunk(plan, i, options, t0) for i in range(len(plan.chunks))]
    prep = job.prepare_file(plan, options, t0, scans)
    assert not prep["sequential"] and len(plan.chunks) == 5
    parallel = pd.concat([job.feature_chunk(plan, i, options, prep)["table"] for i in range(5)], ignore_index=True)
    seq_parts = [job.feature_chunk(plan, i, options, {**prep, "sequential": True}) for i in range(5)]
    assert [len(p["table"]) for p in seq_parts][1:] == [0, 0, 0, 0]
    assert_same_features(parallel, seq_parts[0]["table"])
