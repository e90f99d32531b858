"""Disentanglement against known factors: the mutual information gap (MIG).

Chen et al. (2018), "Isolating sources of disentanglement in variational
autoencoders", score a code ``z`` against ground-truth factors ``v_1..v_K`` by
how much better its most informative latent dimension explains each factor
than the runner-up::

    MIG = 1/K Σ_k [ I(z_{j(k)}; v_k) - max_{j ≠ j(k)} I(z_j; v_k) ] / H(v_k),
    j(k) = argmax_j I(z_j; v_k).

Each term lies in ``[0, 1]`` (``I(z_j; v_k) <= H(v_k)``): 1 when one latent
dimension carries all of ``v_k`` and no other carries any, 0 when two share it
equally or none carries it.

:func:`mutual_information_gap` follows disentanglement_lib (Locatello et al.,
2019); :func:`encoder_mutual_information_gap` is the paper's own estimate, from
the encoder's distribution q(z|x) over the data set (see there). The first
bins a code: the posterior mean
``E_q[z | x]`` (:func:`posterior_means`), each latent dimension is discretized
into ``num_bins`` equal-width bins between its smallest and largest value over
the data, and ``I`` and ``H`` are plug-in estimates (in nats) from the joint
histogram of (bin, factor value) over the data points::

    I(z_j; v_k) = Σ_{b, v} p(b, v) log[ p(b, v) / (p(b) p(v)) ],
    H(v_k) = -Σ_v p(v) log p(v).

Binning merges the values of a factor with more values than ``num_bins``, so
even a perfect code scores below 1 on it (a uniform 32-valued factor in 20
bins keeps 4.25 of its 5 bits: 0.85), and a finite sample gives independent
pairs a small positive ``I`` (about ``(num_bins - 1)(|v_k| - 1) / 2N`` nats).
"""

import math

import torch
from torch import nn

from ..objectives.total_correlation import _univariate_base
from .active_units import posterior_means_by_site
from .batches import seeded_batches
from .surgery import _guide_distributions


def discretize(latents, num_bins=20):
    """
    Bins each column of ``latents`` (``[N, D]``) into ``num_bins`` equal-width
    bins between its minimum and maximum: int64 ``[N, D]`` in
    ``[0, num_bins)``. The maximum falls in the last bin; a constant column
    falls wholly in bin 0.
    """
    z = torch.as_tensor(latents).detach().to(torch.float64)
    lo, hi = z.min(0).values, z.max(0).values
    span = hi - lo
    scaled = (z - lo) / torch.where(span > 0, span, torch.ones_like(span)) * num_bins
    return scaled.floor().clamp(0, num_bins - 1).to(torch.int64)


def _counts(values, size):
    """Histograms of the columns of ``values`` (int ``[N, C]`` in ``[0, size)``): ``[C, size]``."""
    num_columns = values.shape[1]
    offset = torch.arange(num_columns, device=values.device) * size
    flat = torch.bincount((values + offset).reshape(-1), minlength=num_columns * size)
    return flat.reshape(num_columns, size).to(torch.float64)


def entropy(factors, factor_sizes):
    """The plug-in entropy ``H(v_k) = -Σ_v p(v) log p(v)`` (nats) of each ``factors`` column: ``[K]``."""
    factors = torch.as_tensor(factors)
    result = []
    for k, size in enumerate(factor_sizes):
        p = _counts(factors[:, k : k + 1], size)[0] / len(factors)
        result.append(-torch.where(p > 0, p * p.log(), torch.zeros_like(p)).sum())
    return torch.stack(result)


def mutual_information(codes, factors, num_bins, factor_sizes):
    """
    The plug-in mutual information ``I(c_j; v_k)`` (nats) between every column
    of the discrete ``codes`` (int ``[N, D]`` in ``[0, num_bins)``) and every
    column of ``factors`` (int ``[N, K]``, column ``k`` in
    ``[0, factor_sizes[k])``), from their joint histograms: ``[D, K]``.
    """
    codes, factors = torch.as_tensor(codes), torch.as_tensor(factors)
    n, num_latents = codes.shape
    columns = []
    for k, size in enumerate(factor_sizes):
        joint = _counts(codes * size + factors[:, k : k + 1], num_bins * size)
        p = joint.reshape(num_latents, num_bins, size) / n
        independent = p.sum(2, keepdim=True) * p.sum(1, keepdim=True)
        terms = torch.where(p > 0, p * (p / independent.clamp_min(1e-300)).log(), torch.zeros_like(p))
        columns.append(terms.sum((1, 2)).clamp_min(0))
    return torch.stack(columns, -1)


def mutual_information_gap(latents, factors, factor_sizes=None, num_bins=20):
    """
    The mutual information gap of the code ``latents`` against ``factors``
    (Chen et al., 2018; see the module docstring)::

        MIG = 1/K Σ_k [ I(z_{j(k)}; v_k) - max_{j ≠ j(k)} I(z_j; v_k) ] / H(v_k).

    :param torch.Tensor latents: ``[N, D]`` codes, e.g. posterior means from
        :func:`posterior_means`.
    :param torch.Tensor factors: int ``[N, K]`` factor values, column ``k`` in
        ``[0, factor_sizes[k])``, e.g. the ``y`` of the ``shapes`` data set.
    :param factor_sizes: the number of values of each factor (e.g.
        :data:`pyro_deepvi.data.shapes.FACTOR_SIZES`); by default
        ``factors.max(0) + 1``.
    :param int num_bins: equal-width bins per latent dimension.
    :returns: a dict with

        * ``"mig"``: the MIG, a float in ``[0, 1]``, averaged over the factors
          that vary in the data (a constant factor has no entropy to share and
          gets gap NaN);
        * ``"gaps"``: ``[K]``, each factor's normalized gap;
        * ``"mutual_information"``: ``[D, K]``, ``I(z_j; v_k)`` in nats;
        * ``"entropy"``: ``[K]``, ``H(v_k)`` in nats;
        * ``"latent"``: int64 ``[K]``, ``j(k)``, the most informative latent
          dimension for each factor.

        With a single latent dimension the runner-up's information is 0.
    """
    latents = torch.as_tensor(latents).detach().cpu()
    factors = torch.as_tensor(factors).detach().cpu()
    if latents.dim() != 2 or factors.dim() != 2 or len(latents) != len(factors):
        raise ValueError(
            "latents [N, D] and factors [N, K] must be matrices with the same rows, found "
            f"{tuple(latents.shape)} and {tuple(factors.shape)}"
        )
    factors, factor_sizes = _checked_factors(factors, factor_sizes)
    if not torch.isfinite(latents).all():
        raise ValueError("latents must be finite")

    mi = mutual_information(discretize(latents, num_bins), factors, num_bins, factor_sizes)
    return _gaps(mi, entropy(factors, factor_sizes))


def _checked_factors(factors, factor_sizes):
    """``factors`` ([N, K] on the CPU) as int64, and the factor sizes (by default ``max + 1``); a ValueError if invalid."""
    if factors.is_floating_point() or factors.dtype == torch.bool:
        raise ValueError(f"factors must hold integer values, found {factors.dtype}")
    if len(factors) == 0:
        raise ValueError("no data points")
    factors = factors.to(torch.int64)
    if factor_sizes is None:
        factor_sizes = (factors.max(0).values + 1).tolist()
    factor_sizes = [int(size) for size in factor_sizes]
    if len(factor_sizes) != factors.shape[1]:
        raise ValueError(f"{len(factor_sizes)} factor sizes for {factors.shape[1]} factors")
    if (factors < 0).any() or (factors >= torch.tensor(factor_sizes)).any():
        raise ValueError(f"factor values must lie in [0, size) for sizes {factor_sizes}")
    return factors, factor_sizes


def _gaps(mi, h):
    """The MIG's dict (see :func:`mutual_information_gap`) of the information ``mi`` [D, K] and entropies ``h`` [K]."""
    top = torch.topk(mi, min(2, mi.shape[0]), dim=0)
    runner_up = top.values[1] if mi.shape[0] > 1 else torch.zeros_like(h)
    gap = (top.values[0] - runner_up) / h.clamp_min(1e-300)
    gaps = torch.where(h > 0, gap, torch.full_like(h, float("nan")))
    varying = ~gaps.isnan()
    mig = float(gaps[varying].mean()) if varying.any() else float("nan")
    return {"mig": mig, "gaps": gaps, "mutual_information": mi, "entropy": h, "latent": top.indices[0]}


@torch.no_grad()
def posterior_means(guide, data, site=None, batch_size=500, num_samples=1000, seed=0):
    """
    The posterior mean ``E_q[z | x]`` of every data point: ``[N, D]``.

    Runs ``guide`` over ``data`` in batches, as
    :func:`~pyro_deepvi.evaluation.active_units` does, taking each latent
    site's distribution's own ``mean`` (exact for Gaussian guides), else the
    average of ``num_samples`` draws. For a guide whose later sites depend on
    earlier draws (a hierarchy), a later site's mean is conditional on the
    drawn earlier sites.

    :param guide: a guide called as ``guide(x=..., y=...)``.
    :param data: a :class:`~pyro_deepvi.data.Dataset`.
    :param str site: one latent site; by default all of them, each flattened
        per data point and concatenated in the order the guide samples them.
    """
    means = posterior_means_by_site(guide, data, num_samples, batch_size, seed)
    if site is not None:
        if site not in means:
            raise KeyError(f"the guide has no latent site {site!r}; it has: {', '.join(means)}")
        return means[site]
    return torch.cat(list(means.values()), -1)


@torch.no_grad()
def encoder_mutual_information_gap(guide, data, factor_sizes=None, num_samples=2000, batch_size=500, chunk_size=50, seed=0):
    """
    The MIG with Chen et al.'s (2018) own estimate of ``I(z_j; v_k)``: from the encoder's
    distribution q(z|x) over the data set, not from binned posterior means. With the mixtures
    over the data points ``q(z_j) = 1/N Σ_n q(z_j|x_n)`` and
    ``q(z_j | v_k = v) = 1/N_v Σ_{n: v_k(n) = v} q(z_j|x_n)``::

        I(z_j; v_k) = H(z_j) − H(z_j | v_k) = E_{n, z ~ q(z|x_n)}[log q(z_j | v_k(n)) − log q(z_j)],

    each mixture density exact (all N components, as Chen et al.'s
    ``estimate_entropies``), the expectation the mean over one draw each of
    ``num_samples`` data points (a seeded random subset; all of them when
    ``N <= num_samples``), clamped at 0 as theirs. A latent dimension whose
    encodings are as wide as their spread over the data (an unused unit)
    carries I ≈ 0 however its means move, where binning the means stretches
    any movement over all the bins. Every pointwise term is at most
    ``log(N / N_v)``, so ``I(z_j; v_k) <= H(v_k)``, the plug-in entropy it is
    divided by. Chen et al. leave dSprites' shape factor out of their MIG; the
    per-factor ``gaps`` allow either mean.

    :param guide: a guide called as ``guide(x=..., y=...)`` whose latent sites are all in the data
        plate and factorized given x alone (an ``Independent`` of a univariate distribution each,
        e.g. the ``diag`` guide); z is all of its sites, flattened and concatenated. Call
        ``.eval()`` first if it has dropout or batch norm.
    :param data: a :class:`~pyro_deepvi.data.Dataset` whose ``y`` holds integer factors ``[N, K]``.
    :param int num_samples: data points whose draws average the pointwise terms.
    :param int chunk_size: draws scored at a time against all N components (memory
        ``chunk_size × N × D`` float64 numbers).
    :returns: the dict of :func:`mutual_information_gap`, ``mutual_information`` from this estimate.
    """
    if data.y is None or data.y.dim() != 2:
        raise ValueError("encoder_mutual_information_gap needs data whose y holds integer factors [N, K]")
    factors, factor_sizes = _checked_factors(data.y.detach().cpu(), factor_sizes)
    if num_samples < 1 or chunk_size < 1:
        raise ValueError(f"num_samples and chunk_size must be positive, got {num_samples} and {chunk_size}")
    bases, draws = [], []
    for batch in seeded_batches(data, batch_size, seed):
        size = len(batch["x"])
        parts = [_univariate_base(fn, name) for name, fn in _guide_distributions(guide, batch, size).items()]
        bases.append([base for base, _ in parts])
        draws.append(torch.cat([base.sample().reshape(size, -1) for base, _ in parts], -1))
    draws = torch.cat(draws)
    num_data = len(draws)
    rows = torch.randperm(num_data, generator=torch.Generator().manual_seed(seed))[:num_samples]
    device, dtype = draws.device, torch.float64
    one_hot = torch.cat([nn.functional.one_hot(factors[:, k], size) for k, size in enumerate(factor_sizes)], -1)
    one_hot = one_hot.to(device, dtype)  # [N, V]: the value of every factor, side by side
    offsets = torch.tensor([0] + factor_sizes[:-1]).cumsum(0)
    log_counts = one_hot.sum(0).log()  # log N_v
    total = 0.0
    for start in range(0, len(rows), chunk_size):
        chunk = rows[start : start + chunk_size]
        z = draws[chunk].unsqueeze(1)  # [r, 1, D] against components [N, D]
        lp = torch.cat([_log_prob_by_dim(parts, z) for parts in bases], 1).to(dtype)  # [r, N, D]
        # Densities relative to the largest component of each draw and dimension (which cancels in the ratio);
        # the draw's own component is in each of its groups, so no group's sum underflows.
        e = (lp - lp.max(1, keepdim=True).values).exp()
        log_q = e.sum(1).log() - math.log(num_data)  # log q(z_j), [r, D]
        columns = (factors[chunk] + offsets).to(device)  # [r, K]: the draw's own value of each factor
        sums = torch.matmul(e.transpose(1, 2), one_hot)  # [r, D, V]: the components of each value
        own = sums.gather(2, columns.unsqueeze(1).expand(-1, sums.shape[1], -1))  # [r, D, K]
        log_q_given_v = own.log() - log_counts[columns].unsqueeze(1)  # log q(z_j | v_k), [r, D, K]
        total = total + (log_q_given_v - log_q.unsqueeze(-1)).sum(0)
    mi = (total / len(rows)).clamp_min(0).cpu()
    return _gaps(mi, entropy(factors, factor_sizes))


def _log_prob_by_dim(bases, z):
    """log q(z_{r,j} | x_m) of draws ``z`` [r, 1, D] under one batch of components, dimension by dimension: [r, B, D]."""
    width = [base.batch_shape[1:].numel() for base in bases]
    values = z.split(width, -1)
    return torch.cat(
        [base.log_prob(v.reshape(v.shape[:2] + base.batch_shape[1:])).reshape(len(z), -1, w)
         for base, v, w in zip(bases, values, width)],
        -1,
    )


def factor_information_by_site(guide, data, factor_sizes=None, num_bins=20, seed=0):
    """
    Which ground-truth factors each latent site's code carries: ``{site: [K]}``, for each factor
    ``v_k`` the best normalized information of one of the site's dimensions,
    ``max_j I(z_j; v_k) / H(v_k)`` in ``[0, 1]``, from the same plug-in estimates as the MIG (the
    posterior means, binned). Used to ask which level of a hierarchy encodes which factor.

    :param guide: a guide called as ``guide(x=..., y=...)``.
    :param data: a :class:`~pyro_deepvi.data.Dataset` whose ``y`` holds integer factors ``[N, K]``.
    """
    if data.y is None or data.y.dim() != 2 or data.y.is_floating_point():
        raise ValueError("factor_information_by_site needs data whose y holds integer factors [N, K]")
    factors = data.y.detach().cpu().to(torch.int64)
    if factor_sizes is None:
        factor_sizes = (factors.max(0).values + 1).tolist()
    h = entropy(factors, factor_sizes)
    means = posterior_means_by_site(guide, data, seed=seed)
    return {
        site: (mutual_information(discretize(mean.cpu(), num_bins), factors, num_bins, factor_sizes).max(0).values / h)
        for site, mean in means.items()
    }
