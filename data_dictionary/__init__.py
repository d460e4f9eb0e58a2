"""CPA codes to activity classes, annotation parsing, window labels and participant splits.

The mappings are data files shipped in this package (see ``sources.json`` for their origin; the CAPTURE-24
dictionaries are CC BY 4.0, Chan et al. 2024, Sci Data 11:1135). Nothing here imports torch.
"""

from .annotations import ParsedAnnotation, parse_annotation
from .mapping import (
    CODE_NOT_MAPPED,
    EXCLUDED,
    LABELLED,
    NO_CPA_CODE,
    NOT_IN_SCHEME,
    PAPER,
    SCHEMES,
    UNANNOTATED,
    LabelMapping,
    capture24_dictionary,
    cpa_class,
    default_mapping,
    get_mapping,
    load_cpa_mapping,
    load_label_scheme,
)
from .splits import (
    PAPER_COUNTS,
    PRESETS,
    ROLES,
    Split,
    benchmark_split,
    make_split,
    participants_from,
    read_split,
    write_split,
)
from .training import EvaluationData, TrainingData, class_balance, evaluation_dataset, training_dataset
from .windows import LABEL_COLUMNS, MIXED, NO_SAMPLES, label_features, recording_window_labels, window_labels

__all__ = [
    "ParsedAnnotation",
    "parse_annotation",
    "LabelMapping",
    "cpa_class",
    "default_mapping",
    "get_mapping",
    "load_cpa_mapping",
    "load_label_scheme",
    "capture24_dictionary",
    "PAPER",
    "SCHEMES",
    "LABELLED",
    "UNANNOTATED",
    "NO_CPA_CODE",
    "CODE_NOT_MAPPED",
    "NOT_IN_SCHEME",
    "EXCLUDED",
    "MIXED",
    "NO_SAMPLES",
    "LABEL_COLUMNS",
    "window_labels",
    "recording_window_labels",
    "label_features",
    "ROLES",
    "PAPER_COUNTS",
    "PRESETS",
    "Split",
    "make_split",
    "benchmark_split",
    "participants_from",
    "read_split",
    "write_split",
    "TrainingData",
    "EvaluationData",
    "training_dataset",
    "evaluation_dataset",
    "class_balance",
]
