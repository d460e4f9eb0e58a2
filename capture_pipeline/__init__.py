"""capture_pipeline: raw wrist accelerometer files to features (no torch in this package)."""

__version__ = "0.1.0"

from .errors import CapturePipelineError, InputError, UnknownFormatError  # noqa: E402
from .recording import Recording  # noqa: E402
from .readers import read, detect_format  # noqa: E402
from .features import FeatureExtractor, extract_features  # noqa: E402

__all__ = [
    "__version__",
    "CapturePipelineError",
    "InputError",
    "UnknownFormatError",
    "Recording",
    "read",
    "detect_format",
    "extract_features",
    "FeatureExtractor",
]
