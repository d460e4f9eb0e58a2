"""Evaluation of cluster outputs against true classes, on plain numpy arrays (spec ``model.md`` §8).

Two ways to turn model outputs (clusters) into class predictions:

* **many-to-one** ("cluster and label", the paper's metric): each output is mapped to the most common true class
  among the examples it receives; several outputs may map to the same class;
* **Hungarian** (one-to-one): outputs and classes are matched by a maximum-weight assignment; outputs left
  unmatched (when there are more outputs than classes) count as errors.

A mapping can be fitted on one set (e.g. labelled validation data) and applied to another (the test set), or fitted
on the evaluated set itself (the paper's transductive variant).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

UNMAPPED = -1  # class assigned to an output that the mapping could not place (always counted as an error)


def _as_labels(a, name: str) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {a.shape}")
    if a.size and (not np.issubdtype(a.dtype, np.integer) or a.min() < 0):
        raise ValueError(f"{name} must hold non-negative integer labels")
    return a.astype(np.int64)


def contingency(clusters, classes, n_clusters: int | None = None, n_classes: int | None = None) -> np.ndarray:
    """Counts ``C[k, c]`` of examples in output (cluster) k with true class c."""
    k = _as_labels(clusters, "clusters")
    c = _as_labels(classes, "classes")
    if k.shape != c.shape:
        raise ValueError(f"clusters and classes differ in length ({k.size} vs {c.size})")
    n_k = max(int(k.max(initial=-1)) + 1, n_clusters or 0)
    n_c = max(int(c.max(initial=-1)) + 1, n_classes or 0)
    table = np.zeros((n_k, n_c), dtype=np.int64)
    np.add.at(table, (k, c), 1)
    return table


def many_to_one_mapping(clusters, classes, n_clusters: int | None = None) -> np.ndarray:
    """Map each output to the most common true class of its examples (ties: the smallest class index).

    Returns
    -------
    numpy.ndarray
        ``mapping[k]`` = class of output k, or -1 for outputs that received no example.
    """
    table = contingency(clusters, classes, n_clusters)
    mapping = table.argmax(1)
    mapping[table.sum(1) == 0] = UNMAPPED
    return mapping


def hungarian_mapping(clusters, classes, n_clusters: int | None = None) -> np.ndarray:
    """One-to-one output→class mapping maximising the number of matched examples; unmatched outputs get -1."""
    table = contingency(clusters, classes, n_clusters)
    rows, cols = linear_sum_assignment(table, maximize=True)
    mapping = np.full(table.shape[0], UNMAPPED, dtype=np.int64)
    mapping[rows] = cols
    return mapping


def apply_mapping(clusters, mapping) -> np.ndarray:
    """Class predictions from outputs; outputs beyond the mapping's range map to -1."""
    k = _as_labels(clusters, "clusters")
    mapping = np.asarray(mapping, dtype=np.int64)
    out = np.full(k.shape, UNMAPPED, dtype=np.int64)
    inside = k < mapping.size
    out[inside] = mapping[k[inside]]
    return out


def cluster_and_label_accuracy(clusters, classes, mapping=None) -> float:
    """Many-to-one accuracy; with ``mapping=None`` it is fitted on these same examples (transductive)."""
    classes = _as_labels(classes, "classes")
    if mapping is None:
        mapping = many_to_one_mapping(clusters, classes)
    return float(np.mean(apply_mapping(clusters, mapping) == classes)) if classes.size else float("nan")


def hungarian_accuracy(clusters, classes, mapping=None) -> float:
    """One-to-one accuracy; with ``mapping=None`` the assignment is fitted on these same examples."""
    classes = _as_labels(classes, "classes")
    if mapping is None:
        mapping = hungarian_mapping(clusters, classes)
    return float(np.mean(apply_mapping(clusters, mapping) == classes)) if classes.size else float("nan")


def confusion_matrix(true, predicted, n_true: int | None = None, n_predicted: int | None = None) -> np.ndarray:
    """``M[i, j]`` = number of examples of true class i predicted as j (j may be an output index or a class)."""
    return contingency(predicted, true, n_predicted, n_true).T


def per_class_accuracy(true, predicted, n_classes: int | None = None) -> np.ndarray:
    """Recall of each true class (NaN for classes absent from ``true``)."""
    true = _as_labels(true, "true")
    predicted = np.asarray(predicted)
    n = max(int(true.max(initial=-1)) + 1, n_classes or 0)
    counts = np.bincount(true, minlength=n).astype(float)
    hits = np.bincount(true[predicted == true], minlength=n).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, hits / counts, np.nan)


def calinski_harabasz(X, labels) -> float:
    """Calinski–Harabasz index of a clustering of the rows of X (input space, or q(z|x) means).

    Returns NaN when fewer than two clusters, or as many clusters as rows, are present (the index is undefined).
    """
    from sklearn.metrics import calinski_harabasz_score

    X = np.asarray(X, dtype=np.float64)
    labels = np.asarray(labels)
    n_labels = np.unique(labels).size
    if X.ndim != 2 or X.shape[0] != labels.size:
        raise ValueError("X must be (n, d) with one label per row")
    if n_labels < 2 or n_labels >= X.shape[0]:
        return float("nan")
    return float(calinski_harabasz_score(X, labels))


def evaluate_clusters(clusters, classes, fit_clusters=None, fit_classes=None, n_clusters=None) -> dict:
    """All accuracies of one set of predictions.

    Parameters
    ----------
    clusters, classes : arrays
        Outputs (arg-max of q(y|x)) and true classes of the evaluated set (e.g. test).
    fit_clusters, fit_classes : arrays, optional
        Held-out labelled data (e.g. validation) on which the mappings are fitted; if omitted only the
        transductive numbers are returned.
    n_clusters : int, optional
        Number of model outputs.

    Returns
    -------
    dict
        ``many_to_one``/``hungarian`` (mapping fitted on the fit set), ``*_transductive`` (fitted on the evaluated
        set), the mappings and the per-class accuracy of the many-to-one predictions.
    """
    classes = _as_labels(classes, "classes")
    out = {}
    m_trans = many_to_one_mapping(clusters, classes, n_clusters)
    h_trans = hungarian_mapping(clusters, classes, n_clusters)
    out["many_to_one_transductive"] = cluster_and_label_accuracy(clusters, classes, m_trans)
    out["hungarian_transductive"] = hungarian_accuracy(clusters, classes, h_trans)
    out["mapping_transductive"] = m_trans.tolist()
    main_mapping = m_trans
    if fit_clusters is not None:
        m_fit = many_to_one_mapping(fit_clusters, fit_classes, n_clusters)
        h_fit = hungarian_mapping(fit_clusters, fit_classes, n_clusters)
        out["many_to_one"] = cluster_and_label_accuracy(clusters, classes, m_fit)
        out["hungarian"] = hungarian_accuracy(clusters, classes, h_fit)
        out["mapping"] = m_fit.tolist()
        out["hungarian_mapping"] = h_fit.tolist()
        main_mapping = m_fit
    pred = apply_mapping(clusters, main_mapping)
    n_classes = int(classes.max(initial=-1)) + 1
    out["per_class_accuracy"] = per_class_accuracy(classes, pred, n_classes).tolist()
    return out
