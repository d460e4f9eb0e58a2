"""The reference's epoch writer: which raw samples form each 30-s epoch, and their resampling to 3000 points.

This ports the state machine of `EpochWriter.newValues` and the start of `writeEpochSummary` (biobankAccelerometer-
Analysis v2.3.0; spec `features.md` §3.4-3.8) in two Numba passes:

1. `plan_epochs` walks the per-sample millisecond times once, sequentially (the rules are inherently sequential), and
   records for every epoch the reference would write its start time, the index range of its samples, its leading and
   trailing edge samples and its ``dataErrors`` count. It touches only the time array.
2. `resample_epochs` then builds, for a block of epochs in parallel, each epoch's raw sample list (edge samples
   included), applies calibration with the reference's clip counting and clipping, and interpolates it linearly onto
   the ``epoch_s * fs``-point grid exactly as `Resample.interpLinear` does.

Samples that the reference ignores are never copied: a sample is part of an epoch iff its time is not earlier than
the previous kept sample (otherwise it counts as a data error) and not before ``origin_ms`` when an epoch origin is
given. Both passes apply that same rule, so no per-sample mask is stored.
"""

from __future__ import annotations

import numba
import numpy as np

#: The reference writes an epoch only when it holds more than this many samples (`minSamplesForEpoch`).
MIN_SAMPLES_FOR_EPOCH = 10

NS_PER_MS = 1_000_000


@numba.njit(cache=True, nogil=True)
def plan_epochs(time_ns, n_open, open_has_lead, state_i, period_ms, origin_ms, has_origin, capacity):
    """Run the reference's epoch state machine over per-sample times.

    Parameters
    ----------
    time_ns : numpy.ndarray of int64
        Per-sample times in ns. The first ``n_open`` samples are the epoch still open from a previous chunk (its
        leading edge sample first when ``open_has_lead``); they are not re-examined.
    n_open : int
        Number of samples of the open epoch carried over (0 at the start of a recording).
    open_has_lead : bool
        Whether sample 0 is the carried-over epoch's leading edge sample.
    state_i : numpy.ndarray of int64, shape (5,)
        ``[epoch_start_ms, has_epoch_start, prev_ms, has_prev, data_errors]`` on entry; updated in place.
    period_ms : int
        Epoch length in ms (30 000).
    origin_ms, has_origin : int, bool
        The reference's ``startTime`` option: samples before ``origin_ms`` are ignored and the first epoch starts at
        ``origin_ms`` plus a whole number of periods.
    capacity : int
        Size of the output arrays. If more epochs are found, the call returns ``open_lead == open_first == -2``
        without updating ``state_i``: call again with a larger capacity. (Growing arrays inside the loop would make
        Numba reference-count them on every sample, ~5x slower.)

    Returns
    -------
    starts, leads, firsts, lasts, trails, errors : numpy.ndarray of int64, shape (n_epochs,)
        Per written epoch: start (ms), index of the leading edge sample (-1: none), indices of the first and last
        regular sample (inclusive; samples in between that the reference drops are skipped by the same rule),
        index of the trailing edge sample (-1: none), and ``dataErrors``.
    open_lead, open_first : int
        The epoch left open at the end: index of its leading edge sample (-1: none) and of its first regular sample
        (-1 when nothing is open).
    """
    n = time_ns.shape[0]
    starts = np.empty(capacity, np.int64)
    leads = np.empty(capacity, np.int64)
    firsts = np.empty(capacity, np.int64)
    lasts = np.empty(capacity, np.int64)
    trails = np.empty(capacity, np.int64)
    errors = np.empty(capacity, np.int64)
    n_ep = 0

    epoch_ms = state_i[0]
    has_epoch = state_i[1] != 0
    prev_ms = state_i[2]
    has_prev = state_i[3] != 0
    err = state_i[4]

    # The open epoch: its sample count (edge included), its leading edge, first and last regular samples.
    count = 0
    lead = -1
    first = -1
    prev_idx = -1
    if n_open > 0:
        count = n_open
        if open_has_lead:
            lead = 0
            first = 1 if n_open > 1 else -1
        else:
            first = 0
        prev_idx = n_open - 1

    for i in range(n_open, n):
        t = time_ns[i] // NS_PER_MS
        if has_origin and t < origin_ms:
            continue
        if not has_epoch:
            if has_origin:
                epoch_ms = origin_ms
                while epoch_ms + period_ms < t:
                    epoch_ms += period_ms
            else:
                epoch_ms = t
            has_epoch = True
        if has_prev and t < prev_ms:
            err += 1  # time went backwards: the sample is ignored
            continue
        if has_prev and t - prev_ms >= 2 * period_ms:
            # Interrupt: write what we have (no trailing edge) or discard it, then jump to the new epoch.
            err += 1
            if count > MIN_SAMPLES_FOR_EPOCH:
                if n_ep == capacity:
                    return starts, leads, firsts, lasts, trails, errors, -2, -2
                starts[n_ep] = epoch_ms
                leads[n_ep] = lead
                firsts[n_ep] = first
                lasts[n_ep] = prev_idx
                trails[n_ep] = -1
                errors[n_ep] = err
                n_ep += 1
            err = 0
            count = 0
            lead = -1
            first = -1
            while epoch_ms < t - period_ms:
                epoch_ms += period_ms
        if t - epoch_ms >= period_ms and count > MIN_SAMPLES_FOR_EPOCH:
            if n_ep == capacity:
                return starts, leads, firsts, lasts, trails, errors, -2, -2
            starts[n_ep] = epoch_ms
            leads[n_ep] = lead
            firsts[n_ep] = first
            lasts[n_ep] = prev_idx
            trails[n_ep] = i
            errors[n_ep] = err
            n_ep += 1
            err = 0
            epoch_ms += period_ms
            # The last sample before the new start becomes the new epoch's leading edge sample.
            lead = prev_idx
            first = -1
            count = 1
        if first < 0:
            first = i
        count += 1
        prev_idx = i
        prev_ms = t
        has_prev = True

    state_i[0] = epoch_ms
    state_i[1] = 1 if has_epoch else 0
    state_i[2] = prev_ms
    state_i[3] = 1 if has_prev else 0
    state_i[4] = err
    return (starts[:n_ep], leads[:n_ep], firsts[:n_ep], lasts[:n_ep], trails[:n_ep], errors[:n_ep], lead, first)


@numba.njit(cache=True, nogil=True)
def kept_indices(time_ns, lead, first, stop, origin_ms, has_origin):
    """Indices of the samples the reference holds for an epoch: ``lead`` (if >= 0), then the kept samples of
    ``first..stop-1`` (a sample is kept iff its ms time is not before the previous kept one, nor before the
    origin)."""
    out = np.empty(stop - first + 1 if first >= 0 else 1, np.int64)
    k = 0
    if lead >= 0:
        out[k] = lead
        k += 1
    if first >= 0:
        last_ms = time_ns[first] // NS_PER_MS
        for i in range(first, stop):
            t = time_ns[i] // NS_PER_MS
            if t < last_ms or (has_origin and t < origin_ms):
                continue
            last_ms = t
            out[k] = i
            k += 1
    return out[:k]


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _interp_reference(tms, vx, vy, vz, m, grid, ox, oy, oz):
    """`Resample.interpLinear` (v2.3.0) of the first ``m`` samples (times ``tms`` in int64 ms, modified in place as
    the reference does; values ``vx, vy, vz``) onto ``grid`` (int64 ms), into ``ox, oy, oz``.

    Grid points after the last sample take the last value, before the first sample the first value.
    """
    sx = np.empty(m)
    sy = np.empty(m)
    sz = np.empty(m)
    ix = np.empty(m)
    iy = np.empty(m)
    iz = np.empty(m)
    # Backwards, as the reference: a non-increasing step moves the earlier sample 1 ms before the later one. The
    # reference fixes time i and computes segment i in the same backward loop; time i is final once fixed (later
    # iterations touch only earlier times), so fixing all times first and then computing the segments in a
    # separate, vectorisable loop gives the same numbers.
    for i in range(m - 2, -1, -1):
        if tms[i + 1] - tms[i] <= 0:
            tms[i] = tms[i + 1] - 1
    # Each segment is the line slope * t + intercept, with the reference's operation order.
    for i in range(m - 1):
        dt = np.float64(tms[i + 1] - tms[i])
        ti = np.float64(tms[i])
        sx[i] = (vx[i + 1] - vx[i]) / dt
        sy[i] = (vy[i + 1] - vy[i]) / dt
        sz[i] = (vz[i + 1] - vz[i]) / dt
        ix[i] = vx[i] - ti * sx[i]
        iy[i] = vy[i] - ti * sy[i]
        iz[i] = vz[i] - ti * sz[i]
    # The grid is sorted and the times now strictly increase, so a merge walk finds the segment the reference's
    # binary search finds.
    j = 0
    t_first = tms[0]
    t_last = tms[m - 1]
    for c in range(grid.shape[0]):
        g = grid[c]
        if g > t_last:
            ox[c] = vx[m - 1]
            oy[c] = vy[m - 1]
            oz[c] = vz[m - 1]
        elif g < t_first:
            ox[c] = vx[0]
            oy[c] = vy[0]
            oz[c] = vz[0]
        else:
            while j + 1 < m and tms[j + 1] <= g:
                j += 1
            if tms[j] == g:
                ox[c] = vx[j]
                oy[c] = vy[j]
                oz[c] = vz[j]
            else:
                ox[c] = sx[j] * g + ix[j]
                oy[c] = sy[j] * g + iy[j]
                oz[c] = sz[j] * g + iz[j]


@numba.njit(cache=True, nogil=True, parallel=True)
def resample_epochs(
    time_ns, xyz, temperature, temp_keys, temp_values, starts, leads, firsts, lasts, trails,
    offset, gain, temp_coef, mean_temp, range_g, grid, origin_ms, has_origin, out,
):
    """Calibrate, clip and resample a block of planned epochs (spec §3.4, §3.7).

    Parameters
    ----------
    time_ns, xyz, temperature : numpy.ndarray
        Samples: int64 ns (n,), float32 or float64 g (n, 3), and °C (n,) or an empty array for "no temperature"
        (the reference then uses 0 °C).
    temp_keys, temp_values : numpy.ndarray
        Optional translation of stored temperatures to the float64 values to compute with (see
        `decimal_temperature_table`): sorted keys of ``temperature``'s dtype and their float64 values. Empty arrays:
        plain conversion.
    starts, leads, firsts, lasts, trails : numpy.ndarray of int64
        The block's epochs, as returned by `plan_epochs`.
    offset, gain, temp_coef : numpy.ndarray of float64, shape (3,)
        Calibration coefficients; ``mean_temp`` (float) their reference temperature.
    range_g : float
        The device range r: samples reaching ±r before calibration, or exceeding it after, are counted and clipped.
    grid : numpy.ndarray of int64
        Resampling grid in ms from the epoch start (``round(epoch_ms * c / n)``).
    origin_ms, has_origin : int, bool
        As in `plan_epochs`.
    out : numpy.ndarray of float64, shape (3, n_epochs, len(grid))
        Receives the resampled x, y, z.

    Returns
    -------
    temp_mean : numpy.ndarray of float64
        Mean raw temperature over the epoch's raw samples, edge samples included.
    clips_before, clips_after, raw_samples : numpy.ndarray of int64
        ``clipsBeforeCalibr``, ``clipsAfterCalibr`` and ``rawSamples``.
    """
    n_ep = starts.shape[0]
    has_temp = temperature.shape[0] > 0
    has_lut = temp_keys.shape[0] > 0
    temp_mean = np.empty(n_ep)
    clips_before = np.zeros(n_ep, np.int64)
    clips_after = np.zeros(n_ep, np.int64)
    raw_samples = np.zeros(n_ep, np.int64)
    r = range_g
    for e in numba.prange(n_ep):
        lead = leads[e]
        first = firsts[e]
        last = lasts[e]
        trail = trails[e]
        cap = (last - first + 1 if first >= 0 else 0) + 2
        tms = np.empty(cap, np.int64)
        vx = np.empty(cap)
        vy = np.empty(cap)
        vz = np.empty(cap)
        tsum = 0.0
        last_key = np.nan
        last_val = 0.0
        nb = 0
        na = 0
        m = 0
        kept_ms = np.iinfo(np.int64).min
        # The epoch's raw samples in order: leading edge, the kept regular samples, trailing edge.
        for step in range(cap):
            if step == 0:
                i = lead
            elif step == cap - 1:
                i = trail
            else:
                i = first + step - 1
                t = time_ns[i] // NS_PER_MS
                # the same rule as plan_epochs: samples going back in time (or before the origin) are not held
                if t < kept_ms or (has_origin and t < origin_ms):
                    continue
                kept_ms = t
            if i < 0:
                continue
            tms[m] = time_ns[i] // NS_PER_MS - starts[e]
            x = np.float64(xyz[i, 0])
            y = np.float64(xyz[i, 1])
            z = np.float64(xyz[i, 2])
            temp = 0.0
            if has_temp:
                tv = temperature[i]
                if has_lut:
                    # Temperature is constant over a device block: look up only when it changes.
                    if tv != last_key:
                        last_key = tv
                        pos = np.searchsorted(temp_keys, tv)
                        if pos < temp_keys.shape[0] and temp_keys[pos] == tv:
                            last_val = temp_values[pos]
                        else:
                            last_val = np.float64(tv)
                    temp = last_val
                else:
                    temp = np.float64(tv)
            tsum += temp
            clipped = False
            if abs(x) >= r or abs(y) >= r or abs(z) >= r:
                nb += 1
                clipped = True
            mc = temp - mean_temp
            x = offset[0] + x * gain[0] + mc * temp_coef[0]
            y = offset[1] + y * gain[1] + mc * temp_coef[1]
            z = offset[2] + z * gain[2] + mc * temp_coef[2]
            if abs(x) > r or abs(y) > r or abs(z) > r:
                if not clipped:
                    na += 1
                # As the reference: a sample clipped before calibration has every non-zero axis forced to ±r.
                if x < -r or (clipped and x < 0):
                    x = -r
                elif x > r or (clipped and x > 0):
                    x = r
                if y < -r or (clipped and y < 0):
                    y = -r
                elif y > r or (clipped and y > 0):
                    y = r
                if z < -r or (clipped and z < 0):
                    z = -r
                elif z > r or (clipped and z > 0):
                    z = r
            vx[m] = x
            vy[m] = y
            vz[m] = z
            m += 1
        temp_mean[e] = tsum / m
        clips_before[e] = nb
        clips_after[e] = na
        raw_samples[e] = m
        _interp_reference(tms, vx, vy, vz, m, grid, out[0, e], out[1, e], out[2, e])
    return temp_mean, clips_before, clips_after, raw_samples


def resample_grid(epoch_s: float, fs: float) -> np.ndarray:
    """The reference's resampling grid in ms from the epoch start: ``Math.round(epoch_ms * c / n)``, c < n."""
    n = int(round(epoch_s * fs))
    c = np.arange(n, dtype=np.float64)
    return np.floor(epoch_s * 1000.0 * c / n + 0.5).astype(np.int64)


@numba.njit(cache=True, nogil=True)
def _run_values(values):
    """The values of ``values`` at each change (first element included): few for block-constant series."""
    k = 0
    for i in range(values.shape[0]):
        if i == 0 or values[i] != values[i - 1]:
            k += 1
    out = np.empty(k, values.dtype)
    k = 0
    for i in range(values.shape[0]):
        if i == 0 or values[i] != values[i - 1]:
            out[k] = values[i]
            k += 1
    return out


def decimal_temperature_table(temperature: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lookup table from float32 temperatures to the float64 of their shortest decimal representation.

    Readers store temperature as float32, but the reference computes it in double (e.g. ``(raw*150-20500)/1000``,
    a multiple of 0.05 rounded once to double). float32 cannot hold that double, and the error (~4e-7 °C) is enough
    to move the CEILING-rounded ``temp`` by 0.01 when a mean lies on a 0.01 boundary. The shortest decimal that
    round-trips the float32 (``18.65`` for float32(18.65)) is the value the device formula produced, and its
    float64 is the reference's double. Float64 input needs no table (empty arrays are returned).
    """
    if temperature.dtype != np.float32 or temperature.size == 0:
        return np.zeros(0, np.float32), np.zeros(0, np.float64)
    keys = np.unique(_run_values(temperature))
    keys = keys[np.isfinite(keys)]
    values = np.array([float(np.format_float_positional(k, unique=True)) for k in keys], dtype=np.float64)
    return keys, values
