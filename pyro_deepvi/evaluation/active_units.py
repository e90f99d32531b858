"""Active units (Burda et al., 2016): A_u = Cov_x(E_{u∼q(u|x)}[u]) > 0.01.

A latent unit is active when its posterior mean moves with the input. The
posterior mean is the guide distribution's own ``mean`` where it has one
(Gaussian guides); otherwise (flows, hierarchical guides) it is estimated from ``num_samples`` draws, whose
Monte Carlo error adds about Var_q(u) / num_samples to the covariance: keep
that well under the threshold (an inactive unit has Var_q(u) ≈ 1).

In a guide whose sites depend on other sites' draws (``dependent_sites``: the
``chain`` and ``ladder`` guides), a site's distribution is q(u | other draws, x)
and its ``mean`` is a conditional mean; E_q[u | x] is then the average of those
means over at most ``DEPENDENT_DRAWS`` draws of the whole guide (Rao-Blackwellized),
taken in chunks of ``CHUNK`` draws. Their Monte Carlo error adds at most
Var(conditional mean) / 200 ≤ 0.005 to a unit whose conditional mean varies
like a unit Gaussian, half the threshold.
"""

import pyro
import torch
from pyro import poutine
from pyro.poutine.util import prune_subsample_sites

from ..importance import PARTICLES
from .batches import seeded_batches


#: Draws averaged, and draws per pass, when a dependent guide's conditional means are averaged.
DEPENDENT_DRAWS, CHUNK = 200, 100


def _conditional_means(guide, batch, num_samples, nesting):
    """E_q[u] per site of a guide with dependent sites: the average of E_q[u | other draws] over draws."""
    totals, num_samples = {}, min(num_samples, DEPENDENT_DRAWS)
    for done in range(0, num_samples, CHUNK):
        particles = pyro.plate(PARTICLES, min(CHUNK, num_samples - done), dim=-(nesting + 1))
        trace = prune_subsample_sites(poutine.trace(particles(guide)).get_trace(**batch))
        for name, site in trace.nodes.items():
            if site["type"] == "sample" and not site["is_observed"]:
                mean = site["fn"].mean.expand(site["value"].shape)  # a site above no draw has no particle dim
                totals[name] = totals.get(name, 0.0) + mean.sum(0)
    return {name: total / num_samples for name, total in totals.items()}


def _posterior_means(guide, batch, num_samples):
    """E_q[u] per latent site of ``guide`` for one batch: exact where the distribution knows it."""
    trace = prune_subsample_sites(poutine.trace(guide).get_trace(**batch))
    means, nesting = {}, 0
    for name, site in trace.nodes.items():
        if site["type"] != "sample" or site["is_observed"] or site["infer"].get("is_auxiliary"):
            continue  # auxiliary guide sites (a hierarchical guide's λ) are not the model's latents
        nesting = max([nesting] + [-f.dim for f in site["cond_indep_stack"] if f.vectorized])
        try:
            means[name] = site["fn"].mean
        except NotImplementedError:
            means[name] = None
    if getattr(guide, "dependent_sites", False):
        return _conditional_means(guide, batch, num_samples, nesting)
    if any(mean is None for mean in means.values()):
        particles = pyro.plate(PARTICLES, num_samples, dim=-(nesting + 1))
        samples = prune_subsample_sites(poutine.trace(particles(guide)).get_trace(**batch))
        for name, mean in means.items():
            if mean is None:
                means[name] = samples.nodes[name]["value"].mean(0)
    return means


@torch.no_grad()
def posterior_means_by_site(guide, data, num_samples=1000, batch_size=500, seed=0):
    """E_q[u | x] of every data point, per latent site of ``guide``: ``{site: [N, dim]}``."""
    chunks = {}
    for batch in seeded_batches(data, batch_size, seed):
        for name, mean in _posterior_means(guide, batch, num_samples).items():
            chunks.setdefault(name, []).append(mean.reshape(batch["x"].shape[0], -1))
    return {name: torch.cat(parts) for name, parts in chunks.items()}


def active_units(guide, data, num_samples=1000, threshold=0.01, batch_size=500, seed=0):
    """Count active units per latent site of ``guide``.

    :returns: ``{site: number of active units}`` and, under ``"total"``, their sum.
    """
    means = posterior_means_by_site(guide, data, num_samples, batch_size, seed)
    counts = {name: int((mean.var(0) > threshold).sum()) for name, mean in means.items()}
    counts["total"] = sum(counts.values())
    return counts
