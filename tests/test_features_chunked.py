"""Chunked extraction equals one-pass extraction.

* `FeatureExtractor.update` over consecutive chunks carries the epoch writer's state and the filter state: the
  result must be identical (bit for bit), wherever the cuts fall — inside an epoch, on the sample that triggers an
  epoch write, inside a gap, in a run of backward time steps.
* Independent chunks on a common grid (``epoch_origin_ns`` + one window of overlap), as a batch runner on several
  workers would do: equal to one pass up to the filter's start-up transient, which has decayed to rounding level
  after a window of overlap (checked at 1e-9).
"""

import pickle

import numpy as np
import pandas as pd
import pytest

from capture_pipeline import Recording
from capture_pipeline.calibration import CalibrationCoefficients
from capture_pipeline.features import FeatureExtractor, extract_features

CAL = CalibrationCoefficients(offset=(0.02, -0.01, 0.0), gain=(1.01, 0.98, 1.0), temp_coef=(0.002, 0.0, -0.001),
                              mean_temp=24.0)


def activity_recording(minutes=20, seed=5):
    """A device-like recording: ~99 Hz with jitter, posture changes, walking bouts, a short gap, an interrupt and a
    few backward time steps; temperature constant per 120-sample block as from a CWA file."""
    rng = np.random.default_rng(seed)
    n = int(minutes * 60 * 99)
    steps = np.full(n, 10_101_010, dtype=np.int64) + rng.integers(-200_000, 200_000, n)
    steps[n // 3] = 8_000_000_000  # 8-s gap
    steps[n // 2] = 75_000_000_000  # interrupt
    steps[2 * n // 3: 2 * n // 3 + 3] = -20_000_000  # backward steps
    time = np.datetime64("2024-02-02T23:59:41.5", "ns").astype(np.int64) + np.cumsum(steps)
    t = np.arange(n) / 99.0
    posture = np.stack([np.sin(t / 200), np.cos(t / 200) * 0.6, np.cos(t / 200) * 0.8], 1)
    walking = (np.sin(t / 37) > 0.3)[:, None] * 0.4 * np.sin(2 * np.pi * 1.9 * t)[:, None] * [1, 0.5, 0.3]
    xyz = (posture + walking + rng.normal(0, 0.01, (n, 3))).astype(np.float32)
    temp = np.repeat(25 + np.cumsum(rng.integers(-1, 2, n // 120 + 1)) * 0.15, 120)[:n].astype(np.float32)
    return Recording(time=time, xyz=xyz, temperature=temp)


@pytest.fixture(scope="module")
def recording():
    return activity_recording()


@pytest.fixture(scope="module")
def one_pass(recording):
    return extract_features(recording, calibration=CAL)


def _chunked(recording, cuts, pickle_between=False):
    fx = FeatureExtractor(calibration=CAL)
    parts = []
    bounds = [0, *cuts, len(recording)]
    for a, b in zip(bounds[:-1], bounds[1:]):
        parts.append(fx.update(recording.slice(a, b)))
        if pickle_between:
            fx = pickle.loads(pickle.dumps(fx))
    return pd.concat(parts, ignore_index=True)


def test_split_in_two_at_arbitrary_samples(recording, one_pass):
    n = len(recording)
    rng = np.random.default_rng(0)
    for cut in [1, 11, 2999, 3000, 3001, n // 3, n // 2, n // 2 + 1, 2 * n // 3 + 1, n - 1, *rng.integers(1, n, 6)]:
        pd.testing.assert_frame_equal(_chunked(recording, [int(cut)]), one_pass, check_exact=True)


def test_split_on_epoch_trigger_samples(recording, one_pass):
    """Cut exactly at, just before and just after the samples whose arrival writes an epoch."""
    ms = recording.time // 1_000_000
    starts = one_pass.time.values.astype(np.int64) // 1_000_000
    triggers = np.searchsorted(ms, starts[1:5] - 0)  # first sample at or after each later epoch start
    for i in triggers:
        for cut in (i - 1, i, i + 1):
            pd.testing.assert_frame_equal(_chunked(recording, [int(cut)]), one_pass, check_exact=True)


def test_many_small_chunks_with_pickled_state(recording, one_pass):
    cuts = list(range(777, len(recording), 4321))
    pd.testing.assert_frame_equal(_chunked(recording, cuts, pickle_between=True), one_pass, check_exact=True)


def test_block_size_does_not_change_the_result(recording, one_pass):
    small_blocks = extract_features(recording, calibration=CAL, block_epochs=3)
    pd.testing.assert_frame_equal(small_blocks, one_pass, check_exact=True)


def test_independent_chunks_on_a_common_grid(recording, one_pass):
    """The multi-worker scheme: each worker gets its chunk [lo, hi) plus >= 1 window of samples before it and the
    first sample at or after hi, the global epoch origin, and keeps the windows starting inside its chunk."""
    origin = int(recording.time[0])
    chunk_ns = 7 * 60 * 10**9  # "days" of 7 minutes
    overlap_ns = 40 * 10**9
    parts = []
    lo = origin // 10**6 * 10**6  # window starts are whole ms: the first window starts at the origin's ms
    while lo <= recording.time[-1]:
        hi = lo + chunk_ns
        a, b = np.searchsorted(recording.time, [lo - overlap_ns, hi])
        b = min(len(recording), b + 1)  # the first sample at/after the cut completes the window before it
        df = extract_features(recording.slice(int(a), int(b)), calibration=CAL, epoch_origin_ns=origin)
        start_ns = df.time.values.astype(np.int64)
        parts.append(df[(start_ns >= lo) & (start_ns < hi)])
        lo = hi
    joined = pd.concat(parts, ignore_index=True)
    assert joined.time.tolist() == one_pass.time.tolist()
    a = joined.drop(columns="time").to_numpy(dtype=float)
    b = one_pass.drop(columns="time").to_numpy(dtype=float)
    np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
