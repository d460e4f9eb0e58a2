"""GM-DGM / M2: the bound against a brute-force computation, gradients, priors, initialisation, evaluation.

The brute-force reference recomputes every term with ``torch.distributions`` and the literal concatenated inputs
(``concat([x, onehot(y)])`` for q(z|x,y), ``concat([onehot(y), z])`` for M2's decoder), one class at a time, from
the model's parameters. It shares no code with the model's batched enumeration. Everything runs in float64, so the
two must agree to rounding: atol 1e-6, because log p(y) is a float32 buffer (rounding error ≤ 2e-7 on
|log p(y)| < 3); every other term is float64.
"""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Bernoulli, Normal

from models import GMDGM, M2, evaluation as ev
from models.priors import activity_prior, semi_unsupervised_prior, split_block_prior

N_X, N_CLASSES, N_EXTRA, N_Z, HIDDEN = 6, 3, 2, 3, (7, 5)
N_Y = N_CLASSES + N_EXTRA


def _tiny(cls, likelihood="bernoulli", seed=0):
    torch.manual_seed(seed)
    prior = semi_unsupervised_prior(N_CLASSES, [1], N_EXTRA)
    model = cls(N_X, N_CLASSES, N_EXTRA, likelihood=likelihood, hidden=HIDDEN, n_z=N_Z, prior=prior).double()
    # Move every parameter away from the near-zero initial heads so that each term matters in the comparison.
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return model


def _mlp(layers, h):
    for layer in layers:
        h = F.relu(layer(h))
    return h


def _brute_force_pair(model, x, y, eps):
    """L(x, y) for one class index y (int) and all rows of x, from first principles."""
    onehot = F.one_hot(torch.full((x.shape[0],), y), model.n_y).double()
    enc = model.encoder
    kernel = torch.cat([enc.first.weight, enc.y_weight.T], dim=1)
    h = F.relu(torch.cat([x, onehot], 1) @ kernel.T + enc.first.bias)
    h = _mlp(enc.rest.layers, h)
    head = model.encoder_head(h)
    mean_q, log_var_q = head[:, : model.n_z], head[:, model.n_z :]
    q_z = Normal(mean_q, torch.exp(0.5 * log_var_q))
    z = mean_q + torch.exp(0.5 * log_var_q) * eps
    if isinstance(model, GMDGM):
        p_z = Normal(model.prior_mean(onehot), torch.exp(0.5 * model.prior_log_var(onehot)))
        h_dec = _mlp(model.decoder.layers, z)
    else:
        p_z = Normal(torch.zeros_like(z), torch.ones_like(z))
        dec = model.decoder
        dec_kernel = torch.cat([dec.y_weight.T, dec.first.weight], dim=1)  # concat(onehot(y), z)
        h_dec = F.relu(torch.cat([onehot, z], 1) @ dec_kernel.T + dec.first.bias)
        h_dec = _mlp(dec.rest.layers, h_dec)
    out = model.decoder_head(h_dec)
    if model.likelihood == "bernoulli":
        log_px = Bernoulli(logits=out).log_prob(x).sum(1)
    else:
        mean_x, log_var_x = out[:, : model.n_features], out[:, model.n_features :]
        log_px = Normal(mean_x, torch.exp(0.5 * log_var_x)).log_prob(x).sum(1)
    log_py = math.log(float(model.prior[y]) + 1e-10)
    return log_px + log_py + p_z.log_prob(z).sum(1) - q_z.log_prob(z).sum(1)


def _data(likelihood, n=4, seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, N_X, generator=g, dtype=torch.float64)
    return (x > 0.5).double() if likelihood == "bernoulli" else torch.randn(n, N_X, generator=g).double()


@pytest.mark.parametrize("cls", [GMDGM, M2])
@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_enumerated_unlabelled_bound_equals_brute_force(cls, likelihood):
    model = _tiny(cls, likelihood)
    x = _data(likelihood)
    eps = torch.randn(x.shape[0], N_Y, 1, N_Z, dtype=torch.float64)
    pairs = torch.stack([_brute_force_pair(model, x, y, eps[:, y, 0]) for y in range(N_Y)], 1)
    q = torch.softmax(model.classifier[1](_mlp(model.classifier[0].layers, x)), 1)
    expected = (q * pairs).sum(1) - (q * torch.log(q + 1e-10)).sum(1)
    got = model.unlabelled_elbo(x, eps)
    assert got.shape == (x.shape[0],)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)
    # The bound is a bound: the enumerated U(x) must differ from any single class's L(x, y) (the sum is taken).
    assert not torch.allclose(got, pairs[:, 0])


@pytest.mark.parametrize("cls", [GMDGM, M2])
def test_labelled_bound_equals_brute_force(cls):
    model = _tiny(cls)
    x = _data("bernoulli", n=5)
    y = torch.tensor([0, 4, 2, 1, 3])
    eps = torch.randn(5, 1, N_Z, dtype=torch.float64)
    expected = torch.stack([_brute_force_pair(model, x[i : i + 1], int(y[i]), eps[i]) for i in range(5)]).squeeze(1)
    torch.testing.assert_close(model.labelled_elbo(x, y, eps), expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("balance", ["average", "weighted"])
def test_total_loss_combines_terms_as_specified(balance):
    model = _tiny(GMDGM)
    x_l, y_l, x_u = _data("bernoulli", 3, seed=2), torch.tensor([0, 2, 2]), _data("bernoulli", 4, seed=3)
    n_train, alpha, lam = 1000, 0.7, 1.1
    torch.manual_seed(5)
    terms = model.loss(x_l, y_l, x_u, n_train=n_train, alpha=alpha, weight_prior=lam, balance=balance, n_labelled=30)
    # The noise of pair i is row i of one draw: the labelled pairs first, then each unlabelled example's n_y pairs.
    torch.manual_seed(5)
    eps = torch.randn(3 + 4 * N_Y, 1, N_Z, dtype=torch.float64)
    elbo_l = model.labelled_elbo(x_l, y_l, eps[:3]).mean()
    elbo_u = model.unlabelled_elbo(x_u, eps[3:].view(4, N_Y, 1, N_Z)).mean()
    log_q = torch.log_softmax(model.classifier_logits(x_l), 1)[torch.arange(3), y_l].mean()
    kernels = [p for n, p in model.named_parameters() if n.endswith("weight")]
    n_w = sum(k.numel() for k in kernels)
    log_w = sum(Normal(0.0, 1.0).log_prob(k).sum() for k in kernels)
    w_l, w_u = (1.0, 1.0) if balance == "average" else (30 / n_train, 970 / n_train)
    expected = -(w_l * elbo_l + w_u * elbo_u + alpha * log_q + lam * log_w / n_train)
    torch.testing.assert_close(terms.loss, expected, rtol=0, atol=1e-6)
    torch.testing.assert_close(terms.weight_prior, log_w, rtol=1e-12, atol=1e-6)
    # Biases are excluded from the weight prior; the one-hot kernel blocks and the p(z|y) kernels are included.
    names = {n for n, _ in model.named_parameters() if n.endswith("weight")}
    assert {"encoder.y_weight", "prior_mean.weight", "prior_log_var.weight"} <= names
    assert not any(n.endswith("bias") for n in names)
    assert n_w == sum(p.numel() for n, p in model.named_parameters() if not n.endswith("bias"))


def test_gradients_reach_every_component_of_p_z_given_y():
    model = _tiny(GMDGM)
    x_u = _data("bernoulli", 8, seed=4)
    # Unlabelled bound alone: every output, extra ones included, is enumerated, so every column of the p(z|y)
    # kernels (one per output) gets a gradient.
    model.unlabelled_elbo(x_u).sum().backward()
    for layer in (model.prior_mean, model.prior_log_var):
        assert torch.all(layer.weight.grad.abs().sum(0) > 0)
        assert layer.bias.grad.abs().sum() > 0
    # Labelled bound alone: only the labelled classes' columns move.
    model.zero_grad()
    model.labelled_elbo(x_u[:4], torch.tensor([0, 0, 2, 2])).sum().backward()
    col = model.prior_mean.weight.grad.abs().sum(0)
    assert col[0] > 0 and col[2] > 0 and torch.all(col[[1, 3, 4]] == 0)
    # The full loss reaches every parameter.
    model.zero_grad()
    model.loss(x_u[:2], torch.tensor([0, 1]), x_u[2:], n_train=100).loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_m2_latent_prior_is_standard_normal():
    model = _tiny(M2)
    assert not any("prior_mean" in n for n, _ in model.named_parameters())
    z = torch.randn(3, 1, N_Z, dtype=torch.float64)
    torch.testing.assert_close(
        model._log_p_z(z, torch.zeros(0, dtype=torch.long), 3)[:, 0], Normal(0.0, 1.0).log_prob(z).sum(-1)[:, 0]
    )


def test_latent_mean_is_the_q_y_weighted_mixture_mean():
    model = _tiny(GMDGM)
    x = _data("bernoulli", 3)
    q = torch.softmax(model.classifier_logits(x), 1)
    means = []
    for y in range(N_Y):
        onehot = F.one_hot(torch.full((3,), y), N_Y).double()
        kernel = torch.cat([model.encoder.first.weight, model.encoder.y_weight.T], 1)
        h = _mlp(model.encoder.rest.layers, F.relu(torch.cat([x, onehot], 1) @ kernel.T + model.encoder.first.bias))
        means.append(model.encoder_head(h)[:, :N_Z])
    expected = (q[:, :, None] * torch.stack(means, 1)).sum(1)
    model.float()
    np.testing.assert_allclose(model.latent_mean(x.numpy()), expected.detach().numpy(), rtol=1e-4, atol=1e-5)


# ----- priors -----------------------------------------------------------------------------------------------------
def test_mnist_prior_is_one_tenth_and_one_twentieth():
    prior = semi_unsupervised_prior(10, [3, 4, 5, 6, 7], 5)
    expected = np.array([0.1] * 3 + [0.05] * 5 + [0.1] * 2 + [0.05] * 5)
    np.testing.assert_allclose(prior, expected, rtol=0, atol=1e-15)
    assert prior.sum() == pytest.approx(1.0, abs=1e-15)
    model = GMDGM(20, 10, 5, hidden=(8,), n_z=2, prior=prior)
    assert float(model.prior.sum()) == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_allclose(model.log_prior.numpy(), np.log(expected + 1e-10), rtol=1e-6)


def test_other_priors_sum_to_one():
    p = semi_unsupervised_prior(4, [1], 2, base=[10, 30, 20, 40])  # empirical base frequencies
    # labelled mass 0.1 + 0.2 + 0.4 = 0.7; the hidden class and the 2 extra outputs share 0.3
    np.testing.assert_allclose(p, [0.1, 0.1, 0.2, 0.4, 0.1, 0.1], atol=1e-15)
    p = activity_prior([50, 30, 20], [1], 3, labelled_weight=0.5)
    np.testing.assert_allclose(p, [0.5 * 50 / 70, 0.125, 0.5 * 20 / 70, 0.125, 0.125, 0.125], atol=1e-15)
    p = split_block_prior(5, 40)
    assert p.sum() == pytest.approx(1.0) and p[0] == 0.1 and p[-1] == 0.0125
    assert GMDGM(5, 3, 0, hidden=(4,), n_z=2).prior.tolist() == pytest.approx([1 / 3] * 3)
    with pytest.raises(ValueError, match="hidden"):
        semi_unsupervised_prior(3, [5], 1)
    with pytest.raises(ValueError, match="prior"):
        GMDGM(5, 3, 1, hidden=(4,), n_z=2, prior=[0.5, 0.5])


# ----- initialisation -----------------------------------------------------------------------------------------------
def test_initialisation_follows_the_original_code():
    torch.manual_seed(0)
    model = GMDGM(443, 10, 10, n_z=100)
    # p(z|y): means all ≈ 0 (N(0, 1e-3²) kernel, zero bias); log-variances ≈ N(0, 2/(n_y + n_z)) so variances ≈ 1.
    mean, log_var = model.components()
    assert mean.abs().max() < 0.01
    assert log_var.std().item() == pytest.approx(math.sqrt(2 / 120) * 0.88, rel=0.1)  # 0.88: truncation at 2 std
    # hidden kernels Glorot-normal (truncated), heads tiny
    w = model.decoder.layers[1].weight
    assert w.std().item() == pytest.approx(math.sqrt(2 / 1000) * 0.88, rel=0.05)
    assert w.abs().max().item() <= 2 * math.sqrt(2 / 1000) + 1e-7
    assert model.decoder_head.weight.std().item() == pytest.approx(1e-3, rel=0.05)
    # q(y|x) starts almost uniform
    q = model.predict_proba(np.random.default_rng(0).random((50, 443), dtype=np.float32))
    np.testing.assert_allclose(q, 1 / 20, atol=2e-3)


def test_model_validates_arguments():
    with pytest.raises(ValueError, match="likelihood"):
        GMDGM(5, 2, likelihood="poisson")
    with pytest.raises(ValueError):
        M2(5, 0)


# ----- evaluation -------------------------------------------------------------------------------------------------
def test_many_to_one_and_hungarian_on_hand_made_examples():
    clusters = np.array([0, 0, 0, 1, 1, 2, 2])
    classes = np.array([0, 0, 0, 0, 0, 1, 1])
    # many-to-one: outputs 0 and 1 both map to class 0, output 2 to class 1: all correct
    assert ev.many_to_one_mapping(clusters, classes).tolist() == [0, 0, 1]
    assert ev.cluster_and_label_accuracy(clusters, classes) == 1.0
    # one-to-one: output 1 is left without a class, its 2 examples are errors
    assert ev.hungarian_mapping(clusters, classes).tolist() == [0, -1, 1]
    assert ev.hungarian_accuracy(clusters, classes) == pytest.approx(5 / 7)

    clusters = np.array([0, 0, 1, 1, 2, 2, 2, 3])
    classes = np.array([5, 5, 3, 4, 3, 3, 3, 4])
    assert ev.many_to_one_mapping(clusters, classes, n_clusters=5).tolist() == [5, 3, 3, 4, -1]  # tie 3/4 -> 3
    assert ev.cluster_and_label_accuracy(clusters, classes) == pytest.approx(7 / 8)
    assert ev.hungarian_accuracy(clusters, classes) == pytest.approx(6 / 8)  # 0→5, 2→3, only one of 1, 3 →4


def test_mapping_fitted_on_one_set_applied_to_another():
    mapping = ev.many_to_one_mapping([0, 0, 1, 2], [7, 7, 1, 1])  # output 3 never seen
    assert ev.apply_mapping([0, 1, 2, 3, 5], mapping).tolist() == [7, 1, 1, -1, -1]
    assert ev.cluster_and_label_accuracy([0, 1, 3, 3], [7, 2, 3, 3], mapping) == 0.25
    out = ev.evaluate_clusters([0, 1, 2, 2], [7, 1, 1, 2], fit_clusters=[0, 0, 1, 2], fit_classes=[7, 7, 1, 1])
    assert out["many_to_one"] == 0.75 and out["many_to_one_transductive"] == 0.75  # output 2: tie 1/2 → 1
    assert out["per_class_accuracy"][7] == 1.0 and out["per_class_accuracy"][2] == 0.0


def test_confusion_matrix_and_per_class_accuracy():
    true = np.array([0, 0, 1, 1, 1, 2])
    pred = np.array([0, 3, 1, 1, 0, 2])
    m = ev.confusion_matrix(true, pred, n_true=3, n_predicted=4)
    assert m.tolist() == [[1, 0, 0, 1], [1, 2, 0, 0], [0, 0, 1, 0]]
    np.testing.assert_allclose(ev.per_class_accuracy(true, pred, 4), [0.5, 2 / 3, 1.0, np.nan])
    with pytest.raises(ValueError, match="length"):
        ev.confusion_matrix(true, pred[:3])


def test_calinski_harabasz_matches_its_definition():
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(0, 1, (20, 3)), rng.normal(4, 1, (30, 3)), rng.normal(-3, 2, (10, 3))])
    labels = np.repeat([0, 1, 2], [20, 30, 10])
    centre = X.mean(0)
    between = sum((labels == k).sum() * np.sum((X[labels == k].mean(0) - centre) ** 2) for k in range(3))
    within = sum(np.sum((X[labels == k] - X[labels == k].mean(0)) ** 2) for k in range(3))
    expected = (between / 2) / (within / (60 - 3))
    assert ev.calinski_harabasz(X, labels) == pytest.approx(expected, rel=1e-12)
    assert math.isnan(ev.calinski_harabasz(X, np.zeros(60, dtype=int)))


def test_posterior_weight_adds_the_inclusive_kl_classifier_term():
    model = _tiny(GMDGM)
    x_l, y_l, x_u = _data("bernoulli", 3, seed=2), torch.tensor([0, 2, 2]), _data("bernoulli", 4, seed=3)
    torch.manual_seed(5)
    base = model.loss(x_l, y_l, x_u, n_train=1000).loss
    torch.manual_seed(5)
    with_term = model.loss(x_l, y_l, x_u, n_train=1000, posterior_weight=0.5).loss
    # The same noise gives the same pair bounds: the term is β · mean_u Σ_y softmax(L(x,·))_y log q(y|x).
    torch.manual_seed(5)
    eps = torch.randn(3 + 4 * N_Y, 1, N_Z, dtype=torch.float64)
    pair_u = model._elbo_pairs(x_l[:0], y_l[:0], x_u, eps[3:])[1]
    target = torch.softmax(pair_u, 1)
    term = (target * torch.log_softmax(model.classifier_logits(x_u), 1)).sum(1).mean()
    torch.testing.assert_close(with_term, base - 0.5 * term, rtol=0, atol=1e-9)
    # Its gradient on the unlabelled logits is β (q − p̂) / n_u: it moves q towards the outputs with better bounds.
    logits = model.classifier_logits(x_u).detach().requires_grad_(True)
    loss = -0.5 * (target.detach() * torch.log_softmax(logits, 1)).sum(1).mean()
    (grad,) = torch.autograd.grad(loss, logits)
    torch.testing.assert_close(grad, 0.5 * (torch.softmax(logits, 1) - target.detach()) / 4)


def test_split_move_copies_the_source_and_moves_the_prior_to_the_worst_explained():
    from models.splitting import split_poorly_explained

    model = _tiny(GMDGM, likelihood="gaussian")
    g = torch.Generator().manual_seed(0)
    x = torch.cat([torch.randn(200, N_X, generator=g, dtype=torch.float64) * 0.3,
                   torch.randn(20, N_X, generator=g, dtype=torch.float64) * 0.3 + 6.0])  # a far, rare group
    free = [1, 3, 4]
    with torch.no_grad():
        usage = np.bincount(model.classifier_logits(x).argmax(1).numpy(), minlength=N_Y)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    records = split_poorly_explained(model, x, free, worst_share=20 / 220, max_splits=1, min_examples=5)
    assert len(records) == 1
    r = records[0]
    s, k = r["source"], r["target"]
    assert k in free and k != s and r["examples"] >= 5
    assert r["target_former_use"] == min(usage[c] for c in free if c != s)
    # The target is a copy of the source in q(y|x) and q(z|x,y) ...
    head = model.classifier[-1]
    torch.testing.assert_close(head.weight[k], head.weight[s])
    torch.testing.assert_close(head.bias[k], head.bias[s])
    torch.testing.assert_close(model.encoder.y_weight[k], model.encoder.y_weight[s])
    # ... whose p(z|y) mean is the mean code q(z|x, s) of the examples it was split for.
    assert r["mean_bound"] < r["source_median_bound"]
    mean, _ = model.components()
    assert not torch.allclose(mean[k], before["prior_mean.weight"][:, k] + before["prior_mean.bias"])
    # Nothing else changed: the other outputs, the decoder, the source.
    for name, p in model.named_parameters():
        if name.startswith(("decoder", "encoder.first", "encoder.rest", "encoder_head", "classifier.0")):
            torch.testing.assert_close(p, before[name])
    torch.testing.assert_close(mean[s], before["prior_mean.weight"][:, s] + before["prior_mean.bias"])
    with pytest.raises(TypeError):
        split_poorly_explained(_tiny(M2), x, free)


def test_split_moves_run_on_schedule_and_protect_earlier_targets_across_resumes(tmp_path):
    from models.splitting import SplitMoves

    model = _tiny(GMDGM, likelihood="gaussian")
    g = torch.Generator().manual_seed(0)
    x = torch.cat([torch.randn(200, N_X, generator=g, dtype=torch.float64) * 0.3,
                   torch.randn(20, N_X, generator=g, dtype=torch.float64) * 0.3 + 6.0])
    path = tmp_path / "moves.json"
    lines = []
    moves = SplitMoves(model, x, [1, 3, 4], epochs=[2, 3], path=path, say=lines.append,
                       worst_share=20 / 220, max_splits=1, min_examples=5)
    assert moves.after_epoch(1) == [] and not path.exists()
    first = moves.after_epoch(2)
    assert len(first) == 1 and first[0]["epoch"] == 2 and len(lines) == 1 and path.exists()
    # A resumed run reads the moves back and never overwrites their targets.
    resumed = SplitMoves(model, x, [1, 3, 4], epochs=[2, 3], path=path, resume=True, worst_share=20 / 220,
                         max_splits=1, min_examples=5)
    assert resumed.done == first
    second = resumed.after_epoch(3)
    assert all(r["target"] != first[0]["target"] for r in second)
    # A fresh (not resumed) run starts without the moves of an earlier run in the same place.
    assert SplitMoves(model, x, [1, 3, 4], epochs=[2, 3], path=path).done == [] and not path.exists()
    assert SplitMoves(_tiny(M2), x, [1, 3, 4], epochs=[1]).after_epoch(1) == []  # M2 has no p(z|y) to split


@pytest.mark.parametrize("cls", [GMDGM, M2])
def test_several_mc_samples_average_the_brute_force_bounds(cls):
    torch.manual_seed(0)
    prior = semi_unsupervised_prior(N_CLASSES, [1], N_EXTRA)
    model = cls(N_X, N_CLASSES, N_EXTRA, hidden=HIDDEN, n_z=N_Z, prior=prior, mc_samples=2).double()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.3 * torch.randn_like(p))
    x_l, y_l, x_u = _data("bernoulli", 3, seed=2), torch.tensor([0, 4, 2]), _data("bernoulli", 4, seed=3)
    eps = torch.randn(3 + 4 * N_Y, 2, N_Z, dtype=torch.float64)
    got_l, got_u = model._elbo_pairs(x_l, y_l, x_u, eps)
    want_l = torch.stack([
        torch.stack([_brute_force_pair(model, x_l[i : i + 1], int(y_l[i]), eps[i, s : s + 1]) for s in range(2)]).mean()
        for i in range(3)])
    eps_u = eps[3:].view(4, N_Y, 2, N_Z)
    want_u = torch.stack([
        torch.stack([_brute_force_pair(model, x_u, y, eps_u[:, y, s]) for s in range(2)]).mean(0) for y in range(N_Y)], 1)
    # 1e-6 as in the single-sample tests: log p(y) comes from the float32 prior buffer
    torch.testing.assert_close(got_l, want_l, rtol=0, atol=1e-6)
    torch.testing.assert_close(got_u, want_u, rtol=0, atol=1e-6)
