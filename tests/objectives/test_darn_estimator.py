"""DARN's Taylor-baseline estimator against the seed's formula by hand; gradient variances of score functions."""

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.nn import PyroModule
from torch import nn

from pyro_deepvi import OBJECTIVES
from pyro_deepvi.importance import log_weights
from pyro_deepvi.models import data_plate
from pyro_deepvi.objectives import TaylorBaselineELBO


def unit_logits_of_h1(guide, x, h1):
    """The logit of each unit of h1 under q(h1 | x), one unit at a time."""
    if not guide.autoregressive:
        return guide.encoder(x)
    conditioning = guide.encoder.condition(x)
    return torch.stack([guide.encoder.logit(h1, conditioning, j) for j in range(h1.shape[-1])], -1)


@pytest.mark.parametrize("autoregressive", [False, True])
def test_taylor_signal_is_the_seeds_formula_by_hand(sbn, autoregressive, binary_batch):
    """Guide: Σ_j ∇ log q(h_j | h_<j, x) · ∂f/∂h_j · (h_j − ½), f = log q(h | x) − log p(x, h); model: −∇ log p(x, h).

    ∂f/∂h_j includes h_j's effect on q's later conditionals: h2's in q(h2 | h1), and, with an
    autoregressive guide, h1's later units.
    """
    model, guide = sbn(num_pixels=5, latent_dims=(3, 2), num_data=40, autoregressive=autoregressive)
    x, index, k = binary_batch(4, 5), torch.arange(4), 2
    estimator = TaylorBaselineELBO(k)
    pyro.set_rng_seed(0)
    model_trace, guide_trace = estimator.traces(model.model, guide, 1, (), {"x": x, "index": index})
    loss = estimator.loss(model_trace, guide_trace, log_weights(model_trace, guide_trace, 1))
    model_params, guide_params = list(model.parameters()), list(guide.parameters())
    grads = torch.autograd.grad(loss, model_params + guide_params)

    h1, h2 = (guide_trace.nodes[name]["value"].detach().clone().requires_grad_() for name in ("h1", "h2"))
    assert h1.shape == (k, 4, 3)
    f = guide.log_prob(x, h1, h2) - model.log_joint(x, h1, h2)  # [k, 4]; f depends on h1 through q(h2 | h1) too
    slope1, slope2 = torch.autograd.grad(f.sum(), [h1, h2])
    h1, h2 = h1.detach(), h2.detach()
    unit_log_q1 = dist.Bernoulli(logits=unit_logits_of_h1(guide, x, h1)).log_prob(h1)
    unit_log_q2 = dist.Bernoulli(logits=guide.encoder_top(h1)).log_prob(h2)
    scale = 40 / 4
    guide_surrogate = scale / k * ((unit_log_q1 * slope1 * (h1 - 0.5)).sum() + (unit_log_q2 * slope2 * (h2 - 0.5)).sum())
    model_surrogate = -scale / k * model.log_joint(x, h1, h2).sum()
    expected = torch.autograd.grad(model_surrogate, model_params) + torch.autograd.grad(guide_surrogate, guide_params)
    for ours, by_hand in zip(grads, expected):
        assert torch.allclose(ours, by_hand, rtol=1e-10, atol=1e-12)
    assert loss.item() == pytest.approx(scale * f.detach().mean(0).sum().item(), rel=1e-12)  # −ELBO


def test_darn_refuses_non_bernoulli_guides():
    def model(x, y=None, index=None):
        with data_plate(10, x, index):
            z = pyro.sample("z", dist.Normal(torch.zeros(len(x)), 1.0))
            pyro.sample("x", dist.Normal(z.unsqueeze(-1).expand(x.shape), 1.0).to_event(1), obs=x)

    def guide(x, y=None, index=None):
        with data_plate(10, x, index):
            pyro.sample("z", dist.Normal(torch.zeros(len(x)), 1.0))

    with pytest.raises(ValueError, match="darn_taylor needs Bernoulli guide sites, but site 'z' is Normal"):
        OBJECTIVES.get("darn_taylor")()(model, guide, x=torch.zeros(3, 2))


def gradient_draws(objective_name, model, guide, x, params, repeats, particles=1):
    """``repeats`` gradients of one objective on one batch, [repeats, number of parameters]."""
    objective = OBJECTIVES.get(objective_name)(particles=particles)
    objective(model, guide, x=x)  # the first call guesses the plate nesting
    draws = []
    for seed in range(repeats):
        pyro.set_rng_seed(seed)
        draws.append(torch.cat([g.flatten() for g in torch.autograd.grad(objective(model, guide, x=x), params)]))
    return torch.stack(draws)


def total_variance(draws):
    return draws.var(0).sum().item()


def test_taylor_baseline_has_lower_gradient_variance_than_the_plain_score_function(sbn, binary_batch):
    model, guide = sbn(num_pixels=6, latent_dims=(6, 4))
    x, params = binary_batch(20, 6), list(guide.parameters())
    plain = gradient_draws("elbo", model.model, guide, x, params, repeats=50)
    taylor = gradient_draws("darn_taylor", model.model, guide, x, params, repeats=50)
    # measured about 1/190; the bound leaves room for the sampling error of 50 draws
    assert total_variance(taylor) < total_variance(plain) / 20
    # biased, but close here to the exact gradient of −Σ_n ELBO(x_n), by enumeration (measured cosine 0.995)
    log_p, log_q = model.enumerate_log_weights(guide, x)
    exact = torch.autograd.grad(-(log_q.exp() * (log_p - log_q)).sum(), params)
    cosine = torch.nn.functional.cosine_similarity(taylor.mean(0), torch.cat([g.flatten() for g in exact]), dim=0)
    assert cosine > 0.95


class IndependentCauses(PyroModule):
    """Per data point, ``groups`` independent binary causes, each the only parent of its own block of pixels.

    Trace_ELBO scores each cause with the whole data point's log p − log q; TraceGraph_ELBO
    keeps only the terms downstream of it (its prior, its guide density, its own pixels).
    """

    def __init__(self, groups=4, units=2, pixels=3, num_data=100):
        super().__init__()
        self.groups, self.pixels, self.num_data = groups, pixels, num_data
        self.prior_logits = nn.Parameter(torch.randn(groups, units))
        self.decoders = nn.ModuleList(nn.Linear(units, pixels) for _ in range(groups))
        self.encoders = nn.ModuleList(nn.Linear(pixels, units) for _ in range(groups))

    def block(self, x, g):
        return x[..., g * self.pixels : (g + 1) * self.pixels]

    def model(self, x, y=None, index=None):
        with data_plate(self.num_data, x, index):
            for g, decoder in enumerate(self.decoders):
                logits = self.prior_logits[g].expand(len(x), -1)
                h = pyro.sample(f"h{g}", dist.Bernoulli(logits=logits).to_event(1))
                pyro.sample(f"x{g}", dist.Bernoulli(logits=decoder(h)).to_event(1), obs=self.block(x, g))

    def guide(self, x, y=None, index=None):
        with data_plate(self.num_data, x, index):
            for g, encoder in enumerate(self.encoders):
                pyro.sample(f"h{g}", dist.Bernoulli(logits=encoder(self.block(x, g))).to_event(1))


def test_rao_blackwellization_lowers_the_score_functions_variance(binary_batch):
    torch.manual_seed(0)
    causes = IndependentCauses().double()
    x, params = binary_batch(10, 12), list(causes.encoders.parameters())
    plain = gradient_draws("elbo", causes.model, causes.guide, x, params, repeats=60)
    rao_blackwellized = gradient_draws("tracegraph_elbo", causes.model, causes.guide, x, params, repeats=60)
    # both are unbiased for the same gradient; Rao-Blackwellization removes the other causes' noise
    # (measured ratio about 1/17)
    assert total_variance(rao_blackwellized) < total_variance(plain) / 4
