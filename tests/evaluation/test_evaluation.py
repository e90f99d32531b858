"""Evaluation: streamed IWAE-k equals one big log-sum-exp and Pyro's stock likelihood's estimate; active units count
what moves with x; paired differences."""

import dataclasses

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.nn import PyroModule

from pyro_deepvi import GUIDES
from pyro_deepvi.data import Dataset
from pyro_deepvi.engine import TrainConfig, Trainer
from pyro_deepvi.evaluation import active_units, bounds, paired_difference
from pyro_deepvi.models import data_plate
from pyro_deepvi.models.dlgm import DLGM


def test_chunked_estimate_equals_one_chunk():
    torch.manual_seed(0)
    data = Dataset("toy", "test", torch.bernoulli(torch.full((30, 10), 0.4)), support="binary")
    model = DLGM((10,), 30, latent_dims=(3,), hidden_dims=(8,))
    guide = GUIDES.get("diag")(model, hidden_dims=(8,))
    elbo_a, ll_a = bounds(model.model, guide, data, num_particles=2000, chunk_size=2000, batch_size=30)
    elbo_b, ll_b = bounds(model.model, guide, data, num_particles=2000, chunk_size=2000, batch_size=30)
    assert torch.equal(ll_a, ll_b)  # seeded
    # Chunks of 300 (the last one short) and batches of 11: other draws of the same estimate.
    elbo_c, ll_c = bounds(model.model, guide, data, num_particles=2000, chunk_size=300, batch_size=11)
    assert ll_c.shape == (30,)
    assert abs(ll_a.mean() - ll_c.mean()) < 0.1  # per point, an untrained guide's L_k is noisy (±0.2)
    assert torch.allclose(elbo_a, elbo_c, atol=0.1)
    assert (elbo_a < ll_a).all()



class StockBernoulli:
    """The likelihood as Pyro writes it, Bernoulli(logits).to_event(1): what IndependentBernoulli computes faster."""

    support = "binary"

    def __call__(self, logits, log_scale):
        return dist.Bernoulli(logits=logits).to_event(1)


@pytest.mark.parametrize("model, latent_dims", [("dlgm", (4,)), ("lvae", (4, 2))])
def test_bounds_of_a_trained_model_equal_those_of_pyros_stock_likelihood(tmp_path, model, latent_dims):
    run = Trainer(TrainConfig(model=model, data="mnist5k", latent_dims=latent_dims, hidden_dims=(16,), epochs=1,
                              eval_every=0, progress=False, out=str(tmp_path / "run"))).fit()
    test = run.config.load_data("test")
    data = dataclasses.replace(test, x=test.x[:40], y=test.y[:40])
    model, guide = run.components.model, run.components.guide
    # Batches of 20 in chunks of 100, 100 and 50 particles (only a batch's first chunk runs Pyro's validation).
    fast = bounds(model.model, guide, data, num_particles=250, chunk_size=100, batch_size=20)
    model.likelihood = StockBernoulli()
    stock = bounds(model.model, guide, data, num_particles=250, chunk_size=100, batch_size=20)
    assert torch.equal(fast[0], stock[0]) and torch.equal(fast[1], stock[1])  # same draws, negation moved exactly
    assert (fast[0] < fast[1]).all() and (fast[1] < 0).all()


def test_bounds_check_every_batch_against_the_likelihoods_support():
    torch.manual_seed(0)
    x = torch.bernoulli(torch.full((30, 10), 0.4))
    x[25, 3] = 0.5  # in the second batch of 20, a grey pixel a Bernoulli cannot score
    model = DLGM((10,), 30, latent_dims=(3,), hidden_dims=(8,))
    guide = GUIDES.get("diag")(model, hidden_dims=(8,))
    with pytest.raises(ValueError, match="support"):
        bounds(model.model, guide, Dataset("toy", "test", x, support="real"), num_particles=300, batch_size=20)


class HalfActive(PyroModule):
    """q(z|x): the first two units follow x, the other two never move."""

    def forward(self, x, y=None, index=None):
        loc = torch.cat([x[:, :2] * 3, torch.zeros_like(x[:, :2])], -1)
        with data_plate(len(x), x, index):
            pyro.sample("z", dist.Normal(loc, 0.5).to_event(1))


def test_active_units_counts_units_whose_posterior_mean_varies():
    data = Dataset("toy", "test", torch.bernoulli(torch.full((200, 4), 0.5)), support="binary")
    assert active_units(HalfActive(), data) == {"z": 2, "total": 2}


class InactiveFlow(PyroModule):
    """q(z|x) = N(0, 1) pushed through an identity transform: no ``mean``, and no unit is active."""

    def forward(self, x, y=None, index=None):
        base = dist.Normal(torch.zeros(x.shape[0], 4), 1.0).to_event(1)
        with data_plate(len(x), x, index):
            pyro.sample("z", dist.TransformedDistribution(base, [dist.transforms.identity_transform]))


def test_active_units_without_a_closed_form_mean_are_not_overcounted():
    # With few draws the Monte Carlo error (Var_q / num_samples = 0.01) alone crosses the threshold.
    data = Dataset("toy", "test", torch.bernoulli(torch.full((300, 4), 0.5)), support="binary")
    assert active_units(InactiveFlow(), data)["total"] == 0
    assert active_units(InactiveFlow(), data, num_samples=50)["total"] > 0


def test_paired_difference_by_hand():
    # d = a − b = (1, 2, 3, 6): mean 3, sample std √(14 / 3), SE √(14 / 3) / 2.
    a, b = torch.tensor([-80.0, -90.0, -100.0, -110.0]), torch.tensor([-81.0, -92.0, -103.0, -116.0])
    mean, stderr = paired_difference(a, b)
    assert mean == pytest.approx(3.0) and stderr == pytest.approx((14 / 3) ** 0.5 / 2)
    # Points whose difficulty both share: the paired SE is far below either model's own.
    assert stderr < float(a.std() / 2) / 5
    with pytest.raises(ValueError, match="same N"):
        paired_difference(a, b[:3])
