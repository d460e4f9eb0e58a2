"""Per-window time-domain statistics, as Numba kernels over all windows of a block at once.

Every kernel takes the resampled signal of a block of epochs, ``xyz`` of shape (3, n_epochs, N), and writes its
features into the matching columns of a float64 feature matrix of shape (n_epochs, 126) (order of
`columns.FEATURE_COLUMNS`). The arithmetic follows the reference's Java code (spec `features.md` §4-5), formula by formula
(e.g. the moving-average weight ``1 - 0.9``, not 0.1, and the population-moment correlation formula); only the
order of the additions inside sums differs (see `_FAST`).
"""

from __future__ import annotations

import math

import numba
import numpy as np

from .columns import FEATURE_COLUMNS

_C = {name: i for i, name in enumerate(FEATURE_COLUMNS)}
# Column indices as module constants: Numba freezes them into the compiled kernels.
C_XMEAN, C_XRANGE, C_XSTD, C_XYCOV = _C["xMean"], _C["xRange"], _C["xStd"], _C["xyCov"]
C_ENMO = _C["enmoTrunc"]
C_MEAN, C_SD, C_CV, C_MEDIAN, C_MIN, C_MAX, C_P25, C_P75 = (
    _C["mean"], _C["sd"], _C["coefvariation"], _C["median"], _C["min"], _C["max"], _C["25thp"], _C["75thp"])
C_AUTOCORR, C_CORRXY, C_CORRXZ, C_CORRYZ = _C["autocorr"], _C["corrxy"], _C["corrxz"], _C["corryz"]
C_AVGROLL, C_AVGPITCH, C_AVGYAW = _C["avgroll"], _C["avgpitch"], _C["avgyaw"]
C_SDROLL, C_SDPITCH, C_SDYAW = _C["sdroll"], _C["sdpitch"], _C["sdyaw"]
C_ROLLG, C_PITCHG, C_YAWG = _C["rollg"], _C["pitchg"], _C["yawg"]
C_MAD, C_MPD, C_SKEW, C_KURT = _C["MAD"], _C["MPD"], _C["skew"], _C["kurt"]

#: Stuck-axis rule of the reference (§3.8): an axis with zero std and |mean| above this (g) is a data error.
STUCK_MEAN_G = 1.5

# The reference's exponential-moving-average weight: `x = 0.9; (1 - x)`, which is 0.09999999999999998, not 0.1.
_EMA_KEEP = 0.9
_EMA_NEW = 1.0 - 0.9


# --- atan2 ------------------------------------------------------------------------------------------------------
# math.atan2 is a libm call that LLVM cannot vectorise (no SVML here), and the 3 x 3000 angles per window are the
# single most expensive part of the San Diego features. `atan2_fast` is a branch-free Cephes-style atan2 (rational
# approximation on |r| <= tan(pi/8) after the usual range reductions), accurate to a few ulp, which LLVM does
# vectorise. `tests/test_features_kernels.py` checks it against numpy.arctan2, signed zeros included.
_P0, _P1, _P2, _P3, _P4 = (-8.750608600031904122785e-01, -1.615753718733365076637e01,
                           -7.500855792314704667340e01, -1.228866684490136173410e02,
                           -6.485021904942025371773e01)
_Q0, _Q1, _Q2, _Q3, _Q4 = (2.485846490142306297962e01, 1.650270098316988542046e02,
                           4.328810604912902668951e02, 4.853903996359136964868e02,
                           1.945506571482613964425e02)
_MOREBITS = 6.123233995736765886130e-17
_PI = math.pi
_PIO2 = math.pi / 2.0
_PIO4 = math.pi / 4.0
_REDUCE_ABOVE = 0.66  # Cephes' switch to atan(r) = pi/4 + atan((r-1)/(r+1))


@numba.njit(inline="always", cache=True)
def atan2_fast(y, x):
    """``atan2(y, x)`` in double precision (within a few ulp of libm), branch-free so that loops vectorise.

    Every division is unconditional and every choice a select: with Numba's ``error_model="numpy"`` LLVM then
    turns a loop of these into AVX2 code (~3 ns per call instead of ~24 ns for libm's atan2).
    """
    ax = abs(x)
    ay = abs(y)
    big = max(ax, ay)
    small = min(ax, ay)
    big = big if big > 0.0 else 1.0  # atan2(±0, ±0): r = 0
    r = small / big  # in [0, 1]
    # Cephes atan range reduction, restricted to r <= 1: above 0.66, atan(r) = pi/4 + atan((r-1)/(r+1)).
    h = 1.0 if r > _REDUCE_ABOVE else 0.0
    u = (r - h) / (h * r + 1.0)
    z = u * u
    p = (((_P0 * z + _P1) * z + _P2) * z + _P3) * z + _P4
    q = ((((z + _Q0) * z + _Q1) * z + _Q2) * z + _Q3) * z + _Q4
    a = _PIO4 * h + ((u * (z * p / q) + u) + 0.5 * _MOREBITS * h)
    a = _PIO2 - a if ay > ax else a
    # x < 0 (including -0.0) reflects to the left half-plane; the sign of y gives the sign of the result.
    a = _PI - a if math.copysign(1.0, x) < 0.0 else a
    return math.copysign(a, y)


@numba.njit(inline="always", cache=True)
def _select(a, lo, hi, k):
    """Partially order ``a[lo..hi]`` (inclusive) in place so that ``a[k]`` is its k-th smallest element, everything
    before it is <= and everything after it >= (Hoare quickselect, median-of-3 pivot)."""
    while hi > lo:
        mid = (lo + hi) >> 1
        if a[mid] < a[lo]:
            a[mid], a[lo] = a[lo], a[mid]
        if a[hi] < a[lo]:
            a[hi], a[lo] = a[lo], a[hi]
        if a[hi] < a[mid]:
            a[hi], a[mid] = a[mid], a[hi]
        pivot = a[mid]
        i = lo
        j = hi
        while i <= j:
            while a[i] < pivot:
                i += 1
            while a[j] > pivot:
                j -= 1
            if i <= j:
                a[i], a[j] = a[j], a[i]
                i += 1
                j -= 1
        if k <= j:
            hi = j
        elif k >= i:
            lo = i
        else:
            return


@numba.njit(inline="always", cache=True)
def _r7_index(p, n):
    """R type-7 quantile at p of n sorted values: index k of the lower order statistic and weight of the next
    (the reference's `percentiles`: h = p (n-1) + 1, value = x[h] + (h - floor h)(x[h+1] - x[h]), 1-based)."""
    h = p * (n - 1) + 1
    hf = int(math.floor(h))
    return hf - 1, h - hf


@numba.njit(inline="always", cache=True)
def _min_range(a, lo, hi):
    m = np.inf
    for i in range(lo, hi + 1):
        m = min(m, a[i])
    return m


@numba.njit(inline="always", cache=True)
def _quartiles_select(v, work):
    """min, 25th percentile, median, 75th percentile and max of ``v`` (R type 7) by quickselect.

    ``work`` (same length, n >= 2) is overwritten. Each quartile needs the order statistics k and k+1: the median's
    k is selected over everything, the lower quartile's left of it and the upper quartile's right of it; each k+1
    is then the minimum of the part right of k. About 3 passes over the data instead of a full sort.
    """
    n = v.shape[0]
    lo_v = np.inf
    hi_v = -np.inf
    for i in range(n):
        work[i] = v[i]
        lo_v = min(lo_v, v[i])
        hi_v = max(hi_v, v[i])
    k50, w50 = _r7_index(0.5, n)
    k25, w25 = _r7_index(0.25, n)
    k75, w75 = _r7_index(0.75, n)
    _select(work, 0, n - 1, k50)
    x50 = work[k50]
    x50n = _min_range(work, k50 + 1, n - 1)
    if k25 < k50:
        _select(work, 0, k50 - 1, k25)
        x25 = work[k25]
        x25n = _min_range(work, k25 + 1, k50)
    else:
        x25, x25n = x50, x50n
    if k75 > k50:
        _select(work, k50 + 1, n - 1, k75)
        x75 = work[k75]
        x75n = _min_range(work, k75 + 1, n - 1) if k75 + 1 < n else x75
    else:
        x75, x75n = x50, x50n
    return (lo_v, x25 + w25 * (x25n - x25), x50 + w50 * (x50n - x50), x75 + w75 * (x75n - x75), hi_v)


_RADIX_BINS = 2048


@numba.njit(inline="always", cache=True)
def _pair_by_radix(v, keys, kmin, shift, start, rank, cand):
    """Order statistics ``rank`` and ``rank + 1`` of ``v`` given a histogram of its radix keys: only the elements in
    the bins holding these ranks are gathered (usually a handful) and selected among."""
    b_lo = 0
    while start[b_lo + 1] <= rank:
        b_lo += 1
    b_hi = b_lo
    while start[b_hi + 1] <= rank + 1:
        b_hi += 1
    m = 0
    for i in range(v.shape[0]):
        b = (keys[i] - kmin) >> shift
        if b >= b_lo and b <= b_hi:
            cand[m] = v[i]
            m += 1
    r = rank - start[b_lo]
    _select(cand, 0, m - 1, r)
    return cand[r], _min_range(cand, r + 1, m - 1)


@numba.njit(inline="always", cache=True)
def _quartiles_r7(v, work):
    """min, 25th percentile, median, 75th percentile and max of ``v`` (R type 7), exactly as from a sorted copy.

    Radix selection: non-negative doubles order like their bit patterns read as integers, so one histogram of the
    leading differing bits (2048 bins) locates each needed order statistic's bin, and only those bins' elements are
    gathered and selected among. ~5 light passes instead of a sort (~10x faster) or quickselect (~3x). Falls back
    to `_quartiles_select` for signs mixed (never for v >= 0). ``work`` (same length, n >= 2) is overwritten.
    """
    n = v.shape[0]
    keys = work.view(np.int64)
    bits = v.view(np.int64)
    kmin = bits[0]
    kmax = bits[0]
    lo_v = v[0]
    hi_v = v[0]
    for i in range(n):
        k = bits[i]
        keys[i] = k
        kmin = min(kmin, k)
        kmax = max(kmax, k)
        lo_v = min(lo_v, v[i])
        hi_v = max(hi_v, v[i])
    if kmin < 0:  # negative values (or -0.0): bit order is not value order; not the case for v
        return _quartiles_select(v, work)
    shift = 0
    while ((kmax - kmin) >> shift) >= _RADIX_BINS:
        shift += 1
    start = np.zeros(_RADIX_BINS + 1, np.int64)
    for i in range(n):
        start[((keys[i] - kmin) >> shift) + 1] += 1
    for b in range(_RADIX_BINS):
        start[b + 1] += start[b]
    cand = np.empty(n)
    k25, w25 = _r7_index(0.25, n)
    k50, w50 = _r7_index(0.5, n)
    k75, w75 = _r7_index(0.75, n)
    x25, x25n = _pair_by_radix(v, keys, kmin, shift, start, k25, cand)
    x50, x50n = _pair_by_radix(v, keys, kmin, shift, start, k50, cand)
    x75, x75n = _pair_by_radix(v, keys, kmin, shift, start, k75, cand)
    return (lo_v, x25 + w25 * (x25n - x25), x50 + w50 * (x50n - x50), x75 + w75 * (x75n - x75), hi_v)


@numba.njit(inline="always", cache=True)
def _mean_std_pop(v):
    n = v.shape[0]
    s = 0.0
    for i in range(n):
        s += v[i]
    m = s / n
    q = 0.0
    for i in range(n):
        d = v[i] - m
        q += d * d
    return m, math.sqrt(q / n)


@numba.njit(inline="always", cache=True)
def _correlation(a, b, lag):
    """Reference `Correlation(a, b, lag)`: population-moment Pearson correlation of a[:-lag] with b[lag:]."""
    nmax = a.shape[0]
    n = nmax - lag
    sx = 0.0
    sy = 0.0
    sxx = 0.0
    syy = 0.0
    sxy = 0.0
    for i in range(lag, nmax):
        x = a[i - lag]
        y = b[i]
        sx += x
        sy += y
        sxx += x * x
        syy += y * y
        sxy += x * y
    cov = sxy / n - sx * sy / n / n
    sigmax = math.sqrt(sxx / n - sx * sx / n / n)
    sigmay = math.sqrt(syy / n - sy * sy / n / n)
    return cov / sigmax / sigmay


@numba.njit(inline="always", cache=True)
def _angle_mean_std(angles):
    n = angles.shape[0]
    s = 0.0
    for i in range(n):
        s += angles[i]
    m = s / n
    q = 0.0
    for i in range(n):
        d = angles[i] - m
        q += d * d
    return m, math.sqrt(q / (n - 1))


# Reassociation lets LLVM split the ~20 sums over each window into several vectorised partial sums; without it
# every sum is a chain of dependent additions and the kernel is latency-bound (2x slower). The summation order then
# differs from the reference's sequential loops, by ~1e-16 relative: far below the printed precision, and the same
# for a window whatever windows it is computed with (so chunked results stay identical).
_FAST = {"reassoc", "contract"}


@numba.njit(cache=True, nogil=True, parallel=True, error_model="numpy", fastmath=_FAST)
def time_domain_features(xyz, fs, out, enmo, vm_sd, stuck):
    """Features #2-13 (axis means, ranges, std, covariances), #15-35 (San Diego statistics) and #56-59 (MAD, MPD,
    skew, kurt) of every window; also the per-sample series the later stages need.

    Parameters
    ----------
    xyz : numpy.ndarray of float64, shape (3, n_epochs, N)
        Resampled, calibrated x, y, z in g.
    fs : int
        The resampled rate in Hz: the autocorrelation lag and the moving-average warm-up, in samples.
    out : numpy.ndarray of float64, shape (n_epochs, 126)
        Feature matrix; the columns above are written.
    enmo : numpy.ndarray of float64, shape (n_epochs, N)
        Receives VM − 1 (unfiltered, signed).
    vm_sd : numpy.ndarray of float64, shape (n_epochs, N)
        Receives v, the vector magnitude after subtracting the epoch's mean gravity estimate.
    stuck : numpy.ndarray of int64, shape (n_epochs,)
        Receives the number of stuck axes (std == 0 and |mean| > 1.5 g), which the reference adds to dataErrors.
    """
    n_ep = xyz.shape[1]
    n = xyz.shape[2]
    g_start = fs - 1  # the reference discards the first Fs-1 moving-average values
    for e in numba.prange(n_ep):
        x = xyz[0, e]
        y = xyz[1, e]
        z = xyz[2, e]
        # --- per-axis summaries (#2-13) -----------------------------------------------------------------------
        means = np.empty(3)
        n_stuck = 0
        for a in range(3):
            s = xyz[a, e]
            tot = 0.0
            lo = np.inf
            hi = -np.inf
            for i in range(n):
                tot += s[i]
                lo = min(lo, s[i])
                hi = max(hi, s[i])
            m = tot / n
            q = 0.0
            for i in range(n):
                d = s[i] - m
                q += d * d
            sd = math.sqrt(q / n)
            means[a] = m
            out[e, C_XMEAN + a] = m
            out[e, C_XRANGE + a] = hi - lo
            out[e, C_XSTD + a] = sd
            if sd == 0.0 and (m < -STUCK_MEAN_G or m > STUCK_MEAN_G):
                n_stuck += 1
        stuck[e] = n_stuck
        cxy = 0.0
        cxz = 0.0
        cyz = 0.0
        for i in range(n):
            dx = x[i] - means[0]
            dy = y[i] - means[1]
            dz = z[i] - means[2]
            cxy += dx * dy
            cxz += dx * dz
            cyz += dy * dz
        out[e, C_XYCOV] = cxy / (n + 1)  # N+1: as the reference's covariance()
        out[e, C_XYCOV + 1] = cxz / (n + 1)
        out[e, C_XYCOV + 2] = cyz / (n + 1)

        # --- VM - 1 and its MAD-type moments (#56-59) -------------------------------------------------------------
        en = enmo[e]
        for i in range(n):
            en[i] = math.sqrt(x[i] * x[i] + y[i] * y[i] + z[i] * z[i]) - 1.0
        m, sd = _mean_std_pop(en)
        mad = 0.0
        mpd = 0.0
        sk = 0.0
        ku = 0.0
        for i in range(n):
            d = en[i] - m
            ad = abs(d)
            mad += ad
            mpd += ad * math.sqrt(ad)
            r = d / sd
            r2 = r * r
            sk += r2 * r
            ku += r2 * r2
        nn = float(n)
        out[e, C_MAD] = mad / nn
        out[e, C_MPD] = mpd / nn**1.5
        out[e, C_SKEW] = sk * (nn / ((nn - 1) * (nn - 2)))
        out[e, C_KURT] = ku * nn * (nn + 1) / ((nn - 1) * (nn - 2) * (nn - 3) * (nn - 4)) - 3 * (nn - 1) * (nn - 1) / (
            (nn - 2) * (nn - 3))

        # --- San Diego gravity estimate: mean of an EMA after its warm-up ---------------------------------------
        gx = _EMA_NEW * x[0]
        gy = _EMA_NEW * y[0]
        gz = _EMA_NEW * z[0]
        sgx = 0.0
        sgy = 0.0
        sgz = 0.0
        for i in range(1, n):
            gx = gx * _EMA_KEEP + _EMA_NEW * x[i]
            gy = gy * _EMA_KEEP + _EMA_NEW * y[i]
            gz = gz * _EMA_KEEP + _EMA_NEW * z[i]
            if i >= g_start:
                sgx += gx
                sgy += gy
                sgz += gz
        gn = n - g_start
        Gx = sgx / gn
        Gy = sgy / gn
        Gz = sgz / gn

        # --- v, its distribution (#15-22) and autocorrelation (#23) ---------------------------------------------
        wx = np.empty(n)
        wy = np.empty(n)
        wz = np.empty(n)
        roll = np.empty(n)
        pitch = np.empty(n)
        yaw = np.empty(n)
        v = vm_sd[e]
        for i in range(n):
            wx[i] = x[i] - Gx
            wy[i] = y[i] - Gy
            wz[i] = z[i] - Gz
            v[i] = math.sqrt(wx[i] * wx[i] + wy[i] * wy[i] + wz[i] * wz[i])
        tot = 0.0
        for i in range(n):
            tot += v[i]
        vmean = tot / n
        q = 0.0
        for i in range(n):
            d = v[i] - vmean
            q += d * d
        vsd = math.sqrt(q / (n - 1))
        out[e, C_MEAN] = vmean
        out[e, C_SD] = vsd
        out[e, C_CV] = vsd / vmean if vmean != 0.0 else 0.0
        vmin, p25, p50, p75, vmax = _quartiles_r7(v, roll)  # `roll` is free until the angles below
        out[e, C_MEDIAN] = p50
        out[e, C_MIN] = vmin
        out[e, C_MAX] = vmax
        out[e, C_P25] = p25
        out[e, C_P75] = p75
        out[e, C_AUTOCORR] = _correlation(v, v, fs)
        out[e, C_CORRXY] = _correlation(wx, wy, 0)
        out[e, C_CORRXZ] = _correlation(wx, wz, 0)
        out[e, C_CORRYZ] = _correlation(wy, wz, 0)

        # --- orientation angles (#27-35) -------------------------------------------------------------------------
        for i in range(n):
            roll[i] = atan2_fast(wy[i], wz[i])
            pitch[i] = atan2_fast(wz[i], wx[i])
            yaw[i] = atan2_fast(wy[i], wx[i])
        out[e, C_AVGROLL], out[e, C_SDROLL] = _angle_mean_std(roll)
        out[e, C_AVGPITCH], out[e, C_SDPITCH] = _angle_mean_std(pitch)
        out[e, C_AVGYAW], out[e, C_SDYAW] = _angle_mean_std(yaw)
        out[e, C_ROLLG] = math.atan2(Gy, Gz)
        out[e, C_PITCHG] = math.atan2(Gz, Gx)
        out[e, C_YAWG] = math.atan2(Gy, Gx)


@numba.njit(cache=True, nogil=True, parallel=True, fastmath=_FAST)
def truncate_and_mean(filtered, out):
    """Truncate the filtered VM − 1 at 0 in place (the reference's `trunc`) and write its mean, enmoTrunc (#1)."""
    n_ep, n = filtered.shape
    for e in numba.prange(n_ep):
        s = 0.0
        row = filtered[e]
        for i in range(n):
            v = row[i]
            if v < 0.0:
                v = 0.0
            row[i] = v
            s += v
        out[e, C_ENMO] = s / n
