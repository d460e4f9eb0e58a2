"""`extract_features`: a `Recording` to the 126 reference features per 30-s window, in one pass or in chunks."""

from __future__ import annotations

import copy
import time
import warnings
from collections import defaultdict

import numba
import numpy as np
import pandas as pd

from ..calibration import IDENTITY, CalibrationCoefficients
from ..errors import InputError
from ..recording import Recording
from .columns import FEATURE_COLUMNS, OUTPUT_COLUMNS, QC_COLUMNS
from .epochs import NS_PER_MS, decimal_temperature_table, kept_indices, plan_epochs, resample_epochs, resample_grid
from .filters import butterworth4_lowpass, lfilter_carry
from .kernels import time_domain_features, truncate_and_mean
from .spectral import spectral_features

#: Windows processed together: bounds the working memory (about 0.2 MB per window) independently of the length of
#: the recording, while keeping the batched FFTs and Numba loops long enough to be efficient.
DEFAULT_BLOCK_EPOCHS = 512


@numba.njit(cache=True, nogil=True)
def _count_nonfinite(xyz):
    k = 0
    for i in range(xyz.shape[0]):
        for a in range(3):
            if not np.isfinite(xyz[i, a]):
                k += 1
                break
    return k


class FeatureExtractor:
    """Streaming version of `extract_features`: feed a recording chunk by chunk, get the windows completed so far.

    Feeding a recording in any number of consecutive chunks gives exactly (bit for bit) the table that one
    `extract_features` call gives: the object carries everything the reference's epoch writer carries from one
    sample to the next — the open epoch's samples (with its leading edge sample), the epoch start, the previous
    sample time, the pending ``dataErrors`` count — and the low-pass filter state. The object is small (one
    epoch of samples) and can be pickled between chunks, e.g. to checkpoint a batch job.

    Parameters are those of `extract_features`. Use `update` for each chunk, in time order.

    Examples
    --------
    >>> fx = FeatureExtractor(calibration=coefs)                        # doctest: +SKIP
    >>> tables = [fx.update(rec.slice(a, b)) for a, b in day_ranges]   # doctest: +SKIP
    >>> features = pd.concat(tables, ignore_index=True)                # doctest: +SKIP
    """

    def __init__(
        self,
        calibration: CalibrationCoefficients | None = None,
        epoch_s: float = 30,
        fs: int = 100,
        range_g: float = 8.0,
        filter_hz: float | None = 20.0,
        epoch_origin_ns: int | None = None,
        missing_temperature: float = 0.0,
        block_epochs: int = DEFAULT_BLOCK_EPOCHS,
        path=None,
    ):
        self.calibration = IDENTITY if calibration is None else calibration
        self.epoch_s = epoch_s
        self.fs = int(fs)
        self.range_g = float(range_g)
        self.filter_hz = filter_hz
        self.missing_temperature = float(missing_temperature)
        self.block_epochs = int(block_epochs)
        self.path = path
        self.period_ms = int(round(epoch_s * 1000))
        self.grid = resample_grid(epoch_s, self.fs)
        if self.period_ms <= 0 or len(self.grid) < 2 * self.fs:
            raise ValueError(f"epoch_s={epoch_s} s is too short: the features need at least 2 s per window")
        if self.fs < 30:
            raise ValueError(f"fs={fs} Hz is too low: fft0-14 need 1-s windows with at least 15 bins")
        self.has_origin = epoch_origin_ns is not None
        self.origin_ms = int(np.floor_divide(np.int64(epoch_origin_ns), NS_PER_MS)) if self.has_origin else 0
        if filter_hz is not None:
            self._b, self._a = butterworth4_lowpass(filter_hz, self.fs)
        # Carried state: [epoch_start_ms, has_epoch_start, prev_ms, has_prev, data_errors], the filter state, and
        # the samples of the epoch still open (leading edge sample first when `_open_has_lead`).
        self._state_i = np.zeros(5, np.int64)
        self._zi = np.zeros(4)
        self._open_time = np.zeros(0, np.int64)
        self._open_xyz = np.zeros((0, 3), np.float32)
        self._open_temp = np.zeros(0, np.float32)
        self._open_has_lead = False
        #: Seconds spent per stage over all `update` calls (check_carry: input check and joining the carried
        #: samples; plan, resample, time_domain, filter, spectral, table).
        self.timings = defaultdict(float)

    def copy(self) -> "FeatureExtractor":
        """An independent copy (e.g. to branch a stream)."""
        return copy.deepcopy(self)

    # ------------------------------------------------------------------------------------------------------------
    def update(self, recording: Recording) -> pd.DataFrame:
        """Add the next chunk of samples; return the windows it completes (possibly none).

        Parameters
        ----------
        recording : Recording
            The next samples, later than every sample fed before (a `Recording.slice` of the whole recording, or a
            reader's output for the next part of a file).

        Returns
        -------
        pandas.DataFrame
            Columns `OUTPUT_COLUMNS`, one row per completed window.
        """
        tic = time.perf_counter()
        path = self.path if self.path is not None else recording.meta.get("path")
        xyz = recording.xyz
        if xyz.dtype not in (np.float32, np.float64):
            xyz = xyz.astype(np.float64)
        bad = _count_nonfinite(xyz)
        if bad:
            raise InputError(path, f"{bad} samples have a non-finite (NaN or infinite) acceleration value")
        time_ns = recording.time
        temp = recording.temperature
        no_temperature = temp is None
        n_open = len(self._open_time)
        if n_open:
            time_ns = np.concatenate([self._open_time, time_ns])
            xyz = np.concatenate([self._open_xyz.astype(xyz.dtype, copy=False), xyz])
            if temp is None and self._open_temp.size:
                temp = np.zeros(len(recording.time), np.float32)
            if temp is not None:
                open_temp = self._open_temp if self._open_temp.size else np.zeros(n_open, np.float32)
                temp = np.concatenate([open_temp, temp])
        temp_arr = np.zeros(0, np.float32) if temp is None else temp

        self.timings["check_carry"] += time.perf_counter() - tic
        n = len(time_ns)
        capacity = 16
        if n > n_open:
            capacity += max(0, int((time_ns[-1] - time_ns[n_open]) // (self.period_ms * NS_PER_MS))) + 16
        tic = time.perf_counter()
        while True:
            starts, leads, firsts, lasts, trails, errors, open_lead, open_first = plan_epochs(
                time_ns, n_open, self._open_has_lead, self._state_i, self.period_ms, self.origin_ms,
                self.has_origin, capacity,
            )
            if open_first != -2:
                break
            capacity *= 4  # more epochs than the time span suggests (interrupt-split epochs): plan again
        self.timings["plan"] += time.perf_counter() - tic
        table = self._features(time_ns, xyz, temp_arr, starts, leads, firsts, lasts, trails, errors)
        if no_temperature and self.missing_temperature != 0.0:
            # The reference computes with 0 °C (also in the calibration's temperature term); only the reported
            # column changes.
            table["temp"] = self.missing_temperature

        # Keep the open epoch's samples for the next chunk.
        if open_first < 0 and open_lead < 0:
            keep = np.zeros(0, np.int64)
        else:
            keep = kept_indices(time_ns, open_lead, open_first, n, self.origin_ms, self.has_origin)
        self._open_time = time_ns[keep]
        self._open_xyz = np.asarray(xyz[keep], dtype=np.float32) if xyz.dtype == np.float32 else xyz[keep]
        self._open_temp = temp_arr[keep] if temp_arr.size else np.zeros(0, np.float32)
        self._open_has_lead = bool(open_lead >= 0)
        return table

    # ------------------------------------------------------------------------------------------------------------
    def _features(self, time_ns, xyz, temp, starts, leads, firsts, lasts, trails, errors) -> pd.DataFrame:
        n_ep = len(starts)
        n = len(self.grid)
        feats = np.empty((n_ep, len(FEATURE_COLUMNS)))
        qc = np.empty((n_ep, len(QC_COLUMNS)), np.int64)
        offset, gain, temp_coef, mean_temp = self.calibration.arrays()
        temp_keys, temp_values = decimal_temperature_table(temp)
        bsz = max(1, min(self.block_epochs, n_ep))
        resampled = np.empty((3, bsz, n))
        enmo = np.empty((bsz, n))
        vm_sd = np.empty((bsz, n))
        stuck = np.empty(bsz, np.int64)
        clock = _Clock(self.timings)
        for e0 in range(0, n_ep, bsz):
            e1 = min(n_ep, e0 + bsz)
            k = e1 - e0
            sl = slice(e0, e1)
            # A partial block gets its own C-contiguous buffer: a (3, k, n) view of the (3, bsz, n) buffer would not
            # be contiguous, and Numba compiles strided arrays to differently vectorised code, whose sums round
            # differently -- the result of a window must not depend on its position in a block.
            xyz_b = resampled if k == bsz else np.empty((3, k, n))
            temp_mean, clips_before, clips_after, raw = resample_epochs(
                time_ns, xyz, temp, temp_keys, temp_values, starts[sl], leads[sl], firsts[sl], lasts[sl], trails[sl],
                offset, gain, temp_coef, mean_temp, self.range_g, self.grid, self.origin_ms, self.has_origin,
                xyz_b,
            )
            clock("resample")
            out = feats[sl]
            time_domain_features(xyz_b, self.fs, out, enmo[:k], vm_sd[:k], stuck[:k])
            clock("time_domain")
            if self.filter_hz is not None:
                # One continuous series over consecutive windows: the state carries across them (spec §3.10).
                lfilter_carry(self._b, self._a, enmo[:k].reshape(-1), self._zi)
            truncate_and_mean(enmo[:k], out)
            clock("filter")
            spectral_features(xyz_b, vm_sd[:k], enmo[:k], self.fs, out)
            clock("spectral")
            out[:, FEATURE_COLUMNS.index("temp")] = temp_mean
            qc[sl, 0] = n
            qc[sl, 1] = errors[sl] + stuck[:k]
            qc[sl, 2] = clips_before
            qc[sl, 3] = clips_after
            qc[sl, 4] = raw
        table = _table(starts, feats, qc)
        clock("table")
        return table


class _Clock:
    """Adds the time since the previous call to ``timings[stage]``."""

    def __init__(self, timings):
        self.timings = timings
        self.last = time.perf_counter()

    def __call__(self, stage):
        now = time.perf_counter()
        self.timings[stage] += now - self.last
        self.last = now


def _table(starts_ms: np.ndarray, feats: np.ndarray, qc: np.ndarray) -> pd.DataFrame:
    cols = {"time": (starts_ms * NS_PER_MS).astype("datetime64[ns]")}
    for j, name in enumerate(FEATURE_COLUMNS):
        cols[name] = feats[:, j]
    for j, name in enumerate(QC_COLUMNS):
        cols[name] = qc[:, j]
    # copy() consolidates the 132 one-column blocks, so callers can add columns without fragmentation warnings
    df = pd.DataFrame(cols, copy=False).copy()
    assert list(df.columns) == OUTPUT_COLUMNS
    return df


def _resolve_calibration(recording, calibrate, calibration) -> CalibrationCoefficients:
    if not calibrate:
        return IDENTITY
    try:
        # imported lazily: the fit is another stage (and module) of the package
        from ..calibration_fit import resolve_calibration
    except ImportError:  # pragma: no cover - only in a build without the calibration stage
        if isinstance(calibration, CalibrationCoefficients):
            return calibration
        warnings.warn("calibrate=True without coefficients and no calibration fit available: using identity "
                      "coefficients; pass calibration=... to calibrate", stacklevel=3)
        return IDENTITY
    return resolve_calibration(recording, calibrate=True, calibration=calibration)


def extract_features(
    recording: Recording,
    calibrate: bool = True,
    calibration: CalibrationCoefficients | None = None,
    epoch_s: float = 30,
    fs: int = 100,
    range_g: float = 8.0,
    filter_hz: float | None = 20.0,
    epoch_origin_ns: int | None = None,
    missing_temperature: float = 0.0,
    block_epochs: int = DEFAULT_BLOCK_EPOCHS,
) -> pd.DataFrame:
    """The 126 standard features (Willetts et al. 2018) of every 30-s window, as the reference tool computes them.

    Reproduces biobankAccelerometerAnalysis v2.3.0 (`EpochWriter`, spec `features.md`): per raw sample clip
    counting, calibration and clipping at ±``range_g``; 30-s epochs anchored at the first sample's millisecond time
    with one edge sample on each side; linear resampling onto ``epoch_s * fs`` points; a 4th-order 20 Hz Butterworth
    low-pass on VM − 1 whose state runs on from window to window; ENMO truncation; then the features.

    Parameters
    ----------
    recording : Recording
        Samples with int64 ns times (naive device-local), xyz in g and optionally per-sample temperature (°C). To
        reproduce the reference's numbers for a .cwa file, read it with ``read(path, time_mode="reference")``.
    calibrate : bool
        Apply calibration coefficients. False: identity (offsets 0, gains 1, temperature coefficients 0), whatever
        ``calibration`` says -- as needed to compare with the golden files.
    calibration : CalibrationCoefficients, dict, str or os.PathLike, optional
        Coefficients to apply when ``calibrate`` (an object, a dict as in ``CalibrationCoefficients.to_dict`` or a
        JSON file). If None they are fitted to the recording's own stationary periods with
        ``capture_pipeline.calibration_fit.fit_calibration`` (van Hees et al. 2014, as the reference's separate
        calibration pass).
    epoch_s : float
        Window length in s (reference: 30).
    fs : int
        Rate in Hz of the resampled window (reference: 100), so each window has ``epoch_s * fs`` samples.
    range_g : float
        Device range r (reference: 8 g, whatever the device setting).
    filter_hz : float or None
        Cut-off of the low-pass on VM − 1 (reference: 20 Hz); None: no filter.
    epoch_origin_ns : int, optional
        The reference's ``startTime``: ignore samples before it and start the first window at it plus a whole
        number of windows. Use it to put chunks processed independently on one common window grid (see Notes).
    missing_temperature : float
        Temperature (°C) used for every sample when the recording has none; the reference uses 0 for CSV input, so
        ``temp`` is then 0. Pass ``numpy.nan`` to get NaN instead (the only knowing departure, off by default).
    block_epochs : int
        Windows processed together (memory ≈ 0.2 MB per window); does not change the result.

    Returns
    -------
    pandas.DataFrame
        One row per window the reference writes. Columns, in order: ``time`` (window start, datetime64[ns], naive
        device-local), the 126 features in the reference's order (`columns.FEATURE_COLUMNS`, float64), then the QC
        integers ``samples`` (resampled length, 3000), ``dataErrors`` (backward time steps, interrupts and stuck
        axes counted since the previous window), ``clipsBeforeCalibr``, ``clipsAfterCalibr`` (samples clipped, edge
        samples included) and ``rawSamples`` (raw samples used, edge samples included). The reference CSV puts the
        QC columns after ``temp``; `columns.REFERENCE_EPOCH_COLUMNS` gives that order. ``attrs["calibration"]``
        holds the coefficients applied (`CalibrationCoefficients.to_dict`, with the fit's report under ``info``).

    Raises
    ------
    InputError
        Some acceleration values are NaN or infinite.

    Notes
    -----
    Reference quirks reproduced on purpose (spec §6):

    * the window grid starts at the first sample's millisecond time, not on :00/:30; the trailing partial window is
      never written; a window needs more than 10 raw samples;
    * gaps under 60 s are interpolated across; a gap of 60 s or more is an interrupt (dataErrors + 1, the partial
      window is written padded with its last value, the next window has no leading edge sample);
    * the low-pass state is carried across windows and never reset, not even at interrupts;
    * San Diego features (#15-55) use v = |a − G| with one gravity vector G per window (mean of an EMA); fft0-14
      cover only the first ~15.5 s of the window and are divided by the largest single-window bin; fmax, pmax and
      entropy are divided by the largest element of the packed real-FFT array;
    * x/y/z/mfft bins are at multiples of 1/30 Hz, bin 0 is the signed, unnormalised sum;
    * kurt has an extra (N − 4) factor (≈ −3.002 for any signal), MPD is divided by N^1.5, covariances by N + 1;
    * MAD-type features use the unfiltered VM − 1, Unilever features and mfft the filtered, truncated one;
    * a sample clipped before calibration has every non-zero axis forced to ±r if any calibrated axis exceeds r;
    * ``temp`` is the sample-weighted mean including edge samples; it is 0 when the input has no temperature.

    Chunking: `FeatureExtractor` processes consecutive chunks with carried state and gives exactly (bit for bit)
    the one-pass result. To run chunks [start, end) (e.g. days) independently on different workers, give each
    worker the samples from at least one window (30 s; more is harmless) before ``start`` up to and including the
    first sample at or after ``end`` (it completes the last window), the same ``epoch_origin_ns`` (the recording's
    first sample time), and keep only the windows whose ``time`` lies in [start, end) with ``start`` and ``end``
    whole milliseconds. The window grid is then common, and the low-pass state converges over the overlap to
    rounding level (tested at 1e-9); only timing faults inside the overlap (backward steps, an interrupt) can make
    such windows differ from one pass, in their dataErrors count or, after an interrupt, their position.
    """
    coefs = _resolve_calibration(recording, calibrate, calibration)
    fx = FeatureExtractor(
        calibration=coefs, epoch_s=epoch_s, fs=fs, range_g=range_g, filter_hz=filter_hz,
        epoch_origin_ns=epoch_origin_ns, missing_temperature=missing_temperature, block_epochs=block_epochs,
    )
    table = fx.update(recording)
    table.attrs["calibration"] = coefs.to_dict()  # what was applied, with the fit's report in ["info"]
    return table
