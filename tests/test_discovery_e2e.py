"""End to end on a tiny cohort: simulated raw CAPTURE-24 CSVs -> features -> split -> train -> report -> predict,
through the command line, and the report rendered by headless chromium."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile

import numpy as np
import pandas as pd
import pytest

from workflows.cli import main

pytestmark = pytest.mark.slow

PIDS = [f"P{i:03d}" for i in range(1, 7)]


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    """6 participants x 1.5 h of raw CSV (with per-sample annotations), their feature files and a split."""
    from capture_pipeline.simulate import simulate_cohort
    from data_dictionary.splits import make_split, write_split
    from workflows.discovery.demo import features_for_folder

    root = tmp_path_factory.mktemp("cohort")
    simulate_cohort(root / "raw", len(PIDS), 1.5, seed=3, format="csv", start="2016-11-14 16:30:00")
    features_for_folder(root / "raw", root / "features", progress=None)
    split = make_split(PIDS, labelled=2, unlabelled=2, test=2, seed=0)
    write_split(split, root / "split.json")
    return root, split


@pytest.fixture(scope="module")
def trained(cohort):
    root, split = cohort
    rc = main(["train", "--features", str(root / "features"), "--annotations", str(root / "raw"),
               "--split", str(root / "split.json"), "--model", "both", "--out", str(root / "run"),
               "--hide", "Running", "Bicycling", "--epochs", "1", "--hidden-units", "32", "--latent", "4",
               "--extra", "3", "--threads", "1"])
    assert rc == 0
    return root, split


def test_train_writes_models_and_window_table(trained):
    root, split = trained
    windows = pd.read_parquet(root / "run" / "windows.parquet")
    assert set(windows["participant"]) == set(PIDS)
    # Labels come from the raw CSVs' annotation column: some windows of labelled participants have a class.
    assert windows.loc[windows["participant"].isin(split.labelled), "label"].notna().sum() > 20
    for name in ("gmdgm", "m2"):
        info = json.loads((root / "run" / name / "run.json").read_text())
        assert info["model"] == name and info["hidden_classes"] == ["Bicycling", "Running"]
        assert len(info["outputs"]) == len(info["classes"]) + 3
        assert (root / "run" / name / "model.pt").is_file()
        n_train = int(windows.loc[windows["participant"].isin(split.labelled + split.unlabelled), "valid"].sum())
        assert info["n_labelled"] + info["n_unlabelled"] == n_train
    # The raw CSV's window labels are cached in the run (never in the data folder) for later runs.
    assert all((root / "run" / "labels" / f"{p}.labels.parquet").is_file() for p in PIDS)
    assert not list((root / "raw").glob("*.labels.parquet"))


@pytest.fixture(scope="module")
def report(trained):
    root, _ = trained
    assert main(["report", str(root / "run"), "--out", str(root / "report"), "--threads", "1"]) == 0
    return root


def test_report_files_are_consistent(report):
    root = report
    metrics = json.loads((root / "report" / "metrics.json").read_text())
    windows = pd.read_parquet(root / "run" / "windows.parquet")
    split = json.loads((root / "run" / "split.json").read_text())
    test_valid = int(windows.loc[windows["participant"].isin(split["test"]), "valid"].sum())
    comp = pd.read_csv(root / "report" / "cluster_composition.csv")
    clusters = pd.read_csv(root / "report" / "clusters.csv")
    for name in ("gmdgm", "m2"):
        m = metrics["models"][name]
        assert m["test_windows"] == test_valid
        for key in ("accuracy_many_to_one_transductive", "accuracy_hungarian_transductive"):
            assert 0.0 <= m[key] <= 1.0
        # Hungarian is one-to-one, so never above many-to-one on the same windows.
        assert m["accuracy_hungarian_transductive"] <= m["accuracy_many_to_one_transductive"] + 1e-12
        ch = m["calinski_harabasz"]
        assert ch["windows"] == test_valid and (np.isnan(ch["latent_space_clusters"]) or ch["latent_space_clusters"] > 0)
        c = comp[comp["model"] == name]
        assert c["windows"].sum() == test_valid
        shares = c.groupby("cluster")["share_of_cluster"].sum()
        np.testing.assert_allclose(shares.to_numpy(), 1.0)
        assert clusters.loc[clusters["model"] == name, "windows"].sum() == test_valid
        per_class = pd.DataFrame(m["per_class"])
        assert per_class["test_windows"].sum() == m["test_windows_with_class"]
    assert metrics["exclusions"]["test"]["kept"] == test_valid
    html = (root / "report" / "report.html").read_text()
    assert html.count('src="data:image/png;base64,') >= 8  # 4+ figures per model, both models
    assert "http://" not in html and "https://" not in html and "<script" not in html  # self-contained


def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    return None


CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.mark.skipif(_chromium() is None, reason="chromium is not installed (apt-get install chromium)")
def test_report_renders_in_headless_chromium(report, tmp_path):
    import matplotlib.image as mpimg

    page = (report / "report" / "report.html").resolve().as_uri()
    profile = tempfile.mkdtemp()
    dom = subprocess.run([_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom", page],
                         capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert "<title>Activity discovery report</title>" in dom.stdout
    assert dom.stdout.count('<img class="figure"') >= 8
    assert "GM-DGM" in dom.stdout and "M2" in dom.stdout
    shot = tmp_path / "report.png"
    run = subprocess.run([_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={tempfile.mkdtemp()}",
                          "--window-size=1400,2400", f"--screenshot={shot}", page],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and shot.is_file(), run.stderr[-2000:]
    pixels = mpimg.imread(shot)[..., :3]
    # The figures were drawn: much of the page is neither white nor one flat colour.
    not_white = (pixels.min(axis=2) < 0.9).mean()
    assert not_white > 0.1, f"only {not_white:.1%} of the screenshot is drawn"
    assert len(np.unique(pixels.reshape(-1, 3).round(2), axis=0)) > 200


def test_predict_with_dask_writes_probabilities_and_daily_time(report, tmp_path):
    root = report
    files = sorted(str(p) for p in (root / "features").glob("*.features.parquet"))[:2]
    assert main(["predict", str(root / "run"), *files, "--out", str(tmp_path / "pred"), "--workers", "1"]) == 0
    info = json.loads((root / "run" / "gmdgm" / "run.json").read_text())
    names = [o["name"] for o in info["outputs"]]
    for f in files:
        pid = os.path.basename(f).split(".")[0]
        pred = pd.read_parquet(tmp_path / "pred" / f"{pid}.predictions.parquet")
        feats = pd.read_parquet(f)
        assert len(pred) == len(feats)
        p = pred.loc[pred["valid"], [f"p_{n}" for n in names]].to_numpy()
        np.testing.assert_allclose(p.sum(1), 1.0, atol=1e-5)
        assert (pred.loc[pred["valid"], "cluster"].to_numpy() == p.argmax(1)).all()
        pc = pred.loc[pred["valid"], [c for c in pred.columns if c.startswith("pc_")]].to_numpy()
        np.testing.assert_allclose(pc.sum(1), 1.0, atol=1e-5)
    daily = pd.read_csv(tmp_path / "pred" / "time_per_cluster.csv")
    total = daily.groupby("participant")["minutes"].sum()
    for f in files:
        pid = os.path.basename(f).split(".")[0]
        assert total[pid] == pytest.approx(len(pd.read_parquet(f)) * 0.5)  # every 30-s window counted once
    summary = json.loads((tmp_path / "pred" / "predict.json").read_text())
    assert summary["ok"] == 2 and summary["failed"] == []


def test_predict_reports_a_bad_file_and_goes_on(report, tmp_path):
    root = report
    good = sorted((root / "features").glob("*.features.parquet"))[0]
    bad = tmp_path / "P099.features.parquet"
    bad.write_bytes(b"garbage")
    rc = main(["predict", str(root / "run"), str(good), str(bad), "--out", str(tmp_path / "pred"), "--workers", "0"])
    assert rc == 1
    summary = json.loads((tmp_path / "pred" / "predict.json").read_text())
    assert summary["ok"] == 1 and "P099.features.parquet" in summary["failed"][0]["error"]


def test_report_of_a_folder_without_models_is_a_clear_error(tmp_path, capsys):
    assert main(["report", str(tmp_path), "--out", str(tmp_path / "r")]) == 2
    assert "no trained model here" in capsys.readouterr().err
