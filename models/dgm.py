"""GM-DGM (Willetts et al. 2018) and M2 (Kingma et al. 2014) for semi-unsupervised learning.

Both share the inference model q(y|x) q(z|x,y) and the loss of spec ``model.md`` §2:

    loss = −( mean_l L(x_l, y_l) + mean_u U(x_u) + α · mean_l log q(y_l|x_l) + λ · Σ_kernels log N(w; 0, 1) / N_train )

with L the single-sample labelled ELBO and U(x) = Σ_y q(y|x) L(x, y) + H[q(y|x)] the unlabelled ELBO, enumerated
exactly over every output y, including the extra ones. They differ only in the generative model:

* GM-DGM: p(y) p(z|y) p(x|z), with a learnable Gaussian p(z|y) per output;
* M2:     p(y) p(z) p(x|y,z), with p(z) = N(0, I).

Every (x, y) pair of a step (the labelled pairs and the n_y pairs of every unlabelled example) goes through each
network in one batched call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

from .layers import (
    MLP,
    ConditionalMLP,
    bernoulli_log_likelihood,
    gaussian_log_density,
    glorot_normal_,
    head_linear,
    small_normal_,
    standard_normal_log_density,
    LOG_2PI,
)

LIKELIHOODS = ("bernoulli", "gaussian")
LOG_EPS = 1e-10  # the original code's log(p + 1e-10) guard, kept for exactness of log p(y) and H[q(y|x)]


@dataclass
class LossTerms:
    """Batch means of the loss terms of one step (all as positive 'bound' quantities, except ``loss``)."""

    loss: torch.Tensor
    labelled_elbo: torch.Tensor
    unlabelled_elbo: torch.Tensor
    log_q_y: torch.Tensor
    weight_prior: torch.Tensor


class _DeepGenerativeModel(nn.Module):
    """Shared inference networks, likelihood, loss and prediction of GM-DGM and M2."""

    def __init__(
        self,
        n_features: int,
        n_classes: int,
        n_extra_classes: int = 0,
        *,
        likelihood: str = "bernoulli",
        hidden: Sequence[int] = (500, 500),
        n_z: int = 100,
        prior: Sequence[float] | None = None,
        mc_samples: int = 1,
    ):
        super().__init__()
        if likelihood not in LIKELIHOODS:
            raise ValueError(f"likelihood must be one of {LIKELIHOODS}, got {likelihood!r}")
        if n_features < 1 or n_classes < 1 or n_extra_classes < 0 or n_z < 1 or mc_samples < 1:
            raise ValueError("n_features, n_classes, n_z, mc_samples must be >= 1 and n_extra_classes >= 0")
        self.n_features = int(n_features)
        self.n_classes = int(n_classes)
        self.n_extra_classes = int(n_extra_classes)
        self.n_y = self.n_classes + self.n_extra_classes
        self.n_z = int(n_z)
        self.hidden = tuple(int(h) for h in hidden)
        self.likelihood = likelihood
        self.mc_samples = int(mc_samples)

        prior = np.full(self.n_y, 1.0 / self.n_y) if prior is None else np.asarray(prior, dtype=float)
        if prior.shape != (self.n_y,) or np.any(prior < 0) or prior.sum() <= 0:
            raise ValueError(f"prior must be {self.n_y} non-negative values (n_classes + n_extra_classes)")
        prior = prior / prior.sum()
        self.register_buffer("prior", torch.tensor(prior, dtype=torch.float32))
        self.register_buffer("log_prior", torch.log(self.prior + LOG_EPS))

        # q(y|x): MLP → n_y logits.
        self.classifier = nn.Sequential(MLP(n_features, self.hidden), head_linear(self.hidden[-1], self.n_y))
        # q(z|x,y): shared trunk on concat(x, onehot y), mean and log-variance heads.
        self.encoder = ConditionalMLP(n_features, self.n_y, self.hidden)
        # The mean and log-variance heads are one Linear of 2·n_z outputs (same init, one matmul): [mean | log-var].
        self.encoder_head = head_linear(self.hidden[-1], 2 * n_z)
        # p(x|·) head: logits, or [mean | log-var] for the Gaussian; the trunk is model-specific (subclass).
        n_out = n_features if likelihood == "bernoulli" else 2 * n_features
        self.decoder_head = head_linear(self.hidden[-1], n_out)

    # ----- model-specific pieces -------------------------------------------------------------------------------
    def _decoder_output(self, z: torch.Tensor, y_l: torch.Tensor, n_u: int) -> torch.Tensor:
        """p(x|·) head output for z rows in pair layout (each pair's mc samples consecutive)."""
        raise NotImplementedError  # pragma: no cover - abstract

    def _log_p_z(self, z: torch.Tensor, y_l: torch.Tensor, n_u: int) -> torch.Tensor:
        """log p(z|·) for z of shape (pairs, mc_samples, n_z) in pair layout."""
        raise NotImplementedError  # pragma: no cover - abstract

    # ----- densities -------------------------------------------------------------------------------------------
    def classifier_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of q(y|x) over all n_y outputs."""
        return self.classifier(x)

    def _class_rows(self, table: torch.Tensor, y_l: torch.Tensor, n_u: int) -> torch.Tensor:
        """Rows of ``table`` (n_y, d) for the pair layout: ``table[y_l]``, then every class for each of n_u examples.

        The enumerated block is an expand of the table (its backward is a sum, not a scatter).
        """
        parts = [table[y_l]] if y_l.numel() else []
        if n_u:
            parts.append(table.unsqueeze(0).expand(n_u, *table.shape).reshape(n_u * self.n_y, table.shape[1]))
        return parts[0] if len(parts) == 1 else torch.cat(parts)

    def _pair_rows(self, rows: torch.Tensor, table: torch.Tensor, y_l: torch.Tensor, n_u: int, s: int = 1):
        """``rows`` (pair layout, ``s`` consecutive rows per pair) plus each pair's class row of ``table``.

        Labelled pairs add ``table[y_l]``; the enumerated block adds the whole table by broadcasting over a
        (n_u, n_y, s, width) view, so no class-row tensor of the full pair size is built (forward or backward).
        """
        n_l = y_l.numel() * s
        parts = []
        if n_l:
            class_rows = table[y_l] if s == 1 else table[y_l].repeat_interleave(s, dim=0)
            parts.append(rows[:n_l] + class_rows)
        if n_u:
            width = table.shape[1]
            block = rows[n_l:].view(n_u, self.n_y, s, width) + table.view(1, self.n_y, 1, width)
            parts.append(block.view(-1, width))
        return parts[0] if len(parts) == 1 else torch.cat(parts)

    def _elbo_pairs(self, x_l: torch.Tensor, y_l: torch.Tensor, x_u: torch.Tensor, eps=None):
        """Single-sample ELBOs L(x, y) of the labelled pairs and of every (x_u, y) pair, one network call each.

        Pairs are laid out as the n_l labelled ones, then for each unlabelled example its n_y classes in order.
        ``eps`` (pairs × mc_samples × n_z) fixes the reparameterisation noise; drawn from N(0, I) if omitted.

        Returns
        -------
        (Tensor (n_l,), Tensor (n_u, n_y))
        """
        n_l, n_u, s = x_l.shape[0], x_u.shape[0], self.mc_samples
        n_pairs = n_l + n_u * self.n_y
        # q(z|x,y): the x part of the first layer once per example, the one-hot part as a class row.
        projected = self.encoder.project(torch.cat([x_l, x_u]))
        parts = []
        if n_l:
            parts.append(projected[:n_l] + self.encoder.y_weight[y_l])
        if n_u:  # (n_u, 1, width) + (1, n_y, width): every class row of every example in one broadcast add
            parts.append((projected[n_l:].unsqueeze(1) + self.encoder.y_weight.unsqueeze(0)).view(n_pairs - n_l, -1))
        h = self.encoder.finish_rows(parts[0] if len(parts) == 1 else torch.cat(parts))
        mean_q, log_var_q = self.encoder_head(h).chunk(2, dim=-1)
        if eps is None:
            eps = torch.randn(n_pairs, s, self.n_z, device=h.device, dtype=h.dtype)
        eps = eps.reshape(n_pairs, s, self.n_z)
        z = mean_q.unsqueeze(1) + torch.exp(0.5 * log_var_q).unsqueeze(1) * eps  # (pairs, s, n_z)
        log_q_z = gaussian_log_density(z, mean_q.unsqueeze(1), log_var_q.unsqueeze(1))  # (pairs, s)
        log_p_z = self._log_p_z(z, y_l, n_u)  # (pairs, s)
        out = self._decoder_output(z.reshape(n_pairs * s, self.n_z), y_l, n_u)  # (pairs * s, n_out)
        out = out.view(n_pairs, s, out.shape[-1])
        log_p_x_l = self._log_likelihood(x_l.unsqueeze(1), out[:n_l])  # (n_l, s)
        out_u = out[n_l:].view(n_u, self.n_y, s, out.shape[-1])
        log_p_x_u = self._log_likelihood(x_u[:, None, None, :], out_u).view(n_u * self.n_y, s)
        log_p_x = torch.cat([log_p_x_l, log_p_x_u])
        log_p_y = self._class_rows(self.log_prior.unsqueeze(1), y_l, n_u).squeeze(1)
        elbo = (log_p_x + log_p_z - log_q_z).mean(1) + log_p_y
        return elbo[:n_l], elbo[n_l:].view(n_u, self.n_y)

    def _log_likelihood(self, x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """log p(x|·) from the decoder output (logits, or mean and log-variance side by side)."""
        if self.likelihood == "bernoulli":
            return bernoulli_log_likelihood(x, out)
        mean, log_var = out.chunk(2, dim=-1)
        return gaussian_log_density(x, mean, log_var)

    # ----- bounds ----------------------------------------------------------------------------------------------
    def labelled_elbo(self, x: torch.Tensor, y: torch.Tensor, eps=None) -> torch.Tensor:
        """L(x, y) per example: log p(x|·) + log p(y) + log p(z|·) − log q(z|x,y), z ~ q(z|x,y).

        Parameters
        ----------
        x : Tensor (batch, n_features)
        y : LongTensor (batch,)
            Output indices in ``0 … n_y-1``.
        eps : Tensor (batch, mc_samples, n_z), optional
            Reparameterisation noise; drawn if omitted.
        """
        return self._elbo_pairs(x, y, x[:0], eps)[0]

    @staticmethod
    def _unlabelled_from_pairs(pair_elbo: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        q = F.softmax(logits, dim=-1)
        entropy = -(q * torch.log(q + LOG_EPS)).sum(-1)
        return (q * pair_elbo).sum(-1) + entropy

    def unlabelled_elbo(self, x: torch.Tensor, eps=None) -> torch.Tensor:
        """U(x) = Σ_y q(y|x) L(x, y) + H[q(y|x)] per example, enumerating every output exactly.

        ``eps`` has shape (batch, n_y, mc_samples, n_z): one independent z per (x, y) pair.
        """
        no_labels = torch.zeros(0, dtype=torch.long, device=x.device)
        pair = self._elbo_pairs(x[:0], no_labels, x, eps)[1]
        return self._unlabelled_from_pairs(pair, self.classifier_logits(x))

    def kernel_parameters(self) -> list[nn.Parameter]:
        """The weights covered by the Gaussian weight prior: every kernel, no bias (spec §2.4)."""
        return [p for name, p in self.named_parameters() if name.endswith("weight")]

    def log_weight_prior(self) -> torch.Tensor:
        """Σ over kernels of log N(w; 0, 1), constant included."""
        kernels = self.kernel_parameters()
        n = sum(k.numel() for k in kernels)
        return -0.5 * sum(k.pow(2).sum() for k in kernels) - 0.5 * LOG_2PI * n

    def loss(
        self,
        x_l: torch.Tensor,
        y_l: torch.Tensor,
        x_u: torch.Tensor,
        *,
        n_train: int,
        alpha: float = 0.5,
        weight_prior: float = 1.1,
        balance: str = "average",
        n_labelled: int | None = None,
        posterior_weight: float = 0.0,
    ) -> LossTerms:
        """The minimised loss of one step (spec §2.5), computed in one pass over all (x, y) pairs.

        Parameters
        ----------
        x_l, y_l : labelled batch (features, output indices).
        x_u : unlabelled batch.
        n_train : int
            Training-set size (labelled + unlabelled) that divides the weight prior.
        alpha : float
            Weight of the classifier term mean log q(y_l|x_l). The published code's effective value is 0.5.
        weight_prior : float
            λ, the scale of the weight prior (1.1 in the published code).
        balance : {"average", "weighted"}
            "average": the two ELBO batch means with weight 1 each (the default of the code); "weighted": by
            N_l/N_train and N_u/N_train (needs ``n_labelled``).
        n_labelled : int, optional
            Labelled-set size, for ``balance="weighted"``.
        posterior_weight : float
            β of an optional classifier term β · mean_u Σ_y p̂(y|x) log q(y|x), where p̂(y|x) = softmax_y L(x, y)
            is the posterior over outputs implied by this step's pair bounds (held fixed). 0 (default) is the
            published loss. The bound's own gradient moves q(y|x) by q(y|x)·(L(x, y) − U(x)), which vanishes for
            outputs q already rules out; this inclusive-KL term keeps pulling q towards outputs whose bound is
            better, so a rare group can leave the labelled output it was first routed to (see `models.splitting`).
        """
        n_l = x_l.shape[0]
        pair_l, pair_u = self._elbo_pairs(x_l, y_l, x_u)
        logits = self.classifier_logits(torch.cat([x_l, x_u]))
        elbo_l = pair_l.mean()
        elbo_u = self._unlabelled_from_pairs(pair_u, logits[n_l:]).mean()
        log_q_y = -F.cross_entropy(logits[:n_l], y_l)
        log_w = self.log_weight_prior()
        if balance == "average":
            w_l = w_u = 1.0
        elif balance == "weighted":
            if n_labelled is None:
                raise ValueError("balance='weighted' needs n_labelled")
            w_l, w_u = n_labelled / n_train, (n_train - n_labelled) / n_train
        else:
            raise ValueError(f"balance must be 'average' or 'weighted', got {balance!r}")
        bound = w_l * elbo_l + w_u * elbo_u + alpha * log_q_y + weight_prior * log_w / n_train
        if posterior_weight and x_u.shape[0]:
            target = F.softmax(pair_u.detach(), dim=-1)
            bound = bound + posterior_weight * (target * F.log_softmax(logits[n_l:], dim=-1)).sum(-1).mean()
        return LossTerms(-bound, elbo_l.detach(), elbo_u.detach(), log_q_y.detach(), log_w.detach())

    # ----- prediction ------------------------------------------------------------------------------------------
    @torch.no_grad()
    def _batched(self, fn, X, batch_size: int):
        device = next(self.parameters()).device
        X = torch.as_tensor(np.asarray(X, dtype=np.float32))
        out = [fn(X[i : i + batch_size].to(device)).cpu() for i in range(0, X.shape[0], batch_size)]
        return torch.cat(out).numpy() if out else np.zeros((0,))

    def predict_proba(self, X, batch_size: int = 2000) -> np.ndarray:
        """q(y|x) for every row of X (numpy in, numpy out), shape (n, n_y)."""
        was = self.training
        self.eval()
        try:
            return self._batched(lambda x: F.softmax(self.classifier_logits(x), -1), X, batch_size)
        finally:
            self.train(was)

    def predict(self, X, batch_size: int = 2000) -> np.ndarray:
        """arg-max of q(y|x) over all n_y outputs (known and extra)."""
        return self.predict_proba(X, batch_size).argmax(1)

    def latent_mean(self, X, batch_size: int = 500) -> np.ndarray:
        """E[z | x] under q(z|x) = Σ_y q(y|x) q(z|x,y): the q(y|x)-weighted mean of q(z|x,y)'s means."""

        def mean(x):
            first = self.encoder.project(x).unsqueeze(1) + self.encoder.y_weight  # (n, n_y, width)
            mu = self.encoder_head(self.encoder.finish_rows(first))[..., : self.n_z]
            q = F.softmax(self.classifier_logits(x), -1)
            return (q[:, :, None] * mu.view(x.shape[0], self.n_y, self.n_z)).sum(1)

        was = self.training
        self.eval()
        try:
            return self._batched(mean, X, batch_size)
        finally:
            self.train(was)

    def config(self) -> dict:
        """Constructor arguments, enough to rebuild the model before loading a state dict."""
        return {
            "model": type(self).__name__,
            "n_features": self.n_features,
            "n_classes": self.n_classes,
            "n_extra_classes": self.n_extra_classes,
            "likelihood": self.likelihood,
            "hidden": list(self.hidden),
            "n_z": self.n_z,
            "prior": self.prior.tolist(),
            "mc_samples": self.mc_samples,
        }


class GMDGM(_DeepGenerativeModel):
    """Gaussian-mixture deep generative model: p(y) p(z|y) p(x|z); q(y|x) q(z|x,y).

    p(z|y) = N(μ_y, exp(ℓ_y)) with learnable per-output mean and log-variance (a linear map of onehot(y) plus a
    shared bias, as in the original code). With y one-hot over known + extra outputs, clusters for classes that
    have no labels can form in the extra (and hidden-class) components.

    Parameters
    ----------
    n_features : int
        Input dimension (pixels kept, or standardised features).
    n_classes : int
        Known classes; labels are ``0 … n_classes-1`` (hidden classes keep their slots).
    n_extra_classes : int
        Extra outputs appended after the known classes.
    likelihood : {"bernoulli", "gaussian"}
        Bernoulli on logits for images in [0, 1]; diagonal Gaussian for standardised features.
    hidden : sequence of int
        Widths of every MLP's hidden layers (default 2 × 500).
    n_z : int
        Latent dimension (default 100).
    prior : sequence of float, optional
        p(y) over the ``n_classes + n_extra_classes`` outputs (see :mod:`models.priors`); uniform if omitted.
    mc_samples : int
        Reparameterised samples per (x, y) pair (default 1).
    """

    def __init__(self, n_features, n_classes, n_extra_classes=0, **kwargs):
        super().__init__(n_features, n_classes, n_extra_classes, **kwargs)
        # p(z|y): no hidden layer. Mean kernel N(0, 1e-3²), log-var kernel Glorot-normal, zero biases (spec §1.3).
        self.prior_mean = nn.Linear(self.n_y, self.n_z)
        self.prior_log_var = nn.Linear(self.n_y, self.n_z)
        small_normal_(self.prior_mean.weight)
        glorot_normal_(self.prior_log_var.weight)
        nn.init.zeros_(self.prior_mean.bias)
        nn.init.zeros_(self.prior_log_var.bias)
        # p(x|z)
        self.decoder = MLP(self.n_z, self.hidden)

    def components(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Means and log-variances of p(z|y) for every output, each (n_y, n_z): onehot(y) @ kernel + bias."""
        return (
            self.prior_mean.weight.T + self.prior_mean.bias,
            self.prior_log_var.weight.T + self.prior_log_var.bias,
        )

    def _log_p_z(self, z, y_l, n_u):
        mean, log_var = (self._class_rows(t, y_l, n_u) for t in self.components())
        return gaussian_log_density(z, mean.unsqueeze(1), log_var.unsqueeze(1))

    def _decoder_output(self, z, y_l, n_u):
        return self.decoder_head(self.decoder(z))


class M2(_DeepGenerativeModel):
    """Kingma et al.'s M2 as coded by Willetts et al.: p(y) p(z) p(x|y,z) with p(z) = N(0, I).

    Same parameters as :class:`GMDGM`; the decoder takes ``concat(onehot(y), z)``.
    """

    def __init__(self, n_features, n_classes, n_extra_classes=0, **kwargs):
        super().__init__(n_features, n_classes, n_extra_classes, **kwargs)
        self.decoder = ConditionalMLP(self.n_z, self.n_y, self.hidden)

    def _log_p_z(self, z, y_l, n_u):
        return standard_normal_log_density(z)

    def _decoder_output(self, z, y_l, n_u):
        rows = self._pair_rows(self.decoder.project(z), self.decoder.y_weight, y_l, n_u, self.mc_samples)
        return self.decoder_head(self.decoder.finish_rows(rows))


MODELS = {"gmdgm": GMDGM, "m2": M2}


def build_model(config: dict) -> _DeepGenerativeModel:
    """Rebuild a model from :meth:`config` output (e.g. a checkpoint)."""
    config = dict(config)
    cls = {"GMDGM": GMDGM, "M2": M2}[config.pop("model")]
    return cls(
        config.pop("n_features"),
        config.pop("n_classes"),
        config.pop("n_extra_classes"),
        hidden=tuple(config.pop("hidden")),
        **config,
    )
