"""Per-file summary (capture_pipeline.summary): real AX3 files from ../shared and a simulated week."""

import json
import os
import pathlib

import numpy as np
import pandas as pd
import pytest

import capture_pipeline
from capture_pipeline.calibration import CalibrationCoefficients
from capture_pipeline.recording import Recording
from capture_pipeline.summary import collate_summaries, summarise, summary_path, write_summary

SHARED = pathlib.Path(__file__).resolve().parents[1].parent / "shared"
REAL = SHARED / "data" / "real"
AX3 = REAL / "ax3_testfile.cwa"
AX3_CORRUPT = REAL / "ax3_testfile_corrupt_blocks_0_13_14_142_143_144.cwa"
GOLDEN = SHARED / "data" / "golden" / "ax3_testfile.features.csv"

#: Keys every summary has (values may be null), so that summaries of many files collate into one table.
REQUIRED = [
    "file-name", "file-size(bytes)", "device-type", "device-id", "device-sessionId", "file-startTime",
    "file-endTime", "sampleRate-nominal(Hz)", "sampleRate-measured(Hz)", "samples", "blocks-corrupt",
    "errs-gaps-num", "errs-gaps-total(s)", "clips-samples", "calibration-applied", "calibration-errsBefore(mg)",
    "calibration-errsAfter(mg)", "calibration-xOffset(g)", "calibration-zSlope(g)", "calibration-yTemp(C)",
    "calibration-numStaticPoints", "quality-goodCalibration", "quality-calibrationTooFewPoints",
    "wearTime-overall(days)", "nonWearTime-overall(days)", "wearTime-numNonWearEpisodes(>1hr)",
    "wearTime-hourOfDay0-(hrs)", "dataTime-hourOfDay23-(hrs)", "quality-all24HoursCovered(data)",
    "quality-all24HoursCovered(wear)", "quality-goodWearTime", "software-version", "options",
]  # fmt: skip

def hours_of_day(summary, prefix):
    return [summary[f"{prefix}-hourOfDay{h}-(hrs)"] for h in range(24)]


needs_real = pytest.mark.skipif(not AX3.exists(), reason="../shared/data/real not available")


@pytest.fixture(scope="module")
def ax3():
    return capture_pipeline.read(AX3)


@needs_real
def test_real_ax3_summary_is_complete_and_correct(ax3, tmp_path):
    golden = pd.read_csv(GOLDEN, skipinitialspace=True)  # the reference's 5 windows of this file
    s = summarise(ax3, features=golden, options={"calibrate": True})
    for key in REQUIRED:
        assert key in s, key
    # facts from the file itself and from spec/cwa.md §4, §7.4 (header table, measured rate, first sample)
    assert s["file-name"] == "ax3_testfile.cwa" and s["file-size(bytes)"] == os.path.getsize(AX3) == 75264
    assert s["file-format"] == "cwa" and s["device-type"] == "AX3"
    assert s["device-id"] == 39434 and s["device-sessionId"] == 26 and s["device-firmware"] == 44
    assert s["device-range(g)"] == 8 and s["sampleRate-nominal(Hz)"] == 100.0
    assert s["sampleRate-measured(Hz)"] == pytest.approx(98.862, abs=0.002)
    assert s["file-startTime"].startswith("2019-02-26T10:55:05.98")
    assert s["file-endTime"].startswith("2019-02-26T10:58:01.98")
    assert s["file-firstDay(0=mon,6=sun)"] == 1  # a Tuesday
    assert s["samples"] == 145 * 120 and s["blocks"] == 145 and s["blocks-corrupt"] == 0
    assert s["errs-gaps-num"] == 0 and s["errs-gaps-total(s)"] == 0.0
    # the reader counts samples at full scale (7.984 g is the largest packed AX3 value at ±8 g): 4 in this file;
    # the reference's per-window count needs |a| >= 8 g, which packed data never reach
    assert s["clips-samples"] == int(np.any(np.abs(ax3.xyz) >= 8 - 1 / 64, axis=1).sum()) == 4
    assert s["clips-beforeCalibration"] == 0 and s["clips-afterCalibration"] == 0  # golden QC columns
    # 3 minutes of data: 18 ten-second windows at most, too few to calibrate; identity kept and said so
    assert s["calibration-applied"] is False and s["quality-calibrationTooFewPoints"] is True
    assert s["quality-goodCalibration"] is False and "too few stationary points" in s["calibration-reason"]
    assert s["calibration-xOffset(g)"] == 0.0 and s["calibration-zSlope(g)"] == 1.0
    assert s["calibration-numStaticPoints"] <= 18
    # coverage: ~176 s recorded, all in hour 10 of the day; 5 windows of the reference, all worn
    data_hours = hours_of_day(s, "dataTime")
    assert len(data_hours) == 24 and data_hours[10] == pytest.approx(17400 / 98.862 / 3600, rel=1e-3)
    assert sum(data_hours) == data_hours[10] and s["dataTime-diurnalHrs"] == 1
    assert s["quality-all24HoursCovered(data)"] is False
    assert s["features-windows"] == 5 and s["wearTime-numNonWearEpisodes(>1hr)"] == 0
    assert s["wearTime-overall(days)"] == pytest.approx(5 * 30 / 86400, abs=1e-6)
    assert s["nonWearTime-overall(days)"] == 0.0
    assert s["wearTime-hourOfDay10-(hrs)"] == pytest.approx(2.5 / 60, abs=1e-6)
    assert s["wearTime-Tuesday(hrs)"] == pytest.approx(2.5 / 60, abs=1e-4) and s["wearTime-Monday(hrs)"] == 0
    assert s["quality-goodWearTime"] is False
    assert s["software-version"] == capture_pipeline.__version__ and s["options"] == {"calibrate": True}
    assert s["nonWear-minDuration(min)"] == 60.0 and s["nonWear-stationarySD(g)"] == 0.013
    # written atomically and readable back as the same dict
    out = summary_path(AX3, tmp_path)
    assert out == str(tmp_path / "ax3_testfile.summary.json")
    write_summary(out, s)
    assert json.loads(pathlib.Path(out).read_text()) == s
    assert os.listdir(tmp_path) == ["ax3_testfile.summary.json"]
    # many summaries collate into one table, a row per file
    other = tmp_path / "other.summary.json"
    write_summary(other, {**s, "file-name": "other.cwa", "options": {"calibrate": False}})
    table = collate_summaries([out, other])
    assert table["file-name"].tolist() == ["ax3_testfile.cwa", "other.cwa"]
    assert table["options.calibrate"].tolist() == [True, False] and table["device-id"].tolist() == [39434] * 2
    with pytest.raises(capture_pipeline.InputError, match="cannot read summary"):
        collate_summaries([tmp_path / "missing.summary.json"])


@needs_real
def test_real_corrupt_file_summary_reports_blocks_and_gap():
    rec = capture_pipeline.read(AX3_CORRUPT)
    s = summarise(rec)
    # spec features.md §8.5: blocks 0, 13, 14, 142, 143, 144 corrupt; 139 valid blocks of 120 samples
    assert s["blocks-corrupt"] == 6 and s["blocks-corruptIndices"] == [0, 13, 14, 142, 143, 144]
    assert s["samples"] == 139 * 120 == 16680 and s["blocks-read"] == 139
    # blocks 13-14 missing: one gap of about 2 × 120 samples / 98.86 Hz
    assert s["errs-gaps-num"] == 1 and s["errs-gaps-total(s)"] == pytest.approx(240 / 98.86, abs=0.02)
    # without features the wear keys are present but null
    assert s["wearTime-overall(days)"] is None and s["quality-goodWearTime"] is None
    assert s["calibration-source"] == "fitted"


@needs_real
def test_real_ax6_summary():
    path = REAL / "ax6_testfile.cwa"
    s = summarise(capture_pipeline.read(path))
    # spec/cwa.md §4 header table; 1024-byte header + 512-byte blocks of 40 six-axis samples
    assert s["device-type"] == "AX6" and s["device-id"] == 6011834 and s["device-sessionId"] == 993
    assert s["device-firmware"] == 54 and s["gyro-available"] is True and s["temperature-available"] is True
    blocks = (os.path.getsize(path) - 1024) // 512
    assert s["blocks"] == blocks == 283 and s["samples"] == 40 * blocks and s["blocks-corrupt"] == 0
    assert s["sampleRate-measured(Hz)"] == pytest.approx(99.033, abs=0.01)  # cwa.md §7.4
    assert s["file-startTime"].startswith("2019-12-23T21:04:06") and s["file-firstDay(0=mon,6=sun)"] == 0
    assert s["quality-calibrationTooFewPoints"] is True and s["calibration-applied"] is False


@needs_real
@pytest.mark.parametrize(
    "name, start",  # first time stamps of the files: unix 1551178506.0000 and '2019-12-23 21:04:06.690'
    [("ax3_testfile_unix_timestamps.csv", "2019-02-26T10:55:06.000"),
     ("ax6_testfile_formatted_timestamps.csv", "2019-12-23T21:04:06.690")],
)  # fmt: skip
def test_real_csv_summary(name, start):
    s = summarise(capture_pipeline.read(REAL / name))
    for key in REQUIRED:
        assert key in s, key
    lines = (REAL / name).read_text().strip().splitlines()
    assert s["file-format"] == "csv" and s["samples"] == len(lines) == 210
    assert s["file-startTime"].startswith(start)
    assert s["blocks"] is None and s["device-id"] is None and s["temperature-available"] is False
    assert s["sampleRate-measured(Hz)"] == pytest.approx(99, abs=0.3)
    json.dumps(s, allow_nan=False)


def test_simulated_week_wear_statistics(tmp_path):
    from test_nonwear import simulated_week

    features, truth = simulated_week()
    # a 1-Hz recording spanning the same week (the summary reads only its time stamps and metadata here)
    n = 7 * 86400
    rec = Recording(
        time=np.datetime64("2019-03-04T00:00:00", "ns").astype(np.int64) + np.arange(n, dtype=np.int64) * 10**9,
        xyz=np.zeros((n, 3), np.float32),
        fs=1.0,
        meta={"format": "csv", "path": str(tmp_path / "week.csv")},
    )
    cal = CalibrationCoefficients(
        offset=(0.01, -0.02, 0.0), gain=(1.01, 0.99, 1.0), info={"source": "user", "applied": True}
    )
    s = summarise(rec, features=features, calibration=cal, options={"min_nonwear_minutes": 60})
    assert s["wearTime-numNonWearEpisodes(>1hr)"] == 4
    assert [e["duration(min)"] for e in s["wearTime-nonWearEpisodes"]] == [120.0, 300.0, 61.0, 90.0]
    assert s["nonWearTime-overall(days)"] == pytest.approx(truth.sum() * 30 / 86400, abs=1e-6)
    assert s["wearTime-overall(days)"] == pytest.approx((len(truth) - truth.sum()) * 30 / 86400, abs=1e-6)
    assert s["wearTime-Monday(hrs)"] == 22.0 and s["wearTime-Wednesday(hrs)"] == 19.0
    assert s["wearTime-Sunday(hrs)"] == 24.0
    assert s["wearTime-diurnalHrs"] == 24 and s["quality-all24HoursCovered(wear)"] is True
    assert s["quality-goodWearTime"] is True
    assert hours_of_day(s, "dataTime") == [7.0] * 24 and hours_of_day(s, "wearTime")[12] == 6.0
    assert hours_of_day(s, "wearTime")[14] == 6.5 and hours_of_day(s, "wearTime")[3] == 7.0
    assert s["quality-all24HoursCovered(data)"] is True
    assert s["file-firstDay(0=mon,6=sun)"] == 0
    assert s["calibration-xOffset(g)"] == 0.01 and s["calibration-ySlope(g)"] == 0.99
    assert s["calibration-applied"] is True and s["calibration-source"] == "user"
    # the 'nonwear' column, when present, is used as given
    flagged = features.assign(nonwear=False)
    assert summarise(rec, features=flagged, calibration=cal)["nonWearTime-overall(days)"] == 0.0


def test_write_summary_leaves_nothing_on_failure(tmp_path):
    path = tmp_path / "x.summary.json"
    with pytest.raises(TypeError):
        write_summary(path, {"bad": object()})
    assert os.listdir(tmp_path) == []
    write_summary(path, {"a": float("nan"), "b": np.int64(3), "c": np.array([1.5, np.inf])})
    assert json.loads(path.read_text()) == {"a": None, "b": 3, "c": [1.5, None]}
