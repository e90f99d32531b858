"""Variational ladder autoencoders (Zhao, Song & Ermon, 2017, "Learning hierarchical features from
generative models").

A hierarchical VAE p(x|z_1) Π p(z_l|z_{l+1}) p(z_L) can reach p_data with z_1 alone, and its Gaussian
p(z_l|z_{l+1}) limits what the upper layers can add, so they tend to collapse. The VLAE instead gives
every level an independent code and lets the *depth* of the network that decodes it set how abstract
it is. Generative process, in the seed's notation, for L levels::

    z_l ~ N(0, I)                         l = 1, ..., L   (independent)
    z̃_L = f_L(u_L(z_L))
    z̃_l = f_l([z̃_{l+1}, u_l(z_l)])       l = L-1, ..., 1
    x   ~ r(x; f_0(z̃_1))

so z_L passes through L + 1 networks before it reaches x and z_1 through two: the more abstract a
level, the deeper its decoder. As in the paper's code, u_l (one linear layer and a ReLU) first embeds the
code at the level's width, so that a small code is not drowned by the wide z̃_{l+1}, and f_l reads the
concatenation. Each f_l (l ≥ 1) is linear, layer normalization, ReLU, linear (:func:`ladder_block`),
ending linear as the fully connected blocks of the paper's code do (which normalize their batches
instead); f_0 is a ReLU MLP giving the observation model's parameters; r is Bernoulli (binary images)
or an isotropic Gaussian. Every linear layer starts from Glorot's initialization (:func:`glorot_init`,
which says why). An earlier ladder of tanh MLPs that ended each f_l with a tanh, without
normalization, trained to a test ELBO 24 nats below a DLGM of the same size on mnist5k and left z_2
and z_3 unused (``benchmarks/README.md``).

The inference model (the ``vlae`` guide of :mod:`pyro_deepvi.guides.vlae`, the default) mirrors the ladder bottom-up::

    h_0 = x,   h_l = g_l(h_{l-1}),   q(z_l | x) = N(μ_l(h_l), diag σ_l(h_l)²)

so z_l depends on x only through h_l, and higher codes are read from deeper features. The bound is
the plain ELBO L(x) = E_q[log p(x|z)] − Σ_l KL(q(z_l|x) ‖ N(0, I)).

Sites: ``z{L}``, ..., ``z1`` (latent, in this order, described by ``latent_shapes`` so the generic
guides fit too), ``x`` (observed).
"""

from collections import OrderedDict

import pyro
import pyro.distributions as dist
import torch
from pyro.nn import PyroModule, pyro_method
from torch import nn

from ..nn import MLP
from ..registry import MODELS
from .base import check_batch, data_plate, flat_dim, make_likelihood


def level_widths(latent_dims, hidden_dims):
    """Widths of h_l and z̃_l per level: one per level, or one shared by all."""
    hidden_dims = tuple(int(h) for h in hidden_dims)
    if len(hidden_dims) == 1:
        hidden_dims = hidden_dims * len(latent_dims)
    if len(hidden_dims) != len(latent_dims):
        raise ValueError(
            f"hidden_dims must give one width per level ({len(latent_dims)}) or one for all, got {hidden_dims}"
        )
    return hidden_dims


def glorot_init(module):
    """Glorot-uniform weights with gain 5/3 and zero biases for every linear layer of ``module``.

    PyTorch's default initialization shrinks a signal's variance several-fold per layer, and up to
    nine linear layers separate z_L from x: in the tanh ladder this model first had, z_3 barely moved
    x at the start (its effect on the logits measured 0.003, against 0.6-0.8 with this
    initialization), its KL won and the levels collapsed before the decoder learned to use them.
    """
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight, gain=nn.init.calculate_gain("tanh"))
            nn.init.zeros_(m.bias)


def ladder_block(in_dim, width, activation, final_activation=True):
    """Linear, layer normalization, ``activation``, linear [, layer normalization, ``activation``].

    One f_l of the generative ladder (ending linear) or one g_l of the guide (ending with the
    activation).
    """
    layers = [nn.Linear(in_dim, width), nn.LayerNorm(width), activation(), nn.Linear(width, width)]
    if final_activation:
        layers += [nn.LayerNorm(width), activation()]
    return nn.Sequential(*layers)


@MODELS.register("vlae", "variational ladder autoencoder (Zhao et al. 2017): one N(0, I) code per level, deeper decoders up the ladder")
class VLAE(PyroModule):
    """A variational ladder autoencoder.

    :param data_shape: event shape of one data point.
    :param int num_data: size N of the training set (the data plate's size).
    :param latent_dims: widths of z_1, ..., z_L (bottom to top).
    :param hidden_dims: widths of z̃_1, ..., z̃_L (one per level, or one for all).
    :param str likelihood: ``"bernoulli"`` or ``"gaussian"``.
    """

    max_plate_nesting = 1
    default_guide = "vlae"
    #: Defaults of ``pyro-deepvi train vlae`` (TrainConfig fields), a few minutes on a CPU: three levels of
    #: two units, as the paper's MNIST network (with 8 units z_1 alone carries all the information the
    #: bound pays for, and z_2 and z_3 collapse), and its KL warm-up, here β from 0 to 1 over 10 epochs
    #: (without it z_2 collapses before the decoder learns to use it).
    train_defaults = {"latent_dims": (2, 2, 2), "hidden_dims": (256,), "epochs": 40, "terms": {"rate": "linear:-1:0:10"}}

    def __init__(self, data_shape, num_data, latent_dims=(8, 8, 8), hidden_dims=(256,), likelihood="bernoulli"):
        super().__init__()
        if not latent_dims:
            raise ValueError("latent_dims must name at least one level, e.g. (8, 8, 8)")
        self.data_shape = torch.Size(data_shape)
        self.num_data = int(num_data)
        self.latent_dims = tuple(int(d) for d in latent_dims)
        self.hidden_dims = level_widths(self.latent_dims, hidden_dims)
        self.likelihood = make_likelihood(likelihood)
        self.support = self.likelihood.support
        num_levels = len(self.latent_dims)
        self.latent_shapes = OrderedDict(
            (f"z{l}", torch.Size([self.latent_dims[l - 1]])) for l in range(num_levels, 0, -1)
        )
        # ladder[l - 1] is f_l: f_L reads z_L; f_l (l < L) reads [z̃_{l+1}, z_l].
        self.ladder = nn.ModuleList(
            ladder_block(
                self.hidden_dims[l - 1] + (self.hidden_dims[l] if l < num_levels else 0), self.hidden_dims[l - 1],
                nn.ReLU, final_activation=False,
            )
            for l in range(1, num_levels + 1)
        )
        # u_l embeds z_l at the width of its level, so it is not drowned by z̃_{l+1} in the concatenation.
        self.embed = nn.ModuleList(
            nn.Sequential(nn.Linear(d, h), nn.ReLU()) for d, h in zip(self.latent_dims, self.hidden_dims)
        )
        self.decoder = MLP(self.hidden_dims[0], (self.hidden_dims[0],), flat_dim(self.data_shape), activation=nn.ReLU)  # f_0
        self.obs_log_scale = nn.Parameter(torch.zeros(())) if self.support == "real" else None
        glorot_init(self)

    def decode(self, codes):
        """f_0(z̃_1) from the codes ``[z_1, ..., z_L]``: the parameters of r(x | z)."""
        top = len(self.latent_dims)
        h = self.ladder[top - 1](self.embed[top - 1](codes[top - 1]))
        for l in range(top - 1, 0, -1):
            z = self.embed[l - 1](codes[l - 1])
            shape = torch.broadcast_shapes(h.shape[:-1], z.shape[:-1])
            h = self.ladder[l - 1](torch.cat([h.expand(shape + h.shape[-1:]), z.expand(shape + z.shape[-1:])], -1))
        return self.decoder(h)

    def observation(self, codes):
        """r(x; f_0(z̃_1)) given the codes ``[z_1, ..., z_L]``."""
        return self.likelihood(self.decode(codes), self.obs_log_scale)

    @pyro_method
    def model(self, x, y=None, index=None):
        check_batch(x, self.data_shape, "vlae")
        x = x.reshape(x.shape[0], -1)
        codes = [None] * len(self.latent_dims)
        with data_plate(self.num_data, x, index):
            for l in range(len(self.latent_dims), 0, -1):
                d = self.latent_dims[l - 1]
                codes[l - 1] = pyro.sample(f"z{l}", dist.Normal(x.new_zeros(d), x.new_ones(d)).to_event(1))
            return pyro.sample("x", self.observation(codes), obs=x)

    @torch.no_grad()
    def vary_level(self, level, rows=8, columns=10, generator=None):
        """E[x | z] on a grid that shows what one level controls: ``[rows, columns, *data_shape]``.

        Row r fixes every other level at one prior draw; column c sets z_level to one prior draw,
        the same in every row (the paper's Figure 3, with samples instead of a grid of 2-d codes).
        """
        if not 1 <= level <= len(self.latent_dims):
            raise ValueError(f"level must lie in 1..{len(self.latent_dims)}, got {level!r}")
        like = next(self.parameters())

        def draw(n, d):
            return torch.randn(n, d, generator=generator, dtype=like.dtype).to(like.device)

        codes = [draw(rows, d)[:, None, :].expand(rows, columns, d) for d in self.latent_dims]
        d = self.latent_dims[level - 1]
        codes[level - 1] = draw(columns, d)[None, :, :].expand(rows, columns, d)
        return self.observation(codes).mean.reshape(rows, columns, *self.data_shape)

    @classmethod
    def from_data(cls, data, latent_dims=(8, 8, 8), hidden_dims=(256,), **options):
        return cls(data.event_shape, len(data), latent_dims, hidden_dims, **options)

