"""Time zones: naive device clock to UTC/local time, DST policies, local days of 23/25 hours, convert --timezone."""

import warnings

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

import capture_pipeline as cp
from capture_pipeline import timezone as tz
from capture_pipeline.simulate.participant import simulate_participant
from workflows.cli import main

H = 3_600_000_000_000
LONDON = "Europe/London"


def naive(s, n=1, step_s=60.0):
    t0 = np.datetime64(s, "ns").astype(np.int64)
    return t0 + np.round(np.arange(n) * step_s * 1e9).astype(np.int64)


@pytest.fixture(scope="module")
def spring():
    """A simulated recording (25 Hz, 48 h) across the UK spring change of 2024-03-31 01:00 UTC, fixed device clock."""
    rec, _ = simulate_participant(1, hours=48, start="2024-03-30 12:00", fs=25.0, per_sample_annotation=False,
                                  clock_error=False)  # fmt: skip
    return rec


def test_simulated_recording_over_spring_change_has_a_23_hour_day(spring):
    utc, off, qc = tz.localise_recording(spring, LONDON)
    assert qc["clock"] == "fixed" and qc["clock_offset_s"] == 0 and qc["clock_offset_source"] == "zone"
    assert [t["utc"] for t in qc["dst_transitions"]] == ["2024-03-31T01:00:00.000000000"]
    assert np.array_equal(utc, spring.time)  # a GMT clock: UTC is the clock itself, continuous
    assert off[0] == 0 and off[-1] == 3600
    days = tz.local_days(utc, LONDON, interval_s=1 / 25)
    assert list(days.index.astype(str)) == ["2024-03-30", "2024-03-31", "2024-04-01"]
    d = days.loc[np.datetime64("2024-03-31")]
    assert d.length_h == 23.0 and bool(d.dst_change) and bool(d.complete)
    assert d.n == 23 * 3600 * 25 and d.covered_h == pytest.approx(23.0)
    assert str(d.end_utc) == "2024-03-31 23:00:00+00:00"
    assert days.dst_change.sum() == 1 and days.length_h.tolist() == [24.0, 23.0, 24.0]
    # local wall clock jumps from 00:59:59.96 to 02:00:00 once; the naive device clock does not
    wall = tz.local_wall_ns(utc, off)
    assert (np.diff(wall) > H / 2).sum() == 1 and (np.diff(spring.time) > H / 2).sum() == 0


def test_fixed_clock_over_autumn_change_has_a_25_hour_day():
    t = naive("2024-10-26 00:00", 3 * 1440)  # a device set in BST, one sample a minute
    utc, off = tz.localise(t, LONDON)
    assert utc[0] == t[0] - H and off[0] == 3600 and off[-1] == 0
    days = tz.local_days(utc, LONDON, interval_s=60)
    d = days.loc[np.datetime64("2024-10-27")]
    assert d.length_h == 25.0 and d.dst_change and d.n == 25 * 60 and d.complete
    assert days.loc[np.datetime64("2024-10-26")].length_h == 24.0


def test_wall_clock_policies_are_explicit_and_counted():
    spring_gap = naive("2024-03-31 00:30", 120)  # 00:30-02:29 wall; 01:00-01:59 does not exist
    qc = {}
    utc, _ = tz.localise(spring_gap, LONDON, clock="wall", qc=qc)
    assert qc["nonexistent_samples"] == 60 and qc["ambiguous_samples"] == 0
    # 'before': 01:30 read with the offset before the change (GMT) is 01:30 UTC; 02:00 wall is BST, 01:00 UTC
    assert utc[60] == naive("2024-03-31 01:30")[0] and utc[90] == naive("2024-03-31 01:00")[0]
    utc_after, _ = tz.localise(spring_gap, LONDON, clock="wall", nonexistent="after")
    assert utc_after[60] == naive("2024-03-31 00:30")[0] and utc_after[90] == utc[90]
    with pytest.raises(tz.TimeZoneError, match="60 samples have non-existent local times"):
        tz.localise(spring_gap, LONDON, clock="wall", nonexistent="raise")

    once = naive("2024-10-27 01:30", 1)  # occurs twice in London
    e, _ = tz.localise(once, LONDON, clock="wall")
    lat, _ = tz.localise(once, LONDON, clock="wall", ambiguous="later")
    assert lat[0] - e[0] == H and e[0] == naive("2024-10-27 00:30")[0]
    with pytest.raises(tz.TimeZoneError, match="1 samples have ambiguous local times"):
        tz.localise(once, LONDON, clock="wall", ambiguous="raise")


def test_wall_clock_that_follows_dst_round_trips_with_infer():
    utc_true = naive("2024-10-26 22:00", 6 * 60)  # UTC, one a minute, across 01:00 UTC on 27 Oct
    _, off = tz.localise(utc_true, "UTC")
    wall = tz.local_wall_ns(utc_true, tz.localise(utc_true, LONDON, clock_offset_s=0)[1])  # what a DST clock writes
    assert (np.diff(wall) < 0).sum() == 1  # it steps back an hour
    qc = {}
    utc, _ = tz.localise(wall, LONDON, clock="wall", ambiguous="infer", qc=qc)
    assert np.array_equal(utc, utc_true) and qc["ambiguous_samples"] == 120
    earlier, _ = tz.localise(wall, LONDON, clock="wall", ambiguous="earlier")
    assert (earlier != utc_true).sum() == 60 and off.max() == 0


def test_half_hour_dst_and_fixed_offsets():
    # Lord Howe Island moves its clocks by 30 minutes: 7 April 2024 lasts 24.5 hours
    t = naive("2024-04-06 00:00", 3 * 48, step_s=1800)
    utc, off = tz.localise(t, "Australia/Lord_Howe")
    days = tz.local_days(utc, "Australia/Lord_Howe")
    assert days.loc[np.datetime64("2024-04-07")].length_h == 24.5 and off[0] == 11 * 3600
    utc, off = tz.localise(t, "+05:30")
    assert np.all(off == 19800) and utc[0] == t[0] - 19800 * 10**9
    assert not tz.local_days(utc, "UTC-03:00").dst_change.any()
    with pytest.raises(cp.CapturePipelineError, match="unknown time zone 'Europe/Londn'"):
        tz.localise(t, "Europe/Londn")
    with pytest.raises(ValueError, match="clock must be one of"):
        tz.localise(t, LONDON, clock="solar")


def test_add_time_columns_keeps_naive_time():
    df = pd.DataFrame({"time": naive("2024-07-01 12:00", 3).view("datetime64[ns]"), "x": [1.0, 2.0, 3.0]})
    out = tz.add_time_columns(df, LONDON)
    assert list(out.columns) == ["time", "x", "time_utc", "time_local"]
    assert out.time.equals(df.time) and str(out.time_utc[0]) == "2024-07-01 11:00:00+00:00"
    assert str(out.time_local[0]) == "2024-07-01 12:00:00+01:00" and out.attrs["timezone"]["clock_offset_s"] == 3600
    by_index = tz.add_time_columns(df.set_index("time"), "America/New_York", time_col="time")
    assert str(by_index.time_utc.iloc[0]) == "2024-07-01 16:00:00+00:00"
    assert tz.local_date(*tz.localise(naive("2024-07-01 23:30"), "Asia/Tokyo", clock_offset_s=0))[0] == np.datetime64(
        "2024-07-02")  # fmt: skip


def test_file_offset_is_the_clock_offset(real_dir):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rec = cp.read(real_dir / "actigraph_testfile.gt3x")
    # the device was set to UTC+02:00 (info.txt TimeZone); worn in London it is still 08:09 UTC
    utc, off, qc = tz.localise_recording(rec, LONDON)
    assert qc["clock_offset_source"] == "file" and qc["clock_offset_s"] == 7200
    assert str(utc[:1].view("datetime64[ns]")[0]) == "2020-08-26T08:09:00.000000000" and off[0] == 3600
    utc_zone, _, qc2 = tz.localise_recording(rec, LONDON, use_file_offset=False)
    assert qc2["clock_offset_source"] == "zone" and utc_zone[0] - utc[0] == H


def test_convert_with_timezone(tmp_path, real_dir):
    out = tmp_path / "ga.parquet"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["convert", str(real_dir / "GENEActiv_testfile.bin"), "--out", str(out), "--timezone", LONDON,
                     "--quiet"]) == 0  # fmt: skip
    t = pq.read_table(out).to_pandas()
    assert list(t.columns) == ["time", "x", "y", "z", "temperature", "light", "button", "time_utc", "time_local"]
    assert str(t.time[0]) == "2013-05-30 10:12:54.500000" and str(t.time_utc[0]) == "2013-05-30 09:12:54.500000+00:00"
    assert str(t.time_local[0]) == "2013-05-30 10:12:54.500000+01:00"
    plain = tmp_path / "plain.parquet"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["convert", str(real_dir / "actigraph_testfile.gt3x"), "--out", str(plain), "--quiet",
                     "--no-idle-sleep-fill"]) == 0  # fmt: skip
    assert pq.read_table(plain).column_names == ["time", "x", "y", "z", "idle_sleep"]
    assert pq.read_table(plain).num_rows == 17640
    assert main(["convert", str(real_dir / "GENEActiv_testfile.bin"), "--out", str(tmp_path / "no.parquet"),
                 "--timezone", "Mars/Olympus"]) == 2  # fmt: skip
    assert not (tmp_path / "no.parquet").exists()


def test_absurd_time_span_is_refused():
    t = np.array([naive("1970-01-01 00:00")[0], naive("2024-01-01 00:00")[0]])
    with pytest.raises(tz.TimeZoneError, match="the times span 19723 days"):
        tz.localise(t, LONDON)
    assert len(tz.localise(t[:0], LONDON)[0]) == 0


def test_local_day_means_use_local_days():
    # hourly values over the autumn change: the 25-hour day averages 25 values, the day before 24
    t = naive("2024-10-26 00:00", 72, step_s=3600)
    utc, off = tz.localise(t, LONDON)
    v = np.arange(72, dtype=float)
    v[5] = np.nan
    days = tz.local_days(utc, LONDON, interval_s=3600, values={"v": v, "wear": v > 30})
    assert days.n.tolist() == [24, 25, 23]
    assert days.v_mean.iloc[0] == pytest.approx(np.nanmean(v[:24]))
    assert days.v_mean.iloc[1] == pytest.approx(np.mean(v[24:49])) and days.wear_mean.iloc[1] == pytest.approx(18 / 25)
    with pytest.raises(ValueError, match=r"values\['v'\] has 3 entries for 72 instants"):
        tz.local_days(utc, LONDON, values={"v": [1, 2, 3]})
