"""The bottom-up chain guide for hierarchies of Gaussian layers (Burda et al., 2016).

    q(h | x) = q(h¹ | x) q(h² | h¹) ⋯ q(h^L | h^{L−1})

the recognition model of IWAE's networks with two stochastic layers, for any
model whose latents form a chain of vectors. Each factor is a Gaussian
N(μ(c), C(c)) as in :class:`~pyro_deepvi.guides.gaussian.AmortizedGaussianGuide`
(``chain``: diagonal C), whose features c are the encoder's of x for h¹ and an
MLP's of h^{l−1} (the same hidden widths, tanh) for h^l. With one layer it is
the ``diag`` guide.

**Order of the sites.** A model lists its sites in ``latent_shapes`` in its own
(ancestral, top-down) sampling order, the layer next to x last: DLGM's
``h{L}, ..., h1``, LVAE's ``z{L}, ..., z1``. The guide reads that list in reverse
and samples bottom-up, ``h1`` first. The order of a guide's sites does not
matter to the objectives: every estimator scores the joint
log p(x, h) − log q(h | x) of the model's trace replayed against the guide's
(:func:`~pyro_deepvi.importance.log_weights`), never a per-site closed-form KL
(none uses ``TraceMeanField_ELBO``, which assumes the guide's sites independent
of each other), so the chain guide works with ``elbo``, ``iwae`` and every term.
ELBO surgery refuses it (a site depends on another's draw); active units average
the conditional means over draws (``dependent_sites``).
"""

import pyro
from torch import nn

from ..models.base import data_plate
from ..registry import GUIDES
from .amortized import Encoder, latent_shapes_of
from .gaussian import AmortizedGaussianGuide


class ChainGuide(AmortizedGaussianGuide):
    """q(h¹ | x) Π_l q(h^l | h^{l−1}), each a Gaussian with the given covariance.

    :param model: a model with vector ``latent_shapes`` (top-down sampling order), ``data_shape`` and ``num_data``.
    :param hidden_dims: hidden widths of the encoder of x and of each link h^{l−1} -> h^l.
    :param str covariance: ``"diag"``, ``"rank_one"`` or ``"full"``.
    """

    #: q(h^l | h^{l−1}) depends on the draw of h^{l−1}.
    dependent_sites = True

    def __init__(self, model, hidden_dims=(200, 200), covariance="diag"):
        shapes = latent_shapes_of(model)
        bottom_up = list(reversed(shapes))
        links = {upper: Encoder(shapes[lower], hidden_dims) for lower, upper in zip(bottom_up[:-1], bottom_up[1:])}
        super().__init__(model, hidden_dims, covariance, {name: link.out_dim for name, link in links.items()})
        self.bottom_up = bottom_up
        self.links = nn.ModuleDict(links)

    def top_posterior(self, x):
        if len(self.bottom_up) > 1:
            raise ValueError(
                "the chain guide's q(h_L | x) of several layers is an integral over the layers below, "
                "not a closed form, so it cannot be a VampPrior's component; use the diag guide"
            )
        return super().top_posterior(x)

    def forward(self, x, y=None, index=None):
        features = self.encoder(x)
        with data_plate(self.num_data, x, index):
            for name in self.bottom_up:
                if name in self.links:
                    features = self.links[name](h)
                h = pyro.sample(name, self.posterior(name, features))


@GUIDES.register("chain", "bottom-up chain of diagonal Gaussians, q(h1 | x) q(h2 | h1) ... (IWAE's recognition model)")
def chain(model, hidden_dims=(200, 200)):
    return ChainGuide(model, hidden_dims, "diag")
