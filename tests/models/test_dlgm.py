"""DLGM: the PPCA oracle (exact log p(x)), shapes and sites, and the paper's effects (slow)."""

import math

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.nn import PyroModule

import pyro_deepvi
from pyro_deepvi import GUIDES, TrainConfig
from pyro_deepvi.engine import Trainer
from pyro_deepvi.evaluation import bounds
from pyro_deepvi.models import data_plate
from pyro_deepvi.models.dlgm import DLGM


def ppca(data, dtype=torch.float64):
    model = DLGM(data.event_shape, len(data), latent_dims=(2,), hidden_dims=(), likelihood="gaussian")
    return model.to(dtype)


class ExactPosterior(PyroModule):
    """q(h|x) = p(h|x) of PPCA: with it every importance weight equals p(x)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x, y=None, index=None):
        with data_plate(self.model.num_data, x, index):
            pyro.sample("h1", self.model.exact_posterior(x))


def test_sites_and_shapes():
    model = DLGM((12,), num_data=100, latent_dims=(4, 3), hidden_dims=(8,))
    x = torch.bernoulli(torch.full((5, 12), 0.5))
    trace = pyro.poutine.trace(model.model).get_trace(x, index=torch.arange(5))
    assert list(model.latent_shapes) == ["h2", "h1"]
    assert trace.nodes["h2"]["value"].shape == (5, 3)
    assert trace.nodes["h1"]["value"].shape == (5, 4)
    assert trace.nodes["x"]["is_observed"]
    assert trace.nodes["h1"]["scale"] == pytest.approx(100 / 5)  # the data plate scales N / B


def test_exact_posterior_guide_makes_every_bound_exact(ppca_data):
    test = ppca_data["test"]
    test = type(test)("ppca_toy", "test", test.x.double())
    model = ppca(test)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.3 * torch.randn_like(p))
    exact = model.exact_log_likelihood(test.x)
    elbo, log_lik = bounds(model.model, ExactPosterior(model), test, num_particles=3, chunk_size=2)
    assert torch.allclose(elbo, exact, atol=1e-8)
    assert torch.allclose(log_lik, exact, atol=1e-8)


def test_bounds_are_ordered_below_exact_log_likelihood(ppca_data):
    torch.manual_seed(0)
    test = ppca_data["test"]
    test = type(test)("ppca_toy", "test", test.x.double())
    model = ppca(test)
    guide = GUIDES.get("diag")(model, hidden_dims=(16,)).double()
    exact = model.exact_log_likelihood(test.x).mean()
    estimates = [bounds(model.model, guide, test, num_particles=k, seed=k)[1].mean() for k in (1, 10, 100, 3000)]
    elbo_estimate = bounds(model.model, guide, test, num_particles=3000)[0].mean()
    # The ELBO (mean log-weight) and L_1 estimate the same bound.
    assert abs(elbo_estimate - estimates[0]) < 0.1 * abs(exact - estimates[0]) + 0.5
    for lower, higher in zip(estimates, estimates[1:]):
        assert lower < higher
    assert estimates[-1] < exact


def test_weight_prior_is_a_global_factor():
    model = DLGM((6,), num_data=50, latent_dims=(2,), hidden_dims=(4,), kappa=2.0)
    x = torch.bernoulli(torch.full((5, 6), 0.5))
    trace = pyro.poutine.trace(model.model).get_trace(x, index=torch.arange(5))
    site = trace.nodes["theta_g"]
    expected = sum(dist.Normal(0, math.sqrt(2.0)).log_prob(p).sum() for p in model.parameters())
    assert torch.allclose(site["fn"].log_prob(site["value"]), expected)
    assert not site["cond_indep_stack"]  # once per step, not N / B times
    with pytest.raises(ValueError, match="kappa"):
        DLGM((6,), num_data=50, kappa=-1.0)


def test_trained_ppca_iwae_5000_is_within_half_a_nat_of_exact(tmp_path):
    config = TrainConfig(
        model="dlgm", data="ppca_toy", guide="diag", objective="elbo", epochs=60, batch_size=50, lr=2e-2,
        latent_dims=(2,), hidden_dims=(), model_args={"likelihood": "gaussian"}, out=str(tmp_path),
        eval_every=0, progress=False,
    )
    trainer = Trainer(config).fit()
    model, guide = trainer.components.model, trainer.components.guide
    test = pyro_deepvi.load("ppca_toy", "test")
    with torch.no_grad():
        exact = model.exact_log_likelihood(test.x).mean()
        elbo, log_lik = bounds(model.model, guide, test, num_particles=5000)
    assert log_lik.mean() <= exact + 0.05
    assert exact - log_lik.mean() < 0.5
    # Training did something: the fitted PPCA explains the data better than the initial one.
    initial = ppca(test, torch.float32).exact_log_likelihood(test.x).mean()
    assert exact > initial + 1.0


def test_rejects_bad_options():
    with pytest.raises(ValueError, match="likelihood"):
        DLGM((6,), num_data=10, likelihood="poisson")
    with pytest.raises(ValueError, match="latent_dims"):
        DLGM((6,), num_data=10, latent_dims=())
    with pytest.raises(ValueError, match=r"expects x of shape \[batch, 6\], got \(3, 5\)"):
        DLGM((6,), num_data=10).model(torch.zeros(3, 5))


def _mnist5k_log_likelihood(tmp_path, guide, objective, particles, epochs=60):
    config = TrainConfig(
        model="dlgm", data="mnist5k", guide=guide, objective=objective, particles=particles, epochs=epochs,
        out=str(tmp_path / f"{guide}-{objective}"), eval_every=0, test_particles=1000, progress=False,
    )
    return pyro_deepvi.train(config)


@pytest.mark.slow
def test_iwae_trained_model_beats_elbo_trained_model_on_mnist5k(tmp_path):
    vae = _mnist5k_log_likelihood(tmp_path, "diag", "elbo", 1)
    iwae = _mnist5k_log_likelihood(tmp_path, "diag", "iwae", 5)
    assert iwae["test_log_likelihood"] > vae["test_log_likelihood"]
    # and the IWAE-trained model uses at least as many latent units (Burda et al., sec. 5.2)
    assert iwae["active_units"]["total"] >= vae["active_units"]["total"]


@pytest.mark.slow
def test_rank_one_guide_is_not_worse_than_diagonal_on_mnist5k(tmp_path):
    diag = _mnist5k_log_likelihood(tmp_path, "diag", "elbo", 1)
    rank_one = _mnist5k_log_likelihood(tmp_path, "rank_one", "elbo", 1)
    # One seed each: allow the spread of seeds (about half a nat here) but no more.
    assert rank_one["test_log_likelihood"] >= diag["test_log_likelihood"] - 0.5
    assert rank_one["test_elbo"] >= diag["test_elbo"] - 0.5


# The learned mixture prior r_ψ(h_L) of Alemi et al. (2018), ``prior="mog"``.


def test_mog_prior_sites_and_shapes():
    model = DLGM((12,), num_data=100, latent_dims=(4, 3), hidden_dims=(8,), prior="mog", prior_components=5)
    assert model.prior_logits.shape == (5,)
    assert model.prior_locs.shape == (5, 3)
    assert model.prior_log_scales.shape == (5, 3)
    x = torch.bernoulli(torch.full((6, 12), 0.5))
    trace = pyro.poutine.trace(model.model).get_trace(x, index=torch.arange(6))
    top = trace.nodes["h2"]
    assert isinstance(top["fn"], dist.MixtureSameFamily)
    assert top["value"].shape == (6, 3)
    assert top["fn"].event_shape == (3,)
    assert trace.nodes["h1"]["value"].shape == (6, 4)
    assert top["scale"] == pytest.approx(100 / 6)
    assert DLGM((12,), num_data=100, latent_dims=(3,)).prior == "normal"  # the default is the paper's N(0, I)


def test_mog_prior_log_prob_matches_a_hand_computation():
    torch.manual_seed(0)
    model = DLGM((6,), num_data=10, latent_dims=(2,), hidden_dims=(), prior="mog", prior_components=3).double()
    with torch.no_grad():
        model.prior_logits.copy_(torch.tensor([0.3, -1.0, 0.5]))
        model.prior_log_scales.copy_(0.2 * torch.randn(3, 2))
    z = torch.randn(7, 2, dtype=torch.float64)
    log_pi = torch.log_softmax(model.prior_logits, 0)
    locs, scales = model.prior_locs, model.prior_log_scales.exp()
    per_component = [
        log_pi[k]
        + (-0.5 * ((z - locs[k]) / scales[k]).pow(2) - scales[k].log() - 0.5 * math.log(2 * math.pi)).sum(-1)
        for k in range(3)
    ]
    expected = torch.logsumexp(torch.stack(per_component), 0)
    actual = model.top_prior(z).log_prob(z)
    assert actual.dtype == torch.float64  # follows the model's dtype (and device)
    assert torch.allclose(actual, expected, atol=1e-12)


def test_mog_prior_gets_gradients_and_beats_the_normal_prior_on_digits(tmp_path):
    # Measured (digits, z ∈ R^8, 20 epochs, 50-particle test bounds): the mixture's test ELBO is
    # 0.67 nats (seed 0) and 0.66 nats (seed 1) above N(0, I)'s.
    test = pyro_deepvi.load("digits", "test")
    elbos = {}
    for prior in ("normal", "mog"):
        config = TrainConfig(
            data="digits", latent_dims=(8,), hidden_dims=(32,), epochs=20, eval_every=0, progress=False,
            model_args={"prior": prior}, out=str(tmp_path / prior),
        )
        components = Trainer(config).fit().components
        elbo, log_lik = bounds(components.model.model, components.guide, test, num_particles=50)
        assert torch.isfinite(elbo).all() and torch.isfinite(log_lik).all()
        elbos[prior] = elbo.mean().item()
    model = components.model
    initial = DLGM((64,), num_data=10, latent_dims=(8,), hidden_dims=(32,), prior="mog")
    assert not torch.allclose(model.prior_logits, initial.prior_logits)  # trained from zeros
    assert not torch.allclose(model.prior_log_scales, initial.prior_log_scales)
    objective = components.objective
    loss = objective(model.model, components.guide, x=test.x[:16], index=torch.arange(16))
    loss.backward()
    for p in (model.prior_logits, model.prior_locs, model.prior_log_scales):
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0
    assert torch.isfinite(objective.parts["rate"])
    assert elbos["mog"] > elbos["normal"] + 0.2, elbos


def test_mog_prior_works_with_the_mmd_term_without_rsample():
    from pyro_deepvi.objectives import OBJECTIVES
    from pyro_deepvi.objectives.mmd import MMD

    model = DLGM((12,), num_data=40, latent_dims=(3,), hidden_dims=(8,), prior="mog", prior_components=4)
    guide = GUIDES.get("diag")(model, hidden_dims=(8,))
    objective = OBJECTIVES.get("elbo")(particles=2)
    objective.add_term("mmd", MMD.from_model(model), 1.0)
    loss = objective(model.model, guide, x=torch.bernoulli(torch.full((8, 12), 0.5)), index=torch.arange(8))
    assert torch.isfinite(loss) and torch.isfinite(objective.parts["mmd"])


def test_rejects_a_bad_prior():
    with pytest.raises(ValueError, match=r"prior must be one of 'normal', 'mog', 'vamp', got 'laplace'"):
        DLGM((6,), num_data=10, prior="laplace")
    with pytest.raises(ValueError, match="prior_components"):
        DLGM((6,), num_data=10, prior="mog", prior_components=0)


def test_decoder_activation_option():
    relu = DLGM((1024,), 100, (10, 5), (32, 32), activation="relu")
    assert isinstance(relu.decoder[1], torch.nn.ReLU) and isinstance(relu.links[0][3], torch.nn.ReLU)
    assert isinstance(DLGM((1024,), 100, (10,), (32, 32)).decoder[1], torch.nn.Tanh)  # the default
    with pytest.raises(ValueError, match="unknown decoder activation 'sigmoidal'"):
        DLGM((1024,), 100, activation="sigmoidal")
