"""Active units (Burda et al., 2016): A_u = Cov_x(E_{u∼q(u|x)}[u]) > 0.01.

A latent unit is active when its posterior mean moves with the input. The
posterior mean is estimated from guide samples, so any guide works.
"""

import pyro
import torch
from pyro import poutine
from pyro.poutine.util import prune_subsample_sites

from ..importance import PARTICLES


@torch.no_grad()
def active_units(guide, data, num_samples=100, threshold=0.01, batch_size=500, seed=0):
    """Count active units per latent site of ``guide``.

    :returns: ``{site: number of active units}`` and, under ``"total"``, their sum.
    """
    means = {}
    with torch.random.fork_rng(devices=[data.x.device] if data.x.is_cuda else []):
        pyro.set_rng_seed(seed)
        for start in range(0, len(data), batch_size):
            index = torch.arange(start, min(start + batch_size, len(data)), device=data.x.device)
            batch = data.batch(index)
            batch.pop("index")
            particles = pyro.plate(PARTICLES, num_samples, dim=-(_nesting(guide, batch) + 1))
            trace = prune_subsample_sites(poutine.trace(particles(guide)).get_trace(**batch))
            for name, site in trace.nodes.items():
                if site["type"] == "sample" and not site["is_observed"]:
                    value = site["value"].reshape(num_samples, index.shape[0], -1)
                    means.setdefault(name, []).append(value.mean(0))
    counts = {}
    for name, chunks in means.items():
        variance = torch.cat(chunks).var(0)
        counts[name] = int((variance > threshold).sum())
    counts["total"] = sum(counts.values())
    return counts


def _nesting(guide, batch):
    with poutine.block():
        trace = poutine.trace(guide).get_trace(**batch)
    dims = [f.dim for s in trace.nodes.values() if s["type"] == "sample" for f in s["cond_indep_stack"] if f.vectorized]
    return -min(dims) if dims else 0
