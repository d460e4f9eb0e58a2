"""Synthetic recordings for the batch tests (imported by the other ``test_batch*`` modules)."""

import numpy as np

from capture_pipeline.cwa_writer import write_cwa

T0 = np.datetime64("2024-03-01T23:00:00", "ns").astype(np.int64)  # crosses midnight: two days, hours 23 and 0-1
# Device error the calibration should find: offsets and gains per axis.
OFFSET = np.array([0.02, -0.015, 0.01])
GAIN = np.array([1.01, 0.985, 1.02])


def synthetic_samples(minutes=150, fs=100.0, seed=0, gap_at_min=None, gap_min=3.0):
    """``(time_ns, xyz, temperature)``: still periods in six orientations, movement, an hour off the wrist.

    The still periods let the autocalibration fit (stationary points on both sides of every axis); the 70-min
    flat stretch is non-wear; ``gap_at_min`` removes ``gap_min`` minutes of samples (a recording gap).
    """
    rng = np.random.default_rng(seed)
    n = int(minutes * 60 * fs)
    t = np.arange(n)
    seconds = t / fs
    true = np.zeros((n, 3))
    orientations = np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1],
                             [0.6, 0.8, 0], [0, -0.6, 0.8]], float)  # fmt: skip
    minute = (seconds // 60).astype(int)
    block = minute // 4  # 4-minute blocks: even blocks still, odd blocks moving
    k = 0  # still blocks so far: each one in the next orientation
    for b in np.unique(block):
        sel = block == b
        g = orientations[k % len(orientations)]
        if 40 <= minute[sel][0] < 112:  # 72 min flat on a table: non-wear
            true[sel] = orientations[4]
        elif b % 2 == 0:  # still
            true[sel] = g
            k += 1
        else:
            ph = seconds[sel]
            true[sel] = g + 0.4 * np.stack([np.sin(2 * np.pi * 1.8 * ph), np.cos(2 * np.pi * 1.1 * ph),
                                            np.sin(2 * np.pi * 0.7 * ph + 1)], axis=1)  # fmt: skip
    xyz = (true - OFFSET) / GAIN + rng.normal(0, 0.004, (n, 3))
    temperature = 25 + 3 * np.sin(seconds / 3000.0)
    time_ns = T0 + np.round(seconds * 1e9 * 1.004).astype(np.int64)  # the device clock runs 0.4% slow
    if gap_at_min is not None:
        keep = (seconds < gap_at_min * 60) | (seconds >= (gap_at_min + gap_min) * 60)
        time_ns, xyz, temperature = time_ns[keep], xyz[keep], temperature[keep]
        time_ns[seconds[keep] >= gap_at_min * 60] += int(gap_min * 60e9)
    return time_ns, xyz.astype(np.float32), temperature.astype(np.float32)


def write_synthetic_cwa(path, minutes=150, seed=0, **kw):
    """Write `synthetic_samples` as an AX3 packed CWA file; returns the number of data blocks."""
    time_ns, xyz, temp = synthetic_samples(minutes=minutes, seed=seed, **kw)
    return write_cwa(path, time_ns, xyz, temp, fs=100.0, device_id=1000 + seed, session_id=seed)


def write_synthetic_csv(path, minutes=20, seed=0):
    """A CSV export (time, x, y, z) of `synthetic_samples`."""
    import pandas as pd

    time_ns, xyz, _ = synthetic_samples(minutes=minutes, seed=seed)
    df = pd.DataFrame({"time": time_ns.view("datetime64[ns]"), "x": xyz[:, 0], "y": xyz[:, 1], "z": xyz[:, 2]})
    df.to_csv(path, index=False, date_format="%Y-%m-%d %H:%M:%S.%f")


def test_synthetic_file_has_blocks_and_calibrates(tmp_path):
    import capture_pipeline as cp
    from capture_pipeline.calibration_fit import fit_calibration

    n_blocks = write_synthetic_cwa(tmp_path / "a.cwa", minutes=150)
    assert n_blocks == 7500  # 900,000 samples / 120 per packed block
    coef = fit_calibration(cp.read(tmp_path / "a.cwa"))
    assert coef.info["applied"], coef.info["reason"]
    np.testing.assert_allclose(coef.offset, OFFSET, atol=6e-3)  # the temperature term absorbs some
