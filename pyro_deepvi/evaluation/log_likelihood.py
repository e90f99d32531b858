"""log p(x) by importance sampling: the IWAE bound L_k with large k (Burda et al., 2016).

    log p(x) ≥ L_k = E[log (1/k) Σ_{i=1}^k p(x, h_i) / q(h_i | x)],  L_1 ≤ L_k ≤ L_m ≤ log p(x) for k ≤ m

The k particles are drawn in chunks and combined with a streaming log-sum-exp,
so memory stays bounded by ``chunk_size`` whatever k is. The default, 100 particles
of a batch of 100, keeps a 784-pixel chunk within a CPU's last-level cache
(``benchmarks/eval_time.py``: 20-30 % faster than 500); a GPU wants larger chunks. The same weights give
the ELBO, E[log w], at no extra cost.

Two models scored on the same test points differ by the mean of the per-point
differences; :func:`paired_difference` gives it with the standard error of
that mean, std(a − b) / √N, which is far smaller than either model's own ±
(std(a) / √N) when the points' difficulty, shared by both models, dominates.
"""

import math

import pyro
import torch
from pyro.infer import is_validation_enabled
from tqdm import tqdm

from ..importance import check_local, guess_max_plate_nesting, importance_traces, log_weights, total
from .batches import seeded_batches


@torch.no_grad()
def bounds(model, guide, data, num_particles=5000, chunk_size=100, batch_size=100, seed=0, progress=False):
    """Per-data-point ELBO and IWAE-k estimates of log p(x) over a data set.

    :param model: the model's callable (e.g. ``vae.model``).
    :param guide: the guide.
    :param data: a :class:`~pyro_deepvi.data.Dataset` (on the model's device).
    :param bool progress: a progress bar over the batches' chunks of particles.
    :returns: ``(elbo, log_likelihood)``, tensors of shape [N].
    """
    if num_particles < 1:
        raise ValueError(f"num_particles must be at least 1, got {num_particles}")
    elbos, log_liks = [], []
    nesting = None
    validate = is_validation_enabled()
    chunks = math.ceil(len(data) / batch_size) * math.ceil(num_particles / chunk_size)
    bar = tqdm(total=chunks, desc=f"IWAE-{num_particles}", unit="chunk", disable=not progress, leave=False)
    for batch in seeded_batches(data, batch_size, seed):
        if nesting is None:
            nesting = guess_max_plate_nesting(model, guide, (), batch)
        log_sum, mean = None, 0.0
        for done in range(0, num_particles, chunk_size):
            k = min(chunk_size, num_particles - done)
            # Pyro's validation (the batch's support, the parameters, model/guide match) on a batch's first
            # chunk only: the others repeat its computation on new draws, and rechecking them cost 5-10 %.
            with pyro.validation_enabled(validate and done == 0):
                weights = log_weights(*importance_traces(model, guide, k, nesting, kwargs=batch), nesting)
            check_local(weights, "the IWAE-k estimate of log p(x_n)")
            log_w = total(weights)
            chunk = torch.logsumexp(log_w, 0)
            log_sum = chunk if log_sum is None else torch.logaddexp(log_sum, chunk)
            mean = mean + log_w.sum(0) / num_particles
            bar.update()
        elbos.append(mean)
        log_liks.append(log_sum - math.log(num_particles))
    bar.close()
    return torch.cat(elbos), torch.cat(log_liks)


def paired_difference(a, b):
    """Mean of ``a − b`` over the same points and its standard error std(a − b) / √N, as floats.

    :param a: per-point values (e.g. log p(x_n) of one model), shape [N], N ≥ 2.
    :param b: the other model's values on the same points, in the same order.
    """
    a, b = torch.as_tensor(a), torch.as_tensor(b)
    if a.dim() != 1 or a.shape != b.shape or len(a) < 2:
        raise ValueError(f"paired_difference needs two [N] tensors of the same N ≥ 2, got shapes {tuple(a.shape)} and {tuple(b.shape)}")
    d = (a - b).double()
    return float(d.mean()), float(d.std() / len(d) ** 0.5)
