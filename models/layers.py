"""Building blocks shared by the deep generative models: initialisers, MLPs and log-densities.

The initialisation follows the original TensorFlow/Keras code (spec ``model.md`` §1.3): Glorot-normal kernels for
hidden layers, N(0, 0.001²) for output heads and for every hidden bias.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn
import torch.nn.functional as F

LOG_2PI = math.log(2.0 * math.pi)
SMALL_INIT_STD = 1e-3


def glorot_normal_(weight: torch.Tensor, fan_in: int | None = None, fan_out: int | None = None) -> torch.Tensor:
    """Keras 2.1 ``glorot_normal``: a normal with std sqrt(2 / (fan_in + fan_out)), truncated at 2 std.

    ``fan_in`` can be given explicitly when ``weight`` is one block of a larger (concatenated-input) kernel.
    """
    out_f, in_f = weight.shape
    fan_in = in_f if fan_in is None else fan_in
    fan_out = out_f if fan_out is None else fan_out
    std = math.sqrt(2.0 / (fan_in + fan_out))
    with torch.no_grad():
        return nn.init.trunc_normal_(weight, 0.0, std, -2.0 * std, 2.0 * std)


def small_normal_(tensor: torch.Tensor, std: float = SMALL_INIT_STD) -> torch.Tensor:
    """N(0, std²) initialisation used for output heads and hidden biases."""
    with torch.no_grad():
        return tensor.normal_(0.0, std)


def hidden_linear(n_in: int, n_out: int) -> nn.Linear:
    """A hidden layer: Glorot-normal kernel, N(0, 1e-3²) bias."""
    layer = nn.Linear(n_in, n_out)
    glorot_normal_(layer.weight)
    small_normal_(layer.bias)
    return layer


def head_linear(n_in: int, n_out: int) -> nn.Linear:
    """An output head: N(0, 1e-3²) kernel and bias, so outputs start near zero."""
    layer = nn.Linear(n_in, n_out)
    small_normal_(layer.weight)
    small_normal_(layer.bias)
    return layer


class MLP(nn.Module):
    """ReLU trunk ``n_in → hidden[0] → … → hidden[-1]`` (no output head).

    Parameters
    ----------
    n_in : int
        Input width.
    hidden : sequence of int
        Hidden layer widths, at least one.
    """

    def __init__(self, n_in: int, hidden: Sequence[int]):
        super().__init__()
        if len(hidden) < 1:
            raise ValueError("an MLP needs at least one hidden layer")
        widths = [n_in, *hidden]
        self.layers = nn.ModuleList(hidden_linear(a, b) for a, b in zip(widths[:-1], widths[1:]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = F.relu(layer(x))
        return x


class ConditionalMLP(nn.Module):
    """ReLU trunk on ``concat([input, onehot(y)])``, computed without building the concatenation.

    Because y is one-hot, ``concat([u, onehot(y)]) @ W = u @ W_u + W_y[y]``. The input part ``u @ W_u`` is computed
    once per input row and reused for every class it is paired with, which makes the exact enumeration over y in
    the unlabelled bound cost one large matmul per layer instead of n_y times the first layer.

    Parameters
    ----------
    n_in : int
        Width of the continuous input (x, or z for M2's decoder).
    n_y : int
        Number of classes (the one-hot part).
    hidden : sequence of int
        Hidden widths, at least one.
    """

    def __init__(self, n_in: int, n_y: int, hidden: Sequence[int]):
        super().__init__()
        if len(hidden) < 1:
            raise ValueError("an MLP needs at least one hidden layer")
        self.first = nn.Linear(n_in, hidden[0])
        # Kernel block for the one-hot part, shaped (n_y, width) so that a row lookup gives y's contribution.
        self.y_weight = nn.Parameter(torch.empty(n_y, hidden[0]))
        # One Keras kernel of shape (n_in + n_y, width) split in two: Glorot with the fan-in of the whole kernel.
        glorot_normal_(self.first.weight, fan_in=n_in + n_y, fan_out=hidden[0])
        glorot_normal_(self.y_weight.T, fan_in=n_in + n_y, fan_out=hidden[0])
        small_normal_(self.first.bias)
        self.rest = MLP(hidden[0], hidden[1:]) if len(hidden) > 1 else None

    def project(self, u: torch.Tensor) -> torch.Tensor:
        """The input part of the first layer, ``u @ W_u + b`` (before adding the class row)."""
        return self.first(u)

    def finish_rows(self, pre_activation: torch.Tensor) -> torch.Tensor:
        """The rest of the trunk from the first layer's pre-activation ``u @ W_u + b + W_y[y]``."""
        h = F.relu(pre_activation)
        return h if self.rest is None else self.rest(h)

    def forward(self, u: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Hidden features of ``concat([u, onehot(y)])`` for class indices ``y`` (one per row of ``u``)."""
        return self.finish_rows(self.project(u) + self.y_weight[y])


def gaussian_log_density(x: torch.Tensor, mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """log N(x; mean, exp(log_var)) of a diagonal Gaussian, summed over the last axis, constant included."""
    return -0.5 * (LOG_2PI + log_var + (x - mean).pow(2) * torch.exp(-log_var)).sum(-1)


def standard_normal_log_density(x: torch.Tensor) -> torch.Tensor:
    """log N(x; 0, I), summed over the last axis."""
    return -0.5 * (LOG_2PI + x.pow(2)).sum(-1)


def bernoulli_log_likelihood(x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """log Bernoulli(x; sigmoid(logits)) summed over the last axis; x may be grey levels in [0, 1]."""
    # x·l − softplus(l), the stable form of x·log σ(l) + (1−x)·log(1−σ(l)), is minus the binary cross-entropy on
    # logits; torch's fused kernel computes it (and its gradient) in one pass instead of four elementwise ops.
    return -F.binary_cross_entropy_with_logits(logits, x.expand_as(logits), reduction="none").sum(-1)
