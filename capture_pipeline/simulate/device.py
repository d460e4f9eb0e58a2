"""The simulated device: its sample clock, temperature, calibration error, sensor noise and range.

What a real AX3 adds to the true wrist acceleration, in the order it happens:

1. the crystal runs slightly slow, so the true sample rate is a little below the configured one (real devices:
   about 1-1.6 % below, `spec/cwa.md` §7.4);
2. white sensor noise (ADXL345 at 100 Hz: ≈4 mg on x and y, ≈6 mg on z);
3. a per-device calibration error: ``raw = gain · a + offset + temp_coef · (T − ref_temp)`` per axis, with
   offsets up to ±0.05 g, gains within ±3 % and a temperature coefficient up to ±2 mg/°C;
4. clipping at the ±8 g range.

Quantisation to the packed 10-bit resolution (4/256 g at ±8 g) is done by the CWA writer, not here, so the
in-memory samples are the analogue values the device digitises.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import lfilter

from ..calibration import CalibrationCoefficients

#: Sensor noise standard deviation per axis (g).
NOISE_G = np.array([0.004, 0.004, 0.006])
#: Device range (g): samples are clipped here.
RANGE_G = 8.0
#: Reference temperature (°C) of the temperature term of the calibration error.
REF_TEMP_C = 25.0
#: Time constant (s) with which the device temperature follows its surroundings.
TEMP_TAU_S = 900.0


@dataclass(frozen=True)
class CalibrationError:
    """Per-axis error the device adds: ``raw = gain · true + offset + temp_coef · (T − ref_temp)``.

    Attributes
    ----------
    offset : tuple of 3 floats (g)
    gain : tuple of 3 floats
    temp_coef : tuple of 3 floats (g/°C)
    ref_temp : float (°C)
    """

    offset: tuple
    gain: tuple
    temp_coef: tuple
    ref_temp: float = REF_TEMP_C

    def apply(self, xyz: np.ndarray, temperature: np.ndarray) -> np.ndarray:
        """The raw device reading (float64) of the true acceleration ``xyz`` at ``temperature``."""
        out = np.asarray(xyz, dtype=np.float64) * np.asarray(self.gain)
        out += np.asarray(self.offset)
        out += (np.asarray(temperature, dtype=np.float64) - self.ref_temp)[:, None] * np.asarray(self.temp_coef)
        return out

    def correction(self) -> CalibrationCoefficients:
        """The `CalibrationCoefficients` that undo this error exactly (``mean_temp`` = ``ref_temp``).

        From ``raw = g·a + o + k·(T − Tr)``: ``a = −o/g + (1/g)·raw + (−k/g)·(T − Tr)``.
        """
        g = np.asarray(self.gain)
        return CalibrationCoefficients(
            offset=tuple(float(v) for v in -np.asarray(self.offset) / g),
            gain=tuple(float(v) for v in 1.0 / g),
            temp_coef=tuple(float(v) for v in -np.asarray(self.temp_coef) / g),
            mean_temp=float(self.ref_temp),
            info={"source": "simulation truth"},
        )

    def to_dict(self) -> dict:
        return {
            "offset": list(self.offset),
            "gain": list(self.gain),
            "temp_coef": list(self.temp_coef),
            "ref_temp": self.ref_temp,
        }


def draw_calibration_error(rng) -> CalibrationError:
    """A device's calibration error: offsets U(±0.05 g), gains U(0.97, 1.03), temp. coefficients U(±2 mg/°C)."""
    return CalibrationError(
        offset=tuple(float(v) for v in rng.uniform(-0.05, 0.05, 3)),
        gain=tuple(float(v) for v in rng.uniform(0.97, 1.03, 3)),
        temp_coef=tuple(float(v) for v in rng.uniform(-0.002, 0.002, 3)),
    )


def draw_clock_rate(rng, fs: float, clock_error: bool) -> float:
    """True sample rate of a device configured at ``fs``: 0.2-1.6 % slow when ``clock_error``, else ``fs``."""
    return float(fs * (1.0 - rng.uniform(0.002, 0.016))) if clock_error else float(fs)


def sample_times(start_ns: int, n: int, fs_true: float) -> np.ndarray:
    """Per-sample times (int64 ns) of ``n`` samples taken every ``1/fs_true`` s from ``start_ns``."""
    return start_ns + np.round(np.arange(n, dtype=np.float64) * (1e9 / fs_true)).astype(np.int64)


def temperature(rng, n: int, fs_true: float, bout_slices, targets_c) -> np.ndarray:
    """Device temperature (°C, float32, per sample) following per-bout target temperatures with a lag.

    The device warms towards skin temperature while worn and cools towards the room when taken off, as a
    first-order system with time constant `TEMP_TAU_S`. It is computed once per second and interpolated.
    """
    seconds = int(np.ceil(n / fs_true)) + 2
    target = np.empty(seconds)
    for (i0, i1), value in zip(bout_slices, targets_c):
        s0, s1 = int(i0 / fs_true), int(np.ceil(i1 / fs_true)) + 1
        target[s0:s1] = value
    target += _slow(rng, seconds)
    a = 1.0 - np.exp(-1.0 / TEMP_TAU_S)
    lagged, _ = lfilter([a], [1.0, a - 1.0], target, zi=[target[0] * (1.0 - a)])
    t = np.arange(n) / fs_true
    return np.interp(t, np.arange(seconds), lagged).astype(np.float32)


def _slow(rng, seconds: int) -> np.ndarray:
    """A slow ±0.3 °C wander (knots every 10 min) so that the temperature is never exactly flat."""
    k = seconds // 600 + 2
    return np.interp(np.arange(seconds) / 600.0, np.arange(k), rng.normal(0.0, 0.3, k))


def observe(rng, true_xyz: np.ndarray, temp_c: np.ndarray, error: CalibrationError) -> tuple[np.ndarray, int]:
    """The device reading of the true acceleration: noise, calibration error and clipping.

    Parameters
    ----------
    true_xyz : numpy.ndarray of float32, shape (3, n)
        True acceleration, component-major; overwritten.
    temp_c : numpy.ndarray, shape (n,)
    error : CalibrationError

    Returns
    -------
    xyz : numpy.ndarray of float32, shape (n, 3)
    clipped : int
        Number of samples with at least one axis at the range limit.
    """
    dt = (temp_c - np.float32(error.ref_temp)).astype(np.float32)
    raw = true_xyz
    for k in range(3):
        row = raw[k]
        row += rng.standard_normal(row.shape[0], dtype=np.float32) * np.float32(NOISE_G[k])
        row *= np.float32(error.gain[k])
        row += np.float32(error.offset[k])
        row += dt * np.float32(error.temp_coef[k])
    at_limit = np.abs(raw) >= RANGE_G
    clipped = int(np.count_nonzero(at_limit.any(axis=0)))
    np.clip(raw, -RANGE_G, RANGE_G, out=raw)
    return np.ascontiguousarray(raw.T), clipped
