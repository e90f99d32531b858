"""A guide for multi-view models: each latent site inferred from one view.

    q(h | views) = Π_site N(h_site; μ_site(v_site), diag σ²_site(v_site))

with one encoder per site, fed the view ``model.latent_sources[site]`` (a
batch keyword, ``x`` or a further view of ``Dataset.views``). VCCA's guides
(Wang et al. 2016) are of this form: q(z|x) and, for VCCA-private, q(h_x|x)
q(h_y|y). The paper's dropout on the encoders is ``model.dropout`` (0 when
absent), applied to each encoder's input and features; their nonlinearity
is ``model.encoder_activation`` (tanh when absent) unless ``activation`` is given.
"""

import pyro
import pyro.distributions as dist
from pyro.nn import PyroModule
from torch import nn
from torch.nn.functional import softplus

from ..models.base import data_plate
from ..registry import GUIDES
from .amortized import Encoder, encoder_activation, latent_shapes_of


class MultiViewGuide(PyroModule):
    """One diagonal-Gaussian encoder per latent site, from the view the model names for it.

    :param model: a model with ``latent_shapes``, ``latent_sources`` (site -> view keyword),
        ``view_shapes`` (view keyword -> event shape), ``num_data`` and optionally ``dropout``.
    :param hidden_dims: widths of each encoder's hidden layers.
    :param str activation: the encoders' nonlinearity, a key of :data:`~pyro_deepvi.nn.ACTIVATIONS`;
        the model's ``encoder_activation`` (tanh when it has none) when None.
    """

    def __init__(self, model, hidden_dims=(256, 256), activation=None):
        super().__init__()
        self.latent_shapes = latent_shapes_of(model)
        sources = getattr(model, "latent_sources", None)
        if sources is None or set(sources) != set(self.latent_shapes):
            raise ValueError(
                f"{type(model).__name__} must name the view of each latent site in ``latent_sources`` "
                f"(sites {sorted(self.latent_shapes)}) for the multiview guide"
            )
        self.sources = dict(sources)
        self.num_data = model.num_data
        dropout = getattr(model, "dropout", 0.0)
        self.encoders = nn.ModuleDict()
        for name, shape in self.latent_shapes.items():
            encoder = Encoder(model.view_shapes[self.sources[name]], hidden_dims, encoder_activation(model, activation))
            self.encoders[name] = nn.Sequential(
                nn.Flatten(), nn.Dropout(dropout), encoder, nn.Dropout(dropout), nn.Linear(encoder.out_dim, 2 * shape[0])
            )

    def forward(self, x, y=None, index=None, **views):
        views["x"] = x
        with data_plate(self.num_data, x, index):
            for name, shape in self.latent_shapes.items():
                loc, scale = self.encoders[name](views[self.sources[name]]).split(shape[0], -1)
                pyro.sample(name, dist.Normal(loc, softplus(scale) + 1e-5).to_event(1))


@GUIDES.register("multiview", "one encoder per site from its own view (VCCA, Wang et al. 2016), optional dropout")
def multiview(model, hidden_dims=(256, 256), activation=None):
    return MultiViewGuide(model, hidden_dims, activation)
