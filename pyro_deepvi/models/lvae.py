"""Ladder variational autoencoders (Sønderby, Raiko, Maaløe, Sønderby & Winther, 2016).

Generative model, in the seed's notation, for L stochastic layers::

    p(z_L) = N(0, I)
    p(z_i | z_{i+1}) = N(μ_{p,i}, σ²_{p,i}),   i = L−1, ..., 1
        d_{p,i} = MLP(z_{i+1}),  μ_{p,i} = Linear(d_{p,i}),  σ²_{p,i} = Softplus(Linear(d_{p,i}))
    p(x | z_1) = Bernoulli(σ(MLP(z_1)))

The MLPs have leaky-rectifier hidden layers, batch-normalized when
``batch_norm`` (the paper found batch normalization critical; in ``eval()``
mode, as in every evaluation, the running statistics are used). The top-down
conditionals are exposed as :meth:`LVAE.conditional`, which the model samples
from and the ``ladder`` guide (:mod:`~pyro_deepvi.guides.ladder`) merges with
its own bottom-up estimates. The paper trains with a KL warm-up, β from 0 to 1
over the first N_t epochs: ``--term rate=linear:-1:0:N_t``.

Trained through a guide that shares these networks (``--guide-arg
share_top_down=true``), the model may shrink p(z_i | z_{i+1}) to a near point
mass on some units (the merge then copies it, and those units cost no KL): more
KL in the top layer, a better ELBO, a lower log p(x). The ladder guide's default,
top-down networks of its own (the paper's code's default), avoids it; see
``benchmarks/README.md``, "Why the ladder's log p(x) gain did not show".

Sites: ``z{L}``, ..., ``z1`` (latent, in this order), ``x`` (observed).
"""

from collections import OrderedDict

import pyro
import pyro.distributions as dist
import torch
from pyro.nn import PyroModule, pyro_method
from torch import nn

from ..nn import MLP, loc_and_variance
from ..registry import MODELS
from .base import check_batch, data_plate, flat_dim, make_likelihood


@MODELS.register("lvae", "ladder VAE (Sønderby et al. 2016): Gaussian layers top-down, batch norm; ladder guide")
class LVAE(PyroModule):
    """A ladder VAE's generative model.

    :param data_shape: event shape of one (binary) data point.
    :param int num_data: size N of the training set (the data plate's size).
    :param latent_dims: widths of z_1, ..., z_L (bottom to top).
    :param hidden_dims: hidden widths of every MLP (the decoder of x and each d_{p,i}).
    :param bool batch_norm: batch-normalize the MLPs' hidden layers.
    """

    max_plate_nesting = 1
    default_guide = "ladder"
    #: ``pyro-deepvi train lvae``'s defaults (TrainConfig fields): three layers, warm-up over 20 of 100 epochs.
    train_defaults = {
        "latent_dims": (32, 16, 8),
        "hidden_dims": (256, 256),
        "terms": {"rate": "linear:-1:0:20"},
        "epochs": 100,
    }

    def __init__(self, data_shape, num_data, latent_dims=(32, 16, 8), hidden_dims=(256, 256), batch_norm=True):
        super().__init__()
        if not latent_dims:
            raise ValueError("latent_dims must name at least one layer, e.g. (32, 16, 8)")
        self.data_shape = torch.Size(data_shape)
        self.num_data = int(num_data)
        self.latent_dims = tuple(int(d) for d in latent_dims)
        self.batch_norm = bool(batch_norm)
        self.likelihood = make_likelihood("bernoulli")
        self.support = self.likelihood.support
        num_layers = len(self.latent_dims)
        self.latent_shapes = OrderedDict((f"z{i}", torch.Size([self.latent_dims[i - 1]])) for i in range(num_layers, 0, -1))
        mlp = dict(activation=nn.LeakyReLU, batch_norm=self.batch_norm)
        self.decoder = MLP(self.latent_dims[0], hidden_dims, flat_dim(self.data_shape), **mlp)
        self.top_down = nn.ModuleDict(
            (f"z{i}", MLP(self.latent_dims[i], hidden_dims, 2 * self.latent_dims[i - 1], **mlp))
            for i in range(1, num_layers)
        )

    def conditional(self, name, upper):
        """p(z_i | z_{i+1} = upper) = N(μ_{p,i}, σ²_{p,i}) for the site ``name`` = ``"z{i}"``, i < L."""
        loc, variance = loc_and_variance(self.top_down[name](upper))
        return dist.Normal(loc, variance.sqrt()).to_event(1)

    @pyro_method
    def model(self, x, y=None, index=None):
        check_batch(x, self.data_shape, "lvae")
        x = x.reshape(x.shape[0], -1)
        sites = list(self.latent_shapes)
        with data_plate(self.num_data, x, index):
            top = self.latent_dims[-1]
            z = pyro.sample(sites[0], dist.Normal(x.new_zeros(top), x.new_ones(top)).to_event(1))
            for name in sites[1:]:
                z = pyro.sample(name, self.conditional(name, z))
            return pyro.sample("x", self.likelihood(self.decoder(z), None), obs=x)

    @classmethod
    def from_data(cls, data, latent_dims=(32, 16, 8), hidden_dims=(256, 256), **options):
        return cls(data.event_shape, len(data), latent_dims, hidden_dims, **options)
