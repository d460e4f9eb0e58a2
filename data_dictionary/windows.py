"""Window labels: the per-sample CAPTURE-24 annotations summarised per feature window.

Rules (capture24 spec section 2, issue 7), all vectorised over samples:

* a sample belongs to the window whose start is the latest one at or before it, if it lies within
  ``window_length`` of that start (samples in gaps between windows belong to none);
* unannotated (NA) samples do not vote; a window whose fraction of NA samples exceeds ``max_unannotated`` is
  unlabelled (reason ``unannotated``);
* the annotated samples vote for their mapped class, all unmapped annotations together forming one "unmapped"
  bucket; the window gets the winning class only if it holds more than ``min_majority`` of the annotated samples
  and is not the unmapped bucket (a tie, possible only when ``min_majority`` < 0.5, is no majority). Otherwise the
  window is unlabelled with the reason ``mixed`` (no class won a majority, e.g. a window straddling two
  activities) or the reason of its most common annotation (``no_cpa_code``, ``code_not_mapped``, ...);
* whatever the class, every window keeps its most common annotation string and that string's CPA code, so that
  reports can show the composition of unlabelled windows.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from capture_pipeline.errors import InputError

from .annotations import parse_annotation
from .mapping import LABELLED, UNANNOTATED, _factorize, get_mapping

log = logging.getLogger(__name__)

#: Reason for windows without any sample.
NO_SAMPLES = "no_samples"
#: Reason for windows in which no class wins a majority of the annotated samples.
MIXED = "mixed"

#: Columns `window_labels` adds; training code must never use them as features.
LABEL_COLUMNS = (
    "n_samples",
    "annotation",
    "cpa_code",
    "annotation_fraction",
    "unannotated_fraction",
    "label",
    "label_fraction",
    "reason",
)


def _as_ns(values, what: str) -> np.ndarray:
    """int64 nanoseconds from int64 ns or naive datetime64 values (array, Series or DatetimeIndex)."""
    if isinstance(values, (pd.Series, pd.Index)) and isinstance(values.dtype, pd.DatetimeTZDtype):
        raise InputError(None, f"{what} are time-zone aware; give naive device-local times as the features do")
    arr = np.asarray(values)
    if np.issubdtype(arr.dtype, np.datetime64):
        return arr.astype("datetime64[ns]").view(np.int64)
    if np.issubdtype(arr.dtype, np.integer):
        return arr.astype(np.int64, copy=False)
    raise InputError(None, f"{what} must be int64 nanoseconds or datetime64 values, not {arr.dtype}")


def _first_per_group(group: np.ndarray, value: np.ndarray, count: np.ndarray, n_groups: int):
    """For each group: the value with the largest count (ties: the smallest value), that count, and the runner-up's.

    Groups absent from ``group`` get value -1 and counts 0.
    """
    order = np.lexsort((value, -count, group))
    g, v, c = group[order], value[order], count[order]
    first = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
    best_value = np.full(n_groups, -1, dtype=np.int64)
    best_count = np.zeros(n_groups, dtype=np.int64)
    second_count = np.zeros(n_groups, dtype=np.int64)
    best_value[g[first]] = v[first]
    best_count[g[first]] = c[first]
    nxt = first + 1
    has_second = nxt < g.size
    has_second[has_second] = g[nxt[has_second]] == g[first[has_second]]
    second_count[g[first[has_second]]] = c[nxt[has_second]]
    return best_value, best_count, second_count


def _run_starts(values: np.ndarray) -> np.ndarray:
    """Indices where a new run of equal values starts (missing values compare equal to each other)."""
    if values.size == 0:
        return np.zeros(0, np.int64)
    try:
        change = values[1:] != values[:-1]
    except TypeError:  # pandas.NA cannot be compared: make every missing marker None (slower, so only here)
        values = np.where(pd.isna(values), None, values)
        change = values[1:] != values[:-1]
    # NaN != NaN starts a run at every NaN sample: still correct (all map to "missing"), only slower.
    return np.flatnonzero(np.r_[True, change])


def _counts_per_window(win: np.ndarray, cat: np.ndarray, n_cat: int):
    """Sample counts of each (window, category) pair present, from run lengths (samples are time-ordered)."""
    key = win * n_cat + cat
    if key.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64)
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    lengths = np.diff(np.r_[starts, key.size])
    uniq, inverse = np.unique(key[starts], return_inverse=True)
    counts = np.bincount(inverse, weights=lengths).astype(np.int64)
    return uniq // n_cat, uniq % n_cat, counts


def window_labels(
    sample_times,
    annotations,
    window_starts,
    window_length="30s",
    mapping=None,
    min_majority: float = 0.5,
    max_unannotated: float = 0.5,
) -> pd.DataFrame:
    """Label each feature window from per-sample annotation strings.

    Parameters
    ----------
    sample_times : array-like of int64 ns or datetime64, shape (n,)
        Sample times, non-decreasing (``Recording.time``).
    annotations : array-like of str or None, shape (n,)
        Annotation string per sample, None/NaN/"" where unannotated (``Recording.extra['annotation']``).
    window_starts : array-like of int64 ns or datetime64, shape (w,)
        Window start times (the ``time`` column of a feature table), in any order but at least ``window_length``
        apart.
    window_length : str or pandas.Timedelta or int, default "30s"
        Window duration (an int is nanoseconds).
    mapping : None, str, os.PathLike or LabelMapping
        Annotation -> class mapping (see `get_mapping`); default the seed paper's CPA classes.
    min_majority : float, default 0.5
        The winning class must cover *more than* this fraction of the window's annotated samples ("simple
        majority"). Use e.g. 0.99 to keep only windows with a single activity.
    max_unannotated : float, default 0.5
        Windows with a larger fraction of unannotated samples are unlabelled. 1.0 keeps every window with at least
        one annotated sample (NA samples then simply do not vote).

    Returns
    -------
    pandas.DataFrame
        One row per window, in the order of ``window_starts``:

        * ``time`` (datetime64[ns]): the window start;
        * ``n_samples``: samples in the window;
        * ``annotation``: most common annotation string among its annotated samples (ties: the string seen first
          in the recording), missing if none;
        * ``cpa_code`` (nullable Int64): that annotation's CPA code, kept whatever the label;
        * ``annotation_fraction``: that string's share of the annotated samples;
        * ``unannotated_fraction``: share of samples without annotation;
        * ``label``: class name, missing where the window has none;
        * ``label_fraction``: the winning class's share of annotated samples (NaN without annotated samples);
        * ``reason``: ``"labelled"`` or why the window has no label.

    Raises
    ------
    InputError
        Inputs of different lengths, unsorted times, overlapping windows or bad thresholds.
    """
    mapping = get_mapping(mapping)
    t = _as_ns(sample_times, "sample times")
    starts = _as_ns(window_starts, "window starts")
    ann = np.asarray(annotations, dtype=object)
    length = int(window_length) if isinstance(window_length, (int, np.integer)) else pd.Timedelta(window_length).value
    if t.ndim != 1 or ann.shape != t.shape:
        raise InputError(None, f"{t.shape[0]} sample times but {ann.shape[0]} annotations; they must match")
    if length <= 0:
        raise InputError(None, f"window length must be positive, got {window_length!r}")
    if not (0.0 <= min_majority < 1.0):
        raise InputError(None, f"min_majority must be in [0, 1), got {min_majority}")
    if not (0.0 <= max_unannotated <= 1.0):
        raise InputError(None, f"max_unannotated must be in [0, 1], got {max_unannotated}")
    if t.size > 1 and np.any(np.diff(t) < 0):
        raise InputError(None, "sample times are not in order; sort the recording first")
    # Feature tables are normally in time order, but need not be: work on sorted starts, answer in the given order.
    order = np.argsort(starts, kind="stable")
    starts = starts[order]
    if starts.size > 1 and np.any(np.diff(starts) < length):
        raise InputError(None, "window starts must be at least the window length apart (windows overlap or repeat)")
    n_win = starts.size

    # Window of each sample (-1: before the first window or in a gap after a window's end).
    win = np.searchsorted(starts, t, side="right") - 1
    inside = win >= 0
    inside[inside] = t[inside] < starts[win[inside]] + length
    if not inside.all():  # copying 10 million object references is not free: only when needed
        win = win[inside]
        ann = ann[inside]

    # Each distinct string is parsed and classified once. Annotations come in long runs, so only the first value
    # of each run is hashed (hashing 10 million separate string objects takes seconds).
    run_start = _run_starts(ann)
    run_id, uniques = _factorize(ann[run_start])
    ann_id = np.repeat(run_id, np.diff(np.r_[run_start, ann.size]))
    n_ann = len(uniques)
    bad = [u for u in uniques if not isinstance(u, str)]
    if bad:
        raise InputError(None, f"annotations must be strings or missing, found {type(bad[0]).__name__} {bad[0]!r}")
    classified = [mapping.classify(u) for u in uniques]
    class_names = sorted({c for c, _ in classified if c is not None})
    class_index = {c: i for i, c in enumerate(class_names)}
    unmapped = len(class_names)  # the shared bucket of annotated but unmapped samples
    ann_class = np.array([class_index[c] if c is not None else unmapped for c, _ in classified], dtype=np.int64)
    ann_reason = np.array([r for _, r in classified] + [UNANNOTATED], dtype=object)
    codes = [parse_annotation(u).cpa_code for u in uniques]
    ann_code = np.array([-1 if c is None else c for c in codes] + [-1], dtype=np.int64)

    n_samples = np.bincount(win, minlength=n_win)
    annotated = ann_id >= 0
    n_annotated = np.bincount(win[annotated], minlength=n_win)

    # Most common annotation per window.
    w, a, c = _counts_per_window(win[annotated], ann_id[annotated], max(n_ann, 1))
    top_ann, top_ann_count, _ = _first_per_group(w, a, c, n_win)
    # Class vote per window (unmapped annotations pooled).
    w, k, c = _counts_per_window(win[annotated], ann_class[ann_id[annotated]], unmapped + 1)
    top_class, top_class_count, runner_up = _first_per_group(w, k, c, n_win)

    with np.errstate(invalid="ignore", divide="ignore"):
        unannotated_fraction = np.where(n_samples > 0, 1.0 - n_annotated / np.maximum(n_samples, 1), np.nan)
        annotation_fraction = np.where(n_annotated > 0, top_ann_count / np.maximum(n_annotated, 1), np.nan)
        label_fraction = np.where(n_annotated > 0, top_class_count / np.maximum(n_annotated, 1), np.nan)

    # Reasons, from the weakest condition to the strongest, each later rule overwriting the earlier.
    reason = np.full(n_win, LABELLED, dtype=object)
    won = (n_annotated > 0) & (label_fraction > min_majority) & (top_class_count > runner_up)
    reason[~won] = MIXED
    pooled_unmapped = won & (top_class == unmapped)
    reason[pooled_unmapped] = ann_reason[top_ann[pooled_unmapped]]
    # The pooled bucket can win although the top annotation is mapped (e.g. 45 % Sleep + 2 x 27.5 % unmapped).
    reason[pooled_unmapped & (reason == LABELLED)] = MIXED
    too_sparse = (n_samples > 0) & ((n_annotated == 0) | (unannotated_fraction > max_unannotated))
    reason[too_sparse] = UNANNOTATED
    reason[n_samples == 0] = NO_SAMPLES

    labelled = reason == LABELLED
    names = np.array(class_names + [None], dtype=object)
    label = np.full(n_win, None, dtype=object)
    label[labelled] = names[top_class[labelled]]

    has_ann = top_ann >= 0
    annotation = np.full(n_win, None, dtype=object)
    annotation[has_ann] = np.array(uniques + [None], dtype=object)[top_ann[has_ann]]
    cpa_code = pd.array(ann_code[top_ann], dtype="Int64")  # top_ann == -1 picks the trailing -1
    cpa_code[cpa_code < 0] = pd.NA
    table = pd.DataFrame(
        {
            "time": starts.view("datetime64[ns]"),
            "n_samples": n_samples.astype(np.int64),
            "annotation": annotation,
            "cpa_code": cpa_code,
            "annotation_fraction": annotation_fraction,
            "unannotated_fraction": unannotated_fraction,
            "label": label,
            "label_fraction": label_fraction,
            "reason": reason,
        }
    )
    # Spec (capture24.md section 7): log the windows per class and per reason for having none, on every run.
    counts = pd.Series(np.where(labelled, label, reason)).value_counts()
    log.info("window labels (%s): %s", mapping.name, ", ".join(f"{k} {v}" for k, v in counts.items()))
    if np.any(order != np.arange(n_win)):
        rank = np.empty_like(order)
        rank[order] = np.arange(n_win)
        table = table.iloc[rank].reset_index(drop=True)
    return table


def recording_window_labels(recording, window_starts, **kwargs) -> pd.DataFrame:
    """`window_labels` for a `capture_pipeline.Recording` whose ``extra['annotation']`` holds the annotations.

    Raises
    ------
    InputError
        The recording has no per-sample annotations, or `window_labels` rejects the inputs (the message then
        names the recording's file).
    """
    if "annotation" not in recording.extra:
        raise InputError(
            recording.meta.get("path"), "the recording has no 'annotation' column, so its windows cannot be labelled"
        )
    try:
        return window_labels(recording.time, recording.extra["annotation"], window_starts, **kwargs)
    except InputError as exc:
        if exc.path is None and recording.meta.get("path"):
            raise InputError(recording.meta["path"], exc.problem) from exc
        raise


def label_features(features: pd.DataFrame, recording, participant=None, **kwargs) -> pd.DataFrame:
    """A feature table with the window-label columns of its recording appended.

    Parameters
    ----------
    features : pandas.DataFrame
        One row per window with a ``time`` column of window starts (as the feature extractor writes it).
    recording : capture_pipeline.Recording
        The recording the features come from, with ``extra['annotation']``.
    participant : str, optional
        Inserted as a first ``participant`` column (as `training_dataset` expects).
    **kwargs
        Passed to `window_labels` (``mapping``, ``min_majority``, ``max_unannotated``, ``window_length``).

    Returns
    -------
    pandas.DataFrame
        A copy of ``features`` (same rows, same order, fresh index) plus the `LABEL_COLUMNS`.

    Raises
    ------
    InputError
        No ``time`` column, or the table already has a column of the same name as a label column.
    """
    path = recording.meta.get("path")
    if "time" not in features.columns:
        raise InputError(path, "the feature table has no 'time' column of window starts")
    clash = [c for c in (*LABEL_COLUMNS, "participant") if c in features.columns]
    if clash and not (clash == ["participant"] and participant is None):
        raise InputError(path, f"the feature table already has column(s) {clash}")
    labels = recording_window_labels(recording, features["time"], **kwargs)
    out = features.reset_index(drop=True).copy()
    for col in LABEL_COLUMNS:
        out[col] = labels[col]  # both have a fresh 0..n-1 index
    if participant is not None:
        out.insert(0, "participant", str(participant))
    return out
