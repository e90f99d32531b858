"""Base estimators of a variational bound, each built on Pyro's own ELBO code.

An estimator turns one pair of particle-plated traces into a differentiable
loss whose value is the negative bound (in full-data units: the data plate
scales a minibatch by N / B) and whose gradient is the estimator's:

- :class:`ELBO`: ``Trace_ELBO``'s surrogate (reparameterization, or the score
  function for non-reparameterized sites).
- :class:`TraceGraphELBO`: ``TraceGraph_ELBO``'s Rao-Blackwellized score
  function with the sites' own baselines; with k ≥ 2 particles, every other
  non-reparameterized site gets the leave-one-out baseline, the mean of its
  downstream cost over the other k − 1 particles.
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
from collections import defaultdict

import torch
from pyro.infer import Trace_ELBO, TraceGraph_ELBO
from pyro.infer.tracegraph_elbo import TrackNonReparam
from pyro.infer.util import MultiFrameTensor
from pyro.ops.provenance import detach_provenance, get_provenance

from ..importance import PARTICLES, check_local, importance_traces, non_reparameterized_sites, total
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


def _downstream_costs(model_trace, guide_trace):
    """Each non-reparameterized guide site's downstream cost, Σ log p − Σ log q over the sites
    whose log-density depends on its value (by provenance, as Pyro's ``TraceGraph_ELBO`` collects
    it), summed to the site's plates: {name: tensor shaped like the site's log q}."""
    costs = defaultdict(MultiFrameTensor)
    for trace, sign in ((model_trace, 1.0), (guide_trace, -1.0)):
        for site in trace.nodes.values():
            if site["type"] == "sample":
                for name in get_provenance(site["log_prob_sum"]):
                    costs[name].add((site["cond_indep_stack"], sign * site["log_prob"]))
    return {
        name: detach_provenance(cost.sum_to(guide_trace.nodes[name]["cond_indep_stack"])).detach()
        for name, cost in costs.items()
    }


def _set_leave_one_out_baselines(model_trace, guide_trace):
    """Give every non-reparameterized guide site that declares no baseline of its own the
    leave-one-out baseline b_i = (1/(k − 1)) Σ_{j≠i} f_j, f_j its downstream cost in particle j
    (Kool, van Hoof & Welling 2019; Mnih & Rezende 2016 use it for VIMCO). The other particles'
    draws are independent of particle i's, so E[∇log q(z_i) b_i] = 0 and the score function
    stays unbiased; b_i removes the bulk of f_i (log p(x | z), hundreds of nats per document in a
    DEF) that otherwise multiplies a zero-mean score."""
    for name, cost in _downstream_costs(model_trace, guide_trace).items():
        site = guide_trace.nodes[name]
        if "baseline" in site["infer"]:
            continue
        dim = next(frame.dim for frame in site["cond_indep_stack"] if frame.name == PARTICLES)
        others = (cost.sum(dim, keepdim=True) - cost) / (cost.shape[dim] - 1)
        site["infer"] = {**site["infer"], "baseline": {"baseline_value": others}}


class TraceGraphELBO(ELBO):
    """The evidence lower bound with ``TraceGraph_ELBO``'s Rao-Blackwellized score function;
    with k ≥ 2 particles, the leave-one-out baseline for sites without a baseline of their own."""

    def __init__(self, num_particles=1):
        self.num_particles = num_particles
        self._pyro_elbo = TraceGraph_ELBO()

    def traces(self, model, guide, max_plate_nesting, args, kwargs):
        with TrackNonReparam():
            return importance_traces(
                model, guide, self.num_particles, max_plate_nesting, args, kwargs, graph_type="dense"
            )

    def loss(self, model_trace, guide_trace, weights):
        if self.num_particles > 1:
            _set_leave_one_out_baselines(model_trace, guide_trace)
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
