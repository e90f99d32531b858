"""Deep autoregressive networks (Gregor, Danihelka, Mnih, Blundell & Wierstra, 2014) and sigmoid belief networks.

Binary stochastic layers h^L, ..., h^1 above the data x = h^0, in the seed's
notation (h^{L+1} = ∅)::

    p(h^l | h^{l+1}) = Π_j p(h^l_j | h^l_{1:j-1}, h^{l+1}),   l = 0, ..., L
    p(H^l_j = 1 | h^l_{1:j-1}, h^{l+1}) = σ(W^l_j · (h^l_{1:j-1}, tanh(U^l h^{l+1})) + b^l_j)

so the top prior p(h^L) = Π_j p(h^L_j | h^L_{1:j-1}) is autoregressive, and so
is the decoder p(x | h^1) = Π_j p(x_j | x_{1:j-1}, h^1) over pixels. Each
conditional is a :class:`~pyro_deepvi.nn.MADE` (DARN's single masked layer;
``masked_hidden_dims`` adds MADE hidden layers) and each layer an
:class:`~pyro_deepvi.nn.AutoregressiveBernoulli`: scoring a given h (the
guide's, or the observed x) is one masked pass, drawing one from the prior
goes unit by unit. ``hidden_dims`` are the widths of the deterministic tanh
layers U (empty: σ(W_j · (h_{1:j-1}, h^{l+1}) + b_j)).

The sigmoid belief network (``sbn``, Neal 1992) is the same model without the
autoregressive weights: p(H^l_j = 1 | h^{l+1}) = σ(V^l_j · tanh(U^l h^{l+1}) + b^l_j),
factorized within each layer, and a factorized top prior σ(b^L) with learned
biases.

Training maximizes the ELBO, which DARN reads as a description length in bits
(minimum description length with bits-back coding)::

    L(x) = E_q[L(h) + L(x|h)] = −ELBO / ln 2,   L(h) = −log₂ p(h) + log₂ q(h|x),   L(x|h) = −log₂ p(x|h)

The latents are discrete: use a score-function objective (``tracegraph_elbo``,
``elbo``) with a binary guide (:mod:`pyro_deepvi.guides.autoregressive`).

Sites: ``h{L}``, ..., ``h1`` (latent, in this order), ``x`` (observed).
"""

from collections import OrderedDict

import pyro
import pyro.distributions as dist
import torch
from pyro.nn import PyroModule, pyro_method
from torch import nn

from ..nn import MADE, MLP, AutoregressiveBernoulli
from ..registry import MODELS
from .base import check_batch, data_plate, flat_dim


@MODELS.register("darn", "deep autoregressive network (Gregor et al. 2014): binary layers, autoregressive within each")
class DARN(PyroModule):
    """A deep autoregressive network over binary data.

    :param data_shape: event shape of one data point (binary values).
    :param int num_data: size N of the training set (the data plate's size).
    :param latent_dims: widths of h^1, ..., h^L (bottom to top).
    :param hidden_dims: widths of the deterministic tanh layers U of every conditional.
    :param masked_hidden_dims: widths of masked hidden layers in every autoregressive
        conditional (MADE's deeper form; empty: DARN's single masked layer).
    """

    #: Whether units within a layer depend on the units before them (``False``: a sigmoid belief network).
    autoregressive = True

    max_plate_nesting = 1
    default_guide = "darn"
    #: `pyro-deepvi train darn`: one layer of 200 binary units, 500 tanh units, DARN's own estimator.
    train_defaults = {"latent_dims": (200,), "hidden_dims": (500,), "objective": "darn_taylor", "epochs": 50, "test_particles": 1000}
    support = "binary"
    latent_support = "binary"

    def __init__(self, data_shape, num_data, latent_dims=(200,), hidden_dims=(500,), masked_hidden_dims=()):
        super().__init__()
        if not latent_dims:
            raise ValueError("latent_dims must name at least one layer, e.g. (200,)")
        if masked_hidden_dims and not self.autoregressive:
            raise ValueError(f"masked_hidden_dims needs an autoregressive model, got {masked_hidden_dims!r} for sbn")
        self.data_shape = torch.Size(data_shape)
        self.num_data = int(num_data)
        self.latent_dims = tuple(int(d) for d in latent_dims)
        num_layers = len(self.latent_dims)
        self.latent_shapes = OrderedDict(
            (f"h{l}", torch.Size([self.latent_dims[l - 1]])) for l in range(num_layers, 0, -1)
        )
        # dims[l] is the width of h^l, with h^0 = x; conditionals[l] gives p(h^l | h^{l+1}).
        dims = (flat_dim(self.data_shape), *self.latent_dims)
        if self.autoregressive:
            self.conditionals = nn.ModuleList(
                MADE(dims[l], dims[l + 1] if l < num_layers else 0, hidden_dims, masked_hidden_dims)
                for l in range(num_layers + 1)
            )
        else:
            self.conditionals = nn.ModuleList(MLP(dims[l + 1], hidden_dims, dims[l]) for l in range(num_layers))
            self.top_logits = nn.Parameter(torch.zeros(dims[-1]))

    def conditional(self, l, above, batch_shape):
        """p(h^l | h^{l+1} = above), with ``above`` ``None`` for the top layer l = L."""
        if self.autoregressive:
            return AutoregressiveBernoulli(self.conditionals[l], above, batch_shape)
        if above is None:
            return dist.Bernoulli(logits=self.top_logits.expand(batch_shape + self.top_logits.shape)).to_event(1)
        return dist.Bernoulli(logits=self.conditionals[l](above)).to_event(1)

    @pyro_method  # a plain Pyro SVI loop over `model.model` then sees (and trains) the module's parameters
    def model(self, x, y=None, index=None):
        check_batch(x, self.data_shape, "darn" if self.autoregressive else "sbn")
        x = x.reshape(x.shape[0], -1)
        batch_shape = x.shape[:1]
        num_layers = len(self.latent_dims)
        with data_plate(self.num_data, x, index):
            h = pyro.sample(f"h{num_layers}", self.conditional(num_layers, None, batch_shape))
            for l in range(num_layers - 1, 0, -1):
                h = pyro.sample(f"h{l}", self.conditional(l, h, batch_shape))
            return pyro.sample("x", self.conditional(0, h, batch_shape), obs=x)

    @classmethod
    def from_data(cls, data, latent_dims=(200,), hidden_dims=(500,), **options):
        return cls(data.event_shape, len(data), latent_dims, hidden_dims, **options)


@MODELS.register("sbn", "sigmoid belief network: binary layers, factorized given the layer above (DARN without W_<j)")
class SigmoidBeliefNetwork(DARN):
    """A sigmoid belief network: :class:`DARN` without autoregressive weights within layers."""

    autoregressive = False
    default_guide = "bernoulli"
    #: `pyro-deepvi train sbn`: the binary-latent table's SBN, trained by IWAE k = 5 (VIMCO gradients).
    train_defaults = {"latent_dims": (200,), "hidden_dims": (500,), "objective": "iwae", "particles": 5, "epochs": 50, "test_particles": 1000}
