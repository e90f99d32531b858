"""Plug-in terms with discrete guide sites: the rate's score-function path, refusals for pathwise-only terms."""

import pyro
import pytest
import torch

from pyro_deepvi import OBJECTIVES, TERMS
from pyro_deepvi.objectives import Objective
from pyro_deepvi.objectives.estimators import ELBO


def exact_rate(model, guide, x):
    """R(x_n) = Σ_c q(h_c | x_n) (log q(h_c | x_n) − log p(h_c)), by enumeration, [batch]."""
    h1, h2 = (h.unsqueeze(1) for h in model.configurations(x.dtype))
    log_q = guide.log_prob(x, h1, h2)
    log_p_latent = model.p_h2(h2).log_prob(h2) + model.p_h1(h2).log_prob(h1)
    return (log_q.exp() * (log_q - log_p_latent)).sum(0)


def rate_term_gradients(model, guide, x, objective_name, particles, groups):
    """Means and standard errors over ``groups`` draws of the rate term's gradient, per data point."""
    params = list(model.parameters()) + list(guide.parameters())
    term = TERMS.get("rate").from_model(model)
    objective = OBJECTIVES.get(objective_name)(particles=particles)
    objective.add_term("rate", term, 1.0)
    objective(model.model, guide, x=x)  # warm-up: the plate nesting
    draws = []
    for group in range(groups):
        pyro.set_rng_seed(group)
        # the term's value is what objective.forward adds (times N = batch size, weight 1) to the bound's loss
        _, guide_trace, weights = _traces(objective, model, guide, x)
        value = term(None, guide_trace, weights)
        grads = torch.autograd.grad(value, params, allow_unused=True, materialize_grads=True)
        draws.append(torch.cat([g.flatten() for g in grads]))
    draws = torch.stack(draws)
    return draws.mean(0), draws.std(0) / groups**0.5


def _traces(objective, model, guide, x):
    from pyro_deepvi.importance import log_weights

    model_trace, guide_trace = objective._traces(model.model, guide, (), {"x": x})
    return model_trace, guide_trace, log_weights(model_trace, guide_trace, objective._max_plate_nesting)


@pytest.mark.parametrize("objective_name,particles", [("elbo", 1), ("iwae", 4), ("tracegraph_elbo", 1)])
def test_rate_gradient_matches_the_enumerated_gradient_with_discrete_guides(sbn, binary_batch, objective_name, particles):
    model, guide = sbn(num_pixels=4, latent_dims=(2, 1))
    x = binary_batch(2, 4).repeat(500, 1)  # many copies: each gets its own draws
    params = list(model.parameters()) + list(guide.parameters())
    exact = torch.autograd.grad(exact_rate(model, guide, x).mean(), params, allow_unused=True, materialize_grads=True)
    exact = torch.cat([g.flatten() for g in exact])
    mean, error = rate_term_gradients(model, guide, x, objective_name, particles, groups=30)
    assert ((mean - exact).abs() < 4 * error + 1e-9).all(), ((mean - exact) / error)
    num_model = sum(p.numel() for p in model.parameters())
    # power: the guide's exact gradient is far from zero, which a pathwise-only term would give it
    assert (exact[num_model:].abs() / error[num_model:]).max() > 20


@pytest.mark.parametrize("name", ["mmd", "tc", "anchor"])
def test_pathwise_terms_refuse_discrete_guides_by_name(name, sbn, binary_batch):
    model, guide = sbn(num_pixels=4, latent_dims=(2, 1))
    objective = Objective(ELBO(1))
    objective.add_term(name, TERMS.get(name)("h2"), 1.0)  # the test model lists no latent_shapes: name the site
    with pytest.raises(ValueError, match=rf"term\(s\) '{name}' are differentiated pathwise only.*'h1', 'h2'"):
        objective(model.model, guide, x=binary_batch(8, 4))
