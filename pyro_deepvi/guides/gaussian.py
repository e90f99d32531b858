"""Amortized Gaussian guides for any continuous-latent model.

The recognition model of Rezende et al. (2014):

    q(ξ | x) = Π_l N(ξ_l; μ_l(x), C_l(x))

one shared encoder of x and one head per latent site of the model (its
``latent_shapes``). The covariance is

- ``diag``: C = diag(d);
- ``rank_one``: C⁻¹ = D + uuᵀ (:class:`~pyro_deepvi.distributions.RankOnePrecisionNormal`,
  O(k) per sample);
- ``full``: C = LLᵀ with L lower triangular (Cholesky).

Their q(h_L | x) of the top layer is closed-form (:meth:`AmortizedGaussianGuide.top_posterior`),
so they can be the components of a model's VampPrior (:mod:`~pyro_deepvi.models.vamp`),
which they bind on construction.
"""

import pyro.distributions as dist
import torch
from torch import nn
from torch.nn.functional import softplus

from ..distributions import RankOnePrecisionNormal
from ..registry import GUIDES
from .amortized import AmortizedGuide


def _num_params(covariance, k):
    return {"diag": 2 * k, "rank_one": 3 * k, "full": k + k * (k + 1) // 2}[covariance]


class AmortizedGaussianGuide(AmortizedGuide):
    """q(h_l | x) = N(μ_l(x), C_l(x)) for every latent site of ``model``, independent given x.

    :param model: a model with ``latent_shapes``, ``data_shape`` and ``num_data``.
    :param hidden_dims: widths of the encoder's hidden layers.
    :param str covariance: ``"diag"``, ``"rank_one"`` or ``"full"``.
    :param dict feature_dims: site -> width of the features its head reads (default: the encoder's, for every site).
    :param str activation: the encoder's nonlinearity (see :data:`~pyro_deepvi.nn.ACTIVATIONS`);
        the model's ``encoder_activation`` (tanh when it has none) when None.
    """

    def __init__(self, model, hidden_dims=(200, 200), covariance="diag", feature_dims=None, activation=None):
        if covariance not in ("diag", "rank_one", "full"):
            raise ValueError(f"covariance must be 'diag', 'rank_one' or 'full', got {covariance!r}")
        super().__init__(model, hidden_dims, activation)
        self.covariance = covariance
        feature_dims = feature_dims or {}
        self.heads = nn.ModuleDict(
            (name, nn.Linear(feature_dims.get(name, self.encoder.out_dim), _num_params(covariance, shape[0])))
            for name, shape in self.latent_shapes.items()
        )
        if getattr(model, "vamp", None) is not None:
            model.vamp.bind(self.top_posterior)

    def top_posterior(self, x):
        """q(h_L | x) of the model's top site (the first of its ``latent_shapes``)."""
        top = next(iter(self.latent_shapes))
        return self.posterior(top, self.encoder(x))

    def posterior(self, name, features):
        k = self.latent_shapes[name][0]
        params = self.heads[name](features)
        loc, rest = params[..., :k], params[..., k:]
        if self.covariance == "diag":
            return dist.Normal(loc, softplus(rest) + 1e-5).to_event(1)
        if self.covariance == "rank_one":
            return RankOnePrecisionNormal(loc, softplus(rest[..., :k]) + 1e-5, rest[..., k:])
        tril = torch.zeros(rest.shape[:-1] + (k, k), dtype=rest.dtype, device=rest.device)
        rows, cols = torch.tril_indices(k, k, device=rest.device)
        tril[..., rows, cols] = rest
        diag = tril.diagonal(dim1=-2, dim2=-1)
        tril = tril - torch.diag_embed(diag) + torch.diag_embed(softplus(diag) + 1e-5)
        return dist.MultivariateNormal(loc, scale_tril=tril)


@GUIDES.register("diag", "amortized Gaussian, diagonal covariance C = diag(d)")
def diag(model, hidden_dims=(200, 200), activation=None):
    return AmortizedGaussianGuide(model, hidden_dims, "diag", activation=activation)


@GUIDES.register("rank_one", "amortized Gaussian, rank-one precision C⁻¹ = D + uuᵀ (Rezende et al. 2014)")
def rank_one(model, hidden_dims=(200, 200), activation=None):
    return AmortizedGaussianGuide(model, hidden_dims, "rank_one", activation=activation)


@GUIDES.register("full", "amortized Gaussian, full covariance C = LLᵀ (Cholesky)")
def full(model, hidden_dims=(200, 200), activation=None):
    return AmortizedGaussianGuide(model, hidden_dims, "full", activation=activation)
