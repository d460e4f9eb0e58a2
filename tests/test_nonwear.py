"""Non-wear detection (capture_pipeline.nonwear) on a simulated week of 30-s windows.

The week has active days (window SDs of 20-300 mg), nights of sleep (SDs of 3-9 mg, but a small movement of
20-60 mg every 5-55 minutes, as people turn in bed), and inserted non-wear episodes where the device lies on a
table (SD 1-3 mg, its noise floor). The non-wear rule must find exactly the inserted episodes.
"""

import numpy as np
import pandas as pd
import pytest

from capture_pipeline.nonwear import apply_nonwear, detect_nonwear, nonwear_episodes

EPOCH_NS = 30_000_000_000
START = np.datetime64("2019-03-04T00:00:00", "ns")  # a Monday
PER_DAY = 2880


def simulated_week(seed=0):
    """Features table of 7 days and the true non-wear mask."""
    rng = np.random.default_rng(seed)
    n = 7 * PER_DAY
    time = START + np.arange(n) * np.timedelta64(30, "s")
    hour = (np.arange(n) % PER_DAY) / 120.0
    sd = np.exp(rng.uniform(np.log(0.02), np.log(0.3), size=(n, 3)))  # awake
    night = (hour >= 23) | (hour < 7)
    sd[night] = rng.uniform(0.003, 0.009, size=(night.sum(), 3))
    # small movements in sleep: one window above threshold every 5-55 minutes
    idx = np.flatnonzero(night)
    k = 0
    while k < len(idx):
        k += rng.integers(10, 110)
        if k < len(idx):
            sd[idx[k], rng.integers(3)] = rng.uniform(0.02, 0.06)
    truth = np.zeros(n, bool)
    # (day, hour, minutes): 2 h at lunch, 5 h in an afternoon, 61 minutes (just long enough), a 50-min shower
    # break that is too short
    for day, h, minutes in [(0, 12.0, 120), (2, 14.5, 300), (4, 9.25, 61), (5, 18.0, 90)]:
        first = day * PER_DAY + int(h * 120)
        truth[first : first + minutes * 2] = True
    short = 6 * PER_DAY + 10 * 120
    sd[truth] = rng.uniform(0.001, 0.003, size=(truth.sum(), 3))
    sd[short : short + 100] = rng.uniform(0.001, 0.003, size=(100, 3))
    features = pd.DataFrame(
        {
            "time": time,
            "enmoTrunc": rng.uniform(0, 0.1, n),
            "xMean": rng.uniform(-1, 1, n),
            "xStd": sd[:, 0],
            "yStd": sd[:, 1],
            "zStd": sd[:, 2],
            "temp": rng.uniform(20, 30, n),
            "samples": np.full(n, 3000),
            "clipsBeforeCalibr": np.zeros(n, np.int64),
        }
    )
    return features, truth


@pytest.fixture(scope="module")
def week():
    return simulated_week()


def test_inserted_episodes_found_exactly_and_sleep_not_flagged(week):
    features, truth = week
    flags = detect_nonwear(features)
    # every inserted episode is found with its boundaries within one window (here: exactly), nothing else
    starts = np.flatnonzero(np.diff(np.concatenate([[0], flags.astype(int)])) == 1)
    true_starts = np.flatnonzero(np.diff(np.concatenate([[0], truth.astype(int)])) == 1)
    assert len(starts) == len(true_starts) == 4
    assert np.all(np.abs(starts - true_starts) <= 1)
    np.testing.assert_array_equal(flags, truth)  # here even exactly
    hours = (np.arange(len(flags)) % PER_DAY) / 120.0
    night = (hours >= 23) | (hours < 7)
    assert not flags[night].any()  # seven nights of sleep with small movements: none flagged


def test_threshold_is_strictly_more_than_60_minutes():
    # a run of k still windows spans (k-1)*30 s between first and last window start; > 60 min needs k >= 122
    for k, expected in [(121, False), (122, True)]:
        sd = np.full(k + 20, 0.05)
        sd[10 : 10 + k] = 0.002
        f = pd.DataFrame({"time": START + np.arange(k + 20) * np.timedelta64(30, "s"),
                          "xStd": sd, "yStd": sd, "zStd": sd})  # fmt: skip
        flags = detect_nonwear(f)
        assert flags.sum() == (k if expected else 0)
        assert flags[10 : 10 + k].all() == expected
    # configurable
    assert detect_nonwear(f, min_minutes=30).sum() == 122


def test_one_axis_above_threshold_or_missing_breaks_the_run():
    n = 400
    sd = np.full((n, 3), 0.002)
    sd[150, 1] = 0.013  # not < 13 mg: breaks
    sd[300, 2] = np.nan  # missing: breaks
    f = pd.DataFrame({"time": START + np.arange(n) * np.timedelta64(30, "s"),
                      "xStd": sd[:, 0], "yStd": sd[:, 1], "zStd": sd[:, 2]})  # fmt: skip
    flags = detect_nonwear(f)
    # runs: 0-149 (150 windows, flagged), 151-299 (149, flagged), 301-399 (99 windows = 49.5 min, not flagged)
    np.testing.assert_array_equal(np.flatnonzero(flags), np.r_[0:150, 151:300])


def test_rows_in_any_order_and_datetime_index(week):
    features, truth = week
    perm = np.random.default_rng(1).permutation(len(features))
    shuffled = features.iloc[perm]
    np.testing.assert_array_equal(detect_nonwear(shuffled), truth[perm])
    indexed = features.set_index("time")
    np.testing.assert_array_equal(detect_nonwear(indexed), truth)


def test_gap_between_still_runs_counts_as_in_reference():
    # 40 still windows, a 2-h recording gap (no rows), 40 still windows: adjacent rows, 20 min + 2 h > 60 min
    t = np.concatenate([np.arange(40), 40 + 240 + np.arange(40)]) * np.timedelta64(30, "s") + START
    sd = np.full(80, 0.002)
    f = pd.DataFrame({"time": t, "xStd": sd, "yStd": sd, "zStd": sd})
    assert detect_nonwear(f).all()


def test_apply_sets_features_nan_and_keeps_qc(week):
    features, truth = week
    out = apply_nonwear(features)
    assert out["nonwear"].dtype == bool and (out["nonwear"].to_numpy() == truth).all()
    assert len(out) == len(features)  # rows are never dropped
    for col in ("enmoTrunc", "xMean", "xStd", "temp"):
        assert out.loc[truth, col].isna().all()
        np.testing.assert_array_equal(out.loc[~truth, col], features.loc[~truth, col])
    # time and QC counts keep their values
    assert (out["time"] == features["time"]).all()
    assert (out.loc[truth, "samples"] == 3000).all() and out["clipsBeforeCalibr"].dtype == np.int64
    kept = apply_nonwear(features, keep=True)
    assert (kept["nonwear"].to_numpy() == truth).all()
    pd.testing.assert_frame_equal(kept.drop(columns="nonwear"), features)
    assert features.columns.tolist()[-1] == "clipsBeforeCalibr"  # input untouched


def test_episode_table(week):
    features, truth = week
    ep = nonwear_episodes(features, truth)
    assert ep["windows"].tolist() == [240, 600, 122, 180]
    assert ep["duration_min"].tolist() == [120.0, 300.0, 61.0, 90.0]
    assert ep["start"].iloc[0] == pd.Timestamp("2019-03-04 12:00:00")
    assert ep["end"].iloc[0] == pd.Timestamp("2019-03-04 13:59:30")
    sd_means = ep[["xStdMean", "yStdMean", "zStdMean"]].to_numpy()
    assert np.all((sd_means > 0.001) & (sd_means < 0.003))  # the table's noise floor, U(1, 3) mg


def raw_day_part(seed=0):
    """5 h of raw 100-Hz AX3-like samples (1/256-g steps): awake, 90 min on a table, awake, 2 h asleep.

    Returns the recording and the (start, end) seconds of the non-wear interval and of the sleep.
    """
    from capture_pipeline.recording import Recording

    fs, n = 100, 5 * 3600 * 100
    rng = np.random.default_rng(seed)
    t = np.arange(n) / fs
    # awake: a slowly wandering arm orientation with a 2-Hz swing
    angle = np.cumsum(rng.normal(scale=0.01, size=n))
    u = np.stack([np.sin(angle), 0.6 * np.cos(angle), 0.8 * np.cos(angle)], axis=1)
    u += 0.15 * np.sin(2 * np.pi * 2 * t)[:, None] * np.array([1.0, 0.3, 0.2])
    nonwear = (3617.0, 3617.0 + 90 * 60)  # not on a window boundary
    u[(t >= nonwear[0]) & (t < nonwear[1])] = [0.02, -0.05, -0.998]
    # asleep: still in one posture, turning over (a 3-s rotation) every 5-40 minutes
    sleep = (3 * 3600.0, 5 * 3600.0)
    s = sleep[0]
    posture = np.array([0.0, 0.0, 1.0])
    while s < sleep[1]:
        stop = min(s + rng.uniform(300, 2400), sleep[1])
        sel = (t >= s) & (t < stop)
        u[sel] = posture + 0.001 * np.sin(2 * np.pi * 0.25 * t[sel])[:, None]  # breathing
        turn = (t >= stop) & (t < min(stop + 3, sleep[1]))
        new = rng.normal(size=3)
        new /= np.linalg.norm(new)
        w = np.linspace(0, 1, turn.sum())[:, None]
        u[turn] = (1 - w) * posture + w * new
        posture = new
        s = stop + 3
    raw = np.round((u + rng.normal(scale=0.002, size=(n, 3))) * 256) / 256
    rec = Recording(
        time=np.int64(1_550_000_000_000_000_000) + np.arange(n, dtype=np.int64) * 10_000_000,
        xyz=raw.astype(np.float32),
        temperature=np.full(n, 25.0, np.float32),
        fs=100.0,
        meta={"range_g": 8},
    )
    return rec, nonwear, sleep


def test_end_to_end_from_raw_samples():
    """extract_features → apply_nonwear on raw samples: exactly the windows inside the non-wear interval."""
    from capture_pipeline.features import extract_features

    rec, (nw0, nw1), (sl0, sl1) = raw_day_part()
    features = extract_features(rec, calibrate=False)
    out = apply_nonwear(features)
    start_s = (features["time"].to_numpy().astype("datetime64[ns]").astype(np.int64) - rec.time[0]) / 1e9
    inside = (start_s >= nw0) & (start_s + 30 <= nw1)
    # boundaries within one window: every window wholly inside is flagged, at most one more at each end
    flags = out["nonwear"].to_numpy()
    assert flags[inside].all()
    assert flags.sum() <= inside.sum() + 2 and flags.sum() == 179
    assert not flags[start_s >= nw1].any()  # two hours of sleep with turns every 5-40 min: not non-wear
    assert out.loc[flags, "enmoTrunc"].isna().all() and out.loc[~flags, "enmoTrunc"].notna().all()


def test_bad_input_is_reported():
    from capture_pipeline.errors import InputError

    f = pd.DataFrame({"time": START + np.arange(3) * np.timedelta64(30, "s"), "xStd": [0.0] * 3, "yStd": [0.0] * 3})
    with pytest.raises(InputError, match="zStd"):
        detect_nonwear(f)
    with pytest.raises(InputError, match="no 'time' column"):
        detect_nonwear(f.drop(columns="time").assign(zStd=0.0))
    with pytest.raises(ValueError, match="2 flags for 3 windows"):
        apply_nonwear(f.assign(zStd=0.0), nonwear=[True, False])
    assert detect_nonwear(f.iloc[:0].assign(zStd=0.0)).shape == (0,)


@pytest.mark.slow
def test_simulator_nonwear_bouts_found():
    """Simulated free living with two non-wear bouts (90 and 120 min): found, boundaries within one window."""
    participant = pytest.importorskip("capture_pipeline.simulate.participant")
    from capture_pipeline.features import extract_features

    schedule = [("sitting_desk", 1800), ("walking", 600), ("household", 1200), ("nonwear", 5400),
                ("standing", 900), ("sitting_tv", 2400), ("walking", 900), ("nonwear", 7200),
                ("eating", 1200), ("household", 1800)]  # fmt: skip
    rec, truth = participant.simulate_participant("P007", hours=None, seed=3, schedule=schedule,
                                                  per_sample_annotation=False)  # fmt: skip
    features = apply_nonwear(extract_features(rec, calibrate=False))
    start = features["time"].to_numpy().astype("datetime64[ns]").astype(np.int64)
    flags = features["nonwear"].to_numpy()
    intervals = truth.nonwear_intervals()
    assert [round((e - s) / 60e9) for s, e in intervals] == [90, 120]
    expected = np.zeros(len(flags), bool)
    for s, e in intervals:
        touching = (start + 30e9 > s) & (start < e)
        flagged = np.flatnonzero(flags & touching)
        # one contiguous flagged run whose ends are within one window of the bout's (the simulator's 1.5-s
        # transition into the bout can make the first window inside it not quite still)
        assert len(flagged) and np.all(np.diff(flagged) == 1)
        assert abs(start[flagged[0]] - s) <= 30e9 and abs(start[flagged[-1]] + 30e9 - e) <= 30e9
        expected |= touching
    assert not flags[~expected].any()  # nothing outside the bouts
