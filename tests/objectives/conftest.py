"""A tiny two-layer sigmoid belief network whose log p(x) can be enumerated, with its guide."""

import itertools

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.nn import PyroModule
from torch import nn

from pyro_deepvi.models import data_plate
from pyro_deepvi.nn import MADE, AutoregressiveBernoulli


class SigmoidBeliefNet(PyroModule):
    """h2 ~ Bern(σ(b)), h1 | h2 ~ Bern(σ(A h2 + c)), x | h1 ~ Bern(σ(W h1 + d)), all inside the data plate.

    The distributions are methods of their parents, so tests can score any
    configuration of h (enumeration) with the very densities the Pyro program uses.
    """

    max_plate_nesting = 1

    def __init__(self, num_pixels=5, latent_dims=(3, 2), num_data=100, scale=1.5):
        super().__init__()
        bottom, top = latent_dims
        self.latent_dims = latent_dims
        self.num_data = num_data
        self.top_logits = nn.Parameter(scale * torch.randn(top))
        self.link = nn.Linear(top, bottom)
        self.decoder = nn.Linear(bottom, num_pixels)
        for layer in (self.link, self.decoder):
            nn.init.normal_(layer.weight, std=scale)

    def p_h2(self, like):
        return dist.Bernoulli(logits=self.top_logits.expand(like.shape[:-1] + self.top_logits.shape)).to_event(1)

    def p_h1(self, h2):
        return dist.Bernoulli(logits=self.link(h2)).to_event(1)

    def p_x(self, h1):
        return dist.Bernoulli(logits=self.decoder(h1)).to_event(1)

    def model(self, x, y=None, index=None):
        with data_plate(self.num_data, x, index):
            h2 = pyro.sample("h2", self.p_h2(x))
            h1 = pyro.sample("h1", self.p_h1(h2))
            pyro.sample("x", self.p_x(h1), obs=x)

    def log_joint(self, x, h1, h2):
        """log p(x, h1, h2), broadcasting."""
        return self.p_h2(h2).log_prob(h2) + self.p_h1(h2).log_prob(h1) + self.p_x(h1).log_prob(x)

    def configurations(self, dtype=torch.float64):
        """Every (h1, h2): tensors [2^(d1 + d2), d1] and [2^(d1 + d2), d2]."""
        bits = torch.tensor(list(itertools.product([0.0, 1.0], repeat=sum(self.latent_dims))), dtype=dtype)
        return bits[:, : self.latent_dims[0]], bits[:, self.latent_dims[0] :]

    def enumerate_log_weights(self, guide, x):
        """log p(x_n, h_c) and log q(h_c | x_n) of every configuration c, each [configurations, batch]."""
        h1, h2 = (h.unsqueeze(1) for h in self.configurations(x.dtype))
        return self.log_joint(x, h1, h2), guide.log_prob(x, h1, h2)


class SigmoidBeliefGuide(PyroModule):
    """q(h1 | x) q(h2 | h1), sampled bottom-up: h2's units see the sampled h1.

    h1's units are independent given x, or, with ``autoregressive``, each also sees
    the units before it (a :class:`~pyro_deepvi.nn.MADE` with x as context, as DARN's encoder).
    """

    def __init__(self, sbn, num_pixels=5, autoregressive=False):
        super().__init__()
        bottom, top = sbn.latent_dims
        self.num_data = sbn.num_data
        self.autoregressive = autoregressive
        self.encoder = MADE(bottom, context_dim=num_pixels) if autoregressive else nn.Linear(num_pixels, bottom)
        self.encoder_top = nn.Linear(bottom, top)

    def q_h1(self, x):
        if self.autoregressive:
            return AutoregressiveBernoulli(self.encoder, x)
        return dist.Bernoulli(logits=self.encoder(x)).to_event(1)

    def q_h2(self, h1):
        return dist.Bernoulli(logits=self.encoder_top(h1)).to_event(1)

    def forward(self, x, y=None, index=None):
        with data_plate(self.num_data, x, index):
            h1 = pyro.sample("h1", self.q_h1(x))
            pyro.sample("h2", self.q_h2(h1))

    def log_prob(self, x, h1, h2):
        """log q(h1, h2 | x), broadcasting."""
        return self.q_h1(x).log_prob(h1) + self.q_h2(h1).log_prob(h2)


def make_sbn(num_pixels=5, latent_dims=(3, 2), num_data=100, seed=0, autoregressive=False):
    """A float64 model and its guide, initialized from ``seed``."""
    torch.manual_seed(seed)
    sbn = SigmoidBeliefNet(num_pixels, latent_dims, num_data).double()
    guide = SigmoidBeliefGuide(sbn, num_pixels, autoregressive).double()
    return sbn, guide


@pytest.fixture
def sbn():
    """``make(num_pixels, latent_dims, num_data, seed, autoregressive)`` -> (model, guide), float64."""
    return make_sbn


@pytest.fixture
def binary_batch():
    """``batch(n, num_pixels, seed=1)``: n rows of fair coin flips, float64."""

    def batch(n, num_pixels, seed=1):
        probs = torch.full((n, num_pixels), 0.5, dtype=torch.float64)
        return torch.bernoulli(probs, generator=torch.Generator().manual_seed(seed))

    return batch
