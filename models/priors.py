"""The class prior p(y) over labelled, hidden and extra ("augmented") outputs (spec ``model.md`` §3).

The prior is fixed during training; it enters the bound only through log p(y). Outputs are ordered as the known
classes ``0 … n_classes-1`` (hidden classes keep their slots) followed by the ``n_extra`` added outputs.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def _check_hidden(n_classes: int, hidden_classes: Sequence[int]) -> np.ndarray:
    hidden = np.unique(np.asarray(list(hidden_classes), dtype=int))
    if hidden.size and (hidden.min() < 0 or hidden.max() >= n_classes):
        raise ValueError(f"hidden classes {hidden.tolist()} outside 0..{n_classes - 1}")
    return hidden


def semi_unsupervised_prior(
    n_classes: int,
    hidden_classes: Sequence[int],
    n_extra: int,
    base: Sequence[float] | None = None,
) -> np.ndarray:
    """The original code's prior: labelled classes keep their base prior, the rest is shared equally.

    Each hidden class and each extra output gets ``(1 − Σ base[labelled]) / (n_hidden + n_extra)``. With the
    MNIST protocol (10 classes, base 1/10, 5 hidden, 5 extra) this is 1/10 for each labelled class and 1/20 for
    each of the 10 unsupervised outputs.

    Parameters
    ----------
    n_classes : int
        Number of known classes (labelled and hidden).
    hidden_classes : sequence of int
        Classes with no labels; they keep their output slot.
    n_extra : int
        Number of extra outputs appended after the known classes.
    base : sequence of float, optional
        Base prior of the known classes (e.g. empirical frequencies); uniform if omitted.

    Returns
    -------
    numpy.ndarray
        Prior over ``n_classes + n_extra`` outputs, summing to 1.
    """
    hidden = _check_hidden(n_classes, hidden_classes)
    base = np.full(n_classes, 1.0 / n_classes) if base is None else np.asarray(base, dtype=float)
    if base.shape != (n_classes,) or np.any(base < 0) or base.sum() <= 0:
        raise ValueError("base prior must be n_classes non-negative values with a positive sum")
    base = base / base.sum()
    labelled = np.setdiff1d(np.arange(n_classes), hidden)
    prior = np.zeros(n_classes + n_extra)
    prior[labelled] = base[labelled]
    n_free = hidden.size + n_extra
    if n_free:
        prior[hidden] = prior[n_classes:] = (1.0 - base[labelled].sum()) / n_free
    return prior / prior.sum()


def activity_prior(
    class_frequencies: Sequence[float],
    hidden_classes: Sequence[int],
    n_extra: int,
    labelled_weight: float = 0.5,
) -> np.ndarray:
    """The activity-data rule of the original scripts: labelled classes share ``labelled_weight``.

    Each labelled class gets ``labelled_weight`` times its frequency among the labelled classes; the hidden and
    extra outputs share ``1 − labelled_weight`` equally.

    Parameters
    ----------
    class_frequencies : sequence of float
        Counts or frequencies of every known class (hidden ones are ignored).
    hidden_classes : sequence of int
        Classes with no labels.
    n_extra : int
        Extra outputs.
    labelled_weight : float
        Prior mass of the labelled block (0.5 in the original code).

    Returns
    -------
    numpy.ndarray
        Prior over ``len(class_frequencies) + n_extra`` outputs, summing to 1.
    """
    freq = np.asarray(class_frequencies, dtype=float)
    n_classes = freq.size
    hidden = _check_hidden(n_classes, hidden_classes)
    labelled = np.setdiff1d(np.arange(n_classes), hidden)
    n_free = hidden.size + n_extra
    if not 0 < labelled_weight <= 1 or (n_free == 0 and labelled_weight != 1):
        raise ValueError("labelled_weight must be in (0, 1], and 1 when there are no hidden or extra outputs")
    if freq[labelled].sum() <= 0:
        raise ValueError("labelled classes need positive frequencies")
    prior = np.zeros(n_classes + n_extra)
    prior[labelled] = labelled_weight * freq[labelled] / freq[labelled].sum()
    if n_free:
        prior[hidden] = prior[n_classes:] = (1.0 - labelled_weight) / n_free
    return prior / prior.sum()


def split_block_prior(n_labelled: int, n_extra: int) -> np.ndarray:
    """The alternative of Davidson et al. (S5): ``0.5/n_labelled`` per labelled output, ``0.5/n_extra`` per extra.

    Hidden classes have no slots of their own here: outputs are the labelled classes then the free ones.
    """
    if n_labelled < 1 or n_extra < 1:
        raise ValueError("need at least one labelled and one extra output")
    return np.concatenate([np.full(n_labelled, 0.5 / n_labelled), np.full(n_extra, 0.5 / n_extra)])
