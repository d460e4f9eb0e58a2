"""Split moves for GM-DGM: give the examples the model explains worst a mixture component of their own.

Why: the classifier q(y|x) of a GM-DGM saturates early. A rare activity far from everything labelled (running, when
only walking is labelled) is then routed to the nearest labelled output for good: every free output's p(z|y) sits
on some other group, so no free output offers it a better bound, and nothing moves the free components towards it
(a component only moves towards the examples already assigned to it). Running stayed in the Walking output after
24 epochs with 8 or 16 free outputs, with 4x more running windows, and with a compressed feature scale.

A *split move* (as in split-and-merge EM for mixtures) breaks that deadlock. Take the unlabelled examples whose
bound U(x) falls furthest below the median bound of the output ``s`` they are assigned to, grouped by ``s``: the
least-used free output ``k`` becomes a copy of ``s`` (its q(y|x) logit row, its class row in q(z|x,y), its p(z|y)
log-variance) whose p(z|y) mean is moved to the mean latent code of those examples. From then on ``s`` and ``k``
share those examples' responsibility and the bound decides between them: the moved component fits the poorly
explained examples better, the original one its old data. Nothing here uses labels of the unlabelled examples.
The posterior-matching term of the loss (``posterior_weight``) is what lets q(y|x) follow the bound to ``k``.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from .dgm import GMDGM


@torch.no_grad()
def _bounds(model: GMDGM, x: torch.Tensor, batch_size: int = 1000):
    """Per example: U(x) (one reparameterised sample per pair) and the arg-max output of q(y|x)."""
    no_labels = torch.zeros(0, dtype=torch.long, device=x.device)
    bounds, assigned = [], []
    for i in range(0, x.shape[0], batch_size):
        xb = x[i : i + batch_size]
        logits = model.classifier_logits(xb)
        pair = model._elbo_pairs(xb[:0], no_labels, xb)[1]
        bounds.append(model._unlabelled_from_pairs(pair, logits))
        assigned.append(logits.argmax(1))
    return torch.cat(bounds), torch.cat(assigned)


@torch.no_grad()
def _latent_means(model: GMDGM, x: torch.Tensor, y: int) -> torch.Tensor:
    """Means of q(z|x, y) for one output y and every row of x."""
    h = model.encoder.finish_rows(model.encoder.project(x) + model.encoder.y_weight[y])
    return model.encoder_head(h)[:, : model.n_z]


@torch.no_grad()
def split_poorly_explained(
    model: GMDGM,
    x_unlabelled,
    free_outputs: Sequence[int],
    worst_share: float = 0.02,
    max_splits: int = 3,
    min_examples: int = 20,
    protected: Sequence[int] = (),
) -> list[dict]:
    """Split components so that the worst-explained unlabelled examples get outputs of their own.

    Parameters
    ----------
    model : GMDGM
        Modified in place (classifier head, encoder class rows, p(z|y) parameters of the target outputs).
    x_unlabelled : array or Tensor (n, n_features)
        The unlabelled training inputs.
    free_outputs : sequence of int
        Outputs without labels (hidden-class slots and extra outputs): the only ones that may be overwritten.
    worst_share : float
        Share of the unlabelled examples considered poorly explained: those whose bound U(x) is furthest below
        the median bound of their assigned output.
    max_splits : int
        At most this many splits (one per source output, largest groups first).
    min_examples : int
        A source output needs at least this many poorly explained examples to be split.
    protected : sequence of int
        Outputs that must not be overwritten, e.g. the targets of earlier splits: a group that was just given its
        own output is small, so it would otherwise be the first "least-used" output to be taken again.

    Returns
    -------
    list of dict
        One record per split: source and target outputs, examples moved, their mean bound, the target's former use.
    """
    if not isinstance(model, GMDGM):
        raise TypeError("split moves need the mixture prior p(z|y) of a GMDGM")
    was = model.training
    model.eval()
    try:
        param = next(model.parameters())
        device = param.device
        x = torch.as_tensor(np.asarray(x_unlabelled), dtype=param.dtype, device=device)
        bound, assigned = _bounds(model, x)  # latent codes only for the few rows that are split (memory)
        # "Poorly explained" is relative to the output an example is assigned to: its bound minus the median bound
        # of that output's examples. A group merged into a labelled output it does not resemble (running in
        # walking, cycling in riding transport) stands out there even when its bound is ordinary in absolute terms.
        usage = torch.bincount(assigned, minlength=model.n_y)
        typical = torch.zeros(model.n_y, device=device)
        for k in torch.unique(assigned).tolist():
            typical[k] = bound[assigned == k].median()
        deficit = bound - typical[assigned]
        n_worst = max(1, int(round(worst_share * x.shape[0])))
        worst = torch.argsort(deficit)[:n_worst]
        free = [int(k) for k in free_outputs if int(k) not in {int(p) for p in protected}]
        sources, counts = torch.unique(assigned[worst], return_counts=True)
        order = torch.argsort(counts, descending=True)
        records = []
        for j in order.tolist():
            if len(records) >= max_splits or int(counts[j]) < min_examples:
                break
            s = int(sources[j])
            # Target: the least-used free output that is not a source of this round.
            candidates = [k for k in free if k != s and k not in {r["source"] for r in records}
                          and k not in {r["target"] for r in records}]
            if not candidates:
                break
            k = min(candidates, key=lambda c: (int(usage[c]), c))
            rows = worst[assigned[worst] == s]
            z = _latent_means(model, x[rows], s)  # the codes q(z|x, s) gives these examples
            mean = z.mean(0)
            log_var = torch.log(z.var(0, unbiased=False).clamp_min(1e-4))
            _, prior_log_var = model.components()
            # components() = kernel.T + bias: write the kernel column so that output k gets the new values.
            model.prior_mean.weight[:, k] = mean - model.prior_mean.bias
            model.prior_log_var.weight[:, k] = torch.maximum(log_var, prior_log_var[s]) - model.prior_log_var.bias
            model.encoder.y_weight[k] = model.encoder.y_weight[s]
            head = model.classifier[-1]
            head.weight[k] = head.weight[s]
            head.bias[k] = head.bias[s]
            records.append({"source": s, "target": k, "examples": int(rows.numel()),
                            "mean_bound": float(bound[rows].mean()), "source_median_bound": float(typical[s]),
                            "target_former_use": int(usage[k])})
        return records
    finally:
        model.train(was)


class SplitMoves:
    """Split moves after chosen epochs of a training run, for `models.training.fit`'s ``callback``.

    Targets of earlier moves are protected from later ones; with ``path`` the moves are also written there (JSON,
    atomically) after each round and read back when the run is resumed, so the protection survives a restart.

    Parameters
    ----------
    model : GMDGM
    x_unlabelled : array (n, n_features)
        Unlabelled training inputs (as the model sees them at evaluation).
    free_outputs : sequence of int
        Outputs without labels.
    epochs : sequence of int
        Epochs after which to split (none: the published training).
    path : path, optional
        JSON file of the moves so far.
    resume : bool
        Continue the moves recorded in ``path`` (a resumed training run); otherwise a file left there by an
        earlier run is removed, so a fresh run protects only its own targets.
    say : callable, optional
        Called with a line per move.
    **options
        Passed to :func:`split_poorly_explained`.
    """

    def __init__(self, model, x_unlabelled, free_outputs, epochs, path=None, resume=False, say=None, **options):
        import json
        from pathlib import Path

        self.model, self.x, self.free = model, x_unlabelled, list(free_outputs)
        self.epochs = {int(e) for e in epochs}
        self.path = Path(path) if path is not None else None
        self.say = say or (lambda *_: None)
        self.options = options
        self.done: list[dict] = []
        if self.path is not None and self.path.is_file():
            if resume:
                with open(self.path, encoding="utf-8") as fh:
                    self.done = list(json.load(fh))
            else:
                self.path.unlink()

    def after_epoch(self, epoch: int) -> list[dict]:
        """Run the moves due after ``epoch`` (GM-DGM only; nothing for other models or epochs)."""
        if epoch not in self.epochs or not isinstance(self.model, GMDGM):
            return []
        moves = split_poorly_explained(self.model, self.x, self.free, protected=[r["target"] for r in self.done],
                                       **self.options)
        for r in moves:
            r["epoch"] = int(epoch)
            self.say(f"  split: output {r['target']} <- copy of output {r['source']}, moved to its {r['examples']} "
                     f"worst-explained examples (mean bound {r['mean_bound']:.0f})")
        self.done.extend(moves)
        if self.path is not None and moves:
            from capture_pipeline.atomic import write_json

            write_json(self.path, self.done)
        return moves
