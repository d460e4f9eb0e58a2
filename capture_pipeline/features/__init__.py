"""The 126 standard per-window features of Willetts et al. (2018), identical to biobankAccelerometerAnalysis v2.3.0.

Modules: `columns` (names and order), `epochs` (epoch writer and resampling), `filters` (Butterworth low-pass with
carried state), `kernels` (time-domain statistics), `spectral` (FFT features), `extract` (the public entry points),
`reference_csv` (the reference tool's epoch-file format).
"""

from .columns import FEATURE_COLUMNS, OUTPUT_COLUMNS, QC_COLUMNS, REFERENCE_EPOCH_COLUMNS
from .extract import FeatureExtractor, extract_features
from .reference_csv import to_reference_csv

__all__ = [
    "extract_features",
    "FeatureExtractor",
    "to_reference_csv",
    "FEATURE_COLUMNS",
    "QC_COLUMNS",
    "OUTPUT_COLUMNS",
    "REFERENCE_EPOCH_COLUMNS",
]
