"""ELBO surgery: average KL = I[n; z] + KL(q(z) ‖ p(z)), against closed forms and on a DLGM."""

import math

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.nn import PyroModule

import pyro_deepvi
from pyro_deepvi import GUIDES
from pyro_deepvi.data import Dataset
from pyro_deepvi.evaluation.surgery import _Components, elbo_surgery
from pyro_deepvi.models import data_plate
from pyro_deepvi.models.dlgm import DLGM


class ToyModel(PyroModule):
    """z ~ N(0, I), x ~ N(z, I): p(z) is the standard normal."""

    def forward(self, x, y=None, index=None):
        with data_plate(len(x), x, index):
            z = pyro.sample("z", dist.Normal(torch.zeros_like(x), 1.0).to_event(1))
            pyro.sample("x", dist.Normal(z, 1.0).to_event(1), obs=x)


class ToyGuide(PyroModule):
    """q(z | x_n) = N(x_n, σ² I): each data point is its own posterior mean."""

    def __init__(self, sigma):
        super().__init__()
        self.sigma = sigma

    def forward(self, x, y=None, index=None):
        with data_plate(len(x), x, index):
            pyro.sample("z", dist.Normal(x, self.sigma).to_event(1))


class ToyFullGuide(ToyGuide):
    """The same q(z | x_n), as a MultivariateNormal: the generic (non-diagonal) path."""

    def forward(self, x, y=None, index=None):
        with data_plate(len(x), x, index):
            pyro.sample("z", dist.MultivariateNormal(x, self.sigma**2 * torch.eye(x.shape[-1])))


def analytic_average_kl(mu, sigma):
    """(1/N) Σ_n KL(N(μ_n, σ² I) ‖ N(0, I))."""
    dim = mu.shape[-1]
    return float((0.5 * mu.pow(2).sum(-1)).mean() + dim * (0.5 * sigma**2 - 0.5 - math.log(sigma)))


def toy_data(mu):
    return Dataset("toy", "train", mu, support="real")


@pytest.mark.parametrize("guide_class", [ToyGuide, ToyFullGuide])
def test_separated_posteriors_carry_log_n_nats(guide_class):
    # 12 points 3 apart on a line in 2-d, σ = 0.1: the encodings never overlap.
    mu = torch.stack([torch.arange(12.0) * 3 - 16, torch.ones(12)], -1)
    sigma = 0.1
    result = elbo_surgery(ToyModel(), guide_class(sigma), toy_data(mu), num_samples=200, batch_size=5, chunk_size=64)
    assert result["num_data"] == 12 and result["log_n"] == pytest.approx(math.log(12))
    expected = analytic_average_kl(mu, sigma)
    assert abs(result["average_kl"] - expected) < 4 * result["average_kl_stderr"]
    assert result["average_kl_stderr"] < 0.05 * expected
    assert result["index_code_mi"] == pytest.approx(math.log(12), abs=1e-6)
    assert result["index_code_mi"] <= result["log_n"]
    assert result["average_kl"] == pytest.approx(result["index_code_mi"] + result["marginal_kl"], abs=1e-9)
    # q(z) is a mixture of narrow bumps and p(z) a broad normal: KL(q(z) ‖ p(z)) = avg KL − log N.
    assert result["marginal_kl"] == pytest.approx(expected - math.log(12), abs=4 * result["marginal_kl_stderr"])


def test_identical_posteriors_carry_no_information():
    mu = torch.full((8, 3), 0.7)
    sigma = 0.5
    result = elbo_surgery(ToyModel(), ToyGuide(sigma), toy_data(mu), num_samples=100, batch_size=3)
    assert result["index_code_mi"] == pytest.approx(0.0, abs=1e-9)
    assert result["average_kl"] == pytest.approx(result["marginal_kl"], abs=1e-9)
    assert abs(result["average_kl"] - analytic_average_kl(mu, sigma)) < 4 * result["average_kl_stderr"]


def test_chunking_and_seed():
    mu = torch.randn(10, 2, generator=torch.Generator().manual_seed(0))
    data, model, guide = toy_data(mu), ToyModel(), ToyGuide(0.6)
    a = elbo_surgery(model, guide, data, num_samples=7, batch_size=4, chunk_size=1000)
    b = elbo_surgery(model, guide, data, num_samples=7, batch_size=4, chunk_size=3)
    for key in ("average_kl", "index_code_mi", "marginal_kl"):
        assert a[key] == pytest.approx(b[key], abs=1e-9)
    assert 0 < a["index_code_mi"] < a["log_n"]
    c = elbo_surgery(model, guide, data, num_samples=7, batch_size=4, seed=1)
    assert c["average_kl"] != a["average_kl"]


def test_diagonal_fast_path_matches_log_prob():
    fns = {
        "a": dist.Normal(torch.randn(6, 4), torch.rand(6, 4) + 0.1).to_event(1),
        "b": dist.MultivariateNormal(torch.randn(6, 3), torch.eye(3) * 0.5),
        "c": dist.Normal(torch.randn(6, 2, 2), torch.rand(6, 2, 2) + 0.1).to_event(2),
    }
    rows = {"a": torch.randn(9, 4), "b": torch.randn(9, 3), "c": torch.randn(9, 2, 2)}
    expected = sum(fn.log_prob(rows[name].unsqueeze(1)) for name, fn in fns.items()).double()
    for fast in ([], ["a"], ["a", "c"]):
        lp = _Components(fns, fast).log_prob(rows, _Components.features(rows, fast))
        assert lp.shape == (9, 6) and torch.allclose(lp, expected, atol=1e-4)


class ChainGuide(PyroModule):
    """q(a | x) q(b | a): b depends on a's draw, which surgery cannot score for other points."""

    def forward(self, x, y=None, index=None):
        with data_plate(len(x), x, index):
            a = pyro.sample("a", dist.Normal(x, 1.0).to_event(1))
            pyro.sample("b", dist.Normal(a, 0.1).to_event(1))


class ChainModel(PyroModule):
    def forward(self, x, y=None, index=None):
        with data_plate(len(x), x, index):
            a = pyro.sample("a", dist.Normal(torch.zeros_like(x), 1.0).to_event(1))
            pyro.sample("b", dist.Normal(a, 1.0).to_event(1))
            pyro.sample("x", dist.Normal(a, 1.0).to_event(1), obs=x)


def test_guide_with_dependent_sites_is_refused():
    with pytest.raises(ValueError, match="product of per-site distributions"):
        elbo_surgery(ChainModel(), ChainGuide(), toy_data(torch.randn(5, 2)), num_samples=3)


def test_untrained_dlgm_on_digits():
    train = pyro_deepvi.load("digits", "train")
    data = Dataset("digits", "train", train.x[:200], support=train.support, binarize=train.binarize)
    torch.manual_seed(0)
    model = DLGM(data.event_shape, len(data), latent_dims=(8,), hidden_dims=(32,))
    guide = GUIDES.get("diag")(model, hidden_dims=(32,))
    result = elbo_surgery(model.model, guide, data, num_samples=10, batch_size=64, chunk_size=256)
    assert result["num_data"] == 200
    assert result["average_kl"] == pytest.approx(result["index_code_mi"] + result["marginal_kl"], abs=1e-6)
    assert -3 * result["index_code_mi_stderr"] <= result["index_code_mi"] <= math.log(200)
    assert result["marginal_kl"] >= -3 * result["marginal_kl_stderr"]
    assert result["average_kl"] > 0


def test_sites_without_fast_path_use_at_most_max_generic_points():
    """A factorized Bernoulli guide (no matrix-product path) is scored on the first whole batches only."""
    train = pyro_deepvi.load("digits", "train")
    model = pyro_deepvi.MODELS.get("sbn").from_data(train, latent_dims=(4,), hidden_dims=(8,))
    guide = GUIDES.get("bernoulli")(model, hidden_dims=(8,))
    result = elbo_surgery(model.model, guide, train, num_samples=2, batch_size=100, max_generic_points=250)
    assert result["num_data"] == 200 and result["log_n"] == pytest.approx(math.log(200))
    assert result["average_kl"] == pytest.approx(result["index_code_mi"] + result["marginal_kl"], abs=1e-6)
    assert 0 <= result["index_code_mi"] <= result["log_n"] + 1e-9
