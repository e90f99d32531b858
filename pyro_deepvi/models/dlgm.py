"""Deep latent Gaussian models (Rezende, Mohamed & Wierstra, 2014).

Generative process, in the seed's notation, for L stochastic layers::

    ξ_l ~ N(0, I)                        l = 1, ..., L
    h_L = G_L ξ_L
    h_l = T_l(h_{l+1}) + G_l ξ_l         l = 1, ..., L-1
    x   ~ π(T_0(h_1))

so p(h_l | h_{l+1}) = N(T_l(h_{l+1}), G_l G_lᵀ). The T_l are MLPs and the G_l
lower-triangular matrices. G_L is fixed to I: any other choice is absorbed by
T_{L-1} (or T_0 when L = 1). π is Bernoulli (binary images) or an isotropic
Gaussian; L = 1 with a linear T_0 and Gaussian π is probabilistic PCA, whose
exact log p(x) = log N(x; b, WWᵀ + σ²I) is :meth:`DLGM.exact_log_likelihood`.

The weight prior θ^g ~ N(0, κI) of the seed is optional (``kappa``): when set,
the model adds ``pyro.factor("theta_g", log N(θ^g; 0, κI))`` outside the data
plate, once per step, so the objective is the free energy F(X) whose gradient
is −E_q[∇ log p(X|h)] + θ^g / κ (MAP for θ^g). Sites outside the data plate are
not part of any data point's log p(x_n), so evaluation leaves it out.

The top layer's prior is N(0, I) (``prior="normal"``, the paper's) or, with
``prior="mog"``, a learned marginal (Alemi et al. 2018, "Fixing a broken
ELBO")::

    r_ψ(h_L) = Σ_k π_k N(h_L; μ_k, diag σ_k²)      k = 1, ..., K (``prior_components``)

with π = softmax(logits) and σ_k = exp(log-scales), all three parameters of
the model (``prior_logits`` [K], ``prior_locs`` [K, d_L], ``prior_log_scales``
[K, d_L]), trained with it by every objective. The rate R = E_q[log q − log r_ψ]
is then measured against r_ψ, which the paper fits to approach the aggregate
posterior q(h_L). The mixture (``pyro.distributions.MixtureSameFamily``) has
``log_prob`` and ``sample`` but no ``rsample``: objectives and guides only need
its log-density; prior samples (``sample``, the MMD term's draws) are not
reparameterized, so the MMD term gives r_ψ no gradient. With ``prior="vamp"``
it is the VampPrior (Tomczak & Welling 2018), the mixture of the guide's
posteriors at ``prior_components`` learned pseudo-inputs, started uniform or,
with ``prior_init="data"``, at random training points (:mod:`~pyro_deepvi.models.vamp`,
which says how it gets the guide's encoder, and why that encoder is ReLU: the
model's ``encoder_activation``, which the amortized guides take when not given
one; tanh with the other priors).

With linear links and decoder, a Gaussian π and the N(0, I) prior, x is
Gaussian for every L, and :meth:`DLGM.exact_log_likelihood` gives its exact log p(x).

Sites: ``h{L}``, ..., ``h1`` (latent, in this order), ``x`` (observed),
``theta_g`` (factor, only with ``kappa``).
"""

import math
from collections import OrderedDict

import pyro
import pyro.distributions as dist
import torch
from pyro.nn import PyroModule, pyro_method
from torch import nn

from ..nn import MLP, activation_class
from ..registry import MODELS
from .base import check_batch, data_plate, flat_dim, make_likelihood
from .vamp import VampPrior


@MODELS.register("dlgm", "deep latent Gaussian model (Rezende et al. 2014): L Gaussian layers, MLP links")
class DLGM(PyroModule):
    """A deep latent Gaussian model.

    :param data_shape: event shape of one data point.
    :param int num_data: size N of the training set (the data plate's size).
    :param latent_dims: widths of h_1, ..., h_L (bottom to top).
    :param hidden_dims: hidden widths of every MLP T_l (empty: linear maps).
    :param str likelihood: ``"bernoulli"`` or ``"gaussian"``.
    :param float kappa: variance κ of the weight prior θ^g ~ N(0, κI); ``None`` for none.
    :param str prior: prior of the top layer h_L: ``"normal"`` (N(0, I)) or ``"mog"``
        (a learned mixture of ``prior_components`` diagonal Gaussians) or ``"vamp"`` (the VampPrior).
    :param int prior_components: K of the ``"mog"`` and ``"vamp"`` priors.
    :param prior_init: the VampPrior's initial pseudo-inputs, a tensor [K, *data_shape];
        ``None``: uniform on [0, 1]; ``from_data`` reads ``"data"`` as K random training points.
    :param str activation: the nonlinearity of T_0 and the T_l, a key of :data:`~pyro_deepvi.nn.ACTIVATIONS`
        (``"tanh"`` by default, as the paper's; ``--model-arg activation=relu``).
    """

    PRIORS = ("normal", "mog", "vamp")

    max_plate_nesting = 1
    default_guide = "diag"

    def __init__(
        self,
        data_shape,
        num_data,
        latent_dims=(50,),
        hidden_dims=(200, 200),
        likelihood="bernoulli",
        kappa=None,
        prior="normal",
        prior_components=10,
        prior_init=None,
        activation="tanh",
    ):
        super().__init__()
        if not latent_dims:
            raise ValueError("latent_dims must name at least one layer, e.g. (50,)")
        if kappa is not None and kappa <= 0:
            raise ValueError(f"kappa is the prior variance and must be positive, got {kappa}")
        if prior not in self.PRIORS:
            raise ValueError(f"prior must be one of {', '.join(map(repr, self.PRIORS))}, got {prior!r}")
        if isinstance(prior_components, bool) or not isinstance(prior_components, int) or prior_components < 1:
            raise ValueError(f"prior_components must be a positive integer, got {prior_components!r}")
        act = activation_class(activation, "decoder")
        self.data_shape = torch.Size(data_shape)
        self.num_data = int(num_data)
        self.latent_dims = tuple(int(d) for d in latent_dims)
        self.kappa = kappa
        self.likelihood = make_likelihood(likelihood)
        self.support = self.likelihood.support
        num_layers = len(self.latent_dims)
        self.latent_shapes = OrderedDict(
            (f"h{l}", torch.Size([self.latent_dims[l - 1]])) for l in range(num_layers, 0, -1)
        )
        # T_0 decodes h_1 into the observation model's parameters; T_l links h_{l+1} to h_l.
        self.decoder = MLP(self.latent_dims[0], hidden_dims, flat_dim(self.data_shape), activation=act)
        self.links = nn.ModuleList(
            MLP(self.latent_dims[l], hidden_dims, self.latent_dims[l - 1], activation=act)
            for l in range(1, num_layers)
        )
        self.noise_scale_tril = nn.ParameterList(
            nn.Parameter(torch.eye(d)) for d in self.latent_dims[:-1]
        )
        self.prior = prior
        if prior == "mog":
            top = self.latent_dims[-1]
            # Components spread like draws of N(0, I), so they start apart (symmetry broken) and near
            # where a N(0, I)-like posterior puts its mass; equal weights and unit scales.
            self.prior_logits = nn.Parameter(torch.zeros(prior_components))
            self.prior_locs = nn.Parameter(torch.randn(prior_components, top))
            self.prior_log_scales = nn.Parameter(torch.zeros(prior_components, top))
        if prior_init is not None and prior != "vamp":
            raise ValueError(f"prior_init sets the VampPrior's pseudo-inputs and needs prior='vamp', got prior={prior!r}")
        self.vamp = VampPrior(self.data_shape, prior_components, prior_init) if prior == "vamp" else None
        self.encoder_activation = "relu" if prior == "vamp" else "tanh"
        # log σ of the Gaussian likelihood; a Bernoulli one has no extra parameter.
        self.obs_log_scale = nn.Parameter(torch.zeros(())) if self.support == "real" else None

    def _noise_tril(self, l):
        """G_l with a positive diagonal, so G_l G_lᵀ is a valid covariance."""
        raw = self.noise_scale_tril[l - 1]
        return raw.tril(-1) + torch.diag_embed(nn.functional.softplus(raw.diagonal()) + 1e-4)

    def top_prior(self, like):
        """The prior of h_L: N(0, I), the learned mixture r_ψ or the VampPrior (on ``like``'s device and dtype)."""
        top = self.latent_dims[-1]
        if self.prior == "normal":
            return dist.Normal(like.new_zeros(top), like.new_ones(top)).to_event(1)
        if self.prior == "vamp":
            return self.vamp()
        components = dist.Normal(self.prior_locs, self.prior_log_scales.exp()).to_event(1)
        return dist.MixtureSameFamily(dist.Categorical(logits=self.prior_logits), components)

    def weight_log_prior(self):
        """log N(θ^g; 0, κI) summed over every generative parameter."""
        log_p = 0.0
        for p in self.parameters():
            log_p = log_p - 0.5 * (p.pow(2).sum() / self.kappa + p.numel() * math.log(2 * math.pi * self.kappa))
        return log_p

    @pyro_method  # a plain Pyro SVI loop over `model.model` then sees (and trains) the module's parameters
    def model(self, x, y=None, index=None):
        check_batch(x, self.data_shape, "dlgm")
        x = x.reshape(x.shape[0], -1)
        if self.kappa is not None:
            pyro.factor("theta_g", self.weight_log_prior())
        with data_plate(self.num_data, x, index):
            h = pyro.sample(f"h{len(self.latent_dims)}", self.top_prior(x))
            for l in range(len(self.latent_dims) - 1, 0, -1):
                loc = self.links[l - 1](h)
                h = pyro.sample(f"h{l}", dist.MultivariateNormal(loc, scale_tril=self._noise_tril(l)))
            return pyro.sample("x", self.likelihood(self.decoder(h), self.obs_log_scale), obs=x)

    def exact_log_likelihood(self, x):
        """log p(x) of the linear-Gaussian case: log N(x; m_0, Σ_0) with, from m_L = 0, Σ_L = I downwards,

        m_l = A_l m_{l+1} + a_l,  Σ_l = A_l Σ_{l+1} A_lᵀ + G_l G_lᵀ,  m_0 = W m_1 + b,  Σ_0 = W Σ_1 Wᵀ + σ²I

        (T_l(h) = A_l h + a_l, T_0(h) = W h + b); for L = 1 it is PPCA's log N(x; b, WWᵀ + σ²I).
        """
        linear = len(self.decoder) == 1 and all(len(link) == 1 for link in self.links)
        if not linear or self.support != "real" or self.prior != "normal":
            raise ValueError(
                "exact_log_likelihood needs linear T_l (hidden_dims=()), a Gaussian likelihood and the normal prior"
            )
        W = self.decoder[0].weight
        mean = W.new_zeros(self.latent_dims[-1])
        cov = torch.eye(self.latent_dims[-1], dtype=W.dtype, device=W.device)
        for l in range(len(self.latent_dims) - 1, 0, -1):
            A, a, G = self.links[l - 1][0].weight, self.links[l - 1][0].bias, self._noise_tril(l)
            mean, cov = A @ mean + a, A @ cov @ A.T + G @ G.T
        mean, cov = W @ mean + self.decoder[0].bias, W @ cov @ W.T
        cov = cov + self.obs_log_scale.exp().pow(2) * torch.eye(W.shape[0], dtype=W.dtype, device=W.device)
        return dist.MultivariateNormal(mean, covariance_matrix=cov).log_prob(x.reshape(x.shape[0], -1))

    def exact_posterior(self, x):
        """q*(h|x) = N(M⁻¹Wᵀ(x − b), σ²M⁻¹), M = WᵀW + σ²I: the PPCA posterior."""
        W, b = self.decoder[0].weight, self.decoder[0].bias
        var = self.obs_log_scale.exp().pow(2)
        M = W.T @ W + var * torch.eye(W.shape[1], dtype=W.dtype, device=W.device)
        M_inv = torch.linalg.inv(M)
        loc = (x.reshape(x.shape[0], -1) - b) @ W @ M_inv.T
        return dist.MultivariateNormal(loc, covariance_matrix=var * M_inv)

    @classmethod
    def from_data(cls, data, latent_dims=(50,), hidden_dims=(200, 200), **options):
        if isinstance(options.get("prior_init"), str):
            if options["prior_init"] != "data":
                raise ValueError(f"prior_init must be 'data' (random training points) or a tensor, got {options['prior_init']!r}")
            num_components = options.get("prior_components", 10)
            if isinstance(num_components, int) and num_components > len(data):
                raise ValueError(f"prior_init='data' picks {num_components} of the {len(data)} training points: too few")
            options["prior_init"] = data.x[torch.randperm(len(data))[:num_components]]
        return cls(data.event_shape, len(data), latent_dims, hidden_dims, **options)
