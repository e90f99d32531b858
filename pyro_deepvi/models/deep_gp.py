"""Deep Gaussian processes on ``pyro.contrib.gp``: the doubly-stochastic regression DGP
(Salimbeni & Deisenroth 2017) and the unsupervised deep GP (Damianou & Lawrence 2013).

Each layer l is a sparse GP with M inducing inputs Z_l, kernel k_l (Pyro's ARD RBF)
and whitened inducing outputs V_l = L_l⁻¹ U_l, K_{Z_l Z_l} = L_l L_lᵀ, one column
per output dimension d::

    V_l ~ N(0, I)                                             (global latent "U{l}", [D_l, M])
    f_l(x) | V_l ~ N(m_l(x) + k_l(x, Z_l) L_l⁻ᵀ v_{l,d},
                     k_l(x, x) − ‖L_l⁻¹ k_l(Z_l, x)‖²)       (per point, per output d)

The guide q(V_l) = Π_d N(μ_{l,d}, S_{l,d}), full-covariance per output dimension
(:class:`InducingPosterior`, drawn by :class:`~pyro_deepvi.guides.inducing.InducingGuide`),
lies outside the data plate; the ELBO objectives take its log p − log q as global latents,
``elbo_analytic_kl`` as the closed-form KL(q(V_l) ‖ N(0, I)).

``dgp`` (regression): x = h_0 → h_1 → ... → h_H, m_l the identity, or a fixed projection on
the training inputs' principal components, for inner layers and zero for the last, and::

    y_n ~ N(f_H(h_{H−1,n}), σ²)

The bound is the paper's Σ_n E_q[log p(y_n | f_{H,n})] − Σ_l KL(q(V_l) ‖ p(V_l)), estimated
as the paper does: V integrated out of every layer per point, q(f_l(h)) =
N(m_l(h) + aᵀμ_l, k_l(h, h) − ‖a‖² + ‖R_lᵀa‖²) with a = L_l⁻¹ k_l(Z_l, h), each inner h_{l,n}
drawn from it by reparameterization (one draw per point: "doubly stochastic" with the
minibatch), E_{q(f_H)} log N(y; f_H, σ²) in closed form and, by default, the KL analytic.
One draw of V shared by the whole batch (this model's earlier estimator) is unbiased too, but its gradient
is 40–300x noisier (``benchmarks/dgp_gradient_noise.py``). Minibatches are scaled by N / B in the
data plate. H = 1 is the sparse variational GP (Hensman et al. 2013). Inputs and targets are
standardized with the training split's mean and standard deviation (kept as buffers); the
likelihood, and so every metric, is in the original units of y. Predictions average the last
layer's Gaussian over S draws of the inner layers: p(y* | x*) ≈ (1/S) Σ_s N(y*; μ_s, σ_s² + σ²).

``dgp_lvm`` (unsupervised): Y ← X ← Z with Z ~ N(0, I) in Q_Z dims, X = f_2(Z) + noise
in Q_X dims and Y = f_1(X) + noise, zero mean functions, per-point Gaussian q(X), q(Z)
(local sites "X", "Z", non-amortized) and q(U) per layer. Its ELBO,
E_q[log p(Y | X)] + E_q[log p(X | Z)] − E_q[log q(X)] − KL(q(Z) ‖ p(Z)) − KL(q(U) ‖ p(U)),
is the paper's g_Y + r_X + H(q(X)) − KL(q(Z) ‖ p(Z)) with q(U) kept explicit instead of
collapsed, estimated by sampling (V too).

Both set ``amortized = False``: the report (``eval.json``) and validation are the model's
own ``evaluate`` — test log-likelihood and RMSE for ``dgp``; for ``dgp_lvm`` the bound of
test rows whose q(X), q(Z) are fitted with the GPs fixed, and a linear probe of E_q[Z].
"""

import math
from collections import OrderedDict

import pyro
import pyro.distributions as dist
import torch
from pyro.contrib.gp.kernels import RBF
from pyro.nn import PyroModule, PyroParam, pyro_method
from torch import nn
from torch.distributions import constraints

from ..evaluation.batches import seeded_batches
from ..evaluation.linear_probe import linear_probe_accuracy
from ..evaluation.perplexity import fit_local_factors
from ..objectives import elbo
from ..registry import MODELS
from .base import check_batch, data_plate

#: Added to K_ZZ's diagonal before its Cholesky factor, by dtype (float32 needs more).
JITTER = {torch.float64: 1e-6, torch.float32: 1e-4}
#: Draws of the inner layers and of q(V) behind a predictive density.
PREDICTIVE_SAMPLES = 100


def whitened_conditional(x, z, kernel, loc, scale_tril=None, jitter=None):
    """Mean and variance of f(x) given whitened inducing outputs v ~ N(``loc``, R Rᵀ) at ``z``.

    ``pyro.contrib.gp.util.conditional`` takes one input matrix for every draw; a deep
    GP's inner layers give each draw its own, so this version broadcasts a batch of
    inputs against a batch of ``loc``. With A = L⁻¹ k(z, x), K_zz + jitter·I = L Lᵀ::

        mean_d = aᵀ loc_d,   var_d = k(x, x) − ‖a‖² + ‖R_dᵀ a‖²

    per point and output d: the marginal of f(x) under q(v) (Salimbeni & Deisenroth
    2017), or f(x) given v = ``loc`` when ``scale_tril`` is ``None``.

    :param x: inputs [..., B, D_in].
    :param z: inducing inputs [M, D_in].
    :param kernel: a ``pyro.contrib.gp`` kernel.
    :param loc: whitened inducing outputs, or their mean under q(v) [..., D_out, M].
    :param scale_tril: R [D_out, M, M] of q(v), or ``None``.
    :param float jitter: added to K_zz's diagonal (by default :data:`JITTER` of z's dtype).
    :returns: ``(loc [..., B, D_out], var [..., B, D_out])``.
    """
    jitter = JITTER.get(z.dtype, 1e-4) if jitter is None else jitter
    num_inducing = z.shape[0]
    eye = torch.eye(num_inducing, dtype=z.dtype, device=z.device)
    cholesky = torch.linalg.cholesky(kernel(z) + jitter * eye)
    flat = x.reshape(-1, x.shape[-1])
    k_zx = kernel(z, flat).reshape((num_inducing,) + x.shape[:-1]).movedim(0, -2)
    a = torch.linalg.solve_triangular(cholesky, k_zx, upper=False)
    mean = (loc @ a).transpose(-1, -2)
    var = (kernel(flat, diag=True).reshape(x.shape[:-1]) - a.pow(2).sum(-2)).clamp(min=jitter).unsqueeze(-1)
    if scale_tril is not None:
        var = var + (scale_tril.transpose(-1, -2) @ a.unsqueeze(-3)).pow(2).sum(-2).transpose(-1, -2)
    return mean, var.expand(mean.shape)


class InducingPosterior(PyroModule):
    """q(V) = Π_d N(μ_d, R_d R_dᵀ) over a [D, M] site, with R_d = diag(s_d) (I + N_d) for a
    strictly lower-triangular N_d and s_d = exp(·): Adam's steps (about lr each) then move
    the off-diagonal entries relative to their row's scale, and R_d stays well conditioned
    for the log-density's triangular solves however small s_d is."""

    def __init__(self, shape, init_scale):
        super().__init__()
        rows, num_inducing = shape
        self.loc = nn.Parameter(torch.zeros(rows, num_inducing))
        self.log_scale = nn.Parameter(torch.full((rows, num_inducing), math.log(init_scale)))
        self.lower = nn.Parameter(torch.zeros(rows, num_inducing, num_inducing))

    @property
    def scale_tril(self):
        unit = self.lower.tril(-1) + torch.eye(self.lower.shape[-1], dtype=self.lower.dtype, device=self.lower.device)
        return self.log_scale.exp().unsqueeze(-1) * unit

    @torch.no_grad()
    def set(self, loc, scale_tril):
        """Set μ and R (any lower-triangular R with a positive diagonal)."""
        diagonal = scale_tril.diagonal(dim1=-2, dim2=-1)
        self.loc.copy_(loc)
        self.log_scale.copy_(diagonal.log())
        self.lower.copy_(scale_tril / diagonal.unsqueeze(-1))

    def forward(self):
        return dist.MultivariateNormal(self.loc, scale_tril=self.scale_tril).to_event(1)


def inducing_posteriors(shapes, init_scales):
    """``{site: InducingPosterior}`` for every inducing site's shape [D, M] and initial scale."""
    return nn.ModuleDict((name, InducingPosterior(shape, init_scales[name])) for name, shape in shapes.items())


class SparseGPLayer(PyroModule):
    """One layer: RBF kernel, learned inducing inputs and an optional fixed linear mean.

    :param torch.Tensor inducing_inputs: initial Z [M, D_in].
    :param int output_dim: D_out.
    :param torch.Tensor mean_projection: W [D_in, D_out] of the mean m(x) = x W, or
        ``None`` for a zero mean.
    :param float variance: the kernel's initial variance.
    :param bool ard: one lengthscale per input dimension (ARD), or one shared by all.
    """

    def __init__(self, inducing_inputs, output_dim, mean_projection=None, variance=1.0, ard=True):
        super().__init__()
        input_dim = inducing_inputs.shape[1]
        self.output_dim = output_dim
        self.inducing_inputs = nn.Parameter(inducing_inputs.clone())
        # Lengthscale √D_in: a unit-variance input sits about one lengthscale from another.
        lengthscale = torch.full((input_dim,) if ard else (), float(input_dim) ** 0.5)
        self.kernel = RBF(input_dim, variance=torch.tensor(float(variance)), lengthscale=lengthscale)
        self.register_buffer("mean_projection", mean_projection)

    def forward(self, x, v):
        """``(loc, var)`` [..., B, D_out] of f(x) given v [..., D_out, M], or its marginal under
        ``v`` = q(V) (an :class:`InducingPosterior`); see :func:`whitened_conditional`. Mean added."""
        if isinstance(v, InducingPosterior):
            loc, var = whitened_conditional(x, self.inducing_inputs, self.kernel, v.loc, v.scale_tril)
        else:
            loc, var = whitened_conditional(x, self.inducing_inputs, self.kernel, v)
        if self.mean_projection is not None:
            loc = loc + x @ self.mean_projection
        return loc, var

    def sample(self, x, v):
        """One reparameterized draw of f(x) per point and output, [..., B, D_out]."""
        loc, var = self(x, v)
        return loc + var.sqrt() * torch.randn_like(loc)


def principal_projection(x, output_dim):
    """W [D_in, D_out] onto the top principal directions of the rows of ``x`` (the paper's inner
    mean functions); the identity when D_out = D_in, zero-padded columns when D_out > D_in."""
    input_dim = x.shape[1]
    if output_dim == input_dim:
        return torch.eye(input_dim, dtype=x.dtype, device=x.device)
    _, _, vh = torch.linalg.svd(x - x.mean(0), full_matrices=False)
    projection = x.new_zeros(input_dim, output_dim)
    k = min(input_dim, output_dim)
    projection[:, :k] = vh[:k].T
    return projection


def _initial_inducing_inputs(x, num_inducing, seed=0):
    """M rows of ``x`` chosen at random (seeded), repeated with a small jitter if M > N."""
    g = torch.Generator().manual_seed(seed)
    index = torch.randperm(len(x), generator=g)[: min(num_inducing, len(x))]
    z = x[index]
    if num_inducing > len(x):
        extra = x[torch.randint(len(x), (num_inducing - len(x),), generator=g)]
        z = torch.cat([z, extra + 0.01 * torch.randn(extra.shape, generator=g, dtype=x.dtype)])
    return z


def standardization(values, what):
    """Mean and standard deviation of the columns of ``values`` [N, D]; refuses constant columns."""
    if len(values) < 2:
        raise ValueError(f"{what}: need at least 2 training rows to standardize, got {len(values)}")
    mean, std = values.mean(0), values.std(0)
    constant = (std <= 1e-8 * mean.abs().clamp(min=1)).nonzero().flatten().tolist()
    if constant:
        raise ValueError(
            f"{what} has constant column(s) {constant} on the training split: they carry no information "
            "and cannot be standardized; drop them"
        )
    return mean, std


def _check_positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


class _InducingLayers(PyroModule):
    """What both deep GPs share: layers, their inducing sites ``U1``, ... (bottom to top), and
    how a guide initializes q(V): ``inducing_shapes`` (name -> (D_out, M)) and
    ``inducing_init_scales`` (name -> the initial scale of S^½)."""

    support = "real"
    max_plate_nesting = 1
    default_guide = "inducing"
    amortized = False
    reads_training_data = True  # from_data standardizes, places inducing inputs and runs PCA on the data

    def _set_layers(self, layers, init_scales):
        self.layers = nn.ModuleList(layers)
        self.inducing_shapes = OrderedDict(
            (f"U{l}", (layer.output_dim, layer.inducing_inputs.shape[0])) for l, layer in enumerate(layers, 1)
        )
        self.inducing_init_scales = dict(zip(self.inducing_shapes, init_scales))

    def sample_inducing(self, like):
        """V_l ~ N(0, I) for every layer, as [..., D_l, M] (a particle plate's draws on the left).

        The prior is a MultivariateNormal per output row, so that KL(q(V) ‖ p(V)) has a closed
        form (the ``elbo_analytic_kl`` objective)."""
        values = []
        for name, (rows, num_inducing) in self.inducing_shapes.items():
            eye = torch.eye(num_inducing, dtype=like.dtype, device=like.device)
            prior = dist.MultivariateNormal(like.new_zeros(rows, num_inducing), scale_tril=eye).to_event(1)
            v = pyro.sample(name, prior)
            values.append(v.reshape((-1, rows, num_inducing)) if v.dim() > 2 else v)
        return values


@MODELS.register("dgp", "doubly-stochastic deep GP regression (Salimbeni & Deisenroth 2017); --latent-dims '' is the SVGP")
class DeepGP(_InducingLayers):
    """A deep GP for regression of float targets ``y`` [N] on inputs ``x`` [N, D].

    The model holds q(V) of every layer (``posteriors``; the ``inducing`` guide draws from these
    same modules), as ``pyro.contrib.gp``'s ``VariationalSparseGP`` does: its likelihood uses
    each layer's marginal q(f_l(h)) = ∫ p(f_l(h) | V_l) q(V_l) dV_l, and its sites U1, ... only
    carry p(V) for the KL. Train it with the ``inducing`` guide only.

    :param torch.Tensor train_x: the training inputs (their statistics standardize x, their
        principal directions give the inner mean functions, their rows the first Z).
    :param torch.Tensor train_y: the training targets (their statistics standardize y).
    :param int num_data: N.
    :param widths: D_1, ..., D_{H−1}, the inner layers' widths; empty for the SVGP.
    :param int num_inducing: M per layer.
    :param float noise: the likelihood's initial σ², in standardized units.
    :param float inner_init_scale: q(V)'s initial S^½ = scale·I on inner layers: small, so
        that inner layers start near their mean function, as in the paper (which starts at 1e-5).
    :param bool ard: ARD lengthscales in every layer, or one lengthscale per layer.
    """

    latent_dims_may_be_empty = True  # no inner layers: the sparse variational GP (SVGP)
    train_defaults = dict(
        data="boston", epochs=2000, batch_size=1000, lr=0.01, latent_dims=(13,), eval_every=1000, progress=False,
        objective="elbo_analytic_kl",
    )

    def __init__(
        self, train_x, train_y, num_data, widths=(), num_inducing=100, noise=0.1, inner_init_scale=1e-5, ard=True
    ):
        super().__init__()
        _check_positive_int("num_inducing", num_inducing)
        widths = tuple(widths)
        for width in widths:
            _check_positive_int("each inner layer's width (latent_dims)", width)
        if not noise > 0:
            raise ValueError(f"noise is the likelihood's initial variance and must be positive, got {noise!r}")
        self.data_shape = train_x.shape[1:]
        self.num_data = int(num_data)
        x_mean, x_std = standardization(train_x, "dgp: x")
        y_mean, y_std = standardization(train_y.unsqueeze(-1), "dgp: y")
        for name, value in (("x_mean", x_mean), ("x_std", x_std), ("y_mean", y_mean[0]), ("y_std", y_std[0])):
            self.register_buffer(name, value)
        h = (train_x - x_mean) / x_std
        z = _initial_inducing_inputs(h, num_inducing)
        layers = []
        for width in widths:
            projection = principal_projection(h, width)
            layers.append(SparseGPLayer(z, width, projection, ard=ard))
            z, h = z @ projection, h @ projection
        layers.append(SparseGPLayer(z, 1, ard=ard))
        self._set_layers(layers, [inner_init_scale] * len(widths) + [1.0])
        self.posteriors = inducing_posteriors(self.inducing_shapes, self.inducing_init_scales)
        self.noise = PyroParam(torch.tensor(float(noise)), constraint=constraints.positive)

    def _check(self, x, y):
        check_batch(x, self.data_shape, "dgp")
        if y is not None and (not torch.is_tensor(y) or not y.is_floating_point() or y.shape != x.shape[:1]):
            found = f"{y.dtype} of shape {tuple(y.shape)}" if torch.is_tensor(y) else type(y).__name__
            raise ValueError(f"dgp expects float targets y of shape [{x.shape[0]}] (one per row of x), got {found}")

    def last_layer(self, x, draws=()):
        """Standardized ``(loc, var)`` [*draws, B] of q(f_H) at ``x`` [B, D]: each inner layer drawn from its
        marginal q(f_l(h_{l−1})), independently per point and per draw, the last one's marginal returned."""
        h = ((x - self.x_mean) / self.x_std).expand(tuple(draws) + x.shape)
        posteriors = list(self.posteriors.values())
        for layer, posterior in zip(self.layers[:-1], posteriors[:-1]):
            h = layer.sample(h, posterior)
        loc, var = self.layers[-1](h, posteriors[-1])
        return loc.squeeze(-1), var.squeeze(-1)

    @pyro_method
    def model(self, x, y=None, index=None):
        """p(V) at the sites U1, ..., then y with the expected log-likelihood of the paper's bound,
        E_{q(f_H)}[log N(y; f_H, σ²)] = log N(y; μ, σ²) − var / (2σ²) (in standardized units), for
        q(f_H) = N(μ, var) drawn through the inner layers once per particle."""
        self._check(x, y)
        draws = self.sample_inducing(x)[0].shape[:-2]  # (particles,) under a vectorized particle plate
        loc, var = self.last_layer(x, draws)
        scale = self.y_std * self.noise.sqrt()
        with data_plate(self.num_data, x, index):
            if y is None:
                pyro.sample("y", dist.Normal(self.y_mean + self.y_std * (loc + var.sqrt() * torch.randn_like(loc)), scale))
            else:
                pyro.sample("y", dist.Normal(self.y_mean + self.y_std * loc, scale), obs=y)
                pyro.factor("y_spread", -var / (2 * self.noise))

    def _check_guide(self, guide):
        if getattr(guide, "inducing", None) is not self.posteriors:
            raise ValueError(
                f"dgp's likelihood integrates its own q(V), so it needs the 'inducing' guide built on it, got {type(guide).__name__}"
            )

    def predict(self, guide, x, num_samples=PREDICTIVE_SAMPLES):
        """``(loc, var)`` [S, B] of q(f_H) at ``x`` in y's units for S draws of the inner layers:
        p(y* | x*) ≈ (1/S) Σ_s N(y*; loc_s, var_s + σ²)."""
        check_batch(x, self.data_shape, "dgp")
        self._check_guide(guide)
        loc, var = self.last_layer(x, (num_samples,))
        return self.y_mean + self.y_std * loc, self.y_std**2 * var

    def predictive_log_density(self, guide, x, y, num_samples=PREDICTIVE_SAMPLES):
        """log p(y_n | x_n) ≈ log (1/S) Σ_s N(y_n; μ_s, σ_s² + σ²), and the mean prediction (1/S) Σ_s μ_s."""
        self._check(x, y)
        loc, var = self.predict(guide, x, num_samples)
        log_density = dist.Normal(loc, (var + self.y_std**2 * self.noise).sqrt()).log_prob(y)
        num = torch.tensor(float(num_samples), dtype=y.dtype, device=y.device)
        return torch.logsumexp(log_density, 0) - num.log(), loc.mean(0)

    def evaluate(self, guide, data, seed=0, num_samples=PREDICTIVE_SAMPLES, batch_size=1000):
        """The paper's test metrics in y's units: mean log predictive density and RMSE of the mean prediction."""
        log_density, error = [], []
        with torch.no_grad():
            for batch in seeded_batches(data, batch_size, seed):
                if "y" not in batch:
                    raise ValueError(f"dgp evaluates regression targets, but {data.name}/{data.split} has no y")
                lp, mean = self.predictive_log_density(guide, batch["x"], batch["y"], num_samples)
                log_density.append(lp)
                error.append(mean - batch["y"])
        log_density, error = torch.cat(log_density), torch.cat(error)
        return {
            "test_log_predictive": float(log_density.mean()),
            "test_log_predictive_stderr": float(log_density.std() / len(log_density) ** 0.5),
            "test_rmse": float(error.pow(2).mean().sqrt()),
            "predictive_samples": num_samples,
        }

    @classmethod
    def from_data(cls, data, latent_dims=(), hidden_dims=None, **options):
        """A DGP for ``data`` (float ``y`` targets): ``latent_dims`` are the inner layers' widths
        (the paper: min(30, D) each; empty for the SVGP); ``hidden_dims`` is unused."""
        if data.y is None or not data.y.is_floating_point() or data.y.dim() != 1:
            raise ValueError(f"dgp needs float regression targets y of shape [N]; data set {data.name} has none")
        return cls(data.x, data.y, len(data), widths=latent_dims, **options)


@MODELS.register("dgp_lvm", "unsupervised deep GP Y <- X <- Z (Damianou & Lawrence 2013), per-point q(X), q(Z)")
class DeepGPLVM(_InducingLayers):
    """A two-layer deep GP latent-variable model of rows ``x`` [N, D] (named Y in the paper).

    :param torch.Tensor train_x: the training rows (PCA of them initializes q(X) and q(Z)).
    :param int num_data: N.
    :param latent_dims: ``(Q_X, Q_Z)``, the hidden and the top layer's widths.
    :param torch.Tensor train_labels: class labels of the training rows, for the linear
        probe of :meth:`evaluate` (optional).
    :param int num_inducing: M per layer.
    :param float noise: the initial σ² of both layers' Gaussian noise.
    :param int fit_steps: Adam steps of :meth:`evaluate`'s fit of the held-out rows' q(X), q(Z).
    """

    train_defaults = dict(data="digits", epochs=200, batch_size=300, lr=0.01, latent_dims=(5, 2), eval_every=0)

    def __init__(self, train_x, num_data, latent_dims=(5, 2), train_labels=None, num_inducing=50, noise=0.1, fit_steps=300):
        super().__init__()
        _check_positive_int("num_inducing", num_inducing)
        _check_positive_int("fit_steps", fit_steps)
        self.fit_steps = fit_steps
        latent_dims = tuple(latent_dims)
        if len(latent_dims) != 2 or any(isinstance(q, bool) or not isinstance(q, int) or q < 1 for q in latent_dims):
            raise ValueError(f"dgp_lvm's latent_dims are (Q_X, Q_Z), two positive integers, got {latent_dims!r}")
        self.data_shape = train_x.shape[1:]
        self.num_data = int(num_data)
        q_x, q_z = latent_dims
        x_init = self._pca(train_x, q_x)
        z_init = self._pca(x_init, q_z)
        self.local_shapes = OrderedDict([("Z", q_z), ("X", q_x)])
        self.register_buffer("init_X", x_init)
        self.register_buffer("init_Z", z_init)
        self.register_buffer("train_labels", train_labels)
        bottom = SparseGPLayer(_initial_inducing_inputs(x_init, num_inducing), train_x.shape[1])
        top = SparseGPLayer(_initial_inducing_inputs(z_init, num_inducing), q_x)
        self._set_layers([bottom, top], [1.0, 1.0])
        self.noise = PyroParam(torch.full((2,), float(noise)), constraint=constraints.positive)

    @staticmethod
    def _pca(x, dim):
        """The rows' coordinates on their top ``dim`` principal directions, scaled to unit variance."""
        h = (x - x.mean(0)) @ principal_projection(x, dim)
        return h / h.std(0).clamp(min=1e-6)

    @pyro_method
    def model(self, x, y=None, index=None):
        check_batch(x, self.data_shape, "dgp_lvm")
        bottom_v, top_v = self.sample_inducing(x)
        with data_plate(self.num_data, x, index):
            z = pyro.sample("Z", dist.Normal(x.new_zeros(self.local_shapes["Z"]), 1.0).to_event(1))
            f_top = self.layers[1].sample(z, top_v)
            h = pyro.sample("X", dist.Normal(f_top, self.noise[1].sqrt()).to_event(1))
            f_bottom = self.layers[0].sample(h, bottom_v)
            pyro.sample("x", dist.Normal(f_bottom, self.noise[0].sqrt()).to_event(1), obs=x)

    def evaluate(self, guide, data, seed=0):
        """Test ELBO per row with q(X), q(Z) of the test rows fitted (``fit_steps`` of Adam) and q(U) at
        its mean, and the accuracy of a linear probe from E_q[Z] of the training rows to the test rows'."""
        with torch.random.fork_rng(devices=[data.x.device] if data.x.is_cuda else []):
            pyro.set_rng_seed(seed)
            global_values = guide.global_means()
            conditioned = pyro.poutine.condition(self.model, data=global_values)
            local_guide = fit_local_factors(self, guide.local_guide(len(data)), data.x, global_values, self.fit_steps)
            with torch.no_grad():
                bound = -float(elbo(10)(conditioned, local_guide, x=data.x))
        result = {"test_bound": bound / len(data)}
        if self.train_labels is not None and data.y is not None:
            train_z, test_z = guide.local_means()["Z"].detach(), local_guide.local_means()["Z"].detach()
            accuracy = linear_probe_accuracy(train_z, self.train_labels, test_z, data.y, int(data.num_classes))
            result["linear_probe_accuracy"] = accuracy
        return result

    @classmethod
    def from_data(cls, data, latent_dims=(5, 2), hidden_dims=None, **options):
        """A deep GP-LVM for ``data``'s rows; ``latent_dims`` = (Q_X, Q_Z); ``hidden_dims`` is unused."""
        labels = data.y if data.y is not None and not data.y.is_floating_point() else None
        return cls(data.x, len(data), latent_dims, train_labels=labels, **options)
