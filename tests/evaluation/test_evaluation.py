"""Evaluation: streamed IWAE-k equals one big log-sum-exp; active units count what moves with x; paired differences."""

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.nn import PyroModule

from pyro_deepvi import GUIDES
from pyro_deepvi.data import Dataset
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
