"""Inverse autoregressive flow guides (Kingma et al., 2016) from Pyro's transforms.

q(h | x): h_0 ~ N(μ(x), diag σ(x)²), then K conditional affine autoregressive
transforms h_k = μ_k(h_{k-1}, c) + σ_k(h_{k-1}, c) ⊙ h_{k-1}, each conditioned
on the encoder's features c(x); log q(h_K | x) = log q(h_0 | x) − Σ_k log|det ∂h_k/∂h_{k-1}|.
Pyro's ``ConditionalAffineAutoregressive`` supplies the transforms, and the
transformed distribution caches h_0 so log q of a sampled h costs no inverse.
"""

import pyro.distributions as dist
from pyro.distributions.transforms import conditional_affine_autoregressive
from torch import nn
from torch.nn.functional import softplus

from ..registry import GUIDES
from .amortized import AmortizedGuide


class IAFGuide(AmortizedGuide):
    """A diagonal Gaussian per latent site followed by ``num_flows`` conditional IAF steps."""

    def __init__(self, model, hidden_dims=(200, 200), num_flows=2):
        super().__init__(model, hidden_dims)
        c = self.encoder.out_dim
        self.heads = nn.ModuleDict((name, nn.Linear(c, 2 * s[0])) for name, s in self.latent_shapes.items())
        self.flows = nn.ModuleDict(
            (name, nn.ModuleList(conditional_affine_autoregressive(s[0], c, [2 * s[0]]) for _ in range(num_flows)))
            for name, s in self.latent_shapes.items()
        )

    def posterior(self, name, features):
        k = self.latent_shapes[name][0]
        params = self.heads[name](features)
        base = dist.Normal(params[..., :k], softplus(params[..., k:]) + 1e-5).to_event(1)
        return dist.TransformedDistribution(base, [flow.condition(features) for flow in self.flows[name]])


@GUIDES.register("iaf", "diagonal Gaussian + 2 conditional inverse autoregressive flows (Pyro transforms)")
def iaf(model, hidden_dims=(200, 200)):
    return IAFGuide(model, hidden_dims)
