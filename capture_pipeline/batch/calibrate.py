"""Autocalibration of a file processed in chunks: the same stationary points and fit as one whole-file pass.

`capture_pipeline.calibration_fit.fit_calibration` needs the whole recording in memory (1.4 GB for a week at
100 Hz). Here each chunk computes the 10-s window sums of its own samples with the same Numba kernel
(`calibration_fit._window_sums`, windows counted from the file's first sample ``t0``), and returns the raw samples
of its first and last window runs, which may continue in the neighbouring chunks. `merge_window_sums` recomputes
those edge runs from the concatenated raw samples, so every window's sums are accumulated from the same first
sample over the same samples in the same order as in one pass: the points, and so the fit, are bit-identical.
"""

from __future__ import annotations


import numpy as np

from .. import calibration_fit as cf


def _win_index(time, t0, win_ns):
    dt = time - t0
    return np.where(dt >= 0, dt // win_ns, -1)


def chunk_window_sums(time, xyz, temperature, t0, range_g, window_s=cf.WINDOW_S) -> dict:
    """Window sums of one chunk's own samples, with the raw samples of its first and last runs.

    Parameters
    ----------
    time, xyz, temperature : numpy.ndarray
        The chunk's own samples (int64 ns, float32 n×3 g, float32 °C or None).
    t0 : int
        Time (ns) of the file's first sample: windows are ``t0 + k * window_s``.
    range_g : float
        Device range (samples at or beyond it are clipped).

    Returns
    -------
    dict
        ``sums``: the arrays of `calibration_fit._window_sums` (one slot per run of samples in one window, in
        order); ``head``/``tail``: ``(time, xyz, temperature)`` of the first and last runs; ``n``: samples.
    """
    n = len(time)
    win_ns = np.int64(round(window_s * 1e9))
    has_temp = temperature is not None
    temp = temperature if has_temp else np.zeros(1, np.float32)
    if n == 0:
        return {"n": 0, "sums": None, "head": None, "tail": None}
    sums = cf._window_sums(time, np.ascontiguousarray(xyz), temp, has_temp, np.int64(t0), win_ns, float(range_g))
    w = _win_index(time, np.int64(t0), win_ns)
    change = np.flatnonzero(w[1:] != w[:-1]) + 1
    head_end = int(change[0]) if len(change) else n
    tail_start = int(change[-1]) if len(change) else 0

    def part(a, b):
        return (time[a:b].copy(), np.array(xyz[a:b], np.float32), None if not has_temp else temp[a:b].copy())

    return {"n": n, "sums": sums, "head": part(0, head_end), "tail": part(tail_start, n)}


def merge_window_sums(parts, t0, range_g, has_temp, window_s=cf.WINDOW_S):
    """The whole file's window sums from the chunks' `chunk_window_sums`, in file order (empty chunks allowed)."""
    win_ns = np.int64(round(window_s * 1e9))
    parts = [p for p in parts if p["n"]]
    pieces = []  # lists of the 7 arrays, in order
    pending = None  # raw samples of a run that may continue into the next chunk

    def sums_of(raw):
        t, x, tmp = raw
        return cf._window_sums(t, np.ascontiguousarray(x), tmp if has_temp else np.zeros(1, np.float32), has_temp,
                               np.int64(t0), win_ns, float(range_g))  # fmt: skip

    def cat(a, b):
        return (np.concatenate([a[0], b[0]]), np.concatenate([a[1], b[1]]),
                None if not has_temp else np.concatenate([a[2], b[2]]))  # fmt: skip

    for p in parts:
        sums, head, tail = p["sums"], p["head"], p["tail"]
        m = len(sums[0])
        lo = 0
        if pending is not None:
            last_w = _win_index(pending[0][-1:], np.int64(t0), win_ns)[0]
            first_w = _win_index(head[0][:1], np.int64(t0), win_ns)[0]
            if last_w == first_w:  # the open run goes on in this chunk
                if m == 1:
                    pending = cat(pending, head)
                    continue
                pieces.append(sums_of(cat(pending, head)))
                lo = 1
            else:
                pieces.append(sums_of(pending))
        if m - 1 > lo:  # runs lo .. m-2 lie wholly inside this chunk: its own sums are the one-pass sums
            pieces.append(tuple(a[lo : m - 1] for a in sums))
        pending = tail
    if pending is not None:
        pieces.append(sums_of(pending))
    if not pieces:
        return None
    return tuple(np.concatenate([pc[k] for pc in pieces]) for k in range(7))


# the selection of points and the fit policy are calibration_fit's own, so chunked and whole-file runs agree
stationary_points_from_sums = cf.points_from_window_sums
fit_from_points = cf.fit_from_points
