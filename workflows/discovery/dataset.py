"""Window tables for activity discovery: feature Parquet files joined with window labels.

Where the window labels come from
---------------------------------
Feature tables carry no labels (a CAPTURE-24 CSV's annotation column is per sample and is not a feature), so the
labels are computed from the annotations with `data_dictionary.window_labels` (majority of the samples' mapped
classes in each 30-s window). For participant ``PID`` (the feature file ``PID.features.parquet``) the annotations
directory is searched, in this order, for

1. ``PID.labels.parquet``: a window-label table (``time`` + the `data_dictionary.LABEL_COLUMNS`), e.g. from an
   earlier run (``train`` caches every table it computes in ``RUN/labels/``, which it searches first);
2. ``PID.annotations.csv``: bouts ``start,end,annotation`` (what goes beside a ``.cwa`` file; the simulator writes
   it); each window is then labelled from one pseudo-sample per second;
3. ``PID.csv.gz`` or ``PID.csv``: the raw CAPTURE-24 file, read with `capture_pipeline.read`; its ``annotation``
   column is labelled sample by sample.

A participant with none of these has every window unlabelled (reason ``no_annotations``); that is normal for the
unlabelled participants of a cohort.

Exclusions
----------
Windows flagged as non-wear (the ``nonwear`` column of the feature table, else computed with
`capture_pipeline.nonwear.detect_nonwear`) and windows with any NaN or infinite feature are excluded before anything
else and counted (`ExclusionCounts`).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional, Sequence

import numpy as np
import pandas as pd

from capture_pipeline.errors import InputError
from capture_pipeline.features.columns import FEATURE_COLUMNS, QC_COLUMNS
from data_dictionary.windows import LABEL_COLUMNS

log = logging.getLogger(__name__)

FEATURES_SUFFIX = ".features.parquet"
LABELS_SUFFIX = ".labels.parquet"
BOUTS_SUFFIX = ".annotations.csv"
RAW_SUFFIXES = (".csv.gz", ".csv")
#: Reason given to windows of a participant without any annotation source.
NO_ANNOTATIONS = "no_annotations"


def participant_of(path) -> str:
    """Participant id of a feature file: its name without ``.features.parquet`` (or without any extension)."""
    name = os.path.basename(os.fspath(path))
    if name.endswith(FEATURES_SUFFIX):
        return name[: -len(FEATURES_SUFFIX)]
    return name.split(".", 1)[0]


def find_feature_files(inputs: Iterable) -> dict:
    """Feature files by participant id, from files and/or directories (``*.features.parquet`` inside).

    Raises
    ------
    InputError
        A path that does not exist, a directory without feature files, or two files for one participant.
    """
    found: dict = {}
    for item in inputs:
        item = Path(item)
        if item.is_dir():
            files = sorted(item.glob("*" + FEATURES_SUFFIX))
            if not files:
                raise InputError(item, f"no *{FEATURES_SUFFIX} files in this directory")
        elif item.is_file():
            files = [item]
        else:
            raise InputError(item, "no such file or directory")
        for f in files:
            pid = participant_of(f)
            if pid in found and found[pid] != f:
                raise InputError(f, f"participant {pid} also has the feature file {found[pid]}")
            found[pid] = f
    return found


def read_features(path) -> pd.DataFrame:
    """Read one feature table and check that it has ``time`` and the 126 feature columns.

    Returns
    -------
    pandas.DataFrame
        ``time`` (datetime64[ns]), the feature columns, and ``nonwear`` (bool): the file's own flag when present,
        else computed from the window SDs with `capture_pipeline.nonwear.detect_nonwear`.
    """
    from capture_pipeline.nonwear import detect_nonwear

    try:
        table = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several types for damaged or foreign files
        raise InputError(path, f"not a readable Parquet feature table ({exc})") from exc
    if "time" not in table.columns:
        raise InputError(path, "feature table has no 'time' column")
    missing = [c for c in FEATURE_COLUMNS if c not in table.columns]
    if missing:
        raise InputError(path, f"feature table lacks {len(missing)} feature column(s), e.g. {missing[:3]}")
    table = table.reset_index(drop=True)
    table["time"] = pd.to_datetime(table["time"])
    if "nonwear" in table.columns:
        table["nonwear"] = table["nonwear"].fillna(False).astype(bool)
    else:
        # detect_nonwear needs finite SDs; NaN SDs simply break stationary runs (and are excluded anyway).
        table["nonwear"] = np.asarray(detect_nonwear(table), dtype=bool)
    keep = ["time", *FEATURE_COLUMNS, *[c for c in QC_COLUMNS if c in table.columns], "nonwear"]
    return table[keep]


def _bout_labels(path: Path, times: pd.Series, mapping, **label_options) -> pd.DataFrame:
    """Window labels from a ``start,end,annotation`` bout file, with one pseudo-sample per second of each window."""
    from data_dictionary.windows import window_labels

    try:
        bouts = pd.read_csv(path, dtype={"annotation": "string"}, keep_default_na=False)
    except Exception as exc:
        raise InputError(path, f"not a readable annotations CSV ({exc})") from exc
    if not {"start", "end", "annotation"} <= set(bouts.columns):
        raise InputError(path, f"annotations CSV needs columns start,end,annotation; it has {list(bouts.columns)}")
    try:
        start = pd.to_datetime(bouts["start"]).to_numpy("datetime64[ns]").view(np.int64)
        end = pd.to_datetime(bouts["end"]).to_numpy("datetime64[ns]").view(np.int64)
    except (ValueError, TypeError) as exc:
        raise InputError(path, f"unreadable start/end times ({exc})") from exc
    order = np.argsort(start, kind="stable")
    start, end = start[order], end[order]
    text = bouts["annotation"].to_numpy(dtype=object)[order]
    win = times.to_numpy("datetime64[ns]").view(np.int64)
    length = pd.Timedelta(label_options.get("window_length", "30s")).value
    per_window = max(1, int(length // 1_000_000_000))
    samples = (win[:, None] + np.arange(per_window, dtype=np.int64)[None, :] * (length // per_window)).ravel()
    samples.sort()
    k = np.searchsorted(start, samples, side="right") - 1
    inside = (k >= 0) & (samples < end[np.maximum(k, 0)])
    ann = np.where(inside, text[np.maximum(k, 0)], None)
    ann = np.where(ann == "", None, ann)
    return window_labels(samples, ann, win, mapping=mapping, **label_options)


def _raw_labels(path: Path, times: pd.Series, mapping, **label_options) -> pd.DataFrame:
    import capture_pipeline
    from data_dictionary.windows import recording_window_labels

    rec = capture_pipeline.read(path)
    return recording_window_labels(rec, times, mapping=mapping, **label_options)


def annotation_source(pid: str, annotations_dirs: Sequence, tag: Optional[str] = None) -> Optional[Path]:
    """The first annotation file for ``pid`` in the directories (labels table, bout CSV, raw CSV), or None.

    A label table made with other settings than ``tag`` (mapping and labelling options) is skipped.
    """
    for d in annotations_dirs:
        d = Path(d)
        for suffix in (LABELS_SUFFIX, BOUTS_SUFFIX, *RAW_SUFFIXES):
            candidate = d / f"{pid}{suffix}"
            if not candidate.is_file():
                continue
            if suffix == LABELS_SUFFIX and tag is not None:
                made_with = _parquet_mapping(candidate)
                if made_with is not None and made_with != tag:
                    log.info("%s: made with %s, not %s; not used", candidate, made_with, tag)
                    continue
            return candidate
    return None


def _unlabelled_table(times: pd.Series) -> pd.DataFrame:
    n = len(times)
    return pd.DataFrame({
        "time": times.to_numpy(), "n_samples": np.zeros(n, np.int64), "annotation": pd.array([None] * n, "string"),
        "cpa_code": pd.array([None] * n, "Int64"), "annotation_fraction": np.full(n, np.nan),
        "unannotated_fraction": np.full(n, np.nan), "label": pd.array([None] * n, "string"),
        "label_fraction": np.full(n, np.nan), "reason": NO_ANNOTATIONS,
    })


def labels_for(pid: str, times: pd.Series, annotations_dirs: Sequence, mapping=None, cache_dir=None,
               **label_options) -> tuple:
    """Window labels of one participant's feature windows.

    Parameters
    ----------
    pid : str
    times : pandas.Series of datetime64
        Window starts of the feature table.
    annotations_dirs : sequence of path
        Searched in order (see the module docstring); ``cache_dir`` is searched first.
    mapping : data_dictionary.LabelMapping, optional
        Default: the seed paper's CPA classes. Cached label tables are only reused when they were made with the
        same mapping and labelling options.
    cache_dir : path, optional
        Write a freshly computed table there as ``PID.labels.parquet`` (``train`` uses ``RUN/labels``; the data
        folders are never written to).
    **label_options
        Passed to `data_dictionary.window_labels` (``min_majority``, ``max_unannotated``, ...).

    Returns
    -------
    (pandas.DataFrame, str)
        The `LABEL_COLUMNS` in the order of ``times``, and the source used (a path or ``"none"``).
    """
    from data_dictionary.mapping import get_mapping

    mapping = get_mapping(mapping)
    tag = _cache_tag(mapping, label_options)
    dirs = ([cache_dir] if cache_dir is not None else []) + list(annotations_dirs)
    source = annotation_source(pid, dirs, tag)
    if source is None:
        return _unlabelled_table(times)[list(LABEL_COLUMNS)], "none"
    if source.name.endswith(LABELS_SUFFIX):
        table = pd.read_parquet(source)
        joined = pd.DataFrame({"time": pd.to_datetime(times).to_numpy()}).merge(
            table, on="time", how="left", validate="one_to_one")
        missing = joined["reason"].isna()
        if missing.any():
            raise InputError(source, f"{int(missing.sum())} feature windows of {pid} have no row in the label table "
                             "(made from other features?); delete it to recompute")
        return joined[list(LABEL_COLUMNS)], str(source)
    if source.name.endswith(BOUTS_SUFFIX):
        table = _bout_labels(source, times, mapping, **label_options)
    else:
        table = _raw_labels(source, times, mapping, **label_options)
    if cache_dir is not None:
        _write_labels_cache(Path(cache_dir) / f"{pid}{LABELS_SUFFIX}", table, tag)
    return table[list(LABEL_COLUMNS)], str(source)


def _cache_tag(mapping, label_options: dict) -> str:
    """What a cached label table depends on: the mapping's name and the labelling options."""
    return mapping.name + "|" + ",".join(f"{k}={label_options[k]}" for k in sorted(label_options))


def _parquet_mapping(path) -> Optional[str]:
    import pyarrow.parquet as pq

    meta = pq.read_schema(path).metadata or {}
    value = meta.get(b"capture_pipeline.mapping")
    return None if value is None else value.decode()


def _write_labels_cache(path: Path, table: pd.DataFrame, tag: str) -> None:
    import pyarrow as pa

    from capture_pipeline.parquet_io import write_table_atomic

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        arrow = pa.Table.from_pandas(table.reset_index(drop=True), preserve_index=False)
        arrow = arrow.replace_schema_metadata({**(arrow.schema.metadata or {}),
                                               b"capture_pipeline.mapping": tag.encode()})
        write_table_atomic(arrow, path)
    except OSError as exc:  # a read-only annotations directory: caching is only an optimisation
        log.info("could not cache window labels at %s (%s)", path, exc)


@dataclass
class ExclusionCounts:
    """Windows per participant role: all, excluded as non-wear, excluded for non-finite features, kept."""

    rows: dict = field(default_factory=dict)

    def add(self, role: str, total: int, nonwear: int, nonfinite: int) -> None:
        r = self.rows.setdefault(role, {"windows": 0, "nonwear": 0, "nonfinite": 0, "kept": 0})
        r["windows"] += int(total)
        r["nonwear"] += int(nonwear)
        r["nonfinite"] += int(nonfinite)
        r["kept"] += int(total - nonwear - nonfinite)

    def to_dict(self) -> dict:
        return {k: dict(v) for k, v in self.rows.items()}


def load_windows(feature_files: dict, annotations_dirs: Sequence, mapping=None, participants=None,
                 cache_dir=None, progress=None, **label_options) -> pd.DataFrame:
    """One table of all windows: participant, time, features, ``nonwear``, ``valid`` and the label columns.

    Parameters
    ----------
    feature_files : dict
        Participant id -> feature Parquet path (`find_feature_files`).
    annotations_dirs : sequence of path
        Where to look for annotations (may be empty: no labels at all).
    mapping : LabelMapping or name, optional
    participants : collection of str, optional
        Only these participants (e.g. those of a split).
    cache_dir : path, optional
        Cache computed window labels there (see `labels_for`).
    progress : callable, optional
        Called with a message per participant.

    Returns
    -------
    pandas.DataFrame
        ``valid`` is False for non-wear windows and windows with a non-finite feature; such windows are kept in
        the table (so that reports can count them) but never used for training or evaluation.
    """
    frames = []
    for pid in sorted(feature_files):
        if participants is not None and pid not in participants:
            continue
        path = feature_files[pid]
        feats = read_features(path)
        labels, source = labels_for(pid, feats["time"], annotations_dirs, mapping, cache_dir, **label_options)
        table = pd.concat([feats.reset_index(drop=True), labels.reset_index(drop=True)], axis=1)
        table.insert(0, "participant", pid)
        finite = np.isfinite(table[FEATURE_COLUMNS].to_numpy(dtype=np.float64)).all(axis=1)
        table["valid"] = finite & ~table["nonwear"].to_numpy()
        frames.append(table)
        if progress is not None:
            n_lab = int(table["label"].notna().sum())
            progress(f"{pid}: {len(table)} windows, {n_lab} with a class (labels from {source})")
    if not frames:
        raise InputError(None, "no feature files for the participants asked for")
    out = pd.concat(frames, ignore_index=True)
    out["label"] = out["label"].astype("string")
    return out


def count_exclusions(windows: pd.DataFrame, role_of: dict) -> ExclusionCounts:
    """`ExclusionCounts` per role (labelled / unlabelled / test / unused) of a `load_windows` table."""
    counts = ExclusionCounts()
    roles = windows["participant"].map(role_of).fillna("unused")
    finite = np.isfinite(windows[FEATURE_COLUMNS].to_numpy(dtype=np.float64)).all(axis=1)
    for role, idx in windows.groupby(roles).groups.items():
        nw = windows.loc[idx, "nonwear"].to_numpy()
        fin = finite[windows.index.get_indexer(idx)]
        counts.add(role, len(idx), int(nw.sum()), int((~nw & ~fin).sum()))
    return counts


@dataclass
class Standardiser:
    """z-scores with training statistics; constant (or near-constant) training columns are dropped.

    Attributes
    ----------
    columns : list of str
        Feature columns kept, in model input order.
    mean, std : numpy.ndarray
        Training mean and population std of each kept column.
    dropped : list of str
        Columns dropped because their training std was below ``min_std`` (e.g. ``temp``, 0 for CSV input).
    clip : float or None
        Standardised values are clipped to ±clip (heavy-tailed spectral features otherwise dominate the Gaussian
        likelihood); None disables.
    """

    columns: list
    mean: np.ndarray
    std: np.ndarray
    dropped: list
    clip: Optional[float] = 10.0

    @classmethod
    def fit(cls, x: np.ndarray, columns: Sequence[str], min_std: float = 1e-8, clip: Optional[float] = 10.0):
        """Fit on training rows ``x`` (n, len(columns)) only."""
        x = np.asarray(x, dtype=np.float64)
        if x.shape[0] < 2:
            raise InputError(None, f"only {x.shape[0]} training windows: cannot standardise")
        mean, std = x.mean(0), x.std(0)
        keep = std > min_std
        return cls([c for c, k in zip(columns, keep) if k], mean[keep], std[keep],
                   [c for c, k in zip(columns, keep) if not k], clip)

    def transform(self, table: pd.DataFrame) -> np.ndarray:
        """float32 model inputs from a table holding the feature columns."""
        x = (table[self.columns].to_numpy(dtype=np.float64) - self.mean) / self.std
        if self.clip is not None:
            np.clip(x, -self.clip, self.clip, out=x)
        return x.astype(np.float32)

    def to_dict(self) -> dict:
        return {"columns": list(self.columns), "mean": self.mean.tolist(), "std": self.std.tolist(),
                "dropped": list(self.dropped), "clip": self.clip}

    @classmethod
    def from_dict(cls, d: dict) -> "Standardiser":
        return cls(list(d["columns"]), np.asarray(d["mean"], float), np.asarray(d["std"], float),
                   list(d["dropped"]), d.get("clip"))
