"""`capture-pipeline demo` end to end with a very small cohort (the default one is exercised by `make demo`)."""

from __future__ import annotations

import json

import pytest

from workflows.cli import main

pytestmark = pytest.mark.slow


def test_demo_runs_and_prints_where_the_report_is(tmp_path, capsys):
    out = tmp_path / "demo"
    rc = main(["demo", "--out", str(out), "--participants", "6", "--hours", "1.5", "--epochs", "1",
               "--max-minutes", "0.2", "--threads", "1"])
    assert rc == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last == f"report: {(out / 'report' / 'report.html').resolve()}"
    for name in ("report.html", "metrics.json", "cluster_composition.csv", "clusters.csv"):
        assert (out / "report" / name).is_file()
    metrics = json.loads((out / "report" / "metrics.json").read_text())
    assert set(metrics["models"]) == {"gmdgm", "m2"}
    assert len(list((out / "cohort").glob("*.features.parquet"))) == 6
    split = json.loads((out / "split.json").read_text())
    assert len(split["labelled"]) + len(split["unlabelled"]) + len(split["test"]) == 6
