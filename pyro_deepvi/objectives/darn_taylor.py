"""DARN's score function with a first-order Taylor baseline (Gregor et al., 2014, "Deep AutoRegressive Networks").

With the description length f(h) = log q(h | x) − log p(x, h) (in nats here), the
guide's gradient ∇_φ E_q[f] = Σ_h q(h | x) ∇_φ log q(h | x) f(h) gets the
baseline b(h) = f(h) + f'(h)(h' − h), f's first-order Taylor expansion around h
evaluated at h' = ½, so that f(h) − b(h) = f'(h)(h − ½). It is applied unit by
unit, each unit's conditional scored with its own signal::

    ∇_φ E_q[f] ≈ Σ_j ∇_φ log q(h_j | h_{<j}, x) · ∂f/∂h_j · (h_j − ½),     h ~ q(h | x)

which is the seed's final form Σ_h q ∇q / (2q) · df/dh: for a binary unit,
(h_j − ½) ∇ log q(h_j) = ∇ q(h_j = 1) / (2 q(h_j)), so ∂f/∂h_j is backpropagated
through the sampled unit, scaled by 1 / (2 q(h_j)). (Multiplying all of
∇ log q(h | x) by the one number Σ_j ∂f/∂h_j (h_j − ½) would instead let every
unit's noise reach every other unit's gradient.)

∂f/∂h comes from scoring the model and the guide again at h held as a leaf
tensor (a Bernoulli log-density h·logits − softplus(logits) is differentiable in
h), so it includes h_j's effect on its children in p and on the later units'
conditionals in q. The correction term Σ_h ∇_φ q(h | x) b(h), not zero in
general, is dropped, as in DARN: the estimator is biased, trading that bias for
a lower variance than the plain score function. The model's parameters get the
ordinary gradient of log p(x, h).

Every latent site of the guide must lie in the data plate and be Bernoulli (any
batch and event shape) or a :class:`~pyro_deepvi.nn.AutoregressiveBernoulli`
(DARN's encoder, whose unit j has logit f_j(h_{<j}, c)).
"""

import pyro
import torch
from pyro import poutine
from pyro.distributions import Bernoulli, Independent
from pyro.distributions.util import scale_and_mask, sum_rightmost
from pyro.infer.enum import get_importance_trace
from pyro.poutine.util import site_is_subsample

from ..importance import PARTICLES, check_local, total
from ..nn import AutoregressiveBernoulli
from .estimators import ELBO, _with_gradient_of


def _units(site):
    """The site's distribution of binary units, and how many trailing dims of its per-unit log q are events."""
    fn, event_dim = site["fn"], 0
    while isinstance(fn, Independent):
        event_dim += fn.reinterpreted_batch_ndims
        fn = fn.base_dist
    if isinstance(fn, AutoregressiveBernoulli):
        return fn, event_dim + 1
    if isinstance(fn, Bernoulli):
        return fn, event_dim
    raise ValueError(
        f"darn_taylor needs Bernoulli guide sites, but site {site['name']!r} is {type(site['fn']).__name__}; "
        "use the 'elbo', 'tracegraph_elbo' or 'iwae' objective"
    )


def _unit_log_q(fn, h):
    """log q(h_j | h_{<j}, ·) of each unit."""
    if isinstance(fn, AutoregressiveBernoulli):
        return Bernoulli(logits=fn.made.logits(h, fn.conditioning)).log_prob(h)
    return fn.log_prob(h)


def _latent_sites(trace):
    return [
        name
        for name, site in trace.nodes.items()
        if site["type"] == "sample" and not site["is_observed"] and not site_is_subsample(site)
    ]


class TaylorBaselineELBO(ELBO):
    """The evidence lower bound with DARN's Taylor-baseline gradient for Bernoulli guides (biased)."""

    def __init__(self, num_particles=1):
        self.num_particles = num_particles

    def traces(self, model, guide, max_plate_nesting, args, kwargs):
        """Draw h ~ q(h | x), then score the guide and the model at h held as leaf tensors that require grad."""
        particles = pyro.plate(PARTICLES, self.num_particles, dim=-(max_plate_nesting + 1))
        sampled = poutine.trace(particles(guide)).get_trace(*args, **kwargs)
        for name in _latent_sites(sampled):
            site = sampled.nodes[name]
            _units(site)
            site["value"] = site["value"].detach().requires_grad_()
        # As importance_traces, with the replay outside the particle plate so that the plate still broadcasts.
        replayed = poutine.replay(particles(guide), trace=sampled)
        return get_importance_trace("flat", max_plate_nesting + 1, particles(model), replayed, args, kwargs)

    def loss(self, model_trace, guide_trace, weights):
        check_local(weights, "darn_taylor")
        sites = [guide_trace.nodes[name] for name in _latent_sites(guide_trace)]
        values = [site["value"] for site in sites]
        # f = −log w per particle and data point; each depends on its own h only.
        slopes = torch.autograd.grad(-total(weights).sum(), values, retain_graph=True)
        score = 0.0
        for site, h, slope in zip(sites, values, slopes):
            units, event_dim = _units(site)
            h = h.detach()
            signal = slope * (h - 0.5)  # f(h) − b(h), one per unit
            per_unit = _unit_log_q(units, h) * signal
            score = score + scale_and_mask(sum_rightmost(per_unit, event_dim), mask=site["mask"]).sum()
        log_p = (weights.log_p_obs + weights.log_p_latent).sum()
        surrogate = weights.scale * (score - log_p) / self.num_particles - weights.log_p_global.mean()
        return _with_gradient_of(self._bound_loss(weights), surrogate)
