"""Frequency-domain features (#36-55, #60-126) by batched FFTs over a block of windows.

* The two full spectra the reference uses — of the Hann-windowed v (San Diego) and of the Hann-windowed filtered,
  truncated VM − 1 (Unilever, mfft) — are one `scipy.fft.rfft` each over the (n_epochs, N) matrix; a Numba kernel
  then scans every row with the reference's exact comparison rules (first strict arg-max, running top-2, band
  limits evaluated in double as ``k * (fs / (1.0 * N))``).
* Where only the first 15 bins are needed (x/y/z fft0-14, and the 1-s windows of fft0-14), the DFT is a product
  with a Hann-weighted cosine/sine basis: far cheaper than a full FFT and as accurate (both ~1e-15 relative). It is
  a Numba row-by-row product rather than BLAS so that a window's result never depends on which other windows it
  was computed with (chunked extraction is then bit-identical to one pass).

Conventions (spec §4): unnormalised ``X_k = sum_i h_i s_i exp(-2 pi i k / L)``; the reference's packed real-FFT array
is ``[Re X_0, Re X_{L/2}, Re X_1, Im X_1, ..., Re X_{L/2-1}, Im X_{L/2-1}]``.
"""

from __future__ import annotations

import functools
import math

import numba
import numpy as np
import scipy.fft

from .columns import FEATURE_COLUMNS

_C = {name: i for i, name in enumerate(FEATURE_COLUMNS)}
C_FMAX, C_PMAX, C_FMAXBAND, C_PMAXBAND, C_ENTROPY = (
    _C["fmax"], _C["pmax"], _C["fmaxband"], _C["pmaxband"], _C["entropy"])
C_FFT0 = _C["fft0"]
C_F1, C_P1, C_F2, C_P2, C_F625, C_P625, C_TOTAL = (
    _C["f1"], _C["p1"], _C["f2"], _C["p2"], _C["f625"], _C["p625"], _C["total"])
C_XFFT0, C_YFFT0, C_ZFFT0, C_MFFT0 = _C["xfft0"], _C["yfft0"], _C["zfft0"], _C["mfft0"]

#: Number of low-frequency bins reported per series (the reference's ``numEachAxis`` and San Diego ``numBins``).
N_BINS = 15


@functools.lru_cache(maxsize=8)
def hann(length: int) -> np.ndarray:
    """The reference's symmetric Hann window ``0.5 (1 - cos(2 pi i / (L - 1)))`` (= ``numpy.hanning(L)``)."""
    i = np.arange(length, dtype=np.float64)
    return 0.5 * (1.0 - np.cos(2.0 * math.pi * i / (length - 1)))


@functools.lru_cache(maxsize=8)
def hann_dft_basis_t(length: int, n_bins: int = N_BINS) -> np.ndarray:
    """`hann_dft_basis` transposed, (2 n_bins, length), C-contiguous."""
    return np.ascontiguousarray(hann_dft_basis(length, n_bins).T)


@functools.lru_cache(maxsize=8)
def hann_dft_basis(length: int, n_bins: int = N_BINS) -> np.ndarray:
    """Matrix B (length, 2 n_bins) with ``s @ B = [Re X_0..X_{n-1}, Im X_0..X_{n-1}]`` of the Hann-windowed s."""
    i = np.arange(length, dtype=np.int64)[:, None]
    k = np.arange(n_bins, dtype=np.int64)[None, :]
    # Reduce i*k modulo L in integers so that the angle is exact to one rounding, even for large i*k.
    ang = (2.0 * math.pi / length) * ((i * k) % length)
    h = hann(length)[:, None]
    return np.ascontiguousarray(np.hstack([h * np.cos(ang), -h * np.sin(ang)]))


@numba.njit(cache=True, nogil=True, parallel=True, fastmath={"reassoc", "contract"})
def _axis_low_bins(x, y, z, basis_t, out):
    """``out[a, e, k] = s_a[e] . basis_t[k]`` for the three axes s_a = x, y, z of every epoch e.

    The three axes share each basis row, which is read once per epoch (the basis, 0.7 MB, does not fit in L2).
    Every dot product is summed by the same vectorised code whatever the other epochs are, so a window's result
    never depends on which windows it was computed with: chunked extraction stays bit-identical to one pass. (A
    BLAS matrix product is not: its blocking, and so its summation order, depends on the number of rows.)
    """
    n_ep, n = x.shape
    n_out = basis_t.shape[0]
    for e in numba.prange(n_ep):
        xe = x[e]
        ye = y[e]
        ze = z[e]
        for k in range(n_out):
            b = basis_t[k]
            ax = 0.0
            ay = 0.0
            az = 0.0
            for i in range(n):
                bi = b[i]
                ax += xe[i] * bi
                ay += ye[i] * bi
                az += ze[i] * bi
            out[0, e, k] = ax
            out[1, e, k] = ay
            out[2, e, k] = az


@numba.njit(cache=True, nogil=True, parallel=True, error_model="numpy")
def _window_bins(vm_sd, fs, basis, out):
    """fft0-14 of every epoch: bins 0..14 of each Hann-windowed 1-s window (starts 0, fs/2, ..., N // fs windows),
    summed over windows and divided by (largest single-window bin x number of windows). ``basis`` is
    `hann_dft_basis(fs)` (fs, 30): the loop runs over samples and updates all 30 Re/Im sums at once (vectorised
    across bins, summed in sample order)."""
    n_ep, n = vm_sd.shape
    n_win = n // fs
    hop = fs // 2
    n_bins = basis.shape[1] // 2
    for e in numba.prange(n_ep):
        row = vm_sd[e]
        total = np.zeros(n_bins)
        biggest = -np.inf
        acc = np.empty(2 * n_bins)
        for w in range(n_win):
            s = w * hop
            acc[:] = 0.0
            for i in range(fs):
                x = row[s + i]
                b = basis[i]
                for k in range(2 * n_bins):
                    acc[k] += x * b[k]
            for k in range(n_bins):
                re = acc[k]
                im = acc[n_bins + k]
                mag = re if k == 0 else np.sqrt(re * re + im * im)
                total[k] += mag
                biggest = max(biggest, mag)
        scale = 1.0 / (biggest * n_win)
        for k in range(n_bins):
            out[e, C_FFT0 + k] = total[k] * scale


def _bins_reference(re: np.ndarray, im: np.ndarray) -> np.ndarray:
    """The reference's per-bin values: Re X_0 (signed) for bin 0 and |X_k| = sqrt(Re² + Im²) for k >= 1."""
    mag = np.sqrt(re * re + im * im)
    mag[..., 0] = re[..., 0]
    return mag


@numba.njit(cache=True, nogil=True, parallel=True, error_model="numpy")
def _san_diego_scan(spec, fs, out):
    """fmax, pmax, fmaxband, pmaxband, entropy from the full spectrum of Hann(v) (spec #36-40)."""
    n_ep = spec.shape[0]
    n_half = spec.shape[1] - 1  # L/2
    length = 2 * n_half
    interval = fs / (1.0 * length)
    for e in numba.prange(n_ep):
        row = spec[e]
        # Largest element of the packed real-FFT array (signed values, not magnitudes).
        mx = row[0].real
        mx = max(mx, row[n_half].real)
        for k in range(1, n_half):
            mx = max(mx, max(row[k].real, row[k].imag))
        m0 = row[0].real / mx
        plnp = m0 * math.log(m0)
        f1 = -1.0
        p1 = 0.0
        f33 = -1.0
        p33 = 0.0
        for k in range(1, n_half):
            freq = interval * k
            re = row[k].real
            im = row[k].imag
            mag = math.sqrt(re * re + im * im) / mx
            plnp += mag * math.log(mag)
            if mag > p1:
                f1 = freq
                p1 = mag
            if freq > 0.3 and freq < 3 and mag > p33:
                f33 = freq
                p33 = mag
        out[e, C_FMAX] = f1
        out[e, C_PMAX] = p1
        out[e, C_FMAXBAND] = f33
        out[e, C_PMAXBAND] = p33
        out[e, C_ENTROPY] = -plnp


@numba.njit(cache=True, nogil=True, parallel=True, error_model="numpy")
def _unilever_scan(spec, fs, out):
    """f1, p1, f2, p2, f625, p625, total from the full spectrum of Hann(t) (spec #60-66)."""
    n_ep = spec.shape[0]
    n_half = spec.shape[1] - 1
    length = 2 * n_half
    interval = fs / (1.0 * length)
    for e in numba.prange(n_ep):
        row = spec[e]
        f1 = -1.0
        f2 = -1.0
        f625 = -1.0
        p1 = 0.0
        p2 = 0.0
        p625 = 0.0
        total = 0.0
        for k in range(1, n_half):
            freq = interval * k
            if freq < 0.3 or freq > 15:
                continue
            re = row[k].real
            im = row[k].imag
            mag = math.sqrt(re * re + im * im)
            total += mag
            if mag > p1:
                f2 = f1
                p2 = p1
                f1 = freq
                p1 = mag
            elif mag > p2:
                f2 = freq
                p2 = mag
            if mag > p625 and freq > 0.6 and freq < 2.5:
                f625 = freq
                p625 = mag
        out[e, C_F1] = f1
        out[e, C_P1] = p1
        out[e, C_F2] = f2
        out[e, C_P2] = p2
        out[e, C_F625] = f625
        out[e, C_P625] = p625
        out[e, C_TOTAL] = total


def san_diego_window_bins(vm_sd: np.ndarray, fs: int, out: np.ndarray) -> None:
    """fft0-14 (spec #41-55) into ``out``: mean over the 1-s, 50 %-overlap windows of v of the first 15 bins,
    divided by the largest single-window bin.

    The reference's windows start at ``w * (fs // 2)`` for ``w < N // fs``, so with N = 30 fs they cover only the
    first ~15.5 s of the epoch (a quirk reproduced on purpose).
    """
    _window_bins(vm_sd, fs, hann_dft_basis(fs, N_BINS), out)


def spectral_features(xyz: np.ndarray, vm_sd: np.ndarray, enmo_trunc: np.ndarray, fs: int, out: np.ndarray,
                      workers: int | None = None) -> None:
    """Write features #36-55 and #60-126 of a block of windows into ``out`` (n_epochs, 126).

    Parameters
    ----------
    xyz : numpy.ndarray of float64, shape (3, n_epochs, N)
        Resampled, calibrated axes.
    vm_sd : numpy.ndarray of float64, shape (n_epochs, N)
        v, the gravity-shifted vector magnitude (San Diego).
    enmo_trunc : numpy.ndarray of float64, shape (n_epochs, N)
        t, the filtered and truncated VM − 1.
    fs : int
        Resampled rate in Hz (bin k of an N-point spectrum is at ``k * fs / N`` Hz).
    out : numpy.ndarray of float64, shape (n_epochs, 126)
    workers : int, optional
        Threads for `scipy.fft` (default: all CPUs).
    """
    n_ep, n = vm_sd.shape
    if n_ep == 0:
        return
    workers = workers or -1
    h = hann(n)
    spec = scipy.fft.rfft(vm_sd * h, axis=1, workers=workers)
    _san_diego_scan(spec, float(fs), out)
    del spec
    san_diego_window_bins(vm_sd, fs, out)

    spec = scipy.fft.rfft(enmo_trunc * h, axis=1, workers=workers)
    _unilever_scan(spec, float(fs), out)
    out[:, C_MFFT0:C_MFFT0 + N_BINS] = _bins_reference(
        np.ascontiguousarray(spec[:, :N_BINS].real), np.ascontiguousarray(spec[:, :N_BINS].imag))
    del spec

    bins = np.empty((3, n_ep, 2 * N_BINS))
    # xyz[a] (the first rows of a C-contiguous block) are C-contiguous, unlike a partial 3-D block view
    _axis_low_bins(xyz[0], xyz[1], xyz[2], hann_dft_basis_t(n, N_BINS), bins)
    for axis, col in enumerate((C_XFFT0, C_YFFT0, C_ZFFT0)):
        out[:, col:col + N_BINS] = _bins_reference(bins[axis, :, :N_BINS], bins[axis, :, N_BINS:])
