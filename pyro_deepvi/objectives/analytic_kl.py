"""The ELBO with closed-form KL terms where guide and prior allow them.

For a latent site h_s whose guide q(h_s | ·) and model p(h_s | pa_s) have a
registered ``kl_divergence`` (Gaussians), the sampled log q(h_s) − log p(h_s | pa_s)
is replaced by its expectation over h_s, KL(q(h_s | ·) ‖ p(h_s | pa_s)), as in
Kingma & Welling (2014), eq. 10, and Pyro's ``TraceMeanField_ELBO``::

    L = E_q[ log p(x | h) − Σ_{s analytic} KL(q_s ‖ p_s) − Σ_{s other} (log q(h_s) − log p(h_s | pa_s)) ]

for local sites (in the data plate) and global ones (outside it, e.g. a GP's inducing outputs) alike.

That is unbiased only when p_s's parameters depend on guide draws made *before*
h_s: conditioning on a later draw, which may depend on h_s, changes the
distribution of h_s. Pyro's ``TraceMeanField_ELBO`` silently computes a wrong
bound then (a bottom-up guide h_1 → h_2 for a top-down model p(h_2) p(h_1 | h_2)).
This estimator checks the order once, on its first call, by asking autograd
whether p_s's mean or variance depends on a later reparameterized draw, and
refuses the run with an error naming both sites. Sites without a registered KL
(a mixture prior) or that are not reparameterized keep the sampled terms.
"""

import torch
from pyro.distributions.util import scale_and_mask
from torch.distributions import kl_divergence
from torch.distributions.kl import _KL_REGISTRY

from ..importance import _data_frame, _reduce, non_reparameterized_sites
from .estimators import ELBO


def _has_kl(q, p):
    """Whether ``kl_divergence(q, p)`` has a registered closed form (Independent unwrapped)."""
    while isinstance(q, torch.distributions.Independent) and isinstance(p, torch.distributions.Independent):
        q, p = q.base_dist, p.base_dist
    return any(issubclass(type(q), a) and issubclass(type(p), b) for a, b in _KL_REGISTRY)


def _depends_on(fn, values):
    """Whether the mean or variance of distribution ``fn`` is a function of any tensor in ``values``."""
    moments = fn.mean.sum() + fn.variance.sum()
    if not moments.requires_grad or not values:
        return [False] * len(values)
    grads = torch.autograd.grad(moments, values, allow_unused=True, retain_graph=True)
    return [g is not None for g in grads]


class AnalyticKLELBO(ELBO):
    """The ELBO with KL(q_s ‖ p_s) in closed form for every site where that is exact (see module docstring)."""

    def __init__(self, num_particles=1):
        super().__init__(num_particles)
        self.analytic_sites = None  # found on the first call

    def _find_analytic_sites(self, model_trace, guide_trace):
        order = [name for name, site in guide_trace.nodes.items() if site["type"] == "sample"]
        analytic = []
        for position, name in enumerate(order):
            q_site, p_site = guide_trace.nodes[name], model_trace.nodes.get(name)
            if p_site is None or p_site["is_observed"] or not q_site["fn"].has_rsample:
                continue
            if not _has_kl(q_site["fn"], p_site["fn"]):
                continue
            later = [n for n in order[position + 1 :] if guide_trace.nodes[n]["value"].requires_grad]
            depends = _depends_on(p_site["fn"], [guide_trace.nodes[n]["value"] for n in later])
            culprits = [n for n, d in zip(later, depends) if d]
            if culprits:
                raise ValueError(
                    f"the analytic-KL ELBO is wrong for this guide: the model's p({name} | ...) depends on "
                    f"{', '.join(map(repr, culprits))}, which the guide draws after {name!r} (a bottom-up guide "
                    "for a top-down model); use the 'elbo' objective, or a guide that draws the parents first"
                )
            analytic.append(name)
        return tuple(analytic)

    def loss(self, model_trace, guide_trace, weights):
        if non_reparameterized_sites(guide_trace):
            raise ValueError(
                "the analytic-KL ELBO takes reparameterized guides only; the guide's site(s) "
                f"{', '.join(map(repr, non_reparameterized_sites(guide_trace)))} are not: use 'elbo' or 'tracegraph_elbo'"
            )
        if self.analytic_sites is None:
            self.analytic_sites = self._find_analytic_sites(model_trace, guide_trace)
        log_w = weights.log_p_obs + weights.log_p_latent - weights.log_q
        global_part = weights.log_p_global - weights.log_q_global
        for name in self.analytic_sites:
            q_site, p_site = guide_trace.nodes[name], model_trace.nodes[name]
            sampled = p_site["unscaled_log_prob"] - q_site["unscaled_log_prob"]
            kl = kl_divergence(q_site["fn"], p_site["fn"])
            # Swap the sampled −(log q − log p) for −KL, per particle and data point (or per particle,
            # for a global site outside the data plate, like a GP's inducing outputs).
            swap = scale_and_mask(-kl - sampled, mask=q_site["mask"])
            frame = _data_frame(q_site)
            if frame is None:
                global_part = global_part + _reduce(swap, -swap.dim(), None).squeeze(-1)
            else:
                log_w = log_w + _reduce(swap, -swap.dim(), frame.dim)
        return -(weights.scale * log_w.mean(0).sum() + global_part.mean())
