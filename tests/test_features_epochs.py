"""The epoch writer (which samples form each window), calibration/clipping and resampling, against a literal
pure-Python transcription of the reference's Java (`EpochWriter.newValues`, `writeEpochSummary`,
`Resample.interpLinear`, spec §3.4-3.7) on irregular timing: jitter, duplicate and backward times, short gaps,
interrupts, a too-small epoch before an interrupt, and the start-time option.

Both compute the same double-precision operations in the same order, so the resampled values must be equal
exactly, not merely close.
"""

import bisect

import numpy as np
import pandas as pd
import pytest

from capture_pipeline import InputError, Recording
from capture_pipeline.calibration import CalibrationCoefficients
from capture_pipeline.features import extract_features
from capture_pipeline.features.epochs import plan_epochs, resample_epochs, resample_grid

PERIOD = 30_000


class JavaEpochWriter:
    """Transcription of the v2.3.0 epoch writer, kept deliberately close to the Java source."""

    def __init__(self, start_time=None, cal=((0, 0, 0), (1, 1, 1), (0, 0, 0), 0.0), r=8.0, n=3000):
        self.start_time = start_time
        self.epoch_start = None
        self.prev_time = -1
        self.prev = None
        self.vals = []  # (time offset, x, y, z, temp)
        self.err = 0
        self.cal, self.r, self.n = cal, r, n
        self.written = []

    def new_value(self, t, x, y, z, temp):
        if self.start_time is not None and t < self.start_time:
            return
        if self.epoch_start is None:
            if self.start_time is None:
                self.epoch_start = t
            else:
                self.epoch_start = self.start_time
                while self.epoch_start + PERIOD < t:
                    self.epoch_start += PERIOD
        if t < self.prev_time and self.prev_time != -1:
            self.err += 1
            return
        if t - self.prev_time >= 2 * PERIOD and self.prev_time != -1:
            self.err += 1
            if len(self.vals) > 10:
                self.write()
            else:
                self.vals = []
                self.err = 0
            while self.epoch_start < t - PERIOD:
                self.epoch_start += PERIOD
        if t - self.epoch_start >= PERIOD and len(self.vals) > 10:
            self.vals.append((t - self.epoch_start, x, y, z, temp))
            self.write()
            self.epoch_start += PERIOD
            pt, px, py, pz, ptemp = self.prev
            self.vals.append((pt - self.epoch_start, px, py, pz, ptemp))
        self.vals.append((t - self.epoch_start, x, y, z, temp))
        self.prev_time = t
        self.prev = (t, x, y, z, temp)

    def write(self):
        (off, slope, tc, mean_temp), r = self.cal, self.r
        clips = [0, 0]
        rows = []
        for t, x, y, z, temp in self.vals:
            clipped = False
            if abs(x) >= r or abs(y) >= r or abs(z) >= r:
                clips[0] += 1
                clipped = True
            mc = temp - mean_temp
            v = [off[a] + s * slope[a] + mc * tc[a] for a, s in enumerate((x, y, z))]
            if any(abs(c) > r for c in v):
                if not clipped:
                    clips[1] += 1
                for a in range(3):
                    if v[a] < -r or (clipped and v[a] < 0):
                        v[a] = -r
                    elif v[a] > r or (clipped and v[a] > 0):
                        v[a] = r
            rows.append([t] + v)
        grid = [round(PERIOD * c / self.n) for c in range(self.n)]
        res = self.interp([row[0] for row in rows], [[row[a] for row in rows] for a in (1, 2, 3)], grid)
        temps = [v[4] for v in self.vals]
        self.written.append(dict(start=self.epoch_start, err=self.err, clips=tuple(clips), raw=len(self.vals),
                                 temp=sum(temps) / len(temps), xyz=np.array(res)))
        self.vals = []
        self.err = 0

    @staticmethod
    def interp(time, series, grid):
        time = list(time)
        m = len(time)
        slopes = [[0.0] * (m - 1) for _ in series]
        icpts = [[0.0] * (m - 1) for _ in series]
        for i in range(m - 2, -1, -1):
            dt = time[i + 1] - time[i]
            if dt <= 0:
                time[i] = time[i + 1] - 1
                dt = 1
            for a, s in enumerate(series):
                slopes[a][i] = (s[i + 1] - s[i]) / dt
                icpts[a][i] = s[i] - time[i] * slopes[a][i]
        out = [[0.0] * len(grid) for _ in series]
        for c, g in enumerate(grid):
            for a, s in enumerate(series):
                if g > time[-1]:
                    out[a][c] = s[-1]
                elif g < time[0]:
                    out[a][c] = s[0]
                else:
                    loc = bisect.bisect_left(time, g)
                    if loc < m and time[loc] == g:
                        out[a][c] = s[loc]
                    else:
                        loc -= 1
                        out[a][c] = slopes[a][loc] * g + icpts[a][loc]
        return out


def irregular_recording(seed=0):
    """~12 min of 100 Hz-ish samples with every timing irregularity the epoch writer handles."""
    rng = np.random.default_rng(seed)
    t0 = np.datetime64("2024-05-01T08:00:00.123456789", "ns").astype(np.int64)
    steps = np.full(72_000, 10_000_000, dtype=np.int64) + rng.integers(-300_000, 300_000, 72_000)
    steps[1000:1010] = 0  # duplicate times
    steps[5000] = -25_000_000  # backwards by 25 ms (two samples fall behind)
    steps[9000] = 4_000_000_000  # 4-s gap: interpolated
    steps[20_000] = 65_000_000_000  # 65-s gap: interrupt, partial epoch written
    steps[20_005] = 90_000_000_000  # interrupt after only 5 samples: those are discarded with the error count
    steps[40_000] = 60_000_000_000  # exactly 60 s: interrupt (>= 2 periods)
    steps[50_000] = 59_990_000_000  # just under 60 s: interpolated across
    steps[60_000:60_050] = 900_000_000  # sparse: < 10 samples per 30 s for a while
    time = t0 + np.cumsum(steps)
    xyz = rng.normal(0, 0.3, (len(time), 3)).astype(np.float32) + np.float32([0, 0, 1])
    xyz[3000:3100, 0] = 8.0  # clipped before calibration
    xyz[3050:3060, 1] = -9.0
    xyz[7000:7010, 2] = 7.99  # clipped only after calibration (gain > 1)
    # quarter degrees: exact in float32, so the float32 -> decimal translation of `extract_features` is the identity
    temp = (20 + np.cumsum(rng.integers(-1, 2, len(time))) * 0.25).astype(np.float32)
    return Recording(time=time, xyz=xyz, temperature=temp)


def run_java(rec, cal, start_time=None):
    w = JavaEpochWriter(start_time=start_time, cal=cal)
    ms = rec.time // 1_000_000
    x, y, z = (rec.xyz[:, a].astype(np.float64).tolist() for a in range(3))
    for t, a, b, c, tp in zip(ms.tolist(), x, y, z, rec.temperature.astype(np.float64).tolist()):
        w.new_value(t, a, b, c, tp)
    return w.written


CAL = CalibrationCoefficients(offset=(0.01, -0.02, 0.03), gain=(1.01, 0.99, 1.002), temp_coef=(0.001, 0, -0.002),
                              mean_temp=20.5)


@pytest.mark.parametrize("origin", [None, "before", "inside"])
def test_epochs_match_java_transcription(origin):
    rec = irregular_recording()
    first_ms = int(rec.time[0] // 1_000_000)
    origin_ms = {None: None, "before": first_ms - 45_000, "inside": first_ms + 100_000}[origin]
    off, gain, tc, mt = CAL.arrays()
    expected = run_java(rec, (tuple(off), tuple(gain), tuple(tc), mt), start_time=origin_ms)

    state = np.zeros(5, np.int64)
    starts, leads, firsts, lasts, trails, errors, _, _ = plan_epochs(
        rec.time, 0, False, state, PERIOD, origin_ms or 0, origin_ms is not None, 1000)
    out = np.empty((3, len(starts), 3000))
    temp64 = rec.temperature.astype(np.float64)  # the transcription computes with float64(float32) temperatures
    temp_mean, cb, ca, raw = resample_epochs(
        rec.time, rec.xyz, temp64, np.zeros(0, np.float64), np.zeros(0), starts, leads, firsts, lasts, trails,
        off, gain, tc, mt, 8.0, resample_grid(30, 100), origin_ms or 0, origin_ms is not None, out)

    assert len(starts) == len(expected) > 15
    assert starts.tolist() == [e["start"] for e in expected]
    assert errors.tolist() == [e["err"] for e in expected]
    assert raw.tolist() == [e["raw"] for e in expected]
    assert list(zip(cb.tolist(), ca.tolist())) == [e["clips"] for e in expected]
    np.testing.assert_array_equal(temp_mean, [e["temp"] for e in expected])
    for k, e in enumerate(expected):
        np.testing.assert_array_equal(out[:, k], e["xyz"])
    # the irregularities really were exercised
    assert errors.sum() >= 2 and (raw < 2000).any()
    if origin != "inside":  # the clipped samples lie in the first 100 s
        assert errors.sum() >= 5 and cb.sum() > 0 and ca.sum() > 0


def test_extract_qc_and_times_on_irregular_recording():
    rec = irregular_recording()
    off, gain, tc, mt = CAL.arrays()
    expected = run_java(rec, (tuple(off), tuple(gain), tuple(tc), mt))
    df = extract_features(rec, calibration=CAL)
    assert len(df) == len(expected)
    assert (df.time.values.astype(np.int64) // 1_000_000).tolist() == [e["start"] for e in expected]
    assert df.rawSamples.tolist() == [e["raw"] for e in expected]
    assert (df.samples == 3000).all()
    # dataErrors adds the stuck-axis count (none here) to the epoch writer's errors
    assert df.dataErrors.tolist() == [e["err"] for e in expected]
    np.testing.assert_allclose(df.xMean, [e["xyz"][0].mean() for e in expected], rtol=1e-12)
    assert np.isfinite(df.drop(columns="time").to_numpy(dtype=float)).all()


def test_first_epoch_start_trailing_partial_and_edge_samples():
    """Epochs start at the first sample's ms, advance by exactly 30 s, the last partial epoch is not written,
    and regular 100 Hz data give 3000 + 2 raw samples per epoch (3001 for the first: no leading edge)."""
    t0 = np.datetime64("2024-01-01T00:00:07.0004", "ns").astype(np.int64)
    n = 100 * 95  # 95 s: three full epochs, a 5-s partial one
    rec = Recording(time=t0 + np.arange(n) * 10_000_000, xyz=np.zeros((n, 3), np.float32) + [0, 0, 1])
    df = extract_features(rec, calibrate=False)
    assert df.time.astype(str).tolist() == ["2024-01-01 00:00:07", "2024-01-01 00:00:37", "2024-01-01 00:01:07"]
    assert df.rawSamples.tolist() == [3001, 3002, 3002]
    assert (df.dataErrors == 0).all() and (df.clipsBeforeCalibr == 0).all()
    assert (df.temp == 0).all()  # no temperature: the reference uses 0 (CSV input)
    np.testing.assert_allclose(df.zMean, 1.0)
    assert np.allclose(df.enmoTrunc, 0, atol=1e-12)


def test_missing_temperature_option():
    t0 = np.datetime64("2024-01-01", "ns").astype(np.int64)
    n = 100 * 65
    rec = Recording(time=t0 + np.arange(n) * 10_000_000, xyz=np.zeros((n, 3), np.float32) + [0, 0, 1])
    df = extract_features(rec, calibrate=False, missing_temperature=np.nan)
    assert len(df) == 2 and df.temp.isna().all() and np.isfinite(df.zMean).all()


def test_interrupt_pads_partial_epoch_with_last_value():
    t0 = np.datetime64("2024-01-01", "ns").astype(np.int64)
    a = t0 + np.arange(4500) * 10_000_000  # 45 s, then a 2-minute interrupt
    b = a[-1] + 120_000_000_000 + np.arange(4000) * 10_000_000
    time = np.concatenate([a, b])
    xyz = np.zeros((len(time), 3), np.float32)
    xyz[:, 2] = 1
    xyz[4499, 0] = 0.5  # the last sample before the interrupt
    df = extract_features(Recording(time=time, xyz=xyz), calibrate=False)
    # epochs: [0, 30) full; [30, 60) partial (written at the interrupt, padded with the last value); after the
    # interrupt the start advances in 30-s steps while it is before (first new sample - 30 s) = 134.99 s, i.e. to
    # 150 s: the first new sample (164.99 s) lies 15 s into that epoch, whose first half takes its value; the epoch
    # from 180 s is the trailing partial one and is not written
    starts = (df.time - df.time.iloc[0]).dt.total_seconds().tolist()
    assert starts == [0.0, 30.0, 150.0]
    assert df.dataErrors.tolist() == [0, 1, 0]
    assert df.rawSamples.tolist() == [3001, 1501, 1502]
    # the sample at 44.99 s then padding: grid points from 44.99 s to 59.99 s take x = 0.5
    assert df.xMean.iloc[1] == pytest.approx(0.5 * 1501 / 3000)
    assert df.xMean.iloc[2] == 0 and df.zMean.iloc[2] == 1


def test_non_finite_input_is_an_input_error():
    t0 = np.datetime64("2024-01-01", "ns").astype(np.int64)
    xyz = np.zeros((5000, 3), np.float32)
    xyz[1234, 1] = np.nan
    rec = Recording(time=t0 + np.arange(5000) * 10_000_000, xyz=xyz, meta={"path": "/data/p001.cwa"})
    with pytest.raises(InputError, match=r"p001\.cwa.*1 samples have a non-finite"):
        extract_features(rec, calibrate=False)


def test_too_short_recording_gives_empty_table_with_columns():
    t0 = np.datetime64("2024-01-01", "ns").astype(np.int64)
    rec = Recording(time=t0 + np.arange(2000) * 10_000_000, xyz=np.zeros((2000, 3), np.float32))
    df = extract_features(rec, calibrate=False)
    assert len(df) == 0 and len(df.columns) == 1 + 126 + 5
    assert df.time.dtype == np.dtype("datetime64[ns]")


def test_clipping_rules_of_the_reference():
    """§3.4 on single samples: >= r before calibration counts as clipped and forces every non-zero axis to ±r when
    any calibrated axis exceeds r; > r only after calibration counts in clipsAfterCalibr."""
    t0 = np.datetime64("2024-01-01", "ns").astype(np.int64)
    n = 100 * 65
    xyz = np.zeros((n, 3), np.float32) + np.float32([0.1, -0.2, 1.0])
    xyz[500] = [8.0, -0.5, 0.25]  # clipped before
    xyz[501] = [8.0, 0.0, 0.0]  # clipped before
    xyz[502] = [7.95, 0.0, 0.0]  # not clipped before
    # offset +0.1 on x: 500 -> every non-zero axis forced to ±8; 501 -> x forced to 8; 502 -> counted after, x = 8
    coefs = CalibrationCoefficients(offset=(0.1, 0.0, 0.0), gain=(1.0, 1.0, 1.0))
    # gain 0.99 on x: nothing exceeds 8 after calibration, so nothing is forced, not even the clipped samples
    coefs_low = CalibrationCoefficients(gain=(0.99, 1.0, 1.0))
    df = extract_features(Recording(time=t0 + np.arange(n) * 10_000_000, xyz=xyz), calibration=coefs)
    assert df.clipsBeforeCalibr.tolist()[0] == 2 and df.clipsAfterCalibr.tolist()[0] == 1
    df2 = extract_features(Recording(time=t0 + np.arange(n) * 10_000_000, xyz=xyz), calibration=coefs_low)
    assert df2.clipsBeforeCalibr.tolist()[0] == 2 and df2.clipsAfterCalibr.tolist()[0] == 0
    # the samples sit on grid points (regular 10 ms): the forced values appear as they are in the means
    expected_xmean = (xyz[:3000, 0].astype(np.float64) + 0.1)
    expected_xmean[500:503] = 8.0
    assert df.xMean.iloc[0] == pytest.approx(expected_xmean.mean(), rel=1e-12)
    ymean = xyz[:3000, 1].astype(np.float64)
    ymean[500] = -8.0
    assert df.yMean.iloc[0] == pytest.approx(ymean.mean(), rel=1e-12)
    zmean = xyz[:3000, 2].astype(np.float64)
    zmean[500] = 8.0  # z = 0.25 > 0 on a sample clipped before calibration
    assert df.zMean.iloc[0] == pytest.approx(zmean.mean(), rel=1e-12)
    x_low = xyz[:3000, 0].astype(np.float64) * 0.99
    assert df2.xMean.iloc[0] == pytest.approx(x_low.mean(), rel=1e-12)


def test_columns_order():
    from capture_pipeline.features import FEATURE_COLUMNS, OUTPUT_COLUMNS, REFERENCE_EPOCH_COLUMNS

    assert len(FEATURE_COLUMNS) == 126
    assert FEATURE_COLUMNS[:3] == ["enmoTrunc", "xMean", "yMean"] and FEATURE_COLUMNS[-1] == "mfft14"
    assert FEATURE_COLUMNS[40:42] == ["fft0", "fft1"] and FEATURE_COLUMNS[55:59] == ["MAD", "MPD", "skew", "kurt"]
    assert OUTPUT_COLUMNS[0] == "time" and OUTPUT_COLUMNS[-5:] == [
        "samples", "dataErrors", "clipsBeforeCalibr", "clipsAfterCalibr", "rawSamples"]
    assert REFERENCE_EPOCH_COLUMNS[14:21] == ["temp", "samples", "dataErrors", "clipsBeforeCalibr",
                                              "clipsAfterCalibr", "rawSamples", "mean"]
    assert isinstance(pd.Index(OUTPUT_COLUMNS), pd.Index)


def test_calibration_choice():
    """calibrate=False means identity whatever coefficients are given; given coefficients (object or dict) are
    applied; calibrate=True without coefficients fits them (capture_pipeline.calibration_fit)."""
    t0 = np.datetime64("2024-01-01", "ns").astype(np.int64)
    n = 100 * 65
    rng = np.random.default_rng(2)
    xyz = (rng.normal(0, 0.05, (n, 3)) + [0.2, -0.3, 0.9]).astype(np.float32)
    rec = Recording(time=t0 + np.arange(n) * 10_000_000, xyz=xyz)
    off = extract_features(rec, calibrate=False, calibration=CAL)
    plain = extract_features(rec, calibrate=False)
    pd.testing.assert_frame_equal(off, plain)
    as_dict = extract_features(rec, calibration=CAL.to_dict())
    as_obj = extract_features(rec, calibration=CAL)
    pd.testing.assert_frame_equal(as_dict, as_obj)
    # the recording has no temperature: the temperature term uses 0 degC, as the reference does for CSV input
    expected_x = CAL.offset[0] + CAL.gain[0] * xyz[:3000, 0].astype(np.float64) + (0 - CAL.mean_temp) * CAL.temp_coef[0]
    assert as_obj.xMean.iloc[0] == pytest.approx(expected_x.mean(), rel=1e-12)
    # one orientation and no still periods: the fit keeps identity coefficients (and says so)
    fitted = extract_features(rec)
    pd.testing.assert_frame_equal(fitted, plain, check_exact=True)
    assert fitted.attrs["calibration"]["info"]["applied"] is False
    assert as_obj.attrs["calibration"]["offset"] == list(CAL.offset)
