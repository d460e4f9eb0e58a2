"""Training throughput of GM-DGM and M2 on the MNIST protocol shapes (prints figures; no assertions).

Measures optimiser steps of 100 labelled + 100 unlabelled examples (n_x = 443 pixels, n_y = 15 outputs enumerated,
2 × 500 MLPs, n_z = 100), i.e. exactly the work of the training loop, and reports ms/step, examples/s and seconds
per epoch (495 steps = 49 500 unlabelled examples). For comparison it also times a straightforward
implementation (concat(x, onehot y) tiled n_y times through q(z|x,y), no allocator tuning), and reports the
floating-point floor: matmul FLOPs per step divided by the measured matmul throughput of this machine.

    python benchmarks/bench_models.py [--steps 30] [--threads 2] [--device auto]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F

from models import GMDGM, M2
from models.priors import semi_unsupervised_prior
from models.training import make_optimizer, resolve_device, tune_allocator

N_X, N_CLASSES, N_EXTRA, HIDDEN, N_Z, BATCH, STEPS_PER_EPOCH = 443, 10, 5, 500, 100, 100, 495


def naive_loss(model: GMDGM, x_l, y_l, x_u, n_train):
    """The straightforward version: tile x n_y times and feed concat(x, onehot(y)) to q(z|x,y) (GM-DGM)."""
    n_y = model.n_y
    w_x, w_y, b = model.encoder.first.weight, model.encoder.y_weight, model.encoder.first.bias
    kernel = torch.cat([w_x, w_y.T], 1)  # the Keras concatenated kernel

    def elbo(x, y):
        h = F.relu(F.linear(torch.cat([x, F.one_hot(y, n_y).float()], 1), kernel, b))
        h = model.encoder.rest(h)
        mean_q, log_var_q = model.encoder_head(h).chunk(2, -1)
        z = mean_q + torch.exp(0.5 * log_var_q) * torch.randn_like(mean_q)
        mu_p, lv_p = (t[y] for t in model.components())
        logits = model.decoder_head(model.decoder(z))
        log_px = (x * logits - F.softplus(logits)).sum(-1)
        lp = lambda v, m, lv: -0.5 * (np.log(2 * np.pi) + lv + (v - m) ** 2 / torch.exp(lv)).sum(-1)
        return log_px + model.log_prior[y] + lp(z, mu_p, lv_p) - lp(z, mean_q, log_var_q)

    l_elbo = elbo(x_l, y_l).mean()
    xu_rep = x_u.repeat_interleave(n_y, 0)
    yu_rep = torch.arange(n_y).repeat(x_u.shape[0])
    pair = elbo(xu_rep, yu_rep).view(-1, n_y)
    q = F.softmax(model.classifier_logits(x_u), -1)
    u_elbo = ((q * pair).sum(-1) - (q * torch.log(q + 1e-10)).sum(-1)).mean()
    log_q_y = -F.cross_entropy(model.classifier_logits(x_l), y_l)
    return -(l_elbo + u_elbo + 0.5 * log_q_y + 1.1 * model.log_weight_prior() / n_train)


def time_steps(model, loss_fn, steps, device):
    opt = make_optimizer(model.parameters(), 3e-4)  # the optimiser training uses
    params = list(model.parameters())
    x_l = torch.rand(BATCH, N_X, device=device).bernoulli()
    y_l = torch.randint(0, N_CLASSES, (BATCH,), device=device)
    x_u = torch.rand(BATCH, N_X, device=device).bernoulli()

    def step():
        loss = loss_fn(x_l, y_l, x_u)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_value_(params, 1.0)
        opt.step()
        return float(loss.detach())

    for _ in range(3):
        step()
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    return float(np.median(times)), float(np.mean(times))


def matmul_floor(device, n_y=N_CLASSES + N_EXTRA):
    """(GFLOP per step, measured GFLOP/s of a 1600×500×500 matmul, floor ms/step)."""
    pairs = BATCH + BATCH * n_y
    rows = 2 * BATCH
    fwd = (rows * (N_X * HIDDEN + HIDDEN * HIDDEN + HIDDEN * n_y)  # q(y|x)
           + rows * N_X * HIDDEN + pairs * (HIDDEN * HIDDEN + HIDDEN * 2 * N_Z)  # q(z|x,y), x part once
           + pairs * (N_Z * HIDDEN + HIDDEN * HIDDEN + HIDDEN * N_X))  # p(x|z)
    skipped = 2 * rows * N_X * HIDDEN  # no input gradient for the two first layers that see x
    gflop = 2 * (3 * fwd - skipped) / 1e9
    a, b = torch.randn(pairs, HIDDEN, device=device), torch.randn(HIDDEN, HIDDEN, device=device)
    for _ in range(5):
        a @ b
    n = 100
    t = time.perf_counter()
    for _ in range(n):
        a @ b
    if device.type == "cuda":
        torch.cuda.synchronize()
    rate = 2 * pairs * HIDDEN * HIDDEN * n / (time.perf_counter() - t) / 1e9
    return gflop, rate, gflop / rate * 1e3


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="auto")
    p.add_argument("--skip-naive", action="store_true")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    prior = semi_unsupervised_prior(N_CLASSES, [3, 4, 5, 6, 7], N_EXTRA)
    print(f"torch {torch.__version__}, device {device}, {torch.get_num_threads()} threads, {args.steps} timed steps")
    print(f"{'variant':46s} {'ms/step':>8s} {'ex/s':>7s} {'s/epoch':>8s}")

    def report(name, med):
        # examples per second count the 200 examples (100 labelled + 100 unlabelled) of each step
        print(f"{name:46s} {med * 1e3:8.1f} {2 * BATCH / med:7.0f} {med * STEPS_PER_EPOCH:8.1f}", flush=True)

    if not args.skip_naive and device.type == "cpu":
        torch.manual_seed(0)
        m = GMDGM(N_X, N_CLASSES, N_EXTRA, prior=prior).to(device)
        report("GM-DGM straightforward (tiled concat, malloc)", time_steps(
            m, lambda a, b, c: naive_loss(m, a, b, c, 50_000), args.steps, device)[0])
    tune_allocator()
    if not args.skip_naive and device.type == "cpu":
        report("GM-DGM straightforward + allocator tuning", time_steps(
            m, lambda a, b, c: naive_loss(m, a, b, c, 50_000), args.steps, device)[0])
    for cls in (GMDGM, M2):
        torch.manual_seed(0)
        m = cls(N_X, N_CLASSES, N_EXTRA, prior=prior).to(device)
        report(f"{cls.__name__} (models package)", time_steps(
            m, lambda a, b, c, m=m: m.loss(a, b, c, n_train=50_000).loss, args.steps, device)[0])
    gflop, rate, floor = matmul_floor(device)
    print(f"matmul floor: {gflop:.2f} GFLOP/step at {rate:.0f} GFLOP/s measured = {floor:.1f} ms/step "
          f"= {floor * STEPS_PER_EPOCH / 1e3:.1f} s/epoch")


if __name__ == "__main__":
    main()
