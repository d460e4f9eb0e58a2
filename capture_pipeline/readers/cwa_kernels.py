"""Numba kernels of the CWA reader: sample unpacking and per-sample times over whole block arrays.

The block-level work (header fields, checksums, timestamps, segments) is vectorised numpy in `cwa.py`; what is
per sample lives here, so that no Python loop runs per block or per sample.
"""

from __future__ import annotations

import numba
import numpy as np

# numAxesBPS values the reader decodes
PACKED3 = 0x30
INT16_3 = 0x32
INT16_6 = 0x62
INT16_9 = 0x92


@numba.njit(cache=True, nogil=True)
def _sx10(v):
    # sign-extend a 10-bit two's complement value
    return ((v & 0x3FF) ^ 0x200) - 0x200


@numba.njit(cache=True, nogil=True)
def decode_samples(blocks, block_idx, out_start, counts, axes_bps, light_scale, range_g, xyz, gyro):
    """Unpack the samples of the selected blocks into preallocated arrays; returns the number of clipped samples.

    Parameters
    ----------
    blocks : uint8 array (n_blocks, 512)
        Raw data blocks.
    block_idx : int64 array (m,)
        Blocks to decode, in output order.
    out_start : int64 array (m,)
        Output row of each selected block's first sample.
    counts : int64 array (m,)
        Samples to take from each block.
    axes_bps, light_scale : arrays (m,)
        The blocks' numAxesBPS and lightScale fields.
    range_g : float
        Configured range; a sample with any axis within one resolution step of it counts as clipped.
    xyz : float32 array (n, 3)
        Acceleration in g (written).
    gyro : float32 array (n, 3) or (0, 3)
        Angular velocity in deg/s (written when it has rows).
    """
    want_gyro = gyro.shape[0] > 0
    n_clipped = 0
    vals = np.empty(9, np.float64)
    for j in range(block_idx.shape[0]):
        b = block_idx[j]
        o = out_start[j]
        layout = axes_bps[j]
        ls = light_scale[j]
        a_code = (ls >> 13) & 7
        accel_scale = 1.0 / (1 << (8 + a_code))
        g_code = (ls >> 10) & 7
        gyro_range = 2000.0 if g_code == 0 else float(8000 >> g_code)
        for i in range(counts[j]):
            p = 30
            if layout == PACKED3:
                q = p + 4 * i
                v = (np.int64(blocks[b, q]) | (np.int64(blocks[b, q + 1]) << 8)
                     | (np.int64(blocks[b, q + 2]) << 16) | (np.int64(blocks[b, q + 3]) << 24))
                e = (v >> 30) & 3
                # packed data are always in 1/256 g whatever lightScale says (cwa.md §6.1)
                lsb = (1 << e) / 256.0
                ax = (_sx10(v) << e) / 256.0
                ay = (_sx10(v >> 10) << e) / 256.0
                az = (_sx10(v >> 20) << e) / 256.0
            else:
                n_axes = 3 if layout == INT16_3 else (6 if layout == INT16_6 else 9)
                acc0 = 0 if n_axes == 3 else 3
                base = p + 2 * n_axes * i
                for k in range(min(n_axes, 6)):
                    q = base + 2 * k
                    r = np.int64(blocks[b, q]) | (np.int64(blocks[b, q + 1]) << 8)
                    if r >= 32768:
                        r -= 65536
                    vals[k] = r
                lsb = accel_scale
                ax = vals[acc0] * accel_scale
                ay = vals[acc0 + 1] * accel_scale
                az = vals[acc0 + 2] * accel_scale
                if want_gyro and n_axes >= 6:
                    gyro[o + i, 0] = vals[0] * gyro_range / 32768.0
                    gyro[o + i, 1] = vals[1] * gyro_range / 32768.0
                    gyro[o + i, 2] = vals[2] * gyro_range / 32768.0
            xyz[o + i, 0] = ax
            xyz[o + i, 1] = ay
            xyz[o + i, 2] = az
            edge = range_g - lsb
            if abs(ax) >= edge or abs(ay) >= edge or abs(az) >= edge:
                n_clipped += 1
    return n_clipped


@numba.njit(cache=True, nogil=True)
def anchor_times(seg_anchor_start, anchor_idx, anchor_ns, block_seg, block_pos, out_start, counts, fs, time):
    """Per-sample times by piecewise-linear interpolation through each segment's block anchors.

    Parameters
    ----------
    seg_anchor_start : int64 (n_segments + 1,)
        Anchors of segment s are ``anchor_idx[seg_anchor_start[s]:seg_anchor_start[s + 1]]``.
    anchor_idx : float64 (n_valid,)
        Anchor position counted in samples from the segment's first sample.
    anchor_ns : int64 (n_valid,)
        Anchor time in ns.
    block_seg, block_pos : int64 (m,)
        Segment of each selected block and the position of its first sample within the segment.
    out_start, counts : int64 (m,)
        Output row of each selected block's first sample, and its number of samples.
    fs : float64 (m,)
        Nominal rate of each selected block, used only in a segment with a single anchor.
    time : int64 (n,)
        Output times in ns (written).

    Notes
    -----
    Before the first and after the last anchor the nearest pair's slope is extrapolated (cwa.md §7.5).
    """
    for j in range(block_seg.shape[0]):
        s = block_seg[j]
        a0 = seg_anchor_start[s]
        m = seg_anchor_start[s + 1] - a0
        o = out_start[j]
        # binary search for the last anchor at or before the block start; anchors increase within a segment
        lo, hi = 0, m - 1
        target = float(block_pos[j])
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if anchor_idx[a0 + mid] <= target:
                lo = mid
            else:
                hi = mid - 1
        if m == 1:
            slope = 1e9 / fs[j]
            for i in range(counts[j]):
                time[o + i] = anchor_ns[a0] + np.int64(np.floor((block_pos[j] + i - anchor_idx[a0]) * slope + 0.5))
            continue
        k = min(lo, m - 2)
        base = block_pos[j]
        n = counts[j]
        i = 0
        while i < n:
            # the anchor interval holding sample i, then every sample of the block in that interval at once
            while k < m - 2 and anchor_idx[a0 + k + 1] <= base + i:
                k += 1
            i0 = anchor_idx[a0 + k]
            i1 = anchor_idx[a0 + k + 1]
            t0 = anchor_ns[a0 + k]
            slope = (anchor_ns[a0 + k + 1] - t0) / (i1 - i0)
            end = n if k == m - 2 else min(n, max(i + 1, np.int64(np.ceil(i1 - base))))
            for ii in range(i, end):
                time[o + ii] = t0 + np.int64(np.floor((base + ii - i0) * slope + 0.5))
            i = end


@numba.njit(cache=True, nogil=True)
def reference_block_times(t_block, off, n, max_samples, fs):
    """First and last time of each block by the v2.3.0 reference reader (`spec/features.md` §3.1).

    Parameters
    ----------
    t_block : int64 (m,)
        Block time in ns: packed timestamp plus ``(long)(1e9 * f16 / 65536)``.
    off : int64 (m,)
        timestampOffset with the firmware shim undone (when the block has a fractional timestamp).
    n : int64 (m,)
        Samples in each block.
    max_samples : int64 (m,)
        Capacity of each block (480 / bytes per sample).
    fs : float64 (m,)
        The rate the reference assumes per block (1 Hz for blocks without a fractional timestamp: its quirk).

    Returns
    -------
    first, last : int64 (m,)
        Sample i of block j is at ``first + (long)(i * (double)(last - first) / n)``.
    """
    m = t_block.shape[0]
    first = np.empty(m, np.int64)
    last = np.empty(m, np.int64)
    have_prev = False
    t_prev = np.int64(0)
    idx_prev = np.int64(0)
    for j in range(m):
        f = fs[j]
        span = t_block[j] - t_prev
        if (not have_prev) or off[j] <= idx_prev or span <= 0 or span > 1e9 * 2 * max_samples[j] / f:
            # Java: (long)(1e9 * (float)((float)-off / (float)fs))
            step = np.float32(np.float32(-off[j]) / np.float32(f))
            first[j] = t_block[j] + np.int64(1e9 * np.float64(step))
            last[j] = first[j] + np.int64(1e9 * n[j] / f)
        else:
            gap = span / np.float64(off[j] - idx_prev)
            first[j] = t_prev + np.int64(-idx_prev * gap)
            last[j] = t_prev + np.int64((-idx_prev + n[j]) * gap)
        have_prev = True
        t_prev = t_block[j]
        idx_prev = off[j] - n[j]
    return first, last


@numba.njit(cache=True, nogil=True)
def spread_block_times(first, last, out_start, counts, time):
    """Sample i of block j at ``first[j] + (long)(i * (double)(last[j] - first[j]) / counts[j])``."""
    for j in range(first.shape[0]):
        o = out_start[j]
        n = counts[j]
        d = np.float64(last[j] - first[j])
        for i in range(n):
            time[o + i] = first[j] + np.int64(i * d / n)


@numba.njit(cache=True, nogil=True)
def fill_per_block(values, out_start, counts, out):
    """``out[out_start[j] : out_start[j] + counts[j]] = values[j]`` for every block j (a repeat without copies)."""
    for j in range(values.shape[0]):
        o = out_start[j]
        for i in range(counts[j]):
            out[o + i] = values[j]


@numba.njit(cache=True, nogil=True)
def block_checksums_ok(words):
    """For each block (row of 256 little-endian uint16 words), whether the 16-bit word sum is 0."""
    n = words.shape[0]
    ok = np.empty(n, np.bool_)
    for j in range(n):
        s = 0
        for k in range(256):
            s += words[j, k]
        ok[j] = (s & 0xFFFF) == 0
    return ok
