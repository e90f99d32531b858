"""Deep GPs: the whitened conditional and its marginal under q(V) against Pyro's, the SVGP oracle
against exact GP regression, sites and minibatch scaling, bad input, the command line, and (slow)
the step function and dgp_lvm's latent space of digits."""

import json
import math

import pyro
import pytest
import torch
from pyro import poutine
from pyro.contrib.gp.kernels import RBF
from pyro.contrib.gp.models import GPRegression
from pyro.contrib.gp.util import conditional

from pyro_deepvi import TrainConfig, load
from pyro_deepvi.cli import main
from pyro_deepvi.data import Dataset
from pyro_deepvi.engine import Trainer
from pyro_deepvi.guides.inducing import InducingGuide
from pyro_deepvi.importance import importance_traces, log_weights
from pyro_deepvi.evaluation.linear_probe import linear_probe_accuracy
from pyro_deepvi.models.deep_gp import DeepGP, DeepGPLVM, principal_projection, whitened_conditional
from pyro_deepvi.objectives import elbo, elbo_analytic_kl, iwae


def regression_toy(n=25, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 2, generator=g, dtype=dtype) * 4 - 2
    y = 10 + 3 * torch.sin(2 * x[:, 0]) * x[:, 1] + 0.3 * torch.randn(n, generator=g, dtype=dtype)
    return x, y


def test_whitened_conditional_matches_pyro_and_broadcasts_over_draws():
    torch.manual_seed(0)
    kernel = RBF(2, variance=torch.tensor(1.5), lengthscale=torch.tensor([0.7, 1.3]))
    x, z, v = torch.randn(9, 2), torch.randn(6, 2), torch.randn(3, 6)
    loc, var = whitened_conditional(x, z, kernel, v, jitter=1e-4)
    pyro_loc, pyro_var = conditional(x, z, kernel, v, whiten=True, jitter=1e-4)
    assert torch.allclose(loc, pyro_loc.T, atol=1e-5) and torch.allclose(var, pyro_var.T, atol=1e-5)
    # The marginal under q(v) = N(v, R Rᵀ): Pyro's conditional with f_scale_tril.
    scale_tril = torch.randn(3, 6, 6).tril(-1) * 0.3 + torch.diag_embed(torch.rand(3, 6) + 0.1)
    loc, var = whitened_conditional(x, z, kernel, v, scale_tril, jitter=1e-4)
    pyro_loc, pyro_var = conditional(x, z, kernel, v, scale_tril, whiten=True, jitter=1e-4)
    assert torch.allclose(loc, pyro_loc.T, atol=1e-5) and torch.allclose(var, pyro_var.T, atol=1e-5)
    # A batch of inputs, one per draw of v, gives each draw's own conditional.
    xs, vs = torch.randn(4, 9, 2), torch.randn(4, 3, 6)
    locs, vars_ = whitened_conditional(xs, z, kernel, vs, scale_tril, jitter=1e-4)
    for s in range(4):
        one_loc, one_var = whitened_conditional(xs[s], z, kernel, vs[s], scale_tril, jitter=1e-4)
        assert torch.allclose(locs[s], one_loc, atol=1e-6) and torch.allclose(vars_[s], one_var, atol=1e-6)


def _svgp_at_the_data(x, y, variance=0.8, lengthscale=(0.9, 1.4), noise=0.05):
    """A 1-layer DGP with its inducing inputs at the (standardized) training inputs, M = N."""
    model = DeepGP(x, y, len(x), num_inducing=len(x)).double()
    layer = model.layers[0]
    with torch.no_grad():
        layer.inducing_inputs.copy_((x - model.x_mean) / model.x_std)
    layer.kernel.variance = torch.tensor(variance, dtype=x.dtype)
    layer.kernel.lengthscale = torch.tensor(lengthscale, dtype=x.dtype)
    model.noise = torch.tensor(noise, dtype=x.dtype)
    return model


def _exact_log_marginal(model, x, y):
    """Pyro's GPRegression with the same kernel and noise in y's units: log N(y; m, s²(K + σ²I))."""
    kernel = model.layers[0].kernel
    s = model.y_std
    exact_kernel = RBF(2, variance=s**2 * kernel.variance.detach(), lengthscale=kernel.lengthscale.detach())
    gpr = GPRegression(
        (x - model.x_mean) / model.x_std, y, exact_kernel, noise=s**2 * model.noise.detach(),
        mean_function=lambda inputs: model.y_mean.expand(inputs.shape[:1]),
    ).double()
    return float(poutine.trace(gpr.model).get_trace().log_prob_sum().detach())


def _optimal_posterior(model, x, y):
    """q(v) ∝ p(v) p(y | v): y_s = A v + ε with A = K_xz L⁻ᵀ and standardized y_s."""
    layer = model.layers[0]
    z = layer.inducing_inputs.detach()
    h = (x - model.x_mean) / model.x_std
    a = whitened_conditional(h, z, layer.kernel, torch.eye(len(z), dtype=x.dtype))[0].detach()
    y_s = (y - model.y_mean) / model.y_std
    precision = torch.eye(len(z), dtype=x.dtype) + a.T @ a / model.noise.detach()
    covariance = torch.linalg.inv(precision)
    return covariance @ a.T @ y_s / model.noise.detach(), torch.linalg.cholesky(covariance)


def _elbo(model, guide, x, y, particles, objective=elbo_analytic_kl):
    return -float(objective(particles)(model.model, guide, x=x, y=y).detach())


def test_oracle_svgp_with_optimal_q_matches_exact_gp_regression_and_other_q_fall_below():
    pyro.set_rng_seed(0)
    x, y = regression_toy()
    model = _svgp_at_the_data(x, y)
    guide = InducingGuide(model).double()
    loc, scale_tril = _optimal_posterior(model, x, y)
    guide.inducing["U1"].set(loc[None], scale_tril[None])
    exact = _exact_log_marginal(model, x, y)
    bound = _elbo(model, guide, x, y, particles=1)
    assert bound == pytest.approx(exact, abs=1e-2)
    # The sampled KL is the same bound in expectation.
    assert _elbo(model, guide, x, y, particles=4000, objective=elbo) == pytest.approx(exact, abs=0.1)
    # Any other q(V) gives a strictly lower bound: a moved mean, a wider or a narrower covariance.
    for shift, widen in ((0.3, 1.0), (0.0, 1.5), (0.0, 0.5)):
        guide.inducing["U1"].set(loc[None] + shift, widen * scale_tril[None])
        assert _elbo(model, guide, x, y, particles=1) < exact - 0.05


def test_sites_shapes_and_minibatch_scaling():
    pyro.set_rng_seed(0)
    x, y = regression_toy(n=40, dtype=torch.float32)
    model = DeepGP(x, y, num_data=40, widths=(3, 2), num_inducing=7)
    guide = InducingGuide(model)
    assert list(model.inducing_shapes.items()) == [("U1", (3, 7)), ("U2", (2, 7)), ("U3", (1, 7))]
    index = torch.arange(8, 18)
    model_trace, guide_trace = importance_traces(model.model, guide, 4, 1, (), dict(x=x[index], y=y[index], index=index))
    assert guide_trace.nodes["U2"]["value"].shape == (4, 1, 2, 7)
    assert model_trace.nodes["y"]["fn"].batch_shape == (4, 10)
    weights = log_weights(model_trace, guide_trace, 1)
    assert weights.global_latents == ("U1", "U2", "U3") and weights.scale == pytest.approx(4.0)
    assert model_trace.nodes["U1"]["cond_indep_stack"][0].name == "particles"  # outside the data plate
    # The inner means: 2 inputs onto both principal directions and a zero column; then 3 onto the top 2.
    first, second = model.layers[0].mean_projection, model.layers[1].mean_projection
    assert first.shape == (2, 3) and torch.allclose(first[:, :2].T @ first[:, :2], torch.eye(2), atol=1e-5)
    assert torch.equal(first[:, 2], torch.zeros(2)) and second.shape == (3, 2)
    with pytest.raises(ValueError, match="'U1', 'U2', 'U3' lie outside the 'data' plate"):
        iwae(5)(model.model, guide, x=x[index], y=y[index], index=index)


def test_standardization_and_original_units():
    x, y = regression_toy(n=30, dtype=torch.float32)
    model = DeepGP(x, y, 30)
    assert torch.allclose(model.x_mean, x.mean(0)) and torch.allclose(model.y_std, y.std())
    guide = InducingGuide(model)
    data = Dataset("toy", "test", x, y)
    shifted = Dataset("toy", "test", x, y + 1000.0)
    assert model.evaluate(guide, data)["test_rmse"] < 10
    assert model.evaluate(guide, shifted)["test_rmse"] == pytest.approx(1000, rel=0.02)


def test_bad_input_is_named():
    x, y = regression_toy(n=30, dtype=torch.float32)
    constant = x.clone()
    constant[:, 1] = 3.0
    with pytest.raises(ValueError, match=r"dgp: x has constant column\(s\) \[1\]"):
        DeepGP.from_data(Dataset("toy", "train", constant, y))
    with pytest.raises(ValueError, match="dgp needs float regression targets"):
        DeepGP.from_data(Dataset("toy", "train", x, (y > 10).long(), num_classes=2))
    model = DeepGP(x, y, 30)
    guide = InducingGuide(model)
    with pytest.raises(ValueError, match=r"dgp expects x of shape \[batch, 2\], got \(30, 3\)"):
        model.evaluate(guide, Dataset("toy", "test", torch.randn(30, 3), y))
    with pytest.raises(ValueError, match=r"dgp expects float targets y of shape \[5\]"):
        model.model(x[:5], y[:4])
    with pytest.raises(ValueError, match="num_inducing must be a positive integer"):
        DeepGP(x, y, 30, num_inducing=0)
    # The likelihood integrates the model's own q(V): a guide holding another q(V) is refused.
    with pytest.raises(ValueError, match="needs the 'inducing' guide built on it"):
        model.evaluate(InducingGuide(DeepGP(x, y, 30)), Dataset("toy", "test", x, y))


def test_cli_trains_and_evaluates_a_tiny_dgp(tmp_path, capsys):
    out = tmp_path / "run"
    common = ["--epochs", "3", "--batch-size", "100", "--lr", "0.01", "--eval-every", "2", "--no-progress"]
    argv = ["train", "dgp", "--data", "step:1", "--latent-dims", "1", "--model-arg", "num_inducing=8", "--out", str(out)]
    assert main(argv + common) == 0
    assert main(["eval", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "test_log_predictive" in printed and "test_rmse" in printed
    result = json.loads((out / "eval.json").read_text())
    assert result["data"] == "step:1" and result["num_data"] == 30
    assert math.isfinite(result["test_log_predictive"]) and 0 < result["test_rmse"] < 2
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert "valid_test_log_predictive" in metrics[1]


def test_dgp_lvm_sites_training_step_and_held_out_evaluation():
    pyro.set_rng_seed(0)
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(60) % 3
    x = torch.randn(3, 8, generator=g)[labels] + 0.3 * torch.randn(60, 8, generator=g)
    model = DeepGPLVM(x[:40], 40, latent_dims=(3, 2), train_labels=labels[:40], num_inducing=10, fit_steps=5)
    guide = InducingGuide(model)
    index = torch.arange(5, 15)
    trace = poutine.trace(poutine.replay(model.model, poutine.trace(guide).get_trace(x[index], index=index))).get_trace(
        x[index], index=index
    )
    shapes = {n: tuple(s["value"].shape) for n, s in trace.nodes.items() if s["type"] == "sample" and n != "data"}
    assert shapes == {"U1": (8, 10), "U2": (3, 10), "Z": (10, 2), "X": (10, 3), "x": (10, 8)}
    optimizer = torch.optim.Adam(list(model.parameters()) + list(guide.parameters()), lr=0.01)
    objective = elbo(1)
    for _ in range(3):
        loss = objective(model.model, guide, x=x[index], index=index)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    result = model.evaluate(guide, Dataset("toy", "test", x[40:], labels[40:], num_classes=3))
    assert math.isfinite(result["test_bound"]) and 0 <= result["linear_probe_accuracy"] <= 1


@pytest.mark.slow
def test_two_layer_dgp_beats_the_sparse_gp_on_the_step_function(tmp_path):
    results = {}
    for name, widths in (("sgp", ()), ("dgp2", (1,))):
        config = TrainConfig(
            model="dgp", data="step", latent_dims=widths, epochs=1000, batch_size=1000, lr=0.01, eval_every=0,
            progress=False, model_args={"num_inducing": 50}, out=str(tmp_path / name),
        )
        results[name] = Trainer(config).fit().evaluate()
    assert results["dgp2"]["test_log_predictive"] > results["sgp"]["test_log_predictive"] + 0.1


@pytest.mark.slow
def test_two_layer_dgp_beats_the_sparse_gp_on_a_boston_split(tmp_path):
    """The paper's Boston comparison on one split (``benchmarks/uci_table.py``'s config, 1,500 of its 20,000
    steps): DGP-2 has the higher training bound per point and the higher test log-likelihood."""
    results, bounds = {}, {}
    for name, widths in (("sgp", ()), ("dgp2", (13,))):
        config = TrainConfig(
            model="dgp", data="boston:1", latent_dims=widths, epochs=1500, batch_size=10000, lr=0.01, eval_every=0,
            progress=False, seed=1, model_args={"num_inducing": 100}, out=str(tmp_path / name),
        )
        trainer = Trainer(config).fit()
        results[name] = trainer.evaluate()
        bounds[name] = json.loads((tmp_path / name / "metrics.jsonl").read_text().splitlines()[-1])["train_elbo"]
    assert bounds["dgp2"] > bounds["sgp"]
    assert results["dgp2"]["test_log_predictive"] > results["sgp"]["test_log_predictive"]

def test_no_inner_layers_is_the_svgp_and_other_models_still_need_a_layer():
    assert TrainConfig(model="dgp", latent_dims=()).latent_dims == ()
    with pytest.raises(ValueError, match="latent_dims must name at least one latent layer"):
        TrainConfig(model="dlgm", latent_dims=())


@pytest.mark.slow
def test_dgp_lvm_latent_space_of_digits_separates_classes_like_pca_and_its_bound_beats_an_isotropic_gaussian(tmp_path):
    """The held-out rows' q(X), q(Z) start at the prior mean and are fitted through the trained GPs, so
    their E_q[Z] reads the classes only if the two layers learned a map Z -> X -> pixels."""
    config = TrainConfig(model="dgp_lvm", data="digits", epochs=100, eval_every=0, progress=False, out=str(tmp_path))
    result = Trainer(config).fit().evaluate()
    train, test = load("digits", "train"), load("digits", "test")
    mean = train.x.mean(0)
    projection = principal_projection(train.x, 2)
    pca = linear_probe_accuracy((train.x - mean) @ projection, train.y, (test.x - mean) @ projection, test.y, 10)
    assert result["linear_probe_accuracy"] > 3 * 0.1 and result["linear_probe_accuracy"] > pca - 0.05
    # Per row, the bound beats the exact log-likelihood of an isotropic Gaussian (the model's own noise
    # shape; the train mean and pooled variance), which knows no structure.
    gaussian = torch.distributions.Normal(mean, (train.x - mean).pow(2).mean().sqrt()).log_prob(test.x).sum(-1).mean()
    assert result["test_bound"] > float(gaussian) + 2
