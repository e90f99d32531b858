"""IWAE with discrete latents: the bounds against enumeration, VIMCO's gradient against the exact ∇L_k."""

import itertools
import math

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.infer import RenyiELBO

from pyro_deepvi import OBJECTIVES
from pyro_deepvi.data import Dataset
from pyro_deepvi.evaluation import bounds
from pyro_deepvi.objectives.vimco import learning_signals


def exact_iwae_bound(log_p, log_q, k):
    """L_k per data point by enumerating every set of k particles, weighted by its q-probability.

    ``log_p`` and ``log_q`` are [configurations, batch]; differentiable in both.
    """
    configurations = log_p.shape[0]
    tuples = torch.tensor(list(itertools.product(range(configurations), repeat=k)))  # [C^k, k]
    log_w = (log_p - log_q)[tuples]  # [C^k, k, batch]
    log_q_tuple = log_q[tuples].sum(1)
    return (log_q_tuple.exp() * (torch.logsumexp(log_w, 1) - math.log(k))).sum(0)


def test_learning_signals_match_their_definition():
    log_w = torch.tensor([[-3.0, 10.0], [-1.5, -20.0], [-4.0, 11.0], [-2.2, 9.5]], dtype=torch.float64)
    k = log_w.shape[0]
    w = log_w.exp()
    expected = torch.empty_like(log_w)
    for i in range(k):
        others = [j for j in range(k) if j != i]
        geometric = log_w[others].mean(0).exp()
        expected[i] = torch.log(w.mean(0)) - torch.log((w[others].sum(0) + geometric) / k)
    assert torch.allclose(learning_signals(log_w), expected, rtol=1e-12)


def test_bounds_sit_below_the_exact_log_likelihood_and_rise_with_k(sbn, binary_batch):
    model, guide = sbn(num_pixels=6, latent_dims=(6, 4))  # 1,024 configurations
    x = binary_batch(3, 6)
    with torch.no_grad():
        log_p, log_q = model.enumerate_log_weights(guide, x)
        log_likelihood = torch.logsumexp(log_p, 0)
        exact = {1: (log_q.exp() * (log_p - log_q)).sum(0), 2: exact_iwae_bound(log_p, log_q, 2)}
    assert (exact[1] < exact[2]).all() and (exact[2] < log_likelihood).all()

    copies = 2000  # each copy of a data point gets its own particles: one draw of L̂_k each
    data = Dataset("sbn", "test", x.repeat(copies, 1), support="binary")
    means, errors = {}, {}
    for k in (1, 2, 10, 100):
        elbo, estimate = bounds(model.model, guide, data, num_particles=k, chunk_size=100, batch_size=len(data), seed=k)
        if k == 1:
            assert torch.allclose(elbo, estimate)
        estimate = estimate.reshape(copies, len(x))
        means[k], errors[k] = estimate.mean(0), estimate.std(0) / copies**0.5
    for k in (1, 2):  # the estimates are unbiased for the exact bounds
        assert ((means[k] - exact[k]).abs() < 4 * errors[k]).all()
    for small, large in ((2, 10), (10, 100)):
        assert (means[large] - means[small] > 3 * (errors[small] ** 2 + errors[large] ** 2).sqrt()).all()
    assert (means[100] < log_likelihood + 4 * errors[100]).all()


def vimco_gradients(model, guide, x, k, copies, groups):
    """Means and standard errors of the iwae objective's gradient of −Σ_n L_k(x_n) over ``groups`` draws.

    Each draw averages ``copies`` copies of the batch, each copy with its own particles.
    """
    params = list(model.parameters()) + list(guide.parameters())
    objective = OBJECTIVES.get("iwae")(particles=k)
    batch = x.repeat(copies, 1)  # a data plate of the whole batch: scale 1
    draws = []
    for group in range(groups):
        pyro.set_rng_seed(group)
        grads = torch.autograd.grad(objective(model.model, guide, x=batch), params)
        draws.append(torch.cat([g.flatten() for g in grads]) / copies)
    draws = torch.stack(draws)
    return draws.mean(0), draws.std(0) / groups**0.5


def flat_gradient(loss, params):
    return torch.cat([g.flatten() for g in torch.autograd.grad(loss, params)])


@pytest.mark.parametrize("autoregressive", [False, True])
def test_vimco_mean_gradient_matches_the_exact_gradient_of_L_k(sbn, autoregressive, binary_batch):
    model, guide = sbn(num_pixels=4, latent_dims=(2, 1), autoregressive=autoregressive)  # 8 configurations, 8^3 sets
    x, k = binary_batch(2, 4), 3
    log_p, log_q = model.enumerate_log_weights(guide, x)
    exact = flat_gradient(-exact_iwae_bound(log_p, log_q, k).sum(), list(model.parameters()) + list(guide.parameters()))
    mean, error = vimco_gradients(model, guide, x, k, copies=1000, groups=40)
    assert ((mean - exact).abs() < 4 * error + 1e-9).all(), ((mean - exact) / error)
    num_model = sum(p.numel() for p in model.parameters())
    # the test has power: the guide's exact gradient is many standard errors from zero
    # (a MADE's masked-out weights have no gradient at all)
    guide_exact, guide_error = exact[num_model:], error[num_model:]
    assert (guide_exact.abs() / guide_error)[guide_error > 0].max() > 20


def test_renyi_elbo_gives_the_guide_no_gradient_and_vimco_does(sbn, binary_batch):
    """Pyro's RenyiELBO(alpha=0) drops the score function of discrete guide sites; VIMCO supplies it.

    On the same draws both give the model the same gradient, Σ_i w̃_i ∇ log p(x, h_i).
    """
    model, guide = sbn(num_pixels=4, latent_dims=(2, 1))
    x, k = binary_batch(6, 4), 3
    model_params, guide_params = list(model.parameters()), list(guide.parameters())
    renyi = RenyiELBO(alpha=0, num_particles=k, vectorize_particles=True, max_plate_nesting=1)
    pyro.set_rng_seed(0)
    renyi.loss_and_grads(model.model, guide, x=x)
    assert all(p.grad is None or (p.grad == 0).all() for p in guide_params)
    renyi_model_grads = [p.grad.clone() for p in model_params]

    objective = OBJECTIVES.get("iwae")(particles=k)
    objective(model.model, guide, x=x)  # the first call guesses the plate nesting
    pyro.set_rng_seed(0)
    grads = torch.autograd.grad(objective(model.model, guide, x=x), model_params + guide_params)
    for ours, theirs in zip(grads, renyi_model_grads):
        assert torch.allclose(ours, theirs, rtol=1e-8, atol=1e-10)
    assert all((g != 0).any() for g in grads[len(model_params) :])


def test_iwae_with_discrete_latents_needs_two_particles(sbn, binary_batch):
    model, guide = sbn()
    with pytest.raises(ValueError, match="VIMCO.*at least 2 particles.*got 1"):
        OBJECTIVES.get("iwae")(particles=1)(model.model, guide, x=binary_batch(3, 5))


def test_iwae_refuses_global_discrete_latents(sbn, binary_batch):
    model, guide = sbn()

    def global_switch_guide(x, y=None, index=None):
        pyro.sample("switch", dist.Bernoulli(torch.tensor(0.5, dtype=torch.float64)))
        guide(x)

    def global_switch_model(x, y=None, index=None):
        pyro.sample("switch", dist.Bernoulli(torch.tensor(0.3, dtype=torch.float64)))
        model.model(x)

    with pytest.raises(ValueError, match="iwae needs one importance weight per data point.*'switch'"):
        OBJECTIVES.get("iwae")(particles=3)(global_switch_model, global_switch_guide, x=binary_batch(3, 5))


def test_iwae_loss_is_the_negative_bound_in_full_data_units(sbn, binary_batch):
    model, guide = sbn(num_data=50)
    x = binary_batch(5, 5)
    objective = OBJECTIVES.get("iwae")(particles=4)
    loss = objective(model.model, guide, x=x, index=torch.arange(5))
    assert loss.item() == pytest.approx(-50 * objective.parts["bound"].item(), rel=1e-10)  # N / B = 10
