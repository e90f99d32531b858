"""The MMD term (InfoVAE): the U-statistic's statistics, its value against brute force, its place in a run."""

import itertools
import math

import pyro
import pytest
import torch

import pyro_deepvi
import pyro_deepvi.objectives.mmd  # registers the "mmd" term
from pyro_deepvi.engine import TrainConfig, build
from pyro_deepvi.importance import importance_traces, log_weights
from pyro_deepvi.objectives.mmd import MMD, kernel_matrix, mmd, mmd_with_standard_error
from pyro_deepvi.registry import TERMS




def normal_pairs(repetitions, size, dim, shift, seed):
    g = torch.Generator().manual_seed(seed)
    for _ in range(repetitions):
        yield torch.randn(size, dim, generator=g), torch.randn(size, dim, generator=g) + shift


@pytest.mark.parametrize("kernel", ["rbf", "imq"])
def test_same_distribution_is_unbiased_around_zero(kernel):
    runs = [mmd_with_standard_error(x, y, kernel) for x, y in normal_pairs(30, 500, 5, 0.0, seed=0)]
    estimates, jackknife = torch.stack([e for e, _ in runs]), torch.stack([s for _, s in runs])
    se = estimates.std()
    assert estimates.mean().abs() < 3 * se / 30**0.5  # unbiased: the mean over repetitions is ≈ 0
    assert (estimates < 0).any()  # a U-statistic, not a squared norm: it can go below zero
    # The jackknife is conservative where q = p (Efron–Stein): on average 1 to ~2 times the spread.
    assert 0.9 * se < jackknife.mean() < 2.5 * se
    x, y = next(normal_pairs(1, 500, 5, 0.0, seed=1))
    estimate, own_se = mmd_with_standard_error(x, y, kernel)
    assert estimate.item() == pytest.approx(mmd(x, y, kernel).item(), abs=1e-7)
    assert abs(estimate) < 3 * se and abs(estimate) < 3 * own_se


@pytest.mark.parametrize("kernel", ["rbf", "imq"])
def test_shifted_distribution_is_clearly_positive(kernel):
    null = torch.stack([mmd(x, y, kernel) for x, y in normal_pairs(30, 500, 5, 0.0, seed=2)])
    x, y = next(normal_pairs(1, 2000, 5, 0.5, seed=3))
    estimate, se = mmd_with_standard_error(x, y, kernel)
    assert estimate > 10 * se  # its own (jackknife) standard error
    assert mmd(x[:500], y[:500], kernel) > 10 * null.std()  # far outside the spread where q = p
    if kernel == "rbf":
        # N(0, I) vs N(μ, I), h = d: MMD² = 2 (h / (h + 2))^{d/2} (1 − exp(−‖μ‖² / (2(h + 2)))).
        d, h, shift = 5, 5.0, 0.25 * 5
        exact = 2 * (h / (h + 2)) ** (d / 2) * (1 - math.exp(-shift / (2 * (h + 2))))
        assert estimate.item() == pytest.approx(exact, abs=3 * se.item())


@pytest.mark.parametrize("kernel", ["rbf", "imq"])
def test_u_statistic_matches_a_double_loop(kernel):
    g = torch.Generator().manual_seed(4)
    x, y = torch.randn(8, 3, generator=g, dtype=torch.float64), torch.randn(8, 3, generator=g, dtype=torch.float64) + 0.3
    d = x.shape[1]

    def k(a, b):
        sq = float(((a - b) ** 2).sum())
        return math.exp(-sq / (2 * d)) if kernel == "rbf" else 2 * d / (2 * d + sq)

    pairs = [(i, j) for i, j in itertools.product(range(8), repeat=2) if i != j]
    expected = (
        sum(k(x[i], x[j]) for i, j in pairs) / len(pairs)
        + sum(k(y[i], y[j]) for i, j in pairs) / len(pairs)
        - 2 * sum(k(x[i], y[j]) for i, j in itertools.product(range(8), repeat=2)) / 64
    )
    assert mmd(x, y, kernel).item() == pytest.approx(expected, rel=1e-10)
    assert kernel_matrix(x, y, kernel)[2, 5].item() == pytest.approx(k(x[2], y[5]), rel=1e-12)
    # The jackknife against deleting each point and recomputing.
    _, se = mmd_with_standard_error(x, y, kernel)
    without_x = torch.stack([mmd(torch.cat([x[:i], x[i + 1 :]]), y, kernel) for i in range(8)])
    without_y = torch.stack([mmd(x, torch.cat([y[:j], y[j + 1 :]]), kernel) for j in range(8)])
    variance = 7 / 8 * ((without_x - without_x.mean()) ** 2).sum() + 7 / 8 * ((without_y - without_y.mean()) ** 2).sum()
    assert se.item() == pytest.approx(variance.sqrt().item(), rel=1e-8)


def test_options_are_checked():
    with pytest.raises(ValueError, match="kernel"):
        MMD("h1", kernel="laplace")
    with pytest.raises(ValueError, match="scale"):
        MMD("h1", scale=0.0)
    with pytest.raises(ValueError, match="at least 2"):
        mmd(torch.randn(1, 2), torch.randn(5, 2))


def test_term_in_a_dlgm_run(paired_losses):
    train = pyro_deepvi.load("digits", "train")
    config = TrainConfig(data="digits", terms={"mmd": 10.0}, latent_dims=(4,), hidden_dims=(16,), device="cpu")
    torch.manual_seed(0)
    components = build(config, train)
    term = components.objective.terms["mmd"]
    assert isinstance(term, MMD) and TERMS.get("mmd") is MMD
    assert (term.site, term.kernel) == ("h1", "rbf")
    assert MMD.from_model(build(TrainConfig(data="digits", latent_dims=(3, 2), hidden_dims=(8,)), train).model).site == "h2"
    without = build(TrainConfig(data="digits", latent_dims=(4,), hidden_dims=(16,), device="cpu"), train)
    without.load_state_dict(components.state_dict())  # the term has no parameters of its own

    batch = train.batch(torch.arange(50))
    loss, base = paired_losses(components, without, batch)
    value = components.objective.parts["mmd"]
    assert value.shape == () and torch.isfinite(value)
    assert (loss - base).item() == pytest.approx(len(train) * 10.0 * value.item(), rel=1e-4, abs=1e-2)

    # The term alone: 2 particles x 50 data points of q against as many prior draws; gradients reach the encoder.
    model, guide = components.model.model, components.guide
    model_trace, guide_trace = importance_traces(model, guide, 2, 1, kwargs=batch)
    q, p = term.samples(model_trace, guide_trace)
    assert q.shape == p.shape == (100, 4)
    value = term(model_trace, guide_trace, log_weights(model_trace, guide_trace, 1))
    encoder = list(components.guide.encoder.parameters())
    grads = torch.autograd.grad(value, encoder + list(components.model.decoder.parameters()), allow_unused=True)
    assert all(g is not None and torch.isfinite(g).all() for g in grads[: len(encoder)])
    assert any(g.abs().sum() > 0 for g in grads[: len(encoder)])
    assert all(g is None or (g == 0).all() for g in grads[len(encoder) :])  # h1 is the top latent: no decoder in it


def aggregate_posterior_mmd(components, data):
    """MMD² between q(z) of a held-out split (5 particles per image) and N(0, I), with its standard error."""
    x = data.batch(torch.arange(len(data)))["x"]
    pyro.set_rng_seed(123)
    with torch.no_grad():
        model_trace, guide_trace = importance_traces(components.model.model, components.guide, 5, 1, kwargs={"x": x})
        return mmd_with_standard_error(*MMD("h1").samples(model_trace, guide_trace))


def test_training_with_the_term_lowers_the_aggregate_posterior_mmd(fit_digits):
    test = pyro_deepvi.load("digits", "test")
    plain, plain_se = aggregate_posterior_mmd(fit_digits({}), test)
    matched, matched_se = aggregate_posterior_mmd(fit_digits({"mmd": 100.0}), test)
    assert plain > 10 * plain_se  # the ELBO alone leaves q(z) visibly off the prior
    assert matched < plain / 5
    assert plain - matched > 10 * (plain_se**2 + matched_se**2) ** 0.5
