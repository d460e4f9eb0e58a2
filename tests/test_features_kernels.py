"""Each feature kernel against a plain numpy/scipy computation of the spec's definition, on random data.

Tolerances: the kernels and the numpy references compute the same double-precision formulas with different
operation orders (pairwise vs sequential sums, FFT vs matrix DFT, libm vs our atan2), so values agree to ~1e-12
relative; we assert 1e-9 (relative, with a matching absolute floor for values near 0), far below the printed
precision of the reference (1e-8 at best) and far above rounding noise.
"""

import numpy as np
import pytest
import scipy.fft
import scipy.signal

from capture_pipeline.features import FEATURE_COLUMNS
from capture_pipeline.features.epochs import resample_grid
from capture_pipeline.features.filters import butterworth4_lowpass, lfilter_carry
from capture_pipeline.features.kernels import time_domain_features, truncate_and_mean
from capture_pipeline.features.spectral import spectral_features

N = 3000
FS = 100
COL = {name: i for i, name in enumerate(FEATURE_COLUMNS)}
RTOL = 1e-9


def close(actual, expected, rtol=RTOL, atol=1e-9):
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol)


def r7(values, p):
    """R type-7 quantile from a sorted copy, with the reference's interpolation x[h] + (h - floor h)(x[h+1] - x[h])
    (numpy's 'linear' method is the same quantile but interpolates from the upper side for weights >= 0.5, which
    can differ in the last bit)."""
    x = np.sort(values)
    h = p * (len(x) - 1) + 1
    if h <= 1:
        return x[0]
    if h >= len(x):
        return x[-1]
    hf = int(np.floor(h))
    return x[hf - 1] + (h - hf) * (x[hf] - x[hf - 1])


@pytest.fixture(scope="module")
def windows():
    """12 windows of x, y, z: gravity in varying directions, a few Hz of movement, noise; one window at rest."""
    rng = np.random.default_rng(42)
    n_ep = 12
    t = np.arange(N) / FS
    xyz = np.empty((3, n_ep, N))
    for e in range(n_ep):
        g = rng.normal(size=3)
        g /= np.linalg.norm(g)
        amp = rng.uniform(0, 0.8, 3) if e else np.zeros(3)
        f = rng.uniform(0.5, 4, 3)
        for a in range(3):
            xyz[a, e] = g[a] + amp[a] * np.sin(2 * np.pi * f[a] * t + rng.uniform(0, 6)) + rng.normal(0, 0.01, N)
    return xyz


@pytest.fixture(scope="module")
def computed(windows):
    n_ep = windows.shape[1]
    out = np.full((n_ep, 126), np.nan)
    enmo = np.empty((n_ep, N))
    vm_sd = np.empty((n_ep, N))
    stuck = np.empty(n_ep, np.int64)
    time_domain_features(windows, FS, out, enmo, vm_sd, stuck)
    unfiltered = enmo.copy()
    b, a = butterworth4_lowpass(20, FS)
    lfilter_carry(b, a, enmo.reshape(-1), np.zeros(4))
    truncate_and_mean(enmo, out)
    spectral_features(windows, vm_sd, enmo, FS, out)
    return out, unfiltered, vm_sd, enmo, stuck


# --- filter ----------------------------------------------------------------------------------------------------
def test_butterworth_design_equals_scipy():
    for fc, fs in [(20, 100), (20, 50), (5, 100), (1, 30)]:
        b, a = butterworth4_lowpass(fc, fs)
        sb, sa = scipy.signal.butter(4, fc / (fs / 2))
        np.testing.assert_allclose(b, sb, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(a, sa, rtol=1e-12, atol=1e-15)
    # the values printed in the spec (§3.10)
    b, a = butterworth4_lowpass(20, 100)
    np.testing.assert_allclose(b, [0.04658291, 0.18633163, 0.27949744, 0.18633163, 0.04658291], atol=5e-9)
    np.testing.assert_allclose(a, [1, -0.7820952, 0.67997853, -0.1826757, 0.03011888], atol=5e-8)


def test_lfilter_carry_equals_scipy_and_carries_state():
    rng = np.random.default_rng(1)
    x = rng.normal(size=10_007)
    b, a = butterworth4_lowpass(20, 100)
    expected, zf = scipy.signal.lfilter(b, a, x, zi=np.zeros(4))
    z = np.zeros(4)
    y = x.copy()
    lfilter_carry(b, a, y[:3333], z)  # two calls, state carried, as two chunks / windows
    lfilter_carry(b, a, y[3333:], z)
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(z, zf, rtol=1e-10, atol=1e-14)


# --- axis summaries ----------------------------------------------------------------------------------------------
def test_axis_summaries(windows, computed):
    out = computed[0]
    x, y, z = windows
    for a, name in enumerate("xyz"):
        s = windows[a]
        close(out[:, COL[f"{name}Mean"]], s.mean(axis=1))
        close(out[:, COL[f"{name}Range"]], np.ptp(s, axis=1))
        close(out[:, COL[f"{name}Std"]], s.std(axis=1))  # population std
    for (p, q), name in [((x, y), "xyCov"), ((x, z), "xzCov"), ((y, z), "yzCov")]:
        cov = ((p - p.mean(1, keepdims=True)) * (q - q.mean(1, keepdims=True))).sum(1) / (N + 1)  # N+1 quirk
        close(out[:, COL[name]], cov)


def test_stuck_axis_rule():
    xyz = np.zeros((3, 3, N))
    xyz[0, 0] = 2.0  # stuck above 1.5 g
    # stuck below -1.5 g; a binary-exact value, because the reference's sequential mean of 3000 copies of e.g.
    # -1.6 is not exactly -1.6, so its std is not exactly 0 and it would (as in the reference) not count as stuck
    xyz[1, 1] = -1.75
    xyz[2, 2] = 1.5  # constant but not above 1.5 g: not stuck
    xyz[:, 2, ::2] += 0.1
    out = np.empty((3, 126))
    stuck = np.empty(3, np.int64)
    time_domain_features(xyz, FS, out, np.empty((3, N)), np.empty((3, N)), stuck)
    # window 0: x stuck (y, z constant 0: |mean| not > 1.5); window 1: y stuck; window 2: nothing constant
    assert stuck.tolist() == [1, 1, 0]


# --- ENMO and its moments ------------------------------------------------------------------------------------
def test_enmo_and_mad_features(windows, computed):
    out, unfiltered = computed[0], computed[1]
    e = np.sqrt((windows**2).sum(axis=0)) - 1
    close(unfiltered, e, rtol=1e-14, atol=1e-14)
    d = e - e.mean(1, keepdims=True)
    sd = e.std(axis=1, keepdims=True)
    close(out[:, COL["MAD"]], np.abs(d).mean(1))
    close(out[:, COL["MPD"]], (np.abs(d) ** 1.5).sum(1) / N**1.5)
    close(out[:, COL["skew"]], N / ((N - 1) * (N - 2)) * ((d / sd) ** 3).sum(1))
    kurt = N * (N + 1) / ((N - 1) * (N - 2) * (N - 3) * (N - 4)) * ((d / sd) ** 4).sum(1) - 3 * (N - 1) ** 2 / (
        (N - 2) * (N - 3))
    close(out[:, COL["kurt"]], kurt)
    # the documented quirk: kurt ~ -3.002 + beta2/N for every signal
    assert np.all(np.abs(out[:, COL["kurt"]] + 3.002) < 0.01)


def test_filter_truncation_and_enmo_trunc(windows, computed):
    out, unfiltered, _, t = computed[0], computed[1], computed[2], computed[3]
    b, a = scipy.signal.butter(4, 20 / 50)
    # one continuous series across windows, state carried (not reset per window)
    filt = scipy.signal.lfilter(b, a, unfiltered.reshape(-1)).reshape(unfiltered.shape)
    close(t, np.maximum(filt, 0), rtol=1e-10, atol=1e-12)
    close(out[:, COL["enmoTrunc"]], np.maximum(filt, 0).mean(1))


# --- San Diego -----------------------------------------------------------------------------------------------
def _san_diego_reference(x, y, z):
    """The San Diego gravity-shifted signal by scipy: EMA g_c = 0.9 g_{c-1} + (1-0.9) s_c, G = mean of g[99:]."""
    alpha = 1 - 0.9
    out = []
    for s in (x, y, z):
        g = scipy.signal.lfilter([alpha], [1, -0.9], s)
        out.append(g[FS - 1:].mean())
    G = np.array(out)
    w = np.stack([x, y, z]) - G[:, None]
    return G, w, np.sqrt((w**2).sum(0))


def test_san_diego_statistics(windows, computed):
    out, vm_sd = computed[0], computed[2]
    for e in range(windows.shape[1]):
        G, w, v = _san_diego_reference(*windows[:, e])
        row = out[e]
        close(vm_sd[e], v, rtol=1e-12, atol=1e-12)
        close(row[COL["mean"]], v.mean())
        close(row[COL["sd"]], v.std(ddof=1))
        close(row[COL["coefvariation"]], v.std(ddof=1) / v.mean())
        # R type 7 = numpy's default 'linear' quantile
        for p, name in [(0.5, "median"), (0.0, "min"), (1.0, "max"), (0.25, "25thp"), (0.75, "75thp")]:
            close(row[COL[name]], np.quantile(v, p))
        close(row[COL["autocorr"]], np.corrcoef(v[:-FS], v[FS:])[0, 1])
        close(row[COL["corrxy"]], np.corrcoef(w[0], w[1])[0, 1])
        close(row[COL["corrxz"]], np.corrcoef(w[0], w[2])[0, 1])
        close(row[COL["corryz"]], np.corrcoef(w[1], w[2])[0, 1])
        for (p, q), name in [((1, 2), "roll"), ((2, 0), "pitch"), ((1, 0), "yaw")]:
            ang = np.arctan2(w[p], w[q])
            close(row[COL[f"avg{name}"]], ang.mean(), rtol=1e-11, atol=1e-12)
            close(row[COL[f"sd{name}"]], ang.std(ddof=1), rtol=1e-11, atol=1e-12)
        close(row[COL["rollg"]], np.arctan2(G[1], G[2]))
        close(row[COL["pitchg"]], np.arctan2(G[2], G[0]))
        close(row[COL["yawg"]], np.arctan2(G[1], G[0]))


def test_quartiles_exact_with_ties_and_skew():
    """Quantiles by selection equal sort-based ones exactly, also with many ties and heavy tails."""
    rng = np.random.default_rng(7)
    cases = [
        np.round(rng.exponential(0.01, size=(4, N)), 3),  # many ties
        rng.lognormal(-4, 2, size=(4, N)),  # heavy tail
        np.zeros((1, N)),  # all equal
    ]
    for g in cases:
        n_ep = g.shape[0]
        # the signal on x only; the quantiles are checked against numpy on the kernel's own v output
        xyz = np.zeros((3, n_ep, N))
        xyz[0] = g
        out = np.empty((n_ep, 126))
        vm_sd = np.empty((n_ep, N))
        time_domain_features(xyz, FS, out, np.empty((n_ep, N)), vm_sd, np.empty(n_ep, np.int64))
        for e in range(n_ep):
            v = vm_sd[e]
            for p, name in [(0.5, "median"), (0.0, "min"), (1.0, "max"), (0.25, "25thp"), (0.75, "75thp")]:
                assert out[e, COL[name]] == r7(v, p), (name, e)


def test_atan2_fast_matches_libm():
    from numba import njit

    from capture_pipeline.features.kernels import atan2_fast

    @njit(error_model="numpy")
    def many(y, x):
        out = np.empty_like(y)
        for i in range(y.shape[0]):
            out[i] = atan2_fast(y[i], x[i])
        return out

    rng = np.random.default_rng(3)
    y = rng.normal(size=200_000) * np.logspace(-8, 8, 200_000)
    x = rng.normal(size=200_000)
    np.testing.assert_allclose(many(y, x), np.arctan2(y, x), rtol=4e-16, atol=1e-300)
    special = np.array([0.0, -0.0, 1.0, -1.0, 1e-310, -1e-310])
    ys, xs = np.meshgrid(special, special)
    got, want = many(ys.ravel(), xs.ravel()), np.arctan2(ys.ravel(), xs.ravel())
    np.testing.assert_allclose(got, want, rtol=4e-16, atol=0)
    assert np.array_equal(np.signbit(got), np.signbit(want))  # signed zeros and ±pi as libm


# --- spectral --------------------------------------------------------------------------------------------------
def _packed_max(X):
    """Largest element of JTransforms' packed real-FFT array [Re0, Re(N/2), Re1, Im1, ...]."""
    return max(X[0].real, X[N // 2].real, X[1:N // 2].real.max(), X[1:N // 2].imag.max())


def test_san_diego_spectrum(computed):
    out, vm_sd = computed[0], computed[2]
    h = np.hanning(N)
    freqs = np.arange(N // 2 + 1) * (FS / (1.0 * N))
    for e in range(out.shape[0]):
        X = np.fft.rfft(vm_sd[e] * h)
        M = _packed_max(X)
        m = np.abs(X) / M
        k = np.arange(1, N // 2)
        kstar = k[np.argmax(m[k])]
        close(out[e, COL["fmax"]], freqs[kstar])
        close(out[e, COL["pmax"]], m[kstar])
        band = k[(freqs[k] > 0.3) & (freqs[k] < 3)]
        kb = band[np.argmax(m[band])]
        close(out[e, COL["fmaxband"]], freqs[kb])
        close(out[e, COL["pmaxband"]], m[kb])
        m0 = X[0].real / M
        close(out[e, COL["entropy"]], -(m0 * np.log(m0) + (m[k] * np.log(m[k])).sum()))
        # fft0-14: 30 windows of 100 samples at steps of 50, Hann(100), bins 0..14; bin 0 signed
        wins = np.stack([vm_sd[e][s:s + FS] for s in range(0, N // FS * (FS // 2), FS // 2)])
        assert wins.shape == (30, 100)
        W = np.fft.rfft(wins * np.hanning(FS), axis=1)[:, :15]
        b = np.abs(W)
        b[:, 0] = W[:, 0].real
        close(out[e, COL["fft0"]:COL["fft14"] + 1], b.sum(0) / (b.max() * 30))


def test_unilever_and_axis_bins(windows, computed):
    out, t = computed[0], computed[3]
    h = np.hanning(N)
    freqs = np.arange(N // 2 + 1) * (FS / (1.0 * N))
    for e in range(out.shape[0]):
        X = scipy.fft.rfft(t[e] * h)
        mag = np.abs(X)
        k = np.arange(1, N // 2)
        k = k[(freqs[k] >= 0.3) & (freqs[k] <= 15)]
        assert (k[0], k[-1]) == (9, 450)  # band limits of the spec, in double arithmetic
        order = k[np.argsort(-mag[k], kind="stable")]
        close(out[e, COL["f1"]], freqs[order[0]])
        close(out[e, COL["p1"]], mag[order[0]])
        close(out[e, COL["f2"]], freqs[order[1]])
        close(out[e, COL["p2"]], mag[order[1]])
        b625 = k[(freqs[k] > 0.6) & (freqs[k] < 2.5)]
        assert (b625[0], b625[-1]) == (19, 74)
        close(out[e, COL["f625"]], freqs[b625[np.argmax(mag[b625])]])
        close(out[e, COL["p625"]], mag[b625].max())
        close(out[e, COL["total"]], mag[k].sum())
        for a, name in enumerate("xyzm"):
            s = windows[a, e] if name != "m" else t[e]
            Y = np.fft.rfft(s * h)[:15]
            expected = np.abs(Y)
            expected[0] = Y[0].real  # signed, unnormalised bin 0
            close(out[e, COL[f"{name}fft0"]:COL[f"{name}fft14"] + 1], expected, rtol=1e-9, atol=1e-9)


def test_resample_grid():
    g = resample_grid(30, 100)
    assert g.shape == (3000,) and g[0] == 0 and g[-1] == 29990 and np.all(np.diff(g) == 10)
    g = resample_grid(5, 30)  # round(5000 c / 150): 33.33 -> 33, 66.67 -> 67
    assert g[:4].tolist() == [0, 33, 67, 100]


def test_quartile_selection_paths_equal_numpy():
    """Both selection paths (radix for v >= 0, quickselect when signs are mixed) give the sort-based R-7 quantiles
    exactly."""
    from numba import njit

    from capture_pipeline.features.kernels import _quartiles_r7

    @njit
    def quartiles(v):
        return _quartiles_r7(v, np.empty_like(v))

    rng = np.random.default_rng(11)
    for v in [rng.normal(size=N), np.abs(rng.normal(size=N)), rng.normal(size=7), np.abs(rng.normal(size=2)),
              np.array([-0.0, 0.0, -0.0, 1.0, 1.0]), np.repeat(rng.exponential(size=30), 100)]:
        assert list(quartiles(v)) == [r7(v, p) for p in (0, 0.25, 0.5, 0.75, 1)]
        np.testing.assert_allclose(quartiles(v), np.quantile(v, [0, 0.25, 0.5, 0.75, 1]), rtol=1e-15, atol=0)
