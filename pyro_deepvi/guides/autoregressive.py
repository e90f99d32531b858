"""Amortized guides for binary latents: a bottom-up chain of Bernoulli layers (Gregor et al. 2014).

For a model whose binary layers are sampled top-down, h^L, ..., h^1 (its
``latent_shapes`` in that order, ``latent_support == "binary"``), the guide
samples them bottom-up from x = h^0, in the seed's notation::

    q(h | x) = Π_k q(h^k | h^{k-1}),   k = 1, ..., L

- ``darn``: DARN's encoder, autoregressive within each layer,
  q(h^k | h^{k-1}) = Π_j q(h^k_j | h^k_{1:j-1}, h^{k-1}) with
  q(H^k_j = 1 | ·) = σ(W_j · (h^k_{1:j-1}, tanh(U h^{k-1})) + b_j)
  (a :class:`~pyro_deepvi.nn.MADE` with h^{k-1} as context);
- ``bernoulli``: factorized, q(H^k_j = 1 | h^{k-1}) = σ(V_j · tanh(U h^{k-1}) + b_j).

``hidden_dims`` are the widths of the tanh layers U. The sites are not
reparameterizable: train with a score-function objective (``tracegraph_elbo``,
``elbo``, ``darn_taylor``, or ``iwae``, which uses VIMCO for them). Each site
declares an input-dependent baseline b_k(h^{k-1}) (a small network, as in
NVIL, Mnih & Gregor 2014) through Pyro's ``nn_baseline``: ``tracegraph_elbo``
subtracts it from the site's downstream cost and fits it to that cost (the
score function with baselines); the other objectives ignore it. The network
predicts the cost per data point and is scaled by the data plate's N / B, the
scale of Pyro's cost, so that its output stays of order one.
"""

import pyro
import pyro.distributions as dist
import torch
from pyro.nn import PyroModule
from pyro.poutine.runtime import get_plates
from torch import nn

from ..models.base import data_plate, flat_dim
from ..nn import MADE, MLP, AutoregressiveBernoulli
from ..registry import GUIDES
from .amortized import latent_shapes_of


class _Baseline(nn.Module):
    """b(h^{k-1}) = (N / B) · MLP(h^{k-1}), shaped as the site's downstream cost in ``TraceGraph_ELBO``."""

    def __init__(self, in_dim, hidden_dims):
        super().__init__()
        self.net = MLP(in_dim, tuple(hidden_dims)[:1], 1)

    def forward(self, inputs):
        below, scale, shape = inputs
        out = scale * self.net(below).squeeze(-1)
        while out.dim() > len(shape) and out.shape[0] == 1:
            out = out.squeeze(0)
        return out.expand(shape)


def _cost_shape():
    """The shape of a site's downstream cost under the current plates: their sizes, leading 1s dropped."""
    frames = [frame for frame in get_plates() if frame.vectorized]
    shape = [1] * -min((frame.dim for frame in frames), default=0)
    for frame in frames:
        shape[frame.dim] = frame.size
    while shape and shape[0] == 1:
        shape.pop(0)
    return torch.Size(shape)


class BinaryChainGuide(PyroModule):
    """q(h^1 | x) q(h^2 | h^1) ... q(h^L | h^{L-1}), each layer a vector of Bernoulli units.

    :param model: a model with ``latent_support == "binary"``, vector ``latent_shapes``
        (top-down sampling order), ``data_shape`` and ``num_data``.
    :param hidden_dims: widths of the tanh layers between a layer and the one below it.
    :param bool autoregressive: units depend on the units before them in their layer.
    """

    def __init__(self, model, hidden_dims=(200,), autoregressive=False):
        super().__init__()
        shapes = latent_shapes_of(model, support="binary")
        self.num_data = model.num_data
        self.autoregressive = autoregressive
        self.sites = list(reversed(shapes))
        dims = [flat_dim(model.data_shape)] + [shapes[name][0] for name in self.sites]
        if autoregressive:
            self.conditionals = nn.ModuleList(MADE(d, below, hidden_dims) for below, d in zip(dims[:-1], dims[1:]))
        else:
            self.conditionals = nn.ModuleList(MLP(below, hidden_dims, d) for below, d in zip(dims[:-1], dims[1:]))
        self.baselines = nn.ModuleList(_Baseline(below, hidden_dims) for below in dims[:-1])

    def conditional(self, k, below):
        """q(h^{k+1} | h^k = below), k counted from the bottom (k = 0: q(h^1 | x))."""
        if self.autoregressive:
            return AutoregressiveBernoulli(self.conditionals[k], below)
        return dist.Bernoulli(logits=self.conditionals[k](below)).to_event(1)

    def forward(self, x, y=None, index=None):
        h = x.reshape(x.shape[0], -1)
        scale = 1.0 if index is None else self.num_data / len(index)
        with data_plate(self.num_data, x, index):
            shape = _cost_shape()
            for k, name in enumerate(self.sites):
                baseline = {"nn_baseline": self.baselines[k], "nn_baseline_input": (h, scale, shape)}
                h = pyro.sample(name, self.conditional(k, h), infer={"baseline": baseline})


@GUIDES.register("bernoulli", "binary latents: factorized Bernoulli layers, sampled bottom-up h^1 | x, h^2 | h^1, ...")
def bernoulli(model, hidden_dims=(200,)):
    return BinaryChainGuide(model, hidden_dims, autoregressive=False)


@GUIDES.register("darn", "binary latents: DARN's encoder, autoregressive Bernoulli layers sampled bottom-up")
def darn(model, hidden_dims=(200,)):
    return BinaryChainGuide(model, hidden_dims, autoregressive=True)
