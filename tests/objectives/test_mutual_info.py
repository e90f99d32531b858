"""The mutual autoencoder's term C·|Î(x, z) − M|: the bound, its two gradients, its place in a run."""

import dataclasses
import math

import pyro
import pytest
import torch
from pyro import poutine

from pyro_deepvi.engine import TrainConfig, Trainer, build
from pyro_deepvi.models.dlgm import DLGM
from pyro_deepvi.objectives.mutual_info import MutualInfo
from pyro_deepvi.registry import TERMS


def ppca(seed=0, data_dim=6, sigma=0.5):
    """PPCA with orthogonal columns of W: p(z|x) has a diagonal covariance, so a linear r_w can be exact."""
    torch.manual_seed(seed)
    model = DLGM((data_dim,), 100, latent_dims=(2,), hidden_dims=(), likelihood="gaussian")
    q, _ = torch.linalg.qr(torch.randn(data_dim, 2))
    with torch.no_grad():
        model.decoder[0].weight.copy_(q * torch.tensor([2.0, 0.7]))
        model.obs_log_scale.fill_(math.log(sigma))
    return model


def true_mi(model):
    """I(x; z) of PPCA: ½ log det(I + WᵀW / σ²)."""
    W = model.decoder[0].weight
    var = model.obs_log_scale.exp() ** 2
    return 0.5 * torch.logdet(torch.eye(W.shape[1]) + W.T @ W / var).item()


def model_trace(model, batch=64):
    x = torch.zeros(batch, *model.data_shape)
    return poutine.trace(model.model).get_trace(x)


def fit_r(term, trace, steps, lr=3e-2):
    optimizer = torch.optim.Adam(term.r.parameters(), lr=lr)
    for _ in range(steps):
        optimizer.zero_grad()
        term(trace, None, None)
        term.auxiliary_loss.backward()
        optimizer.step()


def test_registered_and_built_from_the_model():
    model = ppca()
    term = TERMS.get("mutual_info").from_model(model, target=1.5, hidden_dims=[8], num_samples=16)
    assert isinstance(term, MutualInfo) and term.site == "h1" and term.target == 1.5
    assert not any(p is q for p in term.parameters() for q in model.parameters())
    assert all(not k.startswith("model") for k in term.state_dict())  # the model is not checkpointed twice
    with pytest.raises(ValueError, match="not among the model's latent sites"):
        MutualInfo.from_model(model, target=1.0, site="h9")


def test_bound_is_tight_and_below_the_true_mi_of_ppca():
    model = ppca()
    for p in model.parameters():
        p.requires_grad_(False)
    term = MutualInfo.from_model(model, target=0.0, hidden_dims=(), num_samples=256)
    trace = model_trace(model)
    fit_r(term, trace, 400)
    torch.manual_seed(1)
    with torch.no_grad():
        generative, n = term.sample(trace, 20000)
        z = generative.nodes["h1"]["value"]
        x = generative.nodes["x"]["value"]
        log_r = term.log_r(z, x)
    entropy = 0.5 * 2 * math.log(2 * math.pi * math.e)
    estimate = entropy + log_r.mean().item()
    se = log_r.std().item() / math.sqrt(n)
    truth = true_mi(model)
    assert truth > 1.5
    assert abs(estimate - truth) < 0.06, (estimate, truth)  # 1.941 vs 1.959 here
    assert estimate < truth + 3 * se, (estimate, truth, se)
    # The same value through the term's own interface.
    assert abs(term.estimate(trace, 20000) - truth) < 0.06
    assert abs(term.last["entropy"] - entropy) < 1e-5


def _grads(term, model, trace, target, seed=0):
    term.target = target
    term.zero_grad()
    model.zero_grad()
    torch.manual_seed(seed)
    value = term(trace, None, None)
    (value + term.auxiliary_loss).backward()  # as the objective adds them, with weight C = 1
    return value, [p.grad.clone() for p in term.r.parameters()], model.decoder[0].weight.grad.clone()


def test_gradients_r_maximizes_the_bound_and_the_model_follows_the_target():
    model = ppca()
    term = MutualInfo.from_model(model, target=0.0, hidden_dims=(8,))
    trace = model_trace(model)
    fit_r(term, trace, 100)
    torch.manual_seed(0)
    mi = term.estimate(trace, 64)  # the draws of seed 0: the Î the gradients see
    low_value, low_r, low_theta = _grads(term, model, trace, target=mi - 1.0)
    high_value, high_r, high_theta = _grads(term, model, trace, target=mi + 1.0)
    assert abs(low_value.item() - 1.0) < 1e-4 and abs(high_value.item() - 1.0) < 1e-4  # |Î − M|
    assert term.last["mi"] == pytest.approx(mi, abs=1e-4)

    # r_w: the gradient of −E log r_w, whatever the side of M.
    for a, b in zip(low_r, high_r):
        assert torch.allclose(a, b)
    torch.manual_seed(0)
    generative, _ = term.sample(trace)
    z, x = generative.nodes["h1"]["value"].detach(), generative.nodes["x"]["value"].detach()
    expected = torch.autograd.grad(-term.log_r(z, x).mean(), list(term.r.parameters()))
    for a, b in zip(low_r, expected):
        assert torch.allclose(a, b, atol=1e-6)
    with torch.no_grad():  # a descent step on w raises Î at the same draws
        before = term.log_r(z, x).mean()
        for p, g in zip(term.r.parameters(), low_r):
            p -= 1e-3 * g
        assert term.log_r(z, x).mean() > before
        for p, g in zip(term.r.parameters(), low_r):
            p += 1e-3 * g

    # θ: the gradient of |Î − M|, so its sign flips with the side of M ...
    assert low_theta.abs().sum() > 0
    assert torch.allclose(high_theta, -low_theta)
    # ... and a descent step with M above Î raises Î (same draws, r_w fixed).
    with torch.no_grad():
        model.decoder[0].weight -= 1e-2 * high_theta / high_theta.norm()
    torch.manual_seed(0)
    assert term.estimate(trace, 64) > mi


def test_bernoulli_x_gets_a_reinforce_gradient():
    torch.manual_seed(0)
    model = DLGM((10,), 100, latent_dims=(2,), hidden_dims=(8,), likelihood="bernoulli")
    term = MutualInfo.from_model(model, target=0.0, hidden_dims=(8,), num_samples=32)
    trace = model_trace(model, batch=16)
    value = term(trace, None, None)
    value.backward()
    grad = model.decoder[-1].weight.grad
    assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0
    assert value.item() == pytest.approx(abs(term.last["mi"]), abs=1e-5)


def test_hierarchical_model_and_run_objective():
    config = TrainConfig(
        data="digits", latent_dims=(3, 2), hidden_dims=(8,), terms={"mutual_info": 2.0},
        term_args={"mutual_info": {"target": 2.0, "hidden_dims": [8]}}, progress=False,
    )
    train = config.load_data("train")
    components = build(config, train)
    term = components.objective.terms["mutual_info"]
    assert term.site == "h2"
    batch = {"x": train.x[:20].bernoulli(), "index": torch.arange(20)}
    loss = components(batch)
    loss.backward()
    parts = components.objective.parts
    assert parts["mutual_info"].item() == pytest.approx(abs(term.last["mi"] - 2.0), abs=1e-5)
    assert all(p.grad is not None for p in term.r.parameters())


def _refit_mi(trainer):
    """Î of a trained model, with a fresh r_w fitted while the model is frozen."""
    model = trainer.components.model
    for p in model.parameters():
        p.requires_grad_(False)
    term = MutualInfo.from_model(model, target=0.0, hidden_dims=(32,), num_samples=200)
    trace = model_trace(model, batch=100)
    fit_r(term, trace, 300, lr=1e-2)
    torch.manual_seed(0)
    return term.estimate(trace, 5000)


def _train(tmp_path, name, **options):
    config = TrainConfig(
        data="digits", latent_dims=(4,), hidden_dims=(32,), epochs=20, batch_size=100, lr=3e-3,
        eval_every=0, progress=False, out=str(tmp_path / name), seed=0, **options,
    )
    trainer = Trainer(config)
    trainer.fit()
    return trainer


def test_training_moves_the_mutual_information_toward_the_target(tmp_path):
    target = 4.0
    plain = _train(tmp_path, "plain")
    constrained = _train(tmp_path, "mae", terms={"mutual_info": 10}, term_args={"mutual_info": {"target": target}})
    without, with_term = _refit_mi(plain), _refit_mi(constrained)
    assert without < target - 1.5, without  # the target is above the no-term value
    assert abs(with_term - target) < abs(without - target) - 1.0, (without, with_term)
    # The term's own running estimate agrees with the refitted one.
    last = constrained.components.objective.terms["mutual_info"].last["mi"]
    assert abs(last - with_term) < 0.5, (last, with_term)


def test_r_w_learns_while_the_penalty_weight_is_zero():
    """With C = 0 (a warm-up schedule's start) the model gets no gradient from the term, r_w still does."""
    config = TrainConfig(
        data="digits", latent_dims=(2,), hidden_dims=(8,), terms={"mutual_info": 0.0},
        term_args={"mutual_info": {"target": 2.0, "hidden_dims": [8]}}, progress=False,
    )
    train = config.load_data("train")
    components = build(config, train)
    batch = {"x": train.x[:20].bernoulli(), "index": torch.arange(20)}
    components(batch)
    without_term = build(dataclasses.replace(config, terms={}, term_args={}), train)
    without_term.load_state_dict(components.state_dict(), strict=False)
    without_term(batch)  # warm-up: guesses the plate nesting (random draws)
    pyro.set_rng_seed(3)
    components(batch).backward()
    pyro.set_rng_seed(3)
    without_term(batch).backward()
    term = components.objective.terms["mutual_info"]
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in term.r.parameters())
    for (name, p), q in zip(components.model.named_parameters(), without_term.model.parameters()):
        assert torch.allclose(p.grad, q.grad, atol=1e-5), name
