"""Simulated cohort: files (CAPTURE-24 CSV, CWA), determinism, truth, schedule and arguments."""

import gzip
import hashlib
import json
import pathlib
import re
import time

import numpy as np
import pandas as pd
import pytest

import capture_pipeline as cp
from capture_pipeline.simulate import (
    ACTIVITIES,
    NAMES,
    ParticipantTruth,
    all_annotations,
    simulate_cohort,
    simulate_participant,
)
from capture_pipeline.simulate.cohort import write_participant
from capture_pipeline.simulate.csvout import rows_bytes
from capture_pipeline.simulate.person import draw_person
from capture_pipeline.simulate.schedule import daily_schedule
from workflows.cli import main

SHARED = pathlib.Path(__file__).resolve().parents[1].parent / "shared"
CPA = re.compile(r"(?:^|;)\s*(\d{3,5})\s")
MET = re.compile(r";MET ([0-9.]+)$")
TIME = re.compile(rb"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}$")
#: The seed paper's class of each CPA code (spec/capture24.md §7, default mapping file).
PAPER = {"1010": "Bicycling", "16010": "Driving", "13030": "Eating", "16016": "Riding Transport",
         "12150": "Running", "9060": "Sitting", "7030": "Sleep", "17250": "Walking", "17161": "Walking",
         "17270": "Walking", "17082": "Walking"}  # fmt: skip


# ------------------------------------------------------------------------------------------------ annotations


def test_annotations_are_real_capture24_strings_in_the_grammar():
    dictionary = set(pd.read_csv(SHARED / "data/capture24/annotation-label-dictionary.csv")["annotation"])
    spec = (SHARED / "spec/capture24.md").read_text()
    strings = all_annotations()
    assert len(strings) > 25
    for s in strings:
        assert s in dictionary or f"`{s}`" in spec, s  # verbatim, whitespace included
        assert MET.search(s), s
        assert s == s.strip() and "\n" not in s
    # running (12150) is not in the shared 165-row file: it comes from the public dictionary (appendix A)
    assert sum(s not in dictionary for s in strings) == 1


def test_each_paper_class_activity_carries_its_cpa_code():
    from capture_pipeline.simulate.activities import annotation_variants

    for a in ACTIVITIES:
        if a.paper_class is None:
            continue
        contexts = ("default", "home", "work", "commute", "leisure")
        texts = [t for ctx in contexts for t, _ in annotation_variants(a.name, ctx)]
        classes = {PAPER.get(m.group(1)) for t in texts if (m := CPA.search(t))}
        assert a.paper_class in classes, (a.name, classes)


# ------------------------------------------------------------------------------------------------ CSV


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    out = tmp_path_factory.mktemp("cohort")
    table = simulate_cohort(out, 2, 1.0, 5, "both")
    return out, table


def test_csv_is_in_the_capture24_layout(cohort):
    out, _ = cohort
    path = out / "P001.csv.gz"
    with gzip.open(path, "rb") as fh:
        lines = fh.read().split(b"\n")
    assert lines[0] == b"time,x,y,z,annotation"
    assert lines[-1] == b""  # ends with a newline
    rows = lines[1:-1]
    assert 359_000 < len(rows) <= 360_001  # one hour at 100 Hz
    for row in rows[:: len(rows) // 200]:
        fields = row.split(b",", 4)
        assert TIME.match(fields[0]), row
        assert all(re.fullmatch(rb"-?\d\.\d{6}", v) for v in fields[1:4]), row
    # read as the CAPTURE-24 tutorial does
    df = pd.read_csv(path, index_col="time", parse_dates=["time"],
                     dtype={"x": "f4", "y": "f4", "z": "f4", "annotation": "string"})  # fmt: skip
    step = np.diff(df.index.values.astype("datetime64[ns]").astype(np.int64))
    assert (step == 10_000_000).all()  # exactly 100 Hz
    assert df.index[0].second == 0 and df.index[0].microsecond == 0  # starts on a whole minute
    for s in df["annotation"].dropna().unique():
        assert s in all_annotations() and MET.search(s)
    # NA exactly where the truth has no annotation (non-wear, camera gaps)
    truth = ParticipantTruth.load(out / "truth" / "P001.json")
    expected = truth.annotations(df.index.values.astype("datetime64[ns]").astype(np.int64))
    assert (df["annotation"].isna().to_numpy() == pd.isna(expected)).all()
    ok = ~df["annotation"].isna().to_numpy()
    assert (df["annotation"].to_numpy()[ok] == expected[ok]).all()


def test_csv_is_calibrated_and_cwa_is_raw(tmp_path):
    rec, truth = simulate_participant("P011", None, 6, schedule=[("nonwear", 300), ("walking", 60), ("sleep", 300)])
    paths = write_participant(tmp_path, rec, truth, "both")
    csv = cp.read(paths["csv"])
    raw = cp.read(paths["cwa"])
    assert csv.fs == 100.0 and raw.fs == 100.0
    assert len(csv) == pytest.approx(660 * 100, abs=2) and len(raw) == pytest.approx(660 * truth.fs_true, abs=2)

    def still_norms(r, fs):  # |mean acceleration| of 1-s windows without movement
        n = int(fs)
        k = len(r) // n
        xyz = r.xyz[: k * n].reshape(k, n, 3).astype(np.float64)
        still = xyz.std(axis=1).max(axis=1) < 0.012
        return np.linalg.norm(xyz[still].mean(axis=1), axis=1)

    calibrated = still_norms(csv, 100)
    assert len(calibrated) > 250  # non-wear and most of the sleep
    assert np.abs(calibrated - 1).mean() < 0.005  # calibrated: on the unit sphere
    # the raw device file is off the sphere by what the truth's calibration error predicts
    off = np.abs(still_norms(raw, truth.fs_true) - 1).mean()
    nonwear = rec.extra["activity"] == NAMES.index("nonwear")
    expected = abs(np.linalg.norm(rec.xyz[nonwear].mean(axis=0)) - 1)
    assert off > 2 * np.abs(calibrated - 1).mean() and expected > 0.005
    # the CSV is the CWA's data calibrated and resampled to 100 Hz, at the true sample times (the reader's
    # times are within 0.03 ms of them) and apart from temperature (per sample vs per block)
    from_cwa = truth.calibration.apply(raw.xyz, raw.temperature)
    grid = (csv.time - rec.time[0]).astype(np.float64)
    for k in range(3):
        resampled = np.interp(grid, (rec.time - rec.time[0]).astype(np.float64), from_cwa[:, k])
        assert np.abs(resampled - csv.xyz[:, k]).max() < 5e-4


def test_rows_bytes_formatting():
    t = np.datetime64("2016-11-13 23:59:59.99", "ns").astype(np.int64) + np.arange(3) * 10_000_000
    xyz = np.array([[-0.0000001, 1.0, 12.0], [-8.0, 0.5, -0.25], [0.123456789, -1e-7, 7.9999996]])
    text = rows_bytes(t, xyz, np.array([0, 1, 2]), ["7030 sleeping;MET 0.95", "", "a,b"]).decode()
    assert text.split("\n") == [
        "2016-11-13 23:59:59.990000,0.000000,1.000000,9.999999,7030 sleeping;MET 0.95",
        "2016-11-14 00:00:00.000000,-8.000000,0.500000,-0.250000,",
        '2016-11-14 00:00:00.010000,0.123457,0.000000,8.000000,"a,b"',
        "",
    ]


def test_metadata_and_truth_files(cohort):
    out, table = cohort
    meta = pd.read_csv(out / "metadata.csv")
    assert list(meta.columns) == ["pid", "age", "sex"]
    assert list(meta["pid"]) == ["P001", "P002"]
    assert set(meta["age"]) <= {"18-29", "30-37", "38-52", "53+"} and set(meta["sex"]) <= {"F", "M"}
    d = json.loads((out / "truth" / "P002.json").read_text())
    for key in ("calibration_error", "calibration", "fs_true", "bouts", "nonwear", "person", "device_id"):
        assert key in d
    ann = pd.read_csv(out / "annotations" / "P002.csv", keep_default_na=False)
    assert list(ann.columns) == ["start", "end", "annotation"]
    assert len(ann) == len(d["bouts"]) and (ann["start"].iloc[1:].to_numpy() == ann["end"].iloc[:-1].to_numpy()).all()
    top = ["P001.csv.gz", "P002.csv.gz", "annotations", "cwa", "metadata.csv", "truth"]
    assert sorted(p.name for p in out.iterdir()) == top
    assert sorted(p.name for p in (out / "cwa").iterdir()) == ["P001.cwa", "P002.cwa"]
    assert not list(out.rglob("*.partial")) and not list(out.rglob("*.tmp"))


# ------------------------------------------------------------------------------------------------ CWA


def test_cwa_reads_back_as_the_simulated_samples(tmp_path):
    sched = [("running", 90), ("walking", 90), ("nonwear", 60), ("driving", 60)]
    rec, truth = simulate_participant("P009", None, 8, schedule=sched)
    paths = write_participant(tmp_path, rec, truth, "cwa")
    back = cp.read(paths["cwa"])
    assert len(back) == len(rec)
    # packed ±8 g: 10 bits of 4/256 g, so the values are the samples rounded to 1/64 g
    step = 4 / 256
    assert np.abs(back.xyz - rec.xyz).max() <= step / 2 + 1e-6
    np.testing.assert_array_equal(np.round(back.xyz / step), np.round(rec.xyz.astype(np.float64) / step))
    # the device clock is slow; the file's block timestamps carry that
    assert truth.fs_true < 99.9
    assert np.abs(back.time - rec.time).max() < 100_000  # 0.1 ms
    assert back.qc["measured_fs"] == pytest.approx(truth.fs_true, rel=1e-5)
    assert np.abs(back.temperature - rec.temperature).max() < 0.2  # per-block, 0.15 °C steps
    assert back.meta["device_id"] == truth.device_id and back.meta["session_id"] == truth.session_id
    # calibrating the read-back samples with the true coefficients gives 1 g during non-wear
    cal = truth.calibration.apply(back.xyz, back.temperature)
    nonwear = truth.activity_codes(back.time) == NAMES.index("nonwear")
    assert abs(np.linalg.norm(cal[nonwear], axis=1).mean() - 1) < 0.004
    (s, e), = truth.nonwear_intervals()
    assert (back.time[nonwear].min() >= s) and (back.time[nonwear].max() < e)


# ------------------------------------------------------------------------------------------------ determinism


def _digests(folder):
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}  # fmt: skip


def test_same_seed_gives_identical_files(tmp_path):
    a = _digests(simulate_cohort(tmp_path / "a", 2, 0.2, 3, "both") is not None and tmp_path / "a")
    b = _digests(simulate_cohort(tmp_path / "b", 2, 0.2, 3, "both") is not None and tmp_path / "b")
    c = _digests(simulate_cohort(tmp_path / "c", 2, 0.2, 4, "both") is not None and tmp_path / "c")
    assert len(a) == 9 and a == b
    assert all(a[k] != c[k] for k in a if k != "metadata.csv")


def test_a_participant_does_not_depend_on_the_cohort_size():
    r2, t2 = simulate_participant("P002", 0.1, 9)
    r2b, t2b = simulate_participant(2, 0.1, 9, per_sample_annotation=False)
    assert t2.to_dict() == t2b.to_dict()
    np.testing.assert_array_equal(r2.xyz, r2b.xyz)


# ------------------------------------------------------------------------------------------------ truth, schedule


def test_truth_round_trips_and_agrees_with_the_samples(tmp_path):
    rec, truth = simulate_participant("P010", 3.0, 1, start="2016-03-01 07:30")
    truth.save(tmp_path / "t.json")
    back = ParticipantTruth.load(tmp_path / "t.json")
    assert back.to_dict() == truth.to_dict()
    np.testing.assert_array_equal(back.activity_codes(rec.time), rec.extra["activity"])
    ann = back.annotations(rec.time)
    assert (pd.isna(ann) == pd.isna(rec.extra["annotation"])).all()
    assert rec.time[0] == np.datetime64("2016-03-01 07:30", "ns").astype(np.int64)
    np.testing.assert_allclose(np.diff(rec.time[:1000]).mean(), 1e9 / truth.fs_true, rtol=1e-6)
    c = back.calibration_at(30.0)
    t = np.array([30.0, 20.0])
    x = np.array([[0.1, 0.2, 0.9], [0.3, -0.5, 0.7]])
    np.testing.assert_allclose(c.apply(x, t), truth.calibration.apply(x, t), atol=1e-12)


def test_daily_schedule_is_a_plausible_week():
    seconds = dict.fromkeys(NAMES, 0.0)
    total = 0.0
    for k in range(12):
        rng = np.random.default_rng(k)
        person = draw_person(rng)
        bouts = daily_schedule(rng, person, 9 * 3600.0, 7 * 86400.0, weekday0=k % 7)
        assert bouts[0].start_s == 0 and bouts[-1].end_s == pytest.approx(7 * 86400.0)
        assert all(b.end_s == pytest.approx(c.start_s) for b, c in zip(bouts, bouts[1:]))
        nights = [b.duration_s for b in bouts if b.activity == "sleep"]
        assert len(nights) in (7, 8) and 5.5 * 3600 < np.median(nights) < 10 * 3600
        awake = [b.duration_s for b in bouts if b.activity != "sleep"]
        assert 60 < np.median(awake) < 3600  # minutes, not seconds or days
        for b in bouts:
            seconds[b.activity] += b.duration_s
        total += 7 * 86400.0
    share = {k: v / total for k, v in seconds.items()}
    sitting = sum(share[k] for k in ("sitting_desk", "sitting_reading", "sitting_tv", "eating"))
    # CAPTURE-24: sleep and sitting dominate, running is rare
    assert 0.25 < share["sleep"] < 0.45 and 0.3 < sitting < 0.6
    assert 0.02 < share["walking"] < 0.12 and share["running"] < 0.01
    assert share["nonwear"] > 0.005 and share["driving"] + share["bus_train"] > 0.005


# ------------------------------------------------------------------------------------------------ arguments, CLI


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"hours": 0}, "hours"),
        ({"hours": -1}, "hours"),
        ({"hours": "8"}, "hours"),
        ({"hours": None, "schedule": [("flying", 10)]}, "unknown activity"),
        ({"hours": 1, "schedule": [("walking", 10)]}, "either hours or"),
        ({"hours": None, "schedule": [("walking", -5)]}, "positive"),
        ({"hours": 1, "start": pd.Timestamp("2016-01-01", tz="UTC")}, "naive"),
        ({"hours": 1, "start": "yesterday-ish"}, "date-time"),
        ({"hours": 1, "seed": -1}, "seed"),
    ],
)
def test_bad_arguments_are_explained(kwargs, message):
    with pytest.raises(ValueError, match=message):
        simulate_participant("P001", **{"seed": 0, **kwargs})


def test_bad_cohort_arguments_write_nothing(tmp_path):
    with pytest.raises(ValueError, match="format"):
        simulate_cohort(tmp_path / "x", 1, 1.0, 0, "parquet")
    with pytest.raises(ValueError, match="participants"):
        simulate_cohort(tmp_path / "x", 0, 1.0, 0, "csv")
    with pytest.raises(ValueError, match="date-time"):
        simulate_cohort(tmp_path / "x", 1, 1.0, 0, "csv", start="soon")
    assert not (tmp_path / "x").exists()


def test_cli_simulate(tmp_path, capsys):
    assert main(["simulate", "--participants", "1", "--hours", "0.05", "--seed", "2", "--format", "cwa",
                 "--out", str(tmp_path)]) == 0  # fmt: skip
    assert (tmp_path / "cwa" / "P001.cwa").exists() and (tmp_path / "metadata.csv").exists()
    assert "1 participant" in capsys.readouterr().out
    assert main(["simulate", "--hours", "1", "--start", "never", "--out", str(tmp_path / "y")]) == 2
    assert "date-time" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["simulate", "--hours", "-2", "--out", str(tmp_path)])


@pytest.mark.slow
def test_two_days_simulate_fast_enough():
    # the brief: a 7-day participant in under 30 s, i.e. under ~4.3 s of CPU per simulated day (CPU time, so
    # that other jobs on a shared machine do not count)
    simulate_participant("P001", 0.05, 0, per_sample_annotation=False)  # imports and filter design, once
    t = time.process_time()
    rec, truth = simulate_participant("P001", 48.0, 0, per_sample_annotation=False)
    per_day = (time.process_time() - t) / 2
    assert len(rec) == pytest.approx(48 * 3600 * truth.fs_true, abs=2)
    assert per_day < 30 / 7, per_day
