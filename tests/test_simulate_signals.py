"""Physics of the simulated signals: per-class ENMO ordering, cadence peaks, calibration error, temperature."""

import numpy as np
import pytest

from capture_pipeline.simulate import NAMES, class_table, group_table, simulate_participant
from capture_pipeline.simulate import device, signals
from capture_pipeline.simulate.person import draw_person

EVERY_ACTIVITY = [(name, 300) for name in NAMES]  # 5 min each, 65 min in all


@pytest.fixture(scope="module")
def tables():
    """Class tables of three people doing every activity for 5 minutes (calibrated with the true coefficients)."""
    out = []
    for pid in ("P001", "P002", "P003"):
        rec, truth = simulate_participant(pid, None, 11, schedule=EVERY_ACTIVITY)
        xyz = truth.calibration.apply(rec.xyz, rec.temperature)
        out.append((class_table(xyz, rec.extra["activity"], truth.fs_true), truth))
    return out


def test_group_enmo_ordering_matches_real_data(tables):
    # the ordering the real CAPTURE-24 classes show: running > walking > standing > sitting ≈ vehicle > sleep
    for table, truth in tables:
        g = group_table(table)["enmo_mg"]
        assert g["running"] > 2.5 * g["walking"], (truth.pid, g.to_dict())
        assert g["walking"] > 2.0 * g["standing"], (truth.pid, g.to_dict())
        assert g["standing"] > 1.2 * g["sitting"], (truth.pid, g.to_dict())
        assert 0.5 < g["vehicle"] / g["sitting"] < 2.0, (truth.pid, g.to_dict())
        assert g["sitting"] > 2.0 * g["sleep"] and g["vehicle"] > 2.0 * g["sleep"], (truth.pid, g.to_dict())
        # plausible absolute levels (mg) for a wrist device
        assert 1.0 < g["sleep"] < 6.0
        assert 60.0 < g["walking"] < 300.0
        assert 250.0 < g["running"] < 1500.0


def test_cadence_peaks_are_the_persons_step_frequency(tables):
    for table, truth in tables:
        walk, run = table.loc["walking", "dominant_hz"], table.loc["running", "dominant_hz"]
        # 30-s windows give 1/30 Hz bins; the cadence wanders by ~3 %
        assert abs(walk - truth.person.walk_cadence_hz) < 0.1
        assert abs(run - truth.person.run_cadence_hz) < 0.12
        assert 1.6 <= walk <= 2.25 and 2.4 <= run <= 3.1


def test_people_differ(tables):
    cadences = {round(t.person.walk_cadence_hz, 3) for _, t in tables}
    walking = [tab.loc["walking", "enmo_mg"] for tab, _ in tables]
    assert len(cadences) == 3
    assert max(walking) / min(walking) > 1.1  # intensity differs between people


def test_eating_has_hand_to_mouth_movements():
    rec, truth = simulate_participant("P004", None, 2, schedule=[("eating", 600), ("sitting_tv", 600)])
    xyz = truth.calibration.apply(rec.xyz, rec.temperature)
    # forearm direction in the nominal wrist frame: undo the person's strap rotation, then x = sin(pitch)
    nominal = xyz @ truth.person.rotation
    n = int(600 * truth.fs_true)
    forearm = np.convolve(nominal[:, 0], np.ones(50) / 50, mode="same")  # 0.5-s average: no chatter
    lifts = [np.count_nonzero(np.diff((seg > 0.6).astype(int)) == 1) for seg in (forearm[:n], forearm[n:])]
    # bites every ~20 s → about 30 lifts in 10 minutes; watching TV → hardly any
    assert 15 <= lifts[0] <= 60, lifts
    assert lifts[1] <= 5, lifts


def test_nonwear_is_still_and_sleep_nearly_so():
    rec, truth = simulate_participant("P005", None, 3, schedule=[("nonwear", 600), ("sleep", 600), ("walking", 60)])
    mag = np.linalg.norm(truth.calibration.apply(rec.xyz, rec.temperature), axis=1)
    n = int(600 * truth.fs_true)
    assert mag[:n].std() < 0.008  # sensor noise only
    assert abs(mag[:n].mean() - 1.0) < 0.005  # calibrated and flat: 1 g
    assert mag[n : 2 * n].std() < 0.05
    assert mag[2 * n :].std() > 0.1


def test_calibration_error_is_undone_by_the_truth():
    rng = np.random.default_rng(0)
    err = device.draw_calibration_error(rng)
    assert all(abs(o) <= 0.05 for o in err.offset)
    assert all(0.97 <= g <= 1.03 for g in err.gain)
    assert all(abs(k) <= 0.002 for k in err.temp_coef)
    true = rng.normal(0, 1, (1000, 3))
    temp = rng.uniform(18, 35, 1000)
    raw = err.apply(true, temp)
    assert np.abs(raw - true).max() > 0.01  # the error is there ...
    np.testing.assert_allclose(err.correction().apply(raw, temp), true, atol=1e-12)  # ... and undone exactly


def test_device_reading_clips_at_8g_and_counts_it():
    rng = np.random.default_rng(1)
    true = np.zeros((3, 1000), dtype=np.float32)
    true[2] = 1.0
    true[0, 100:110] = 9.5  # a hard impact
    err = device.CalibrationError((0.0, 0.0, 0.0), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0))
    xyz, clipped = device.observe(rng, true, np.full(1000, 25.0, np.float32), err)
    assert clipped == 10
    assert xyz[:, 0].max() == pytest.approx(8.0)
    assert xyz.shape == (1000, 3) and xyz.dtype == np.float32
    assert 0.002 < xyz[200:, 0].std() < 0.006  # ADXL345-like noise


def test_temperature_follows_wear_and_sleep():
    sched = [("sitting_desk", 1800), ("nonwear", 3600), ("sitting_tv", 1800), ("sleep", 3600)]
    rec, truth = simulate_participant("P006", None, 4, schedule=sched)
    fs = truth.fs_true
    at = lambda s: float(rec.temperature[min(int(s * fs), len(rec) - 1)])  # noqa: E731
    assert at(5400) < at(1800) - 4.0  # an hour off the wrist: cools towards the room
    assert abs(at(5400) - truth.ambient_temp_c) < 2.0
    assert at(10800) > at(7200) + 0.5  # in bed: warmer than on the sofa
    assert 15.0 < rec.temperature.min() and rec.temperature.max() < 40.0


def test_band_noise_has_the_asked_spread_and_band():
    rng = np.random.default_rng(2)
    x = signals.band_noise(rng, 60_000, 100.0, 2.0, 5.0, 0.05, cols=1)[0]
    assert x.std() == pytest.approx(0.05, rel=0.1)
    spec = np.abs(np.fft.rfft(x)) ** 2
    f = np.fft.rfftfreq(len(x), 0.01)
    # a 2nd-order Butterworth band-pass: most power inside, little far outside
    assert spec[(f > 2) & (f < 5)].sum() > 0.7 * spec.sum()
    assert spec[(f < 1) | (f > 10)].sum() < 0.1 * spec.sum()


def test_person_traits_in_range():
    rng = np.random.default_rng(3)
    people = [draw_person(rng) for _ in range(200)]
    walk = np.array([p.walk_cadence_hz for p in people])
    run = np.array([p.run_cadence_hz for p in people])
    assert walk.min() >= 1.6 and walk.max() <= 2.2 and walk.std() > 0.05
    assert run.min() >= 2.5 and run.max() <= 3.0
    assert 0.55 < np.mean([p.sex == "F" for p in people]) < 0.77
    for p in people[:10]:
        r = p.rotation
        np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-12)


def test_sleep_is_never_an_hour_still_but_nonwear_is():
    # the reference non-wear rule: 30-s windows with every axis SD < 13 mg, for more than 60 minutes
    for pid in ("P001", "P002"):
        rec, truth = simulate_participant(pid, None, 0, schedule=[("sleep", 4 * 3600), ("nonwear", 5400)])
        n = int(30 * truth.fs_true)
        k = len(rec) // n
        still = rec.xyz[: k * n].reshape(k, n, 3).std(axis=1).max(axis=1) < 0.013
        asleep = rec.extra["activity"][: k * n : n] == NAMES.index("sleep")
        runs = np.diff(np.flatnonzero(np.diff(np.concatenate([[0], still[asleep].astype(int), [0]]))))[::2]
        assert 0.7 < still[asleep].mean() < 0.98  # mostly still, as sleep is
        assert runs.max() < 2 * 40  # but moving at least every 40 minutes
        assert still[~asleep][1:].all()  # off the wrist: still throughout (first window may straddle)


def test_activity_changes_move_the_arm_smoothly():
    sched = [("sitting_tv", 60), ("standing", 60), ("nonwear", 60), ("sleep", 60)]
    rec, truth = simulate_participant("P008", None, 1, schedule=sched)
    xyz = (rec.xyz @ np.linalg.inv(truth.person.rotation).T)  # nominal frame: x = sin(forearm pitch)
    for b in truth.bouts[1:]:
        i = int(b.start_s * truth.fs_true)
        before, after = xyz[i - 400 : i - 200].mean(axis=0), xyz[i + 200 : i + 400].mean(axis=0)
        window = np.abs(np.diff(rec.xyz[i - 150 : i + 150], axis=0)).max()
        # the posture changes a lot (sitting → standing: the forearm drops from ~horizontal to hanging) ...
        assert np.abs(after - before).max() > 0.1 or b.activity == "sleep"
        # ... but over ~1.5 s, not from one sample to the next (noise and small movements are < 0.1 g per step)
        assert window < 0.1, (b.activity, window)
