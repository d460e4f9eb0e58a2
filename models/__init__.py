"""GM-DGM and M2 (PyTorch): semi-unsupervised deep generative models, their training and evaluation.

Public API
----------
GMDGM, M2 : the models (numpy-friendly ``predict``, ``predict_proba``, ``latent_mean``).
models.priors : constructions of the class prior p(y).
models.training : ``TrainConfig``, ``fit``, ``load_checkpoint``, ``split_labelled`` (y = -1 for unlabelled rows).
models.evaluation : many-to-one and Hungarian accuracy, confusion matrix, Calinski–Harabasz (numpy only).
"""

from .dgm import GMDGM, M2, MODELS, build_model  # noqa: F401
from . import evaluation, priors, training  # noqa: F401
from .training import TrainConfig, fit, load_checkpoint, split_labelled  # noqa: F401

__all__ = ["GMDGM", "M2", "MODELS", "build_model", "priors", "evaluation", "training", "TrainConfig", "fit",
           "load_checkpoint", "split_labelled"]
