"""Total-correlation terms (β-TCVAE) and the anchor term (AnchorVAE): estimator, identity, place in a run."""

import math

import pyro
import pyro.distributions as dist
import pytest
import torch

import pyro_deepvi
from pyro_deepvi.engine import TrainConfig, build
from pyro_deepvi.importance import importance_traces, log_weights
from pyro_deepvi.objectives.total_correlation import (
    Anchor,
    DimensionKL,
    IndexCodeMI,
    TotalCorrelation,
    decompose,
    decomposition,
    log_importance_weights,
    mutual_information,
    pairwise_log_prob,
)
from pyro_deepvi.registry import TERMS




def encodings(cov, num, scale, seed):
    """q(z|x_j) = N(μ_j, scale² I) with μ_j ~ N(0, cov): the guide, the draws z_j ~ q(z|x_j), [1, num, D]."""
    g = torch.Generator().manual_seed(seed)
    loc = torch.randn(num, cov.shape[0], generator=g) @ torch.linalg.cholesky(cov).T
    z = loc + scale * torch.randn(loc.shape, generator=g)
    return dist.Normal(loc.unsqueeze(0), scale).to_event(1), z.unsqueeze(0)


def gaussian_tc(cov):
    """TC of N(0, cov): −½ log det of its correlation matrix."""
    sd = cov.diagonal().sqrt()
    return -0.5 * torch.logdet(cov / sd[:, None] / sd[None]).item()


COVARIANCES = {
    "rho=0.8": torch.tensor([[1.0, 0.8], [0.8, 1.0]]),
    "negative, unequal scales": torch.tensor([[2.0, -1.2], [-1.2, 1.0]]),
    "3-d mixed": torch.tensor([[1.0, 0.7, 0.3], [0.7, 1.0, 0.0], [0.3, 0.0, 1.0]]),
    "3-d independent": torch.eye(3),
}


@pytest.mark.parametrize("name", list(COVARIANCES))
def test_tc_of_a_correlated_gaussian(name):
    # N = B = 2000 points: the minibatch is the data set, and the stratified estimate is the
    # exact TC of the data set's aggregate posterior (1/N) Σ_j N(μ_j, σ² I). As N grows that
    # mixture tends to N(0, Σ + σ² I), whose TC is the target. σ is not tiny on purpose: a
    # mixture of N spikes is no Gaussian (its MI → log N, see below), and the own component
    # in q(z_i) biases log q(z_i) up by about log(1 + q(z_i|x_i) / (N q(z_i))), which grows
    # as σ^−D: with σ = 0.3 (2-d) and 0.4 (3-d) that bias is below ~0.03 nats, and the
    # spread over data sets of 2000 points about 0.015 (measured over seeds).
    cov = COVARIANCES[name]
    dim = cov.shape[0]
    scale = 0.3 if dim == 2 else 0.4
    fn, z = encodings(cov, 2000, scale, seed=0)
    parts = decompose(fn, z, torch.zeros(1, 2000), num_data=2000)
    exact = gaussian_tc(cov + scale**2 * torch.eye(dim))
    assert parts.total_correlation.item() == pytest.approx(exact, abs=0.05)
    if name == "3-d independent":
        assert exact == pytest.approx(0.0, abs=1e-6)
    else:
        assert exact > 0.25  # far from 0: the test tells correlated from independent


def test_minibatch_estimate_matches_the_data_set():
    # N = 2000 points in shuffled minibatches of 200: the stratified estimate averages to the
    # full-data one; Chen et al.'s MWS weights 1/(N·B) are offset by about (D − 1)·log N.
    cov, num = COVARIANCES["rho=0.8"], 2000
    fn, z = encodings(cov, num, 0.3, seed=1)
    full = decompose(fn, z, torch.zeros(1, num), num)
    order = torch.randperm(num, generator=torch.Generator().manual_seed(2)).view(10, 200)
    loc = fn.base_dist.loc[0]
    batches = {
        estimator: torch.stack(
            [
                decompose(dist.Normal(loc[i].unsqueeze(0), 0.3).to_event(1), z[:, i], torch.zeros(1, 200), num, estimator)
                .total_correlation
                for i in order
            ]
        )
        for estimator in ("stratified", "mws")
    }
    assert batches["stratified"].mean().item() == pytest.approx(full.total_correlation.item(), abs=0.05)
    assert batches["mws"].mean().item() == pytest.approx(full.total_correlation.item() + math.log(num), abs=0.5)


def test_mws_is_the_exact_estimate_shifted_by_log_n_when_the_batch_is_the_data_set():
    fn, z = encodings(COVARIANCES["3-d mixed"], 300, 0.4, seed=3)
    log_p = dist.Normal(0.0, 1.0).expand([3]).to_event(1).log_prob(z)
    exact, mws = decompose(fn, z, log_p, 300), decompose(fn, z, log_p, 300, "mws")
    log_n = math.log(300)
    assert mws.index_code_mi.item() == pytest.approx(exact.index_code_mi.item() + log_n, abs=1e-4)
    assert mws.total_correlation.item() == pytest.approx(exact.total_correlation.item() + 2 * log_n, abs=1e-4)
    assert mws.dimension_kl.item() == pytest.approx(exact.dimension_kl.item() - 3 * log_n, abs=1e-4)
    assert mws.average_kl.item() == pytest.approx(exact.average_kl.item(), abs=1e-6)


def test_separate_spikes_have_index_code_mi_log_n():
    # Non-overlapping encodings: q(z_i) = q(z_i|x_i) / N, so every draw's MI term is log N.
    fn, z = encodings(torch.eye(2), 500, 1e-4, seed=4)
    parts = decompose(fn, z, torch.zeros(1, 500), 500)
    assert parts.index_code_mi.item() == pytest.approx(math.log(500), abs=1e-3)
    assert parts.total_correlation.item() <= math.log(500) + 1e-3  # at most (D − 1)·log N


@pytest.mark.parametrize("estimator", ["stratified", "mws"])
def test_parts_add_up_to_the_average_kl(estimator):
    fn, z = encodings(COVARIANCES["negative, unequal scales"], 400, 0.5, seed=5)
    prior = dist.Normal(0.0, 1.0).expand([2]).to_event(1)
    parts = decompose(fn, z, prior.log_prob(z), num_data=4000, estimator=estimator)
    average_kl = (fn.log_prob(z) - prior.log_prob(z)).mean()
    total = parts.index_code_mi + parts.total_correlation + parts.dimension_kl
    assert total.item() == pytest.approx(average_kl.item(), abs=1e-5)
    assert parts.average_kl.item() == pytest.approx(average_kl.item(), abs=1e-6)
    if estimator == "stratified":
        assert parts.index_code_mi.item() <= math.log(4000)


def test_pairwise_log_prob_and_weights_against_loops():
    g = torch.Generator().manual_seed(6)
    loc = torch.randn(3, 5, 4, generator=g, dtype=torch.float64)
    scale = torch.rand(3, 5, 4, generator=g, dtype=torch.float64) + 0.1
    fn = dist.Normal(loc, scale).to_event(1)  # 3 particles, each with components of its own
    z = fn.sample()
    pairs = pairwise_log_prob(fn, z)
    assert pairs.shape == (3, 5, 5, 4)
    for s, i, j in [(0, 1, 3), (2, 4, 0), (1, 2, 2)]:
        expected = torch.distributions.Normal(loc[s, j], scale[s, j]).log_prob(z[s, i])
        assert torch.allclose(pairs[s, i, j], expected, rtol=1e-12, atol=1e-12)
    # Laplace is univariate too; any Independent of a univariate distribution is accepted.
    laplace = dist.Laplace(loc, scale).to_event(1)
    assert torch.allclose(
        pairwise_log_prob(laplace, z)[1, 0, 2], torch.distributions.Laplace(loc[1, 2], scale[1, 2]).log_prob(z[1, 0])
    )

    weights = log_importance_weights(5, 40).exp()
    assert torch.allclose(weights.sum(1), torch.ones(5))  # the estimate of q(z_i) is a weighted mixture
    assert weights[0, 0].item() == pytest.approx(1 / 40) and weights[0, 1].item() == pytest.approx(39 / 40 / 4)
    assert torch.allclose(log_importance_weights(5, 5).exp(), torch.full((5, 5), 0.2))
    assert torch.allclose(log_importance_weights(5, 40, "mws").exp(), torch.full((5, 5), 1 / 200))
    with pytest.raises(ValueError, match="at least 2"):
        log_importance_weights(1, 40)
    with pytest.raises(ValueError, match="smaller"):
        log_importance_weights(50, 40)


def test_options_are_checked():
    with pytest.raises(ValueError, match="estimator"):
        TotalCorrelation("h1", estimator="mss")
    with pytest.raises(ValueError, match="dims"):
        Anchor("h1", dims=(0, 0))
    train = pyro_deepvi.load("digits", "train")
    model = build(TrainConfig(data="digits", latent_dims=(4,), hidden_dims=(8,)), train).model
    with pytest.raises(ValueError, match="dims"):
        Anchor.from_model(model, dims=(4,))
    assert Anchor.from_model(model, dims=(1, 3)).dims == (1, 3)
    fn, z = encodings(torch.eye(3), 10, 0.5, seed=7)
    with pytest.raises(ValueError, match="distinct"):
        mutual_information(fn, z, 10, dims=(0, -3))
    full = dist.MultivariateNormal(torch.zeros(1, 10, 3), torch.eye(3))
    with pytest.raises(ValueError, match="factorized guide.*MultivariateNormal"):
        pairwise_log_prob(full, z)


def digits_run(terms, guide="diag", latent_dims=(4,)):
    train = pyro_deepvi.load("digits", "train")
    config = TrainConfig(data="digits", terms=terms, guide=guide, latent_dims=latent_dims, hidden_dims=(16,), device="cpu")
    torch.manual_seed(0)
    return build(config, train), train


def test_tc_term_in_a_dlgm_run(paired_losses):
    components, train = digits_run({"tc": 5.0})
    term = components.objective.terms["tc"]
    assert isinstance(term, TotalCorrelation) and TERMS.get("tc") is TotalCorrelation
    assert (term.site, term.estimator) == ("h1", "stratified")
    assert TERMS.get("index_code_mi") is IndexCodeMI and TERMS.get("dimension_kl") is DimensionKL
    assert TERMS.get("anchor") is Anchor
    assert TotalCorrelation.from_model(digits_run({}, latent_dims=(3, 2))[0].model).site == "h2"
    without, _ = digits_run({})
    without.load_state_dict(components.state_dict())  # the term has no parameters of its own

    batch = train.batch(torch.arange(50))  # with its index: the data plate is N = 1197, B = 50
    loss, base = paired_losses(components, without, batch)
    tc = components.objective.parts["tc"]
    assert tc.shape == () and torch.isfinite(tc)
    assert (loss - base).item() == pytest.approx(len(train) * 5.0 * tc.item(), rel=1e-4, abs=1e-2)
    last = term.last
    assert last.total_correlation.item() == pytest.approx(tc.item(), abs=1e-6)
    # On the run's own draws, the parts add up to the objective's rate (h1 is the only latent).
    rate = components.objective.parts["rate"].item()
    assert (last.index_code_mi + last.total_correlation + last.dimension_kl).item() == pytest.approx(rate, abs=1e-4)
    assert last.index_code_mi.item() <= math.log(len(train))

    # The term alone, 2 particles: N is read from the data plate, and gradients reach the encoder.
    model, guide = components.model.model, components.guide
    model_trace, guide_trace = importance_traces(model, guide, 2, 1, kwargs=batch)
    weights = log_weights(model_trace, guide_trace, 1)
    value = term(model_trace, guide_trace, weights)
    parts = decomposition(model_trace, guide_trace, "h1", num_data=len(train))
    assert value.item() == pytest.approx(parts.total_correlation.item(), abs=1e-6)
    assert (parts.average_kl - (weights.log_q - weights.log_p_latent).mean()).abs().item() < 1e-4
    encoder = list(components.guide.parameters())
    grads = torch.autograd.grad(value, encoder + list(components.model.decoder.parameters()), allow_unused=True)
    assert all(g is not None and torch.isfinite(g).all() for g in grads[: len(encoder)])
    assert any(g.abs().sum() > 0 for g in grads[: len(encoder)])
    assert all(g is None or (g == 0).all() for g in grads[len(encoder) :])  # the decoder plays no part in q(z)


def test_beta_tcvae_weights_scale_each_part():
    # α·MI + β·TC + γ·dim-KL: the three terms with weights α − 1, β − 1, γ − 1 on top of the ELBO.
    components, train = digits_run({"index_code_mi": 1.0, "tc": 5.0, "dimension_kl": -0.5})
    without, _ = digits_run({})
    without.load_state_dict(components.state_dict())
    batch = train.batch(torch.arange(100, 164))
    components(batch)
    without(batch)
    pyro.set_rng_seed(8)
    loss = components(batch)
    parts = components.objective.parts
    pyro.set_rng_seed(8)
    base = without(batch)
    extra = parts["index_code_mi"] + 5.0 * parts["tc"] - 0.5 * parts["dimension_kl"]
    assert (loss - base).item() == pytest.approx(len(train) * extra.item(), rel=1e-4, abs=1e-2)


@pytest.mark.parametrize("guide", ["full", "rank_one"])
def test_a_guide_that_is_not_factorized_is_refused(guide):
    components, train = digits_run({"tc": 5.0}, guide=guide)
    with pytest.raises(ValueError, match="factorized guide at site 'h1'.*--guide diag"):
        components(train.batch(torch.arange(20)))


def anchor_information(components, data, dims=(0,)):
    """Î(z_K; x) over a whole split (N = B: the exact aggregate posterior of that split), 3 particles."""
    pyro.set_rng_seed(11)
    with torch.no_grad():
        model_trace, guide_trace = importance_traces(
            components.model.model, components.guide, 3, 1, kwargs={"x": data.batch(torch.arange(len(data)))["x"]}
        )
        return Anchor("h1", dims).information(model_trace, guide_trace).item()


def test_anchor_gradient_raises_the_anchor_information():
    components, train = digits_run({"anchor": 1.0})
    term = components.objective.terms["anchor"]
    assert (term.site, term.dims) == ("h1", (0,))
    batch = train.batch(torch.arange(200))
    components(batch)
    params = list(components.guide.parameters())

    def information():
        pyro.set_rng_seed(9)  # the same draws ε before and after the step
        model_trace, guide_trace = importance_traces(components.model.model, components.guide, 1, 1, kwargs=batch)
        return term.information(model_trace, guide_trace, log_weights(model_trace, guide_trace, 1))

    before = information()
    grads = torch.autograd.grad(-before, params)  # the term's value is −Î
    with torch.no_grad():
        for p, g in zip(params, grads):
            p -= 0.05 * g / max(g.norm() for g in grads)
    after = information()
    assert after.item() > 1.2 * before.item() > 0
    # The loss's extra part is −N·λ·Î.
    pyro.set_rng_seed(10)
    loss = components(batch)
    assert components.objective.parts["anchor"].item() == pytest.approx(-term.last.item(), abs=1e-6)
    assert torch.isfinite(loss)


def test_a_short_fit_with_an_anchor_puts_more_information_in_it(fit_digits):
    test = pyro_deepvi.load("digits", "test")
    plain = anchor_information(fit_digits({}), test)
    anchored = anchor_information(fit_digits({"anchor": 5.0}), test)
    assert anchored > plain + 0.3
    assert anchored <= math.log(len(test)) + 1e-6  # an MI estimate of the split's own aggregate posterior
