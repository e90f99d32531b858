"""VIMCO: the IWAE bound's gradient for non-reparameterized guide sites (Mnih & Rezende, 2016).

For a data point x, k particles h_i ~ q(h | x) and log weights
l_i = log p(x, h_i) − log q(h_i | x), the bound's estimate is
L̂ = log (1/k) Σ_i w_i, and its gradient is estimated by::

    ∇L̂ ≈ Σ_i Ŝ_i ∇ log q(h_i | x) + Σ_i w̃_i ∇ log w_i,      w̃_i = w_i / Σ_j w_j
    Ŝ_i = L̂ − log (1/k) (Σ_{j≠i} w_j + ŵ_{−i}),              log ŵ_{−i} = (1/(k−1)) Σ_{j≠i} l_j

The baseline of particle i (the geometric mean ŵ_{−i} standing in for w_i)
depends on the other particles only, so the estimator is unbiased for ∇L_k.
The second sum is autograd's gradient of L̂ through the weights: model
parameters, reparameterized sites (pathwise) and the guide's densities. The
first needs log q of the non-reparameterized sites per particle and data point,
:func:`score_log_q`; :func:`score_surrogate` turns both into a term whose value
is zero and whose gradient is that first sum. The ``iwae`` estimator adds it
whenever the guide has such sites.
"""

import torch
from pyro.distributions.util import scale_and_mask

from ..importance import PARTICLES, _data_frame, _reduce


def learning_signals(log_w):
    """Ŝ_i per particle and data point, detached, from log weights [k, batch] (k ≥ 2)."""
    log_w = log_w.detach()
    k = log_w.shape[0]
    if k < 2:
        raise ValueError(
            "VIMCO (the iwae objective's gradient for non-reparameterized guide sites) needs at least "
            f"2 particles for its leave-one-out baseline, got {k}"
        )
    log_geometric = (log_w.sum(0, keepdim=True) - log_w) / (k - 1)  # log ŵ_{−i}
    # Row i holds the log weights with l_i replaced by log ŵ_{−i}; the log (1/k) of both terms cancel.
    diagonal = torch.eye(k, dtype=torch.bool, device=log_w.device).unsqueeze(-1)
    replaced = torch.where(diagonal, log_geometric.unsqueeze(1), log_w.unsqueeze(0))
    return torch.logsumexp(log_w, 0) - torch.logsumexp(replaced, 1)


def score_log_q(guide_trace, sites):
    """Σ over ``sites`` of log q per particle and data point, [particles, batch], differentiable.

    The sites must lie in the ``"data"`` plate (see :func:`~pyro_deepvi.importance.check_local`).
    """
    log_q = 0.0
    for name in sites:
        site = guide_trace.nodes[name]
        particles = next(frame for frame in site["cond_indep_stack"] if frame.name == PARTICLES)
        log_prob = scale_and_mask(site["unscaled_log_prob"], mask=site["mask"])
        log_q = log_q + _reduce(log_prob, particles.dim, _data_frame(site).dim)
    return log_q


def score_surrogate(log_w, log_q):
    """Per data point [batch]: zero, with gradient Σ_i Ŝ_i ∇ log q(h_i | x)."""
    return (learning_signals(log_w) * (log_q - log_q.detach())).sum(0)
