"""Per-activity statistics of a simulated recording: the numbers that show the classes differ as real ones do."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .activities import ACTIVITIES, NAMES

#: Band (Hz) searched for the dominant frequency of the vector magnitude.
DOMINANT_BAND_HZ = (0.3, 8.0)


def class_table(xyz, activity_codes, fs: float, window_s: float = 30.0) -> pd.DataFrame:
    """Mean ENMO and dominant frequency per activity, over windows that hold a single activity.

    Parameters
    ----------
    xyz : array (n, 3)
        Acceleration in g, calibrated (e.g. ``truth.calibration.apply(rec.xyz, rec.temperature)``).
    activity_codes : int array (n,)
        True activity code per sample (``rec.extra['activity']``).
    fs : float
        Sample rate of ``xyz`` (the true rate for simulated device samples).
    window_s : float
        Window length; windows with more than one activity are left out.

    Returns
    -------
    pandas.DataFrame
        Indexed by activity name (only those present), columns ``group``, ``windows``, ``enmo_mg`` (mean of
        max(|a| − 1, 0) in milli-g, unfiltered), ``enmo_sd_mg`` (between windows), ``dominant_hz`` (median over
        windows of the frequency of the largest peak of the vector magnitude's spectrum in `DOMINANT_BAND_HZ`)
        and ``sd_mag_mg`` (median window standard deviation of the magnitude).
    """
    xyz = np.asarray(xyz)
    codes = np.asarray(activity_codes)
    w = int(round(window_s * fs))
    k = len(codes) // w
    if k == 0:
        raise ValueError(f"recording shorter than one {window_s}-s window")
    mag = np.sqrt(np.einsum("ij,ij->i", xyz[: k * w], xyz[: k * w], dtype=np.float64)).reshape(k, w)
    c = codes[: k * w].reshape(k, w)
    pure = np.all(c == c[:, :1], axis=1)
    label = c[:, 0]
    enmo = np.maximum(mag - 1.0, 0.0).mean(axis=1)
    centred = (mag - mag.mean(axis=1, keepdims=True)) * np.hanning(w)
    power = np.abs(np.fft.rfft(centred, axis=1)) ** 2
    freqs = np.fft.rfftfreq(w, 1.0 / fs)
    band = (freqs >= DOMINANT_BAND_HZ[0]) & (freqs <= DOMINANT_BAND_HZ[1])
    dominant = freqs[band][np.argmax(power[:, band], axis=1)]
    sd = mag.std(axis=1)
    rows = []
    for a in ACTIVITIES:
        sel = pure & (label == a.code)
        if not sel.any():
            continue
        rows.append(
            {
                "activity": a.name,
                "group": a.group,
                "windows": int(sel.sum()),
                "enmo_mg": 1000.0 * float(enmo[sel].mean()),
                "enmo_sd_mg": 1000.0 * float(enmo[sel].std()),
                "dominant_hz": float(np.median(dominant[sel])),
                "sd_mag_mg": 1000.0 * float(np.median(sd[sel])),
            }
        )
    return pd.DataFrame(rows).set_index("activity")


def group_table(table: pd.DataFrame) -> pd.DataFrame:
    """`class_table` rows combined by group (window-weighted means; dominant frequency of the largest member)."""
    out = []
    for group, t in table.groupby("group", sort=False):
        wts = t["windows"].to_numpy(dtype=float)
        out.append(
            {
                "group": group,
                "windows": int(wts.sum()),
                "enmo_mg": float(np.average(t["enmo_mg"], weights=wts)),
                "dominant_hz": float(t["dominant_hz"].iloc[int(np.argmax(wts))]),
            }
        )
    return pd.DataFrame(out).set_index("group")


__all__ = ["class_table", "group_table", "DOMINANT_BAND_HZ", "NAMES"]
