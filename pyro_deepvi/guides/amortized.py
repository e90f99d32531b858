"""The shape every amortized guide shares: an encoder of x and one posterior per latent site.

    q(h | x) = Π_site q(h_site | c(x)),   c = encoder(x)

Subclasses give :meth:`AmortizedGuide.posterior`; the sites and their shapes
come from the model's ``latent_shapes``, so one guide class fits every
continuous-latent model.
"""

import pyro
from pyro.nn import PyroModule
from torch import nn

from ..models.base import data_plate, flat_dim
from ..nn import MLP, activation_class


def latent_shapes_of(model, support="real"):
    """The model's ``latent_shapes``, checked to be vectors of the given support (a clear error otherwise).

    A model states the support of its latents as ``latent_support`` (``"real"`` when absent;
    ``"binary"`` for sigmoid belief networks and DARN).
    """
    latent_support = getattr(model, "latent_support", "real")
    if latent_support != support:
        raise ValueError(
            f"{type(model).__name__} has {latent_support} latents, but this guide is for {support} ones; "
            f"use the model's default guide ({getattr(model, 'default_guide', '?')!r})"
        )
    shapes = getattr(model, "latent_shapes", None)
    if not shapes:
        raise ValueError(
            f"{type(model).__name__} does not describe its latent sites (``latent_shapes``), "
            "so a generic guide cannot be built for it; use the model's own guide"
        )
    for name, shape in shapes.items():
        if len(shape) != 1:
            raise ValueError(f"latent site {name!r} must be a vector for a generic guide, got shape {tuple(shape)}")
    return shapes


def encoder_activation(model, activation=None):
    """The nonlinearity of a guide's encoder for ``model``: ``activation`` when given, else the model's
    ``encoder_activation`` (ReLU for the VampPrior's DLGM, VCCA's own; tanh when the model has none)."""
    return getattr(model, "encoder_activation", "tanh") if activation is None else activation


class Encoder(nn.Module):
    """x -> features, the shared trunk of an amortized guide.

    An MLP with a final activation; with no hidden layers the features are x
    itself, so every head is linear in x (exact for linear-Gaussian models).
    Dimensions to the left of ``data_shape`` (data points, particles) are kept.
    """

    def __init__(self, data_shape, hidden_dims, activation="tanh"):
        super().__init__()
        act = activation_class(activation, "encoder")
        self.event_dims = len(data_shape)
        if hidden_dims:
            self.net = nn.Sequential(MLP(flat_dim(data_shape), hidden_dims[:-1], hidden_dims[-1], activation=act), act())
            self.out_dim = hidden_dims[-1]
        else:
            self.net = nn.Identity()
            self.out_dim = flat_dim(data_shape)

    def forward(self, x):
        return self.net(x.reshape(x.shape[: x.dim() - self.event_dims] + (-1,)))


class AmortizedGuide(PyroModule):
    """Base of amortized guides: ``posterior(name, features)`` for each latent site, given x.

    :param model: a model with ``latent_shapes``, ``data_shape`` and ``num_data``.
    :param hidden_dims: widths of the encoder's hidden layers.
    :param str activation: the encoder's nonlinearity, a key of :data:`~pyro_deepvi.nn.ACTIVATIONS`;
        the model's ``encoder_activation`` (tanh when it has none) when None.
    """

    def __init__(self, model, hidden_dims=(200, 200), activation=None):
        super().__init__()
        self.latent_shapes = latent_shapes_of(model)
        self.num_data = model.num_data
        self.encoder = Encoder(model.data_shape, hidden_dims, encoder_activation(model, activation))

    def posterior(self, name, features):
        """The distribution q(h_name | x) given the encoder's features."""
        raise NotImplementedError

    def forward(self, x, y=None, index=None, **views):
        """Encodes ``x``; further views of multi-view data (``Dataset.views``) are not encoded."""
        features = self.encoder(x)
        with data_plate(self.num_data, x, index):
            for name in self.latent_shapes:
                pyro.sample(name, self.posterior(name, features))
