"""ELBO surgery (Hoffman & Johnson, 2016): the average KL is index-code MI plus marginal KL.

Hoffman, M. D. and Johnson, M. J. (2016), "ELBO surgery: yet another way to
carve up the variational evidence lower bound", NIPS workshop on Advances in
Approximate Bayesian Inference.

For a data set of N points x_1, ..., x_N, let q(n) = 1/N, q(z | n) = q(z | x_n)
and the aggregate posterior q(z) = (1/N) Σ_n q(z | x_n). In the seed's notation
(E_{p(x)} over the empirical data distribution)::

    E_{p(x)}[KL(q(z|x) ‖ p(z))] = (1/N) Σ_n KL(q(z|x_n) ‖ p(z))
                                 = I_q[n; z] + KL(q(z) ‖ p(z))
                                 = log N − E_{q(z)}[H(q(n|z))] + KL(q(z) ‖ p(z)),

    I_q[n; z] = E_{q(n, z)}[log q(z|x_n) − log q(z)],   0 ≤ I_q[n; z] ≤ log N.

The index-code mutual information I_q[n; z] reaches log N when the encodings
q(z|x_n) do not overlap; the marginal KL says how far the encoded data
distribution q(z) is from the prior.

Estimate. For every n, S draws z_{ns} ~ q(z | x_n) give three per-draw terms::

    a_ns = log q(z_ns|x_n) − log p(z_ns)          (average KL)
    b_ns = log q(z_ns|x_n) − log q(z_ns)          (index-code MI)
    c_ns = log q(z_ns) − log p(z_ns)              (marginal KL)
    log q(z) = logsumexp_m log q(z|x_m) − log N   (exact: all N components)

and each estimate is the mean over n and s. Since a_ns = b_ns + c_ns for every
draw, the three estimates satisfy the identity exactly, up to float error.
Each is unbiased for its term (log q(z) is exact, not estimated), and
b_ns ≤ log N for every draw (the m = n term alone is ≤ the log-sum-exp), so
the MI estimate never exceeds log N. The standard errors are the Monte Carlo
errors given the data set, sqrt(Σ_n Var_s / S) / N.

The N × N·S matrix of log q(z_ns | x_m) is never formed: rows are taken in
chunks of ``chunk_size`` against batches of ``batch_size`` components m, with a
streaming log-sum-exp, so memory stays bounded by chunk_size × batch_size ×
latent width. The cost is O(N² S · dim).

Generic over guides and models:

- z is all latent sites of the guide jointly; q(z|x) is the product of the
  sites' densities. Each site's ``fn`` is read from a guide trace (batch shape
  [batch], the data plate at dim −1) and scored on other points' draws by
  broadcasting. **Limitation:** this is exact only when each site's ``fn`` is
  conditioned on x alone (mean-field given x, like the amortized Gaussian
  guides); a guide in which one site depends on another site's draw (or on
  randomness such as dropout) is refused with a ``ValueError``: it is checked
  on every batch that the stored ``fn`` gives the guide's own log q.
  Diagonal Gaussian sites take a matrix-product fast path in float64
  (:class:`_Components`).
- log p(z) is the model's density of the latent sites with x given: the model
  is replayed against the guide's draws inside a particle plate
  (:func:`~pyro_deepvi.importance.importance_traces`, equivalent to
  ``poutine.condition`` on the draws), and only its latent sites in the data
  plate count (not the observation, nor global factors such as a weight prior).
  The model's latent sites must be exactly the guide's.
- A dynamically binarized data set is binarized once (seeded), so each x_n is
  one fixed binary vector throughout.
"""

import math

import pyro
import torch
from pyro import poutine
from pyro.poutine.util import prune_subsample_sites
from torch.distributions import Independent, Normal, TransformedDistribution

from ..importance import (
    _data_frame,
    auxiliary_sites,
    guess_max_plate_nesting,
    importance_traces,
    log_weights,
)


def _latent_sites(trace):
    return [
        name
        for name, site in trace.nodes.items()
        if site["type"] == "sample" and not site["is_observed"]
    ]


def _guide_distributions(guide, batch, size):
    """{site: q(h_site | x)} of one batch, each with batch shape [size]."""
    trace = prune_subsample_sites(poutine.trace(guide).get_trace(**batch))
    auxiliary = auxiliary_sites(trace)
    if auxiliary:
        raise ValueError(
            f"guide site {auxiliary[0]!r} is auxiliary (a hierarchical guide such as 'hvm'): q(z|x) integrates it "
            "out and has no density to score other points' draws: not supported"
        )
    fns = {}
    for name in _latent_sites(trace):
        site = trace.nodes[name]
        if _data_frame(site) is None:
            raise ValueError(
                f"guide site {name!r} lies outside the 'data' plate: ELBO surgery needs "
                "local latents q(z | x_n) only"
            )
        fn = site["fn"]
        if fn.batch_shape != (size,):
            raise ValueError(
                f"guide site {name!r} has batch shape {tuple(fn.batch_shape)}; ELBO surgery needs "
                f"[batch] = [{size}] (one distribution per data point, the data plate at dim -1)"
            )
        fns[name] = fn
    if not fns:
        raise ValueError("the guide has no latent site")
    return fns


def _is_diagonal_normal(fn):
    return (
        isinstance(fn, Independent)
        and type(fn.base_dist) in (Normal, pyro.distributions.Normal)
        and fn.reinterpreted_batch_ndims == len(fn.event_shape)
    )


class _Components:
    """log q(z_r | x_m) of draws z_r against one batch of components m: a [k, batch] float64 matrix.

    Diagonal Gaussian sites (``fast`` sites) go through one matrix product::

        log N(v; μ, σ²) = −½ Σ_d v² w + Σ_d v μ w + c,   w = 1/σ²,   c = −½ Σ_d μ² w − Σ_d log σ − (d/2) log 2π

    in float64, because the expanded square cancels badly when σ is small next
    to |μ|; any other site is scored by its ``fn.log_prob`` on broadcast values.
    """

    def __init__(self, fns, fast):
        size = next(iter(fns.values())).batch_shape[0]
        columns, self.const, self.generic = [], 0.0, {}
        for name, fn in fns.items():
            if isinstance(fn, TransformedDistribution):
                raise ValueError(
                    f"ELBO surgery scores every draw under every point's q(z|x_m); site {name!r} is a "
                    "flow, whose density at another point's draw needs an inverse per pair: not supported"
                )
            if name not in fast:
                self.generic[name] = fn
                continue
            base = fn.base_dist
            loc = base.loc.expand(base.batch_shape).reshape(size, -1).double()
            scale = base.scale.expand(base.batch_shape).reshape(size, -1).double()
            w = scale.pow(-2)
            columns += [-0.5 * w, loc * w]
            self.const = self.const + (
                -0.5 * (loc.pow(2) * w).sum(-1) - scale.log().sum(-1) - 0.5 * loc.shape[-1] * math.log(2 * math.pi)
            )
        self.weight = torch.cat(columns, -1).T.contiguous() if columns else None  # [features, batch]

    @staticmethod
    def features(rows, fast):
        """[v², v] of the fast sites' draws, in the order of ``weight``: [k, features] float64."""
        parts = []
        for name in fast:
            v = rows[name].reshape(rows[name].shape[0], -1).double()
            parts += [v.pow(2), v]
        return torch.cat(parts, -1) if parts else None

    def log_prob(self, rows, features):
        lp = 0.0
        if self.weight is not None:
            lp = torch.addmm(self.const, features, self.weight)
        for name, fn in self.generic.items():
            value = rows[name]
            lp = lp + fn.log_prob(value.reshape((value.shape[0], 1) + fn.event_shape)).double()
        return lp


def _stderr(terms):
    """Monte Carlo standard error of ``terms.mean()`` for terms [S, N], given the data set."""
    num_samples, num_data = terms.shape
    if num_samples > 1:
        return float(terms.var(0).sum().div(num_samples).sqrt() / num_data)
    # One draw per point: the spread over n stands in for the spread over draws (conservative).
    return float(terms.std() / math.sqrt(terms.numel())) if terms.numel() > 1 else float("nan")


@torch.no_grad()
def elbo_surgery(model, guide, data, num_samples=20, batch_size=500, chunk_size=500, seed=0, max_generic_points=500):
    """Average KL = index-code MI + marginal KL over a data set (Hoffman & Johnson, 2016).

    :param model: the model's callable (e.g. ``dlgm.model``); gives log p(z).
    :param guide: the guide; gives q(z | x_n) and the draws.
    :param data: a :class:`~pyro_deepvi.data.Dataset` of the N points (e.g. the
        training split, or a subset of it), on the model's device.
    :param int num_samples: draws S of z per data point.
    :param int batch_size: data points per guide/model call, and components m per block.
    :param int chunk_size: draws per block of the N × N·S matrix of log q(z | x_m).
    :param int seed: seeds the draws (and a dynamic binarization), leaving the global RNG as it was.
    :param int max_generic_points: when a site has no matrix-product fast path (anything but a
        diagonal Gaussian, e.g. DARN's autoregressive Bernoulli), only the first this many points
        (whole batches, at least one) are used: each of the N² S pairs then costs a network pass.
    :returns: a dict of floats: ``average_kl`` = (1/N) Σ_n KL(q(z|x_n) ‖ p(z)),
        ``index_code_mi`` = I_q[n; z], ``marginal_kl`` = KL(q(z) ‖ p(z)), their
        Monte Carlo standard errors ``*_stderr``, ``log_n`` = log N,
        ``num_data`` = N and ``num_samples`` = S. ``average_kl`` equals
        ``index_code_mi + marginal_kl`` up to float error, and
        ``index_code_mi ≤ log_n``.
    """
    if num_samples < 1:
        raise ValueError(f"num_samples must be at least 1, got {num_samples}")
    if batch_size < 1 or chunk_size < 1:
        raise ValueError(f"batch_size and chunk_size must be positive, got {batch_size} and {chunk_size}")
    num_data = len(data)
    if num_data < 1:
        raise ValueError("the data set is empty")
    log_n = math.log(num_data)
    device = data.x.device
    terms = {"average_kl": [], "index_code_mi": [], "marginal_kl": []}
    with torch.random.fork_rng(devices=[device] if data.x.is_cuda else []):
        pyro.set_rng_seed(seed)
        # One pass for the batches (binarized once) and every point's q(z | x_m).
        batches, fns = [], []
        for start in range(0, num_data, batch_size):
            index = torch.arange(start, min(start + batch_size, num_data), device=device)
            batch = data.batch(index)
            batch.pop("index")
            batches.append(batch)
            fns.append(_guide_distributions(guide, batch, len(index)))
        nesting = guess_max_plate_nesting(model, guide, (), batches[0])
        fast = [name for name in fns[0] if all(_is_diagonal_normal(f[name]) for f in fns)]
        if len(fast) < len(fns[0]) and num_data > max_generic_points:
            kept = max(1, max_generic_points // batch_size)
            batches, fns = batches[:kept], fns[:kept]
            num_data = sum(len(batch["x"]) for batch in batches)
            log_n = math.log(num_data)
        components = [_Components(f, fast) for f in fns]
        for b, batch in enumerate(batches):
            size = len(batch["x"])
            model_trace, guide_trace = importance_traces(model, guide, num_samples, nesting, kwargs=batch)
            weights = log_weights(model_trace, guide_trace, nesting)
            model_latents = {n for n in _latent_sites(model_trace) if _data_frame(model_trace.nodes[n])}
            if model_latents != set(fns[b]):
                raise ValueError(
                    f"the model's local latent sites {sorted(model_latents)} are not the guide's "
                    f"{sorted(fns[b])}: ELBO surgery needs q(z|x) over all of the model's z"
                )
            values = {}
            own = 0.0
            for name, fn in fns[b].items():
                value = guide_trace.nodes[name]["value"]
                values[name] = value.reshape((num_samples, size) + fn.event_shape)
                own = own + fn.log_prob(values[name])
            if not torch.allclose(own, weights.log_q, rtol=1e-4, atol=1e-3):
                raise ValueError(
                    "the guide's q(z|x) is not a product of per-site distributions given x alone (a site "
                    "depends on another site's draw, or on randomness such as dropout: call .eval()); "
                    "ELBO surgery scores other points' draws with each site's fn and cannot handle it"
                )
            # Rows r = s * size + j: draw s of point j of this batch.
            rows = {name: value.reshape((num_samples * size,) + value.shape[2:]) for name, value in values.items()}
            log_q_own, log_q_marginal = [], []
            for r0 in range(0, num_samples * size, chunk_size):
                r = torch.arange(r0, min(r0 + chunk_size, num_samples * size), device=device)
                chunk = {name: value[r0 : r0 + len(r)] for name, value in rows.items()}
                features = _Components.features(chunk, fast)
                lse = torch.full((len(r),), -math.inf, dtype=torch.float64, device=device)
                for m, component in enumerate(components):
                    lp = component.log_prob(chunk, features)
                    lse = torch.logaddexp(lse, torch.logsumexp(lp, -1))
                    if m == b:
                        # The m = n term, from the same numbers as the log-sum-exp: b_ns ≤ log N exactly.
                        log_q_own.append(lp[torch.arange(len(r), device=device), r % size])
                log_q_marginal.append(lse)
            log_q = torch.cat(log_q_own).reshape(num_samples, size)
            lse = torch.cat(log_q_marginal).reshape(num_samples, size)  # log q(z) + log N
            log_p = weights.log_p_latent.double()
            terms["average_kl"].append(log_q - log_p)
            terms["index_code_mi"].append(log_q - lse)  # b_ns − log N ≤ 0, exactly
            terms["marginal_kl"].append(lse - log_n - log_p)
    # log N is added after the mean, so that a mean of non-positive numbers keeps I ≤ log N in floats too.
    offset = {"average_kl": 0.0, "index_code_mi": log_n, "marginal_kl": 0.0}
    result = {}
    for key, chunks in terms.items():
        per_draw = torch.cat(chunks, 1)  # [S, N]
        result[key] = offset[key] + float(per_draw.mean())
        result[f"{key}_stderr"] = _stderr(per_draw)
    result.update(log_n=log_n, num_data=num_data, num_samples=num_samples)
    return result
