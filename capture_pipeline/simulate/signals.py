"""Vectorised synthesis of the wrist acceleration of each activity (true signal, in g, before device errors).

The model is the physics of a wrist-worn accelerometer: the sensor reads the *up* direction (1 g, the reaction to
gravity) in its own frame, plus the linear acceleration of the wrist.

* **Orientation.** The forearm's pitch ``p`` (elevation of the device x axis, which points along the forearm
  towards the hand) and roll ``r`` (rotation about the forearm; 0 = watch face up) give the up vector in the device
  frame, ``u = (sin p, cos p sin r, cos p cos r)``. Postures are piecewise-constant with smooth transitions and a
  slow wander; gestures (hand-to-mouth, steering, page turns) are smooth excursions of ``p`` and ``r``.
* **Linear acceleration** is written along three directions that follow the wrist: vertical (``u``), tangential
  to a forearm swing (``e_p = du/dp``) and lateral (``e_r``), plus band-limited noise for tremor, typing and
  vehicle vibration. Walking and running are a phase oscillator at the step frequency: a vertical impact series
  at the step frequency and an arm swing (a pendulum) at half of it, whose tangential acceleration appears in
  the vector magnitude at the step frequency, as on real wrists.

Every function here works on whole bouts with numpy/scipy array operations; events (gestures, bites, posture
changes) are scattered in vectorised form. The only Python loops are over bouts, axes and gait harmonics.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy.signal import butter, sosfilt

from .person import Person

_G = 9.80665  # m/s² per g
#: Seconds over which one bout's movement fades into the next one's.
TRANSITION_S = 1.5
_DEG = np.pi / 180.0


# ----------------------------------------------------------------------------------------------------------------
# building blocks


def smooth_walk(rng, n: int, fs: float, every_s: float, sd: float, mean: float = 0.0) -> np.ndarray:
    """A slow random process: independent N(mean, sd) values every ``every_s`` seconds, linearly interpolated."""
    step = every_s * fs
    k = int(n / step) + 2
    knots = rng.normal(mean, sd, k)
    return np.interp(np.arange(n) / step, np.arange(k), knots).astype(np.float32)


@lru_cache(maxsize=64)
def _band_filter(lo: float, hi: float, fs: float):
    """Second-order Butterworth band-pass and the standard deviation it gives unit white noise."""
    hi = min(hi, 0.45 * fs)
    sos = butter(2, [lo, hi], btype="band", fs=fs, output="sos")
    impulse = np.zeros(int(20 * fs / lo) + 1)
    impulse[0] = 1.0
    gain = float(np.sqrt(np.sum(sosfilt(sos, impulse) ** 2)))
    # float32 coefficients keep the whole filter in float32 (half the memory traffic; ample precision here)
    return sos.astype(np.float32), gain


def band_noise(rng, n: int, fs: float, lo: float, hi: float, sd: float, cols: int = 3) -> np.ndarray:
    """Gaussian noise band-limited to ``lo``–``hi`` Hz with standard deviation ``sd``, shape (cols, n).

    The scale comes from the filter's impulse-response energy, not from the sample, so it does not depend on the
    bout length. Component-major (one row per axis) so that the filter runs along contiguous memory.
    """
    sos, gain = _band_filter(float(lo), float(hi), float(fs))
    out = sosfilt(sos, rng.standard_normal((cols, n), dtype=np.float32), axis=-1)
    out *= np.float32(sd / gain)
    return out


def event_times(rng, duration_s: float, rate_per_min: float) -> np.ndarray:
    """Times (s) of a Poisson process of ``rate_per_min`` events per minute over ``duration_s`` seconds."""
    k = rng.poisson(rate_per_min * duration_s / 60.0)
    return np.sort(rng.uniform(0.0, duration_s, k))


def regular_times(rng, duration_s: float, mean_s: float, sd_s: float, min_s: float) -> np.ndarray:
    """Times of quasi-regular events (intervals N(mean_s, sd_s), at least ``min_s``), e.g. bites during a meal."""
    k = int(duration_s / max(min_s, 1e-3)) + 2
    gaps = np.maximum(rng.normal(mean_s, sd_s, k), min_s)
    times = rng.uniform(0, mean_s) + np.concatenate([[0.0], np.cumsum(gaps[:-1])])
    return times[times < duration_s]


def _windows(n: int, fs: float, times: np.ndarray, width_s: float):
    """Sample indices (k, w) of a ``width_s`` window centred on each time, clipped to 0..n-1, and a validity mask."""
    w = max(int(round(width_s * fs)), 3)
    centre = (np.asarray(times) * fs).astype(np.int64)
    idx = centre[:, None] - w // 2 + np.arange(w)[None, :]
    valid = (idx >= 0) & (idx < n)
    return idx, valid, w


def _scatter(n: int, idx: np.ndarray, valid: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Sum ``values`` (same shape as ``idx``) into an array of length n (overlapping windows add up)."""
    return np.bincount(idx[valid], weights=values[valid], minlength=n)


def pulses(n: int, fs: float, times: np.ndarray, weights, width_s: float) -> np.ndarray:
    """Hann-shaped bumps of ``width_s`` seconds and height ``weights`` centred on ``times`` (overlaps add up).

    Only the samples under the bumps are computed, so sparse events cost nothing on long bouts.
    """
    if len(times) == 0:
        return np.zeros(n, np.float32)
    idx, valid, w = _windows(n, fs, times, width_s)
    values = np.broadcast_to(np.asarray(weights, dtype=np.float64).reshape(-1, 1), idx.shape) * np.hanning(w)
    return _scatter(n, idx, valid, values).astype(np.float32)


def steps(n: int, fs: float, times: np.ndarray, deltas, ramp_s: float) -> np.ndarray:
    """Smooth steps: the level changes by ``deltas`` at ``times``, each change spread over ``ramp_s`` seconds."""
    if len(times) == 0:
        return np.zeros(n, np.float32)
    idx, valid, w = _windows(n, fs, times, ramp_s)
    kernel = np.hanning(w)
    kernel /= kernel.sum()
    values = np.asarray(deltas, dtype=np.float64).reshape(-1, 1) * kernel
    return np.cumsum(_scatter(n, idx, valid, values)).astype(np.float32)


def bursts(rng, n: int, fs: float, times: np.ndarray, width_s: float, band, sd) -> np.ndarray:
    """Bursts of band-limited movement (3×n, g): filtered noise under a Hann window of ``width_s`` at each time.

    ``sd`` (scalar or one value per event) is the standard deviation at the centre of a burst.
    """
    out = np.zeros((3, n), dtype=np.float32)
    if len(times) == 0:
        return out
    idx, valid, w = _windows(n, fs, times, width_s)
    sos, gain = _band_filter(float(band[0]), float(band[1]), float(fs))
    # filter a longer stretch and keep its end, so the bursts carry no start-up transient
    lead = int(fs / band[0])
    noise = sosfilt(sos, rng.standard_normal((3, len(times), lead + w)), axis=-1)[..., lead:]
    shape = np.hanning(w) * (np.broadcast_to(np.asarray(sd, dtype=np.float64), (len(times),))[:, None] / gain)
    for k in range(3):
        out[k] = _scatter(n, idx, valid, noise[k] * shape)
    return out


def posture(rng, n, fs, p_mean, p_sd, r_mean, r_sd, changes_per_min, ramp_s=1.5, wander_every_s=5.0, wander_deg=3.0):
    """Pitch and roll (radians) of a sequence of postures drawn around (p_mean, r_mean) degrees, with wander."""
    duration = n / fs
    times = event_times(rng, duration, changes_per_min)
    p_targets = rng.normal(p_mean, p_sd, len(times) + 1)
    r_targets = rng.normal(r_mean, r_sd, len(times) + 1)
    p = float(p_targets[0]) + steps(n, fs, times, np.diff(p_targets), ramp_s)
    r = float(r_targets[0]) + steps(n, fs, times, np.diff(r_targets), ramp_s)
    p += smooth_walk(rng, n, fs, wander_every_s, wander_deg)
    r += smooth_walk(rng, n, fs, wander_every_s, wander_deg)
    return p * _DEG, r * _DEG, times


def gestures(rng, n, fs, rate_per_min, dur_s, pitch_deg, roll_deg, acc_g, band=(0.5, 4.0)):
    """Short arm movements: smooth pitch/roll excursions (radians) and a burst of linear acceleration (3×n, g)."""
    times = event_times(rng, n / fs, rate_per_min)
    if len(times) == 0:
        return np.zeros(n, np.float32), np.zeros(n, np.float32), np.zeros((3, n), np.float32)
    dp = pulses(n, fs, times, rng.normal(0, pitch_deg, len(times)), dur_s) * _DEG
    dr = pulses(n, fs, times, rng.normal(0, roll_deg, len(times)), dur_s) * _DEG
    return dp, dr, bursts(rng, n, fs, times, dur_s, band, acc_g)


def gait(rng, n, fs, cadence_hz, swing_rad, arm_m, impact_g, harmonics, jitter=0.03):
    """Phase-oscillator gait.

    Returns the swing angle (radians, at half the step frequency), the tangential acceleration of the swing
    (g, ``arm_m`` times the angular acceleration) and the vertical impact acceleration (g, at the step frequency
    with the given harmonic amplitudes relative to the fundamental).
    """
    f = cadence_hz * (1.0 + smooth_walk(rng, n, fs, 10.0, jitter))
    phase = 2 * np.pi * np.cumsum(f) / fs + rng.uniform(0, 2 * np.pi)
    half = phase / 2.0
    sin_half = np.sin(half)
    swing = (swing_rad * sin_half).astype(np.float32)
    # d²/dt² of A sin(phase/2) with dphase/dt = 2π f (slow changes of f neglected)
    tangential = (-arm_m * swing_rad * (np.pi * f) ** 2 / _G * sin_half).astype(np.float32)
    vertical = np.zeros(n)
    for k, amp in enumerate(harmonics, start=1):
        vertical += amp * np.cos(k * phase + 0.6 * (k - 1))
    return swing, tangential, (vertical * impact_g).astype(np.float32)


# ----------------------------------------------------------------------------------------------------------------
# activities: each returns a dict with pitch ``p`` and roll ``r`` (radians, shape (n,)) and optionally the
# vertical ``v``, tangential ``t`` and lateral ``l`` accelerations (g, (n,)) and device-frame ``lin`` (g, (3, n)).


def _sleep(rng, n, fs, person):
    p, r, changes = posture(rng, n, fs, 0.0, 35.0, 0.0, 100.0, 1 / 40, ramp_s=4.0, wander_every_s=60, wander_deg=1.5)
    # turning over: a few seconds of whole-arm movement around each posture change
    lin = bursts(rng, n, fs, changes, 8.0, (0.3, 3.0), 0.12 * person.intensity)
    # small adjustments of the arm every few minutes (quasi-regular, at most ~20 min apart): a sleeping wrist is
    # never still for an hour, which is what non-wear detection relies on
    shifts = regular_times(rng, n / fs, 360.0, 180.0, 30.0)
    p = p + steps(n, fs, shifts, rng.normal(0.0, 6.0, len(shifts)) * _DEG, 2.0)
    r = r + steps(n, fs, shifts, rng.normal(0.0, 8.0, len(shifts)) * _DEG, 2.0)
    lin += bursts(rng, n, fs, shifts, 2.0, (0.5, 4.0), 0.05 * person.intensity)
    dp, dr, twitch = gestures(rng, n, fs, 0.2, 1.0, 3.0, 3.0, 0.03)
    return {"p": p + dp, "r": r + dr, "lin": lin + twitch}


def _sitting_desk(rng, n, fs, person):
    p, r, _ = posture(rng, n, fs, 0.0, 8.0, -20.0, 15.0, 0.2)
    typing_on = np.clip(smooth_walk(rng, n, fs, 20.0, 0.6, 0.5), 0.0, 1.0)
    lin = band_noise(rng, n, fs, 3.0, 10.0, 0.02 * person.intensity) * typing_on
    lin += band_noise(rng, n, fs, 0.3, 3.0, 0.025 * person.intensity)  # mouse, posture adjustments
    dp, dr, g = gestures(rng, n, fs, 2.0, 2.0, 15.0, 20.0, 0.12 * person.intensity)
    return {"p": p + dp, "r": r + dr, "lin": lin + g}


def _sitting_reading(rng, n, fs, person):
    p, r, _ = posture(rng, n, fs, 35.0, 10.0, 70.0, 20.0, 0.1, wander_every_s=10.0)
    lin = band_noise(rng, n, fs, 4.0, 10.0, 0.006)  # physiological tremor of a held book or phone
    lin += band_noise(rng, n, fs, 0.3, 3.0, 0.02 * person.intensity)  # scrolling, shifting the grip
    dp, dr, g = gestures(rng, n, fs, 1.0, 1.5, 10.0, 10.0, 0.08 * person.intensity)
    return {"p": p + dp, "r": r + dr, "lin": lin + g}


def _sitting_tv(rng, n, fs, person):
    p, r, _ = posture(rng, n, fs, -5.0, 12.0, 20.0, 30.0, 0.08, wander_every_s=20.0, wander_deg=2.0)
    fidget = band_noise(rng, n, fs, 0.3, 3.0, 0.015 * person.intensity)
    dp, dr, g = gestures(rng, n, fs, 0.5, 2.0, 20.0, 20.0, 0.1 * person.intensity)
    return {"p": p + dp, "r": r + dr, "lin": fidget + g}


def _eating(rng, n, fs, person):
    p, r, _ = posture(rng, n, fs, 0.0, 8.0, -20.0, 15.0, 0.1)
    bites = regular_times(rng, n / fs, 20.0, 6.0, 8.0)
    # hand to mouth: the forearm rises by ~65° and turns, held briefly, and comes back down (≈3.5 s)
    dp = pulses(n, fs, bites, rng.normal(65.0, 10.0, len(bites)), 3.5) * _DEG
    dr = pulses(n, fs, bites, rng.normal(30.0, 10.0, len(bites)), 3.5) * _DEG
    lift = bursts(rng, n, fs, bites, 3.5, (0.3, 3.0), 0.12 * person.intensity)
    between = 1.0 - np.minimum(pulses(n, fs, bites, 1.0, 3.5), 1.0)
    cutting = band_noise(rng, n, fs, 1.0, 6.0, 0.04 * person.intensity) * between
    return {"p": p + dp, "r": r + dr, "lin": lift + cutting}


def _standing(rng, n, fs, person):
    p, r, _ = posture(rng, n, fs, -70.0, 8.0, 80.0, 15.0, 0.5, ramp_s=1.0, wander_every_s=3.0, wander_deg=4.0)
    sway = band_noise(rng, n, fs, 0.2, 2.0, 0.04 * person.intensity)
    dp, dr, g = gestures(rng, n, fs, 2.5, 2.0, 35.0, 25.0, 0.2 * person.intensity)
    return {"p": p + dp, "r": r + dr, "lin": sway + g}


def _household(rng, n, fs, person):
    p, r, _ = posture(rng, n, fs, -30.0, 20.0, 40.0, 30.0, 2.0, ramp_s=1.0, wander_every_s=2.0, wander_deg=8.0)
    work = band_noise(rng, n, fs, 0.5, 5.0, 0.09 * person.intensity)
    dp, dr, g = gestures(rng, n, fs, 3.0, 1.5, 30.0, 30.0, 0.25 * person.intensity, band=(0.5, 6.0))
    return {"p": p + dp, "r": r + dr, "lin": work + g}


def _walking(rng, n, fs, person):
    swing, tangential, vertical = gait(
        rng, n, fs, person.walk_cadence_hz, 0.25 * np.sqrt(person.intensity), 0.45,
        0.33 * person.intensity, (1.0, 0.4, 0.15),
    )
    p = rng.normal(-70.0, 5.0) * _DEG + swing + smooth_walk(rng, n, fs, 5.0, 2.0) * _DEG
    r = rng.normal(80.0, 10.0) * _DEG + smooth_walk(rng, n, fs, 5.0, 4.0) * _DEG
    lin = band_noise(rng, n, fs, 3.0, 15.0, 0.05 * person.intensity)
    return {"p": p, "r": r, "v": vertical, "t": tangential, "lin": lin}


def _running(rng, n, fs, person):
    swing, tangential, vertical = gait(
        rng, n, fs, person.run_cadence_hz, 0.45 * np.sqrt(person.intensity), 0.30,
        1.6 * person.intensity, (1.0, 0.6, 0.35, 0.2),
    )
    p = rng.normal(-15.0, 8.0) * _DEG + swing
    r = rng.normal(60.0, 15.0) * _DEG + smooth_walk(rng, n, fs, 3.0, 5.0) * _DEG
    lin = band_noise(rng, n, fs, 5.0, 20.0, 0.1 * person.intensity)
    return {"p": p, "r": r, "v": vertical, "t": tangential, "lin": lin}


def _bicycling(rng, n, fs, person):
    p, r, _ = posture(rng, n, fs, -25.0, 8.0, 20.0, 15.0, 0.05, wander_every_s=2.0, wander_deg=4.0)
    roughness = np.exp(smooth_walk(rng, n, fs, 30.0, 0.4))  # road surface changes
    vib = band_noise(rng, n, fs, 8.0, 30.0, 0.09) * roughness
    f_pedal = rng.uniform(1.0, 1.5)  # crank revolutions per second; the body rocks once per revolution
    rock = 0.04 * person.intensity * np.sin(2 * np.pi * f_pedal * np.arange(n) / fs + rng.uniform(0, 2 * np.pi))
    bumps = event_times(rng, n / fs, 6.0)
    v = pulses(n, fs, bumps, rng.normal(0, 0.4, len(bumps)), 0.25)
    return {"p": p, "r": r, "v": v, "l": rock, "lin": vib}


def _driving(rng, n, fs, person):
    p, r, _ = posture(rng, n, fs, 5.0, 8.0, -50.0, 15.0, 0.05, wander_every_s=2.0, wander_deg=6.0)
    turns = event_times(rng, n / fs, 1.0)
    r = r + pulses(n, fs, turns, rng.normal(0, 50.0, len(turns)), 4.0) * _DEG  # steering through a bend
    vib = band_noise(rng, n, fs, 10.0, 35.0, 0.025)
    vib += band_noise(rng, n, fs, 0.3, 2.0, 0.015 * person.intensity)  # small steering corrections
    accel = smooth_walk(rng, n, fs, 6.0, 0.06)  # speeding up and braking, along the road
    dp, dr, g = gestures(rng, n, fs, 0.3, 2.0, 20.0, 15.0, 0.08 * person.intensity)
    return {"p": p + dp, "r": r + dr, "t": accel, "lin": vib + g}


def _bus_train(rng, n, fs, person):
    p, r, _ = posture(rng, n, fs, 10.0, 15.0, 30.0, 30.0, 0.1, wander_every_s=10.0)
    roughness = np.exp(smooth_walk(rng, n, fs, 20.0, 0.3))
    vib = band_noise(rng, n, fs, 2.0, 20.0, 0.03) * roughness
    accel = smooth_walk(rng, n, fs, 10.0, 0.05)
    sway = band_noise(rng, n, fs, 0.3, 1.5, 0.02, cols=1)[0]
    dp, dr, g = gestures(rng, n, fs, 0.2, 2.0, 15.0, 15.0, 0.06 * person.intensity)
    return {"p": p + dp, "r": r + dr, "t": accel, "l": sway, "lin": vib + g}


def _nonwear(rng, n, fs, person):
    # on a table, face up or face down, perfectly still
    p = np.full(n, rng.normal(0.0, 2.0) * _DEG, dtype=np.float32)
    r = np.full(n, (rng.normal(0.0, 2.0) + (180.0 if rng.random() < 0.3 else 0.0)) * _DEG, dtype=np.float32)
    return {"p": p, "r": r}


GENERATORS = {
    "sleep": _sleep,
    "sitting_desk": _sitting_desk,
    "sitting_reading": _sitting_reading,
    "sitting_tv": _sitting_tv,
    "eating": _eating,
    "standing": _standing,
    "household": _household,
    "walking": _walking,
    "running": _running,
    "bicycling": _bicycling,
    "driving": _driving,
    "bus_train": _bus_train,
    "nonwear": _nonwear,
}


def compose(parts: dict) -> list:
    """Device-frame acceleration (three arrays x, y, z of shape (n,), g) from an activity's parts."""
    f32 = lambda a: np.asarray(a, dtype=np.float32)  # noqa: E731  (float32 halves the cost of every step)
    p, r = f32(parts["p"]), f32(parts["r"])
    sp, cp, sr, cr = np.sin(p), np.cos(p), np.sin(r), np.cos(r)
    cols = [sp, cp * sr, cp * cr]  # the up vector
    if "v" in parts:
        scale = 1.0 + f32(parts["v"])
        cols = [c * scale for c in cols]
    if "t" in parts:  # along d(up)/dp: the direction a forearm swing moves the wrist
        t = f32(parts["t"])
        cols = [cols[0] + cp * t, cols[1] - sp * sr * t, cols[2] - sp * cr * t]
    if "l" in parts:  # along d(up)/dr / cos p: sideways
        lat = f32(parts["l"])
        cols = [cols[0], cols[1] + cr * lat, cols[2] - sr * lat]
    if "lin" in parts:
        cols = [c + f32(d) for c, d in zip(cols, parts["lin"])]
    return cols


def synthesise(rng, bout_slices, activities, fs: float, person: Person, n: int) -> np.ndarray:
    """The true wrist acceleration in the person's device frame, bout by bout: float32, shape (3, n), g.

    Consecutive bouts are cross-faded over `TRANSITION_S` seconds (each bout is generated that much longer), so
    that changing activity moves the arm rather than teleporting it.

    Parameters
    ----------
    rng : numpy.random.Generator
    bout_slices : sequence of (start, stop) sample indices, contiguous and covering 0..n
    activities : sequence of activity names, one per bout
    fs : float
        True sample rate in Hz.
    person : Person
    n : int
        Total number of samples.
    """
    out = np.empty((3, n), dtype=np.float32)
    rot = person.rotation
    slices = [(int(i0), int(i1)) for i0, i1 in bout_slices]
    overlap = int(round(TRANSITION_S * fs))
    tail = None  # the previous bout's continuation past its end, to fade out over the start of this one
    for j, ((i0, i1), name) in enumerate(zip(slices, activities)):
        m = i1 - i0
        if m <= 0:
            continue
        extra = min(overlap, slices[j + 1][1] - slices[j + 1][0]) if j + 1 < len(slices) else 0
        x, y, z = compose(GENERATORS[name](rng, m + extra, fs, person))
        # rotate into the device frame of this person's strap (explicit sums: faster than a tall matmul)
        rotated = np.stack([rot[k, 0] * x + rot[k, 1] * y + rot[k, 2] * z for k in range(3)])
        out[:, i0:i1] = rotated[:, :m]
        if tail is not None and tail.shape[1]:
            w = min(tail.shape[1], m)
            fade = (0.5 - 0.5 * np.cos(np.linspace(0.0, np.pi, w))).astype(np.float32)  # 0 → 1
            out[:, i0 : i0 + w] = fade * out[:, i0 : i0 + w] + (1.0 - fade) * tail[:, :w]
        tail = rotated[:, m:]
    return out
