"""Names, order and printed precision of the 126 features and the QC columns (spec `features.md` §2, §5, §7).

The order is that of the reference tool's feature vector (biobankAccelerometerAnalysis v2.3.0,
`activityModels/features.txt`); `REFERENCE_EPOCH_COLUMNS` is the column order of its epoch CSV, which interleaves
the five QC integers after ``temp``.
"""

from __future__ import annotations


def _bins(prefix: str, n: int = 15) -> list[str]:
    return [f"{prefix}{i}" for i in range(n)]


#: Features #1-14: per-axis summaries of the resampled, calibrated signal and the epoch temperature.
BASIC_COLUMNS = [
    "enmoTrunc", "xMean", "yMean", "zMean", "xRange", "yRange", "zRange",
    "xStd", "yStd", "zStd", "xyCov", "xzCov", "yzCov", "temp",
]

#: Features #15-55: the "San Diego" features on the gravity-shifted vector magnitude v.
SAN_DIEGO_COLUMNS = [
    "mean", "sd", "coefvariation", "median", "min", "max", "25thp", "75thp",
    "autocorr", "corrxy", "corrxz", "corryz", "avgroll", "avgpitch", "avgyaw",
    "sdroll", "sdpitch", "sdyaw", "rollg", "pitchg", "yawg",
    "fmax", "pmax", "fmaxband", "pmaxband", "entropy",
] + _bins("fft")

#: Features #56-59, on the unfiltered, signed VM−1.
MAD_COLUMNS = ["MAD", "MPD", "skew", "kurt"]

#: Features #60-66, on the filtered, truncated VM−1.
UNILEVER_COLUMNS = ["f1", "p1", "f2", "p2", "f625", "p625", "total"]

#: Features #67-126: the first 15 DFT bins of x, y, z and of the filtered, truncated VM−1.
AXIS_FFT_COLUMNS = _bins("xfft") + _bins("yfft") + _bins("zfft") + _bins("mfft")

#: The 126 features, in the reference's order.
FEATURE_COLUMNS = BASIC_COLUMNS + SAN_DIEGO_COLUMNS + MAD_COLUMNS + UNILEVER_COLUMNS + AXIS_FFT_COLUMNS

#: Per-window quality-control integers, with the reference's meaning (spec §3.5-3.8).
QC_COLUMNS = ["samples", "dataErrors", "clipsBeforeCalibr", "clipsAfterCalibr", "rawSamples"]

#: Column order of the reference epoch CSV (spec §7.1): time, features #1-14, QC, features #15-126.
REFERENCE_EPOCH_COLUMNS = ["time"] + BASIC_COLUMNS + QC_COLUMNS + FEATURE_COLUMNS[14:]

#: Column order of `extract_features`' table: time, the 126 features, then the QC columns.
OUTPUT_COLUMNS = ["time"] + FEATURE_COLUMNS + QC_COLUMNS


def _reference_format(name: str) -> tuple[int, str]:
    position = FEATURE_COLUMNS.index(name) + 1
    if position <= 13 or 56 <= position <= 59:
        return 6, "CEILING"
    if position == 14:
        return 2, "CEILING"
    if position <= 55:
        return 8, "HALF_UP"
    return 3, "HALF_UP"


#: ``{feature: (decimals, rounding mode)}`` of the reference CSV (spec §7.2).
REFERENCE_FORMAT = {name: _reference_format(name) for name in FEATURE_COLUMNS}

assert len(FEATURE_COLUMNS) == 126 and len(set(FEATURE_COLUMNS)) == 126
