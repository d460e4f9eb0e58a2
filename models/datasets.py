"""MNIST and Fashion-MNIST for the semi-unsupervised protocol (spec ``model.md`` §6, §7).

Reads the four standard idx files (optionally gzipped) with gzip + numpy, splits the official training set into
train (first 50 000) and validation (last 10 000) as the original code's ``mnist.pkl.gz`` did, scales pixels by
1/256, drops pixels whose training std is ≤ 0.1, and draws the labelled subset.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from capture_pipeline.errors import InputError

IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
N_TRAIN = 50_000  # the original split: first 50 000 training images for training, the last 10 000 for validation
PIXEL_SCALE = 256.0  # the original pickle stores uint8 / 256
PIXEL_STD_THRESHOLD = 0.1


def read_idx(path) -> np.ndarray:
    """Read one idx file (uint8 images or labels), gzipped or not; errors name the file and the problem."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(path, f"cannot be read ({exc.strerror or exc})") from exc
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise InputError(path, f"corrupt gzip data ({exc})") from exc
    if len(raw) < 8 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise InputError(path, "not an idx file of unsigned bytes (bad magic number)")
    ndim = raw[3]
    if ndim < 1 or len(raw) < 4 + 4 * ndim:
        raise InputError(path, "truncated idx header")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    n = int(np.prod(shape))
    body = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != n:
        raise InputError(path, f"header announces {n} values of shape {shape} but the file holds {body.size}")
    return body.reshape(shape)


def _find(directory: Path, stem: str) -> Path:
    for name in (stem + ".gz", stem):
        if (directory / name).is_file():
            return directory / name
    raise InputError(directory / (stem + ".gz"), "missing (expected the standard MNIST idx file names)")


def load_idx_dataset(directory) -> dict[str, np.ndarray]:
    """The four arrays of an MNIST-format directory, checked for consistent shapes."""
    directory = Path(directory)
    if not directory.is_dir():
        raise InputError(directory, "is not a directory")
    arrays = {key: read_idx(_find(directory, stem)) for key, stem in IDX_FILES.items()}
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
            raise InputError(directory, f"{split} images {images.shape} and labels {labels.shape} do not match")
        if labels.max() > 9:
            raise InputError(directory, f"{split} labels outside 0..9")
    return arrays


@dataclass
class SemiUnsupervisedSplit:
    """Arrays of one semi-unsupervised protocol instance (float32 inputs in [0, 1), int64 labels)."""

    x_labelled: np.ndarray
    y_labelled: np.ndarray
    x_unlabelled: np.ndarray
    y_unlabelled: np.ndarray  # kept for diagnostics only; never used in training
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    pixel_mask: np.ndarray
    hidden_classes: list[int]
    labels_per_class: int
    label_seed: int
    info: dict = field(default_factory=dict)

    @property
    def n_train(self) -> int:
        """Labelled + unlabelled training examples (the N_train of the weight prior)."""
        return len(self.x_labelled) + len(self.x_unlabelled)


def semi_unsupervised_split(
    directory,
    hidden_classes: Sequence[int] = (3, 4, 5, 6, 7),
    labels_per_class: int = 100,
    label_seed: int = 0,
    n_train: int = N_TRAIN,
) -> SemiUnsupervisedSplit:
    """Build the protocol's data: labels for ``labels_per_class`` examples of each non-hidden class.

    Parameters
    ----------
    directory : path
        Folder with the four idx files.
    hidden_classes : sequence of int
        Classes whose labels are all masked (default 3–7, the seed paper's MNIST protocol).
    labels_per_class : int
        Labelled examples per non-hidden class (100 = the original ``-p 0.02`` on 50 000 images).
    label_seed : int
        Seed of the labelled-subset draw. The original code used one subset (seed 0) for every run.
    n_train : int
        Training images taken from the start of the official training set; the rest is validation.

    Returns
    -------
    SemiUnsupervisedSplit
        The labelled examples are removed from the unlabelled pool.
    """
    arrays = load_idx_dataset(directory)
    train_x = arrays["train_images"].reshape(len(arrays["train_images"]), -1).astype(np.float32) / PIXEL_SCALE
    train_y = arrays["train_labels"].astype(np.int64)
    test_x = arrays["test_images"].reshape(len(arrays["test_images"]), -1).astype(np.float32) / PIXEL_SCALE
    if not 0 < n_train < len(train_x):
        raise ValueError(f"n_train must be between 1 and {len(train_x) - 1}")
    x_tr, y_tr = train_x[:n_train], train_y[:n_train]
    mask = x_tr.std(axis=0) > PIXEL_STD_THRESHOLD
    hidden = sorted(int(c) for c in hidden_classes)
    rng = np.random.default_rng(label_seed)
    labelled_idx = []
    for c in range(10):
        if c in hidden:
            continue
        members = np.flatnonzero(y_tr == c)
        if members.size < labels_per_class:
            raise ValueError(f"class {c} has only {members.size} training examples")
        labelled_idx.append(rng.choice(members, labels_per_class, replace=False))
    labelled_idx = np.sort(np.concatenate(labelled_idx)) if labelled_idx else np.zeros(0, dtype=int)
    pool = np.setdiff1d(np.arange(n_train), labelled_idx)
    return SemiUnsupervisedSplit(
        x_labelled=np.ascontiguousarray(x_tr[labelled_idx][:, mask]),
        y_labelled=y_tr[labelled_idx],
        x_unlabelled=np.ascontiguousarray(x_tr[pool][:, mask]),
        y_unlabelled=y_tr[pool],
        x_val=np.ascontiguousarray(train_x[n_train:][:, mask]),
        y_val=train_y[n_train:],
        x_test=np.ascontiguousarray(test_x[:, mask]),
        y_test=arrays["test_labels"].astype(np.int64),
        pixel_mask=mask,
        hidden_classes=hidden,
        labels_per_class=int(labels_per_class),
        label_seed=int(label_seed),
        info={"split": f"train = official train[:{n_train}], validation = train[{n_train}:], test = t10k",
              "pixel_scale": f"1/{PIXEL_SCALE:g}", "pixels_kept": int(mask.sum())},
    )
