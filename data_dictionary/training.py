"""Datasets for training and evaluation from a window table and a participant split, without label leakage.

The window table has one row per window: a participant column, feature columns and the label columns of
`window_labels` (``label``, ``cpa_code``, ``reason``, ...). `training_dataset` reads labels *only* from the rows of
labelled participants; every window of an unlabelled participant goes to the unlabelled pool without its label, and
test participants are left out entirely. Test labels are returned only by `evaluation_dataset`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import pandas as pd

from capture_pipeline.errors import InputError

from .splits import ROLES, Split
from .windows import LABEL_COLUMNS

log = logging.getLogger(__name__)

#: Columns never used as features by default, besides `LABEL_COLUMNS`.
ID_COLUMNS = ("participant", "time")
#: Per-window quality-control columns of the feature tables (features spec section 7; the non-wear flag of
#: `capture_pipeline.nonwear.apply_nonwear`): not features.
QC_COLUMNS = ("samples", "dataErrors", "clipsBeforeCalibr", "clipsAfterCalibr", "rawSamples", "nonwear")
#: What to do with the windows of labelled participants that have no class.
UNMAPPED_POLICIES = ("unlabelled", "drop")
#: What to do with windows whose features are NaN or infinite (non-wear windows have NaN features).
NONFINITE_POLICIES = ("drop", "error", "keep")


@dataclass(frozen=True)
class TrainingData:
    """What training code may see.

    Attributes
    ----------
    x_labelled : numpy.ndarray of float32, shape (n_l, d)
        Features of labelled windows (labelled participants only).
    y_labelled : numpy.ndarray of int64, shape (n_l,)
        Index into ``classes`` per labelled window.
    x_unlabelled : numpy.ndarray of float32, shape (n_u, d)
        Features of the unlabelled pool: all windows of unlabelled participants, plus (policy ``"unlabelled"``)
        the windows of labelled participants without a class in ``classes``.
    classes : tuple of str
        Class names; ``y_labelled`` indexes them.
    feature_columns : tuple of str
    participant_labelled, participant_unlabelled : numpy.ndarray of object
        Participant id per row (for grouped batching or cross-validation).
    missing_participants : tuple of str
        Labelled or unlabelled participants of the split that have no window in the table.
    n_nonfinite : int
        Windows of labelled and unlabelled participants with NaN or infinite features (dropped by default).
    """

    x_labelled: np.ndarray
    y_labelled: np.ndarray
    x_unlabelled: np.ndarray
    classes: tuple
    feature_columns: tuple
    participant_labelled: np.ndarray
    participant_unlabelled: np.ndarray
    missing_participants: tuple = ()
    n_nonfinite: int = 0


@dataclass(frozen=True)
class EvaluationData:
    """Test windows with their labels, for evaluation only.

    Attributes
    ----------
    x : numpy.ndarray of float32, shape (n, d)
    labels : numpy.ndarray of object
        Class name per window, None where the window has none.
    y : numpy.ndarray of int64
        Index into ``classes``; -1 where the window has no class or one outside ``classes``.
    classes : tuple of str
    participant : numpy.ndarray of object
    cpa_code : numpy.ndarray of object or None
        CPA code of each window's annotation (None where absent), when the table has a ``cpa_code`` column.
    n_nonfinite : int
        Test windows with NaN or infinite features (dropped by default).
    """

    x: np.ndarray
    labels: np.ndarray
    y: np.ndarray
    classes: tuple
    participant: np.ndarray
    cpa_code: Optional[np.ndarray] = None
    n_nonfinite: int = 0


def feature_columns_of(windows: pd.DataFrame, participant_column: str = "participant",
                       label_column: str = "label") -> tuple:
    """The feature columns of a window table: every column but the ids, the QC counts and the label columns.

    Raises
    ------
    InputError
        A remaining column is not numeric (pass ``feature_columns`` explicitly then).
    """
    skip = set(LABEL_COLUMNS) | set(ID_COLUMNS) | set(QC_COLUMNS) | {participant_column, label_column}
    cols = [c for c in windows.columns if c not in skip]
    bad = [c for c in cols if not pd.api.types.is_numeric_dtype(windows[c]) or pd.api.types.is_bool_dtype(windows[c])]
    if bad:
        raise InputError(None, f"window table columns {bad} are not numeric features; pass feature_columns")
    if not cols:
        raise InputError(None, "window table has no feature columns")
    return tuple(cols)


def _roles(windows: pd.DataFrame, split: Split, participant_column: str) -> np.ndarray:
    if participant_column not in windows.columns:
        raise InputError(None, f"window table has no {participant_column!r} column")
    role_of = split.role_of()
    pids = windows[participant_column].astype(str).to_numpy()
    roles = pd.Series(pids).map(role_of).to_numpy(dtype=object)
    unknown = sorted(set(pids[pd.isna(roles)]))
    if unknown:
        raise InputError(None, f"participants {unknown[:10]} of the window table are in no set of the split")
    return roles


def _features(windows: pd.DataFrame, feature_columns, participant_column: str, label_column: str) -> tuple:
    if feature_columns is None:
        return feature_columns_of(windows, participant_column, label_column)
    feature_columns = tuple(feature_columns)
    leaking = sorted(set(feature_columns) & (set(LABEL_COLUMNS) | {participant_column, label_column}))
    if leaking:
        raise ValueError(f"feature_columns include label or id columns {leaking}")
    missing = [c for c in feature_columns if c not in windows.columns]
    if missing:
        raise InputError(None, f"window table lacks feature columns {missing}")
    return feature_columns


def training_dataset(
    windows: pd.DataFrame,
    split: Split,
    feature_columns: Optional[Sequence[str]] = None,
    classes: Optional[Sequence[str]] = None,
    unmapped: str = "unlabelled",
    nonfinite: str = "drop",
    label_column: str = "label",
    participant_column: str = "participant",
) -> TrainingData:
    """Labelled and unlabelled training arrays; labels come from labelled participants only.

    Parameters
    ----------
    windows : pandas.DataFrame
        One row per window: ``participant_column``, feature columns and ``label_column`` (class name, missing
        where the window has none), e.g. a feature table joined with `window_labels` output.
    split : Split
        The participant split (`make_split` or `read_split`).
    feature_columns : sequence of str, optional
        Default: all columns but ``participant``, ``time``, the QC counts (`QC_COLUMNS`) and the `window_labels`
        columns (all must be numeric).
    classes : sequence of str, optional
        The classes whose labels training may see. Default: those occurring among labelled participants. Labelled
        windows of any other class are treated as unmapped (their label stays hidden), which is how classes are
        withheld for semi-unsupervised learning.
    unmapped : {"unlabelled", "drop"}, default "unlabelled"
        Windows of labelled participants without a (visible) class join the unlabelled pool or are dropped.
    nonfinite : {"drop", "error", "keep"}, default "drop"
        Windows with NaN or infinite features (e.g. non-wear) are left out (and counted in ``n_nonfinite``),
        raise an error, or are kept.
    label_column, participant_column : str

    Returns
    -------
    TrainingData

    Raises
    ------
    InputError
        Missing columns, or participants of the table that the split does not know.
    """
    if unmapped not in UNMAPPED_POLICIES:
        raise ValueError(f"unmapped must be one of {UNMAPPED_POLICIES}, not {unmapped!r}")
    cols = _features(windows, feature_columns, participant_column, label_column)
    roles = _roles(windows, split, participant_column)
    is_l = roles == "labelled"
    is_u = roles == "unlabelled"
    if label_column not in windows.columns:
        raise InputError(None, f"window table has no {label_column!r} column")

    # Features of the labelled and unlabelled participants only (test rows are never even converted).
    candidates = np.flatnonzero(is_l | is_u)
    x_c, finite_c, n_nonfinite = _feature_matrix(windows, candidates, cols, nonfinite, "training")
    position = np.full(len(windows), -1, dtype=np.int64)
    position[candidates] = np.arange(candidates.size)
    usable = np.zeros(len(windows), dtype=bool)
    usable[candidates] = finite_c

    # The only read of labels: restricted to the rows of labelled participants.
    rows_l_all = np.flatnonzero(is_l)
    labels_l = windows[label_column].iloc[rows_l_all].to_numpy(dtype=object)
    has = ~pd.isna(labels_l)
    if classes is None:
        classes = tuple(sorted(set(labels_l[has & usable[rows_l_all]])))
    else:
        classes = tuple(classes)
        if len(set(classes)) != len(classes):
            raise ValueError(f"classes listed twice in {classes}")
        # pandas' isin: labels may hold pd.NA, which numpy's elementwise == cannot turn into a bool
        has &= pd.Series(labels_l, dtype=object).isin(classes).to_numpy()
    index = {c: i for i, c in enumerate(classes)}

    keep_l = has & usable[rows_l_all]
    rows_l = rows_l_all[keep_l]
    pool = [np.flatnonzero(is_u & usable)]
    if unmapped == "unlabelled":
        pool.append(rows_l_all[~has & usable[rows_l_all]])
    rows_u = np.sort(np.concatenate(pool))

    pid = windows[participant_column].astype(str).to_numpy(dtype=object)
    present = set(pid)
    missing = tuple(p for r in ("labelled", "unlabelled") for p in getattr(split, r) if p not in present)
    return TrainingData(
        x_labelled=x_c[position[rows_l]],
        y_labelled=np.array([index[c] for c in labels_l[keep_l]], dtype=np.int64),
        x_unlabelled=x_c[position[rows_u]],
        classes=classes,
        feature_columns=cols,
        participant_labelled=pid[rows_l],
        participant_unlabelled=pid[rows_u],
        missing_participants=missing,
        n_nonfinite=n_nonfinite,
    )


def _feature_matrix(windows, rows, cols, nonfinite: str, what: str):
    """float32 features of ``rows``, the rows to use under the ``nonfinite`` policy, and the non-finite count."""
    if nonfinite not in NONFINITE_POLICIES:
        raise ValueError(f"nonfinite must be one of {NONFINITE_POLICIES}, not {nonfinite!r}")
    col_index = [windows.columns.get_loc(c) for c in cols]
    x = windows.iloc[rows, col_index].to_numpy(dtype=np.float32)
    finite = np.isfinite(x).all(axis=1)
    n_bad = int((~finite).sum())
    if n_bad and nonfinite == "error":
        raise InputError(None, f"{n_bad} {what} windows have NaN or infinite features (e.g. non-wear)")
    if n_bad:
        log.info("%s: %d of %d windows have NaN or infinite features: %s", what, n_bad, len(rows),
                 "left out" if nonfinite == "drop" else "kept")
    return x, (finite if nonfinite == "drop" else np.ones_like(finite)), n_bad


def evaluation_dataset(
    windows: pd.DataFrame,
    split: Split,
    classes: Sequence[str],
    feature_columns: Optional[Sequence[str]] = None,
    nonfinite: str = "drop",
    label_column: str = "label",
    participant_column: str = "participant",
) -> EvaluationData:
    """The windows of the test participants, with their labels, for evaluation.

    Parameters
    ----------
    windows, split, feature_columns, nonfinite, label_column, participant_column
        As for `training_dataset`.
    classes : sequence of str
        The class order of the trained model (``TrainingData.classes``).
    """
    cols = _features(windows, feature_columns, participant_column, label_column)
    roles = _roles(windows, split, participant_column)
    rows = np.flatnonzero(roles == "test")
    x, use, n_nonfinite = _feature_matrix(windows, rows, cols, nonfinite, "test")
    test = windows.iloc[rows[use]]
    labels = test[label_column].to_numpy(dtype=object)
    labels = np.where(pd.isna(labels), None, labels)
    index = {c: i for i, c in enumerate(classes)}
    y = np.array([index.get(c, -1) if c is not None else -1 for c in labels], dtype=np.int64)
    code = None
    if "cpa_code" in test.columns:
        code = test["cpa_code"].astype(object).to_numpy()
        code = np.where(pd.isna(code), None, code)
    return EvaluationData(
        x=x[use],
        labels=labels,
        y=y,
        classes=tuple(classes),
        participant=test[participant_column].astype(str).to_numpy(dtype=object),
        cpa_code=code,
        n_nonfinite=n_nonfinite,
    )


def class_balance(
    windows: pd.DataFrame,
    split: Split,
    label_column: str = "label",
    participant_column: str = "participant",
    reason_column: str = "reason",
) -> pd.DataFrame:
    """Windows and participants per class in each set of the split.

    Parameters
    ----------
    windows : pandas.DataFrame
        One row per window with ``participant_column`` and ``label_column`` (and optionally ``reason_column``).
    split : Split

    Returns
    -------
    pandas.DataFrame
        One row per class, then one row per reason for windows without a class (``"(no class: <reason>)"``, or a
        single ``"(no class)"`` row without a reason column) and a ``"(total)"`` row. Columns
        ``<set>_windows`` and ``<set>_participants`` for each set (labelled, unlabelled, test, and unused when the
        table has unused participants); participants counts those with at least one such window.
    """
    roles = _roles(windows, split, participant_column)
    labels = windows[label_column].to_numpy(dtype=object)
    missing = pd.isna(labels)
    if reason_column in windows.columns:
        why = windows[reason_column].astype(str).to_numpy(dtype=object)
        row = np.where(missing, "(no class: " + why + ")", labels)
    else:
        row = np.where(missing, "(no class)", labels)
    frame = pd.DataFrame({"row": row.astype(str), "role": roles, "pid": windows[participant_column].astype(str)})
    used_roles = list(ROLES) + (["unused"] if (roles == "unused").any() else [])
    windows_n = frame.groupby(["row", "role"]).size().unstack("role")
    people_n = frame.groupby(["row", "role"])["pid"].nunique().unstack("role")
    totals_w = frame.groupby("role").size()
    totals_p = frame.groupby("role")["pid"].nunique()
    out = pd.DataFrame(index=windows_n.index)
    for role in used_roles:
        out[f"{role}_windows"] = windows_n.get(role, pd.Series(dtype=float))
        out[f"{role}_participants"] = people_n.get(role, pd.Series(dtype=float))
    out = out.fillna(0).astype(np.int64)
    classes = sorted(r for r in out.index if not r.startswith("(no class"))
    order = classes + sorted(r for r in out.index if r.startswith("(no class"))
    out = out.loc[order]
    total = {}
    for role in used_roles:
        total[f"{role}_windows"] = int(totals_w.get(role, 0))
        total[f"{role}_participants"] = int(totals_p.get(role, 0))
    out.loc["(total)"] = pd.Series(total)
    out.index.name = "class"
    return out
