"""Maximum mean discrepancy between the aggregate posterior and the prior (InfoVAE).

InfoVAE (Zhao, Song & Ermon, 2019) maximizes, in the seed's notation,

    −(α + λ − 1) · D(q_φ(z) ‖ p(z)) + E_{p_data(x) q_φ(z|x)}[log p_θ(x|z)]
        − (1 − α) · E_{p_data(x)}[KL(q_φ(z|x) ‖ p(z))]

where q_φ(z) = E_{p_data(x)}[q_φ(z|x)] is the aggregate posterior and D any
strict divergence; with D = MMD² this is the MMD-VAE. Per data point the
objective's loss is D + R + Σ_t w_t · term_t (distortion D = −E log p(x|z),
rate R = E KL(q(z|x) ‖ p(z))), so InfoVAE's loss D + (1 − α)·R + (α + λ − 1)·MMD²
is the ELBO plus two terms::

    pyro-deepvi train dlgm --term mmd=<α+λ−1> --term rate=<−α>

(the ``rate`` term with weight w makes the loss D + (1 + w)·R). Leaving out
``rate`` is α = 0, InfoVAE's choice for a simple decoder.

The :class:`MMD` term estimates MMD² between q(z) and p(z) at one latent site
(by default the model's top latent, the first of ``model.latent_shapes``).
Samples of q(z) are the guide's values at that site in the run's traces,
[particles, batch, *event] flattened to [particles · batch, dim]: draws of the
minibatch's aggregate posterior (1/B) Σ_n q(z|x_n). Samples of p(z) are as
many draws of the model's distribution at the site (reparameterized when it
has ``rsample``, so a learnable prior gets gradients). Pyro's
``Trace_MMD`` is a different quantity: it compares the particles of one
data point, not the aggregate posterior over the minibatch.

The estimator is the unbiased U-statistic (Gretton et al., 2012)::

    MMD²_u = mean_{i≠j} k(x_i, x_j) + mean_{i≠j} k(y_i, y_j) − 2 mean_{i,j} k(x_i, y_j)

which can be negative when the two distributions are close. With one particle
its samples of q are one per data point, so it is unbiased for MMD² between
the data distribution's aggregate posterior and the prior; with K > 1
particles the q–q average also pairs particles of one data point (a fraction
(K − 1)/(KB − 1) of its pairs), which i.i.d. draws of q(z) almost never do: a
bias of order 1/B.

Kernels, for d-dimensional z:

- ``"rbf"``: k(a, b) = exp(−‖a − b‖² / (2h)) with h = d by default (InfoVAE's
  Gaussian kernel, bandwidth scaled with the dimension; the authors' public
  tutorial code uses exp(−‖a − b‖² / d²), i.e. ``scale=d² / 2``);
- ``"imq"``: k(a, b) = C / (C + ‖a − b‖²) with C = 2d by default (the inverse
  multiquadric kernel of Tolstikhin et al.'s WAE, C = 2·d·σ² for a prior
  N(0, σ²I) with σ = 1), whose heavy tails keep gradients alive for far-apart
  samples.

``scale`` overrides h or C.
"""

import torch

from ..registry import TERMS
from .objective import Term

KERNELS = ("rbf", "imq")


def _check_kernel(kernel):
    if kernel not in KERNELS:
        raise ValueError(f"kernel must be one of {', '.join(map(repr, KERNELS))}, got {kernel!r}")


def default_scale(kernel, dim):
    """h = d for ``"rbf"``, C = 2d for ``"imq"``."""
    _check_kernel(kernel)
    return float(dim) if kernel == "rbf" else 2.0 * dim


def squared_distances(a, b):
    """‖a_i − b_j‖² for rows of ``a`` [m, d] and ``b`` [n, d], as an [m, n] matrix."""
    sq = a.pow(2).sum(-1, keepdim=True) + b.pow(2).sum(-1) - 2.0 * a @ b.transpose(-1, -2)
    return sq.clamp_min(0.0)


def kernel_matrix(a, b, kernel="rbf", scale=None):
    """k(a_i, b_j) as an [m, n] matrix; ``scale`` is h (``"rbf"``) or C (``"imq"``), by default d or 2d."""
    if scale is None:
        scale = default_scale(kernel, a.shape[-1])
    _check_kernel(kernel)
    sq = squared_distances(a, b)
    if kernel == "rbf":
        return torch.exp(-sq / (2.0 * scale))
    return scale / (scale + sq)


def _kernels(x, y, kernel, scale):
    if x.dim() != 2 or y.dim() != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(f"x and y must be [m, d] and [n, d] with one d, got {tuple(x.shape)} and {tuple(y.shape)}")
    if x.shape[0] < 2 or y.shape[0] < 2:
        raise ValueError(f"the U-statistic needs at least 2 samples on each side, got {x.shape[0]} and {y.shape[0]}")
    if scale is None:
        scale = default_scale(kernel, x.shape[1])
    return kernel_matrix(x, x, kernel, scale), kernel_matrix(y, y, kernel, scale), kernel_matrix(x, y, kernel, scale)


def _off_diagonal_sum(k):
    return k.sum() - k.diagonal().sum()


def mmd(x, y, kernel="rbf", scale=None):
    """The unbiased estimate MMD²_u of samples ``x`` [m, d] and ``y`` [n, d] (a 0-dim tensor).

    :param str kernel: ``"rbf"`` or ``"imq"``.
    :param float scale: h of the RBF kernel or C of the IMQ kernel; d or 2d when ``None``.
    """
    kxx, kyy, kxy = _kernels(x, y, kernel, scale)
    m, n = x.shape[0], y.shape[0]
    return _off_diagonal_sum(kxx) / (m * (m - 1)) + _off_diagonal_sum(kyy) / (n * (n - 1)) - 2.0 * kxy.mean()


def mmd_with_standard_error(x, y, kernel="rbf", scale=None):
    """``(MMD²_u, its jackknife standard error)``, both 0-dim tensors, from one set of kernel matrices.

    The two-sample jackknife deletes each x_i and each y_j in turn (O(m² + n²)
    from the kernel matrices' row sums). By the Efron–Stein inequality it
    overestimates the variance on average: it is consistent when q ≠ p, and
    about twice the variance (√2 times the standard error) when q = p, where
    the U-statistic is degenerate. Needs at least 3 samples on each side.
    """
    kxx, kyy, kxy = _kernels(x, y, kernel, scale)
    m, n = x.shape[0], y.shape[0]
    if m < 3 or n < 3:
        raise ValueError(f"the jackknife needs at least 3 samples on each side, got {m} and {n}")
    sxx, syy, sxy = _off_diagonal_sum(kxx), _off_diagonal_sum(kyy), kxy.sum()
    a, b, c = sxx / (m * (m - 1)), syy / (n * (n - 1)), sxy / (m * n)
    estimate = a + b - 2.0 * c
    # Leave x_i out: its row (and column) of k_xx and its row of k_xy go.
    rows_xx = kxx.sum(1) - kxx.diagonal()
    without_x = (sxx - 2.0 * rows_xx) / ((m - 1) * (m - 2)) + b - 2.0 * (sxy - kxy.sum(1)) / ((m - 1) * n)
    rows_yy = kyy.sum(1) - kyy.diagonal()
    without_y = a + (syy - 2.0 * rows_yy) / ((n - 1) * (n - 2)) - 2.0 * (sxy - kxy.sum(0)) / (m * (n - 1))
    variance = (m - 1) / m * (without_x - without_x.mean()).pow(2).sum() + (n - 1) / n * (
        without_y - without_y.mean()
    ).pow(2).sum()
    return estimate, variance.sqrt()


@TERMS.register("mmd", "MMD² between the aggregate posterior q(z) and the prior p(z) at the top latent (InfoVAE)")
class MMD(Term):
    """MMD²_u between the minibatch's aggregate posterior and the prior at one latent site.

    :param str site: the latent site; :meth:`from_model` takes the model's top one.
    :param str kernel: ``"rbf"`` (default) or ``"imq"``.
    :param float scale: h of the RBF kernel or C of the IMQ kernel; d or 2d when ``None``.

    The prior draws come from the model trace's distribution at ``site``. At the
    top latent that is p(z) itself; at a lower site of a hierarchical model it
    is p(h_l | h_{l+1}) with h_{l+1} from the guide, so the comparison is then
    with ∫ p(h_l | h_{l+1}) q(h_{l+1}) dh_{l+1}, not with the prior marginal.
    """

    def __init__(self, site, kernel="rbf", scale=None):
        super().__init__()
        _check_kernel(kernel)
        if scale is not None and not scale > 0:
            raise ValueError(f"scale must be positive, got {scale!r}")
        self.site = site
        self.kernel = kernel
        self.scale = scale

    def extra_repr(self):
        return f"site={self.site!r}, kernel={self.kernel!r}, scale={self.scale!r}"

    def samples(self, model_trace, guide_trace):
        """``(q_samples, p_samples)``, each [particles · batch, dim], of the aggregate posterior and the prior."""
        for role, trace in (("guide", guide_trace), ("model", model_trace)):
            if self.site not in trace.nodes or trace.nodes[self.site]["type"] != "sample":
                raise ValueError(f"the {role} has no sample site {self.site!r} for the mmd term")
        fn = model_trace.nodes[self.site]["fn"]
        dim = fn.event_shape.numel()
        q = guide_trace.nodes[self.site]["value"].reshape(-1, dim)
        batch = fn.batch_shape.numel()
        if q.shape[0] % batch:
            raise ValueError(
                f"site {self.site!r}: {q.shape[0]} guide samples are not a multiple of the "
                f"prior's batch shape {tuple(fn.batch_shape)}"
            )
        sample_shape = torch.Size([q.shape[0] // batch]) if q.shape[0] > batch else torch.Size()
        p = fn.rsample(sample_shape) if fn.has_rsample else fn.sample(sample_shape)
        return q, p.reshape(-1, dim).to(q.dtype)

    def forward(self, model_trace, guide_trace, log_weights):
        q, p = self.samples(model_trace, guide_trace)
        return mmd(q, p, self.kernel, self.scale)

    @classmethod
    def from_model(cls, model, kernel="rbf", scale=None):
        shapes = getattr(model, "latent_shapes", None)
        if not shapes:
            raise ValueError(
                f"{type(model).__name__} does not list its latent sites (``latent_shapes``); "
                "build the mmd term with MMD(site=...)"
            )
        return cls(next(iter(shapes)), kernel, scale)
