"""The 126 standard per-window features of Willetts et al. (2018), identical to biobankAccelerometerAnalysis v2.3.0.

Modules: `columns` (names and order), `epochs` (epoch writer and resampling), `filters` (Butterworth low-pass with
carried state), `kernels` (time-domain statistics), `spectral` (FFT features), `extract` (the public entry points).
"""

from .columns import FEATURE_COLUMNS, OUTPUT_COLUMNS, QC_COLUMNS, REFERENCE_EPOCH_COLUMNS
from .extract import FeatureExtractor, extract_features

__all__ = [
    "extract_features",
    "FeatureExtractor",
    "FEATURE_COLUMNS",
    "QC_COLUMNS",
    "OUTPUT_COLUMNS",
    "REFERENCE_EPOCH_COLUMNS",
]
