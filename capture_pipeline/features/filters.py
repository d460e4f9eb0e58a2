"""The reference's 4th-order Butterworth low-pass and a causal filter whose state is carried between calls.

The reference (`LowpassFilter.java`, spec §3.10) designs the filter with the Exstrom Laboratories recipe and applies
it in direct form II transposed, one forward pass, never resetting the state between epochs. `butterworth4_lowpass`
ports that design (it equals ``scipy.signal.butter(4, fc / (fs / 2))`` to rounding) and `lfilter_carry` applies it
with an explicit state so that a recording cut into chunks filters exactly as in one pass.
"""

from __future__ import annotations

import math

import numba
import numpy as np

ORDER = 4


def butterworth4_lowpass(fc: float, fs: float) -> tuple[np.ndarray, np.ndarray]:
    """Coefficients ``(b, a)`` of the reference's 4th-order Butterworth low-pass.

    Parameters
    ----------
    fc : float
        Cut-off frequency in Hz (the reference uses 20 Hz).
    fs : float
        Sample rate in Hz of the series to filter (the resampled rate, 100 Hz).

    Returns
    -------
    b, a : numpy.ndarray of float64, shape (5,)
        Numerator and denominator, ``a[0] == 1``.
    """
    w = fc / (fs / 2.0)
    if not 0.0 < w < 1.0:
        raise ValueError(f"cut-off {fc} Hz must lie strictly between 0 and fs/2 = {fs / 2} Hz")
    n = ORDER
    # Binomial numerator coefficients, scaled so that the gain at DC is 1 (Exstrom `ccof_bwlp` / `sf_bwlp`).
    tcof = [1, 4, 6, 4, 1]
    omega = math.pi * w
    fomega = math.sin(omega)
    parg0 = math.pi / (2.0 * n)
    sf = 1.0
    for i in range(n // 2):
        sf *= 1.0 + fomega * math.sin((2 * i + 1) * parg0)
    fomega = math.sin(omega / 2.0)
    sf = fomega**n / sf
    b = np.array([sf * c for c in tcof], dtype=np.float64)
    # Denominator: product of the n first-order complex factors (Exstrom `dcof_bwlp`), same operation order.
    theta = math.pi * w
    bin_ = [0.0] * (2 * n)
    for i in range(n):
        parg = math.pi * (2 * i + 1) / (2.0 * n)
        den = 1.0 + math.sin(theta) * math.sin(parg)
        bin_[2 * i] = -math.cos(theta) / den
        bin_[2 * i + 1] = -math.sin(theta) * math.cos(parg) / den
    acc = [0.0] * (2 * n)
    for i in range(n):
        for j in range(i, 0, -1):
            acc[2 * j] += bin_[2 * i] * acc[2 * (j - 1)] - bin_[2 * i + 1] * acc[2 * (j - 1) + 1]
            acc[2 * j + 1] += bin_[2 * i] * acc[2 * (j - 1) + 1] + bin_[2 * i + 1] * acc[2 * (j - 1)]
        acc[0] += bin_[2 * i]
        acc[1] += bin_[2 * i + 1]
    a = np.array([1.0, acc[0], acc[2], acc[4], acc[6]], dtype=np.float64)
    return b, a


@numba.njit(cache=True, nogil=True)
def lfilter_carry(b, a, x, z):
    """Filter ``x`` in place (direct form II transposed), starting from and updating the state ``z``.

    Parameters
    ----------
    b, a : numpy.ndarray of float64, shape (5,)
        Coefficients from `butterworth4_lowpass` (``a[0] == 1``).
    x : numpy.ndarray of float64, 1-D (C-contiguous)
        The series; overwritten by the filtered series. Pass ``array.reshape(-1)`` of an (epochs, samples) matrix to
        filter consecutive epochs as one continuous series, as the reference does.
    z : numpy.ndarray of float64, shape (4,)
        Filter state: zeros at the start of a recording; on return, the state after the last sample. Equal to the
        ``zi``/``zf`` of ``scipy.signal.lfilter(b, a, x, zi=z)``.
    """
    b0, b1, b2, b3, b4 = b[0], b[1], b[2], b[3], b[4]
    a1, a2, a3, a4 = a[1], a[2], a[3], a[4]
    z0, z1, z2, z3 = z[0], z[1], z[2], z[3]
    for m in range(x.shape[0]):
        xm = x[m]
        ym = b0 * xm + z0
        # Same operation order as the reference: z[i-1] = B[i]*x + z[i] - A[i]*y, with z[4] == 0.
        z0 = b1 * xm + z1 - a1 * ym
        z1 = b2 * xm + z2 - a2 * ym
        z2 = b3 * xm + z3 - a3 * ym
        z3 = b4 * xm + 0.0 - a4 * ym
        x[m] = ym
    z[0], z[1], z[2], z[3] = z0, z1, z2, z3
