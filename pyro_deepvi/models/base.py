"""What every model and guide shares: the data plate and the observation models.

A model is a :class:`~pyro.nn.PyroModule` with a method ``model(x, y=None,
index=None)``; its local latents sit inside :func:`data_plate`, so that Pyro
scales a minibatch of size B by N / B. Continuous-latent models also describe
their latent sites in ``latent_shapes`` (name -> event shape, in the order the
model samples them), which is all a generic guide needs.
"""

import pyro
import pyro.distributions as dist
import torch

from ..distributions import IndependentBernoulli


def data_plate(num_data, x, index=None):
    """``pyro.plate("data", N, subsample=index)``: the plate of local latents.

    With ``index=None`` the batch ``x`` is taken to be the whole data set.
    Under data parallelism every rank passes the indices of its own minibatch.
    """
    if index is None:
        return pyro.plate("data", x.shape[0], dim=-1)
    return pyro.plate("data", num_data, subsample=index, dim=-1)


def check_batch(x, data_shape, model_name):
    """Refuse a batch whose event shape is not the model's, naming both."""
    if not torch.is_tensor(x) or x.dim() < 1 or x.shape[1:] != data_shape:
        found = tuple(x.shape) if torch.is_tensor(x) else type(x).__name__
        raise ValueError(f"{model_name} expects x of shape [batch, {', '.join(map(str, data_shape))}], got {found}")


class Bernoulli:
    """x ~ Bernoulli(σ(T_0(h))), for binary images; ``support`` names what it scores."""

    support = "binary"

    def __call__(self, logits, log_scale):
        return IndependentBernoulli(dist.Bernoulli(logits=logits), 1)


class Gaussian:
    """x ~ N(T_0(h), σ² I) with one learned σ = exp(log_scale), as in probabilistic PCA."""

    support = "real"

    def __call__(self, loc, log_scale):
        return dist.Normal(loc, log_scale.exp().expand(loc.shape)).to_event(1)


class ContinuousBernoulli:
    """x ~ CB(σ(T_0(h))) per pixel (Loaiza-Ganem & Cunningham 2019): a normalized density for grey values in [0, 1]."""

    support = "unit_interval"

    def __call__(self, logits, log_scale):
        return dist.ContinuousBernoulli(logits=logits).to_event(1)


LIKELIHOODS = {"bernoulli": Bernoulli, "gaussian": Gaussian, "continuous_bernoulli": ContinuousBernoulli}


def make_likelihood(name):
    try:
        return LIKELIHOODS[name]()
    except KeyError:
        raise ValueError(
            f"unknown likelihood {name!r}; choose one of: {', '.join(LIKELIHOODS)}"
        ) from None


def flat_dim(shape):
    return int(torch.Size(shape).numel())
