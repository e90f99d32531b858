"""Base estimators of a variational bound, each built on Pyro's own ELBO code.

An estimator turns one pair of particle-plated traces into a differentiable
loss whose value is the negative bound (in full-data units: the data plate
scales a minibatch by N / B) and whose gradient is the estimator's:

- :class:`ELBO`: ``Trace_ELBO``'s surrogate (reparameterization, or the score
  function for non-reparameterized sites).
- :class:`TraceGraphELBO`: ``TraceGraph_ELBO``'s Rao-Blackwellized score
  function with baselines.
- :class:`IWAE`: the importance-weighted bound of Burda et al. (2016),
  L_k = Σ_n log (1/k) Σ_i w_i(x_n), w_i = p(x_n, h_i) / q(h_i | x_n).
  For reparameterized guides this is ``RenyiELBO(alpha=0)``'s bound taken per
  data point: RenyiELBO sums every plate that is not shared by all sites before
  its log-sum-exp, so a factor outside the data plate (a weight prior) would turn
  it into one bound over the whole batch. Non-reparameterized (discrete) guide
  sites, to which RenyiELBO gives zero gradient, get VIMCO's leave-one-out
  score function (:mod:`~pyro_deepvi.objectives.vimco`).
- :class:`~pyro_deepvi.objectives.darn_taylor.TaylorBaselineELBO`: the ELBO with
  DARN's first-order Taylor baseline for Bernoulli guide sites (biased).

Pyro's ``TraceGraph_ELBO`` and ``RenyiELBO`` have no ``differentiable_loss``;
computing the surrogate here gives the engine one path for every loss.
"""

import math

import torch
from pyro.infer import Trace_ELBO, TraceGraph_ELBO
from pyro.infer.tracegraph_elbo import TrackNonReparam

from ..importance import check_local, importance_traces, non_reparameterized_sites, total
from . import vimco


def _with_gradient_of(value, surrogate):
    """A tensor equal to ``value`` (a number or tensor) whose gradient is that of ``surrogate``."""
    value = torch.as_tensor(value, dtype=surrogate.dtype, device=surrogate.device).detach()
    return value + (surrogate - surrogate.detach())


def _check_scores_see_the_guide(model_trace, guide_trace, discrete):
    """Refuse guide sites the model lacks next to non-reparameterized ones: Trace_ELBO weighs each
    site's score by log p − log q over the model's sites only (its ``_compute_log_r``), so a cost
    only the guide holds (a hierarchical guide's λ and −log r(λ | z)) would be left out of the score
    of the sites it depends on, a biased gradient."""
    guide_only = [
        name for name, site in guide_trace.nodes.items() if site["type"] == "sample" and name not in model_trace.nodes
    ]
    if guide_only:
        raise ValueError(
            f"the 'elbo' objective's score function for the guide's non-reparameterized site(s) "
            f"{', '.join(map(repr, discrete))} leaves out the guide's own site(s) {', '.join(map(repr, guide_only))} "
            "(not in the model), so its gradient would be biased; use the 'tracegraph_elbo' objective, whose "
            "Rao-Blackwellized score function counts every cost downstream of a site"
        )


class ELBO:
    """The evidence lower bound with ``Trace_ELBO``'s gradient estimator.

    When every guide site is reparameterized, Trace_ELBO's surrogate is the bound
    itself, −(N/B) Σ_n (1/k) Σ_i log w_i(x_n) − log p_global, and is computed from
    the log weights directly (no host synchronization per site).
    """

    def __init__(self, num_particles=1):
        self.num_particles = num_particles
        self._pyro_elbo = Trace_ELBO()

    def traces(self, model, guide, max_plate_nesting, args, kwargs):
        return importance_traces(model, guide, self.num_particles, max_plate_nesting, args, kwargs)

    def loss(self, model_trace, guide_trace, weights):
        discrete = non_reparameterized_sites(guide_trace)
        if not discrete:
            return self._bound_loss(weights)
        _check_scores_see_the_guide(model_trace, guide_trace, discrete)
        loss, surrogate = self._pyro_elbo._differentiable_loss_particle(model_trace, guide_trace)
        return _with_gradient_of(loss, surrogate) / self.num_particles

    def _bound_loss(self, weights):
        """−(N/B) Σ_n bound(x_n) − mean over particles of log p − log q outside the data plate."""
        global_part = (weights.log_p_global - weights.log_q_global).mean()
        return -(weights.scale * self.bound(total(weights)).sum() + global_part)

    def bound(self, log_w):
        """The bound per data point from log weights [particles, batch]."""
        return log_w.mean(0)


class TraceGraphELBO(ELBO):
    """The evidence lower bound with ``TraceGraph_ELBO``'s Rao-Blackwellized score function."""

    def __init__(self, num_particles=1):
        self.num_particles = num_particles
        self._pyro_elbo = TraceGraph_ELBO()

    def traces(self, model, guide, max_plate_nesting, args, kwargs):
        with TrackNonReparam():
            return importance_traces(
                model, guide, self.num_particles, max_plate_nesting, args, kwargs, graph_type="dense"
            )

    def loss(self, model_trace, guide_trace, weights):
        elbo, surrogate = self._pyro_elbo._loss_and_surrogate_loss_particle(model_trace, guide_trace)
        return _with_gradient_of(-elbo, surrogate) / self.num_particles


class IWAE(ELBO):
    """The importance-weighted bound L_k (Burda et al., 2016).

    Reparameterized sites get the pathwise gradient of L̂ = log (1/k) Σ_i w_i;
    non-reparameterized ones add VIMCO's score-function term (Mnih & Rezende,
    2016), which needs k ≥ 2.
    """

    def __init__(self, num_particles=5):
        if num_particles < 1:
            raise ValueError(f"IWAE needs at least one particle, got {num_particles}")
        self.num_particles = num_particles

    def loss(self, model_trace, guide_trace, weights):
        check_local(weights, "iwae")
        loss = self._bound_loss(weights)
        discrete = non_reparameterized_sites(guide_trace)
        if discrete:
            log_q = vimco.score_log_q(guide_trace, discrete)
            loss = loss - weights.scale * vimco.score_surrogate(total(weights), log_q).sum()
        return loss

    def bound(self, log_w):
        return torch.logsumexp(log_w, 0) - math.log(log_w.shape[0])
