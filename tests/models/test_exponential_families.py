"""Deep exponential families: sites, the log-density by hand, the local guide, training, the double DEF."""

import json
import math

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro import poutine
from pyro.poutine.util import site_is_subsample
from torch.nn.functional import softplus

import pyro_deepvi
from pyro_deepvi import GUIDES, TrainConfig
from pyro_deepvi.cli import main
from pyro_deepvi.data import Dataset
from pyro_deepvi.data.reuters import load_reuters
from pyro_deepvi.engine import Trainer
from pyro_deepvi.evaluation.perplexity import document_completion, fit_local_factors, perplexity, split_tokens
from pyro_deepvi.guides.local import LocalGuide
from pyro_deepvi.models.exponential_families import DeepExponentialFamily, DoubleDEF
from pyro_deepvi.objectives import elbo, tracegraph_elbo
from pyro_deepvi.registry import DATASETS


def planted_counts(num_docs, seed, num_words=30, topics=3, tokens=40):
    """Documents mixing two of ``topics`` blocks of words (each a uniform distribution over its block)."""
    g = torch.Generator().manual_seed(seed)
    block = num_words // topics
    counts = torch.zeros(num_docs, num_words)
    for d in range(num_docs):
        first, second = torch.randperm(topics, generator=g)[:2].tolist()
        words = torch.randint(0, block, (tokens,), generator=g)
        words = words + block * torch.where(torch.rand(tokens, generator=g) < 0.7, first, second)
        counts[d] = torch.bincount(words, minlength=num_words).float()
    return counts


@DATASETS.register("def_toy", "counts of 30 words from 3 planted topics (tests only)")
def load_def_toy(split, *, root=None, download=False):
    sizes, seeds = {"train": 60, "valid": 20, "test": 20}, {"train": 0, "valid": 1, "test": 2}
    return Dataset("def_toy", split, planted_counts(sizes[split], seeds[split]), support="count")


def sample_sites(trace):
    """The trace's sample sites, without the plates' subsample sites."""
    return {name: site for name, site in trace.nodes.items() if site["type"] == "sample" and not site_is_subsample(site)}


def test_sites_shapes_plates_and_supports():
    pyro.set_rng_seed(0)
    model = DeepExponentialFamily(7, num_data=50, layer_sizes=(4, 3, 2), families=("gamma", "bernoulli", "poisson"))
    x = torch.poisson(torch.full((5, 7), 2.0))
    index = torch.arange(10, 15)
    sites = sample_sites(poutine.trace(model.model).get_trace(x, index=index))
    assert list(sites) == ["W0", "W2", "W1", "z3", "z2", "z1", "x"] == list(model.latent_sites) + ["x"]
    shapes = {name: tuple(site["value"].shape) for name, site in sites.items()}
    assert shapes == {"W0": (7, 4), "W2": (3, 2), "W1": (4, 3), "z3": (2, 5), "z2": (3, 5), "z1": (4, 5), "x": (7, 5)}
    plates = {name: {f.name: f.dim for f in site["cond_indep_stack"]} for name, site in sites.items()}
    assert plates["W0"] == {"columns": -2, "W0_inputs": -1} and plates["W1"] == {"z1_units": -2, "W1_inputs": -1}
    assert plates["z2"] == {"z2_units": -2, "data": -1} and plates["x"] == {"columns": -2, "data": -1}
    assert list(model.latent_shapes.items()) == [("z3", (2,)), ("z2", (3,)), ("z1", (4,))]
    # Supports: gamma weights and units positive, W2 (for a Bernoulli layer) real, Bernoulli
    # units binary, Poisson units counts; x is the batch, transposed.
    assert (sites["W0"]["value"] > 0).all() and (sites["W1"]["value"] > 0).all() and (sites["z1"]["value"] > 0).all()
    assert (sites["W2"]["value"] < 0).any()
    assert set(sites["z2"]["value"].unique().tolist()) <= {0.0, 1.0}
    z3 = sites["z3"]["value"]
    assert (z3 >= 0).all() and torch.equal(z3, z3.round())
    assert torch.equal(sites["x"]["value"], x.T) and sites["x"]["is_observed"]
    # Local sites are scaled N / B by the data plate, global ones are not.
    assert sites["z1"]["scale"] == pytest.approx(10.0) and sites["W0"]["scale"] == 1.0
    assert model.support == "count" and model.default_guide == "local" and model.amortized is False


def _log_gamma(value, shape, rate):
    return shape * math.log(rate) - math.lgamma(shape) + (shape - 1) * math.log(value) - rate * value


def _log_poisson(value, rate):
    return value * math.log(rate) - rate - math.lgamma(value + 1)


def _log_normal(value, scale):
    return -0.5 * (value / scale) ** 2 - math.log(scale) - 0.5 * math.log(2 * math.pi)


@pytest.mark.parametrize(
    "family, link", [("gamma", "identity"), ("bernoulli", "identity"), ("poisson", "identity"), ("poisson", "log")]
)
def test_log_density_matches_a_hand_computation(family, link):
    """The joint log-density of a two-layer DEF, by hand: a gamma top unit over two units of
    ``family``; a Poisson layer's rate is z_2ᵀ w_{1,k} (identity link, gamma weights, the
    paper's Poisson DEF) or exp(z_2ᵀ w_{1,k}) (log link, normal weights)."""
    hyper = dict(gamma_shape=0.5, top_gamma_rate=2.0, weight_gamma_shape=0.3, weight_gamma_rate=0.7, weight_normal_scale=1.5)
    model = DeepExponentialFamily(3, num_data=1, layer_sizes=(2, 1), families=(family, "gamma"), poisson_link=link, **hyper)
    positive_weights = family == "gamma" or (family, link) == ("poisson", "identity")
    assert model.latent_sites["W1"].family == ("gamma" if positive_weights else "normal")
    W0 = [[0.2, 1.0], [0.5, 0.1], [1.5, 0.3]]  # [V, K1]
    W1 = [[0.4], [2.0 if positive_weights else -0.8]]  # [K1, K2]
    z2 = 1.5
    z1 = {"gamma": [0.6, 0.2], "bernoulli": [1.0, 0.0], "poisson": [2.0, 1.0]}[family]
    x = [2.0, 0.0, 1.0]
    values = {"W0": torch.tensor(W0), "W1": torch.tensor(W1), "z2": torch.tensor([[z2]]), "z1": torch.tensor(z1)[:, None]}
    trace = poutine.trace(poutine.condition(model.model, data=values)).get_trace(torch.tensor([x]))

    expected = sum(_log_gamma(w, 0.3, 0.7) for row in W0 for w in row) + _log_gamma(z2, 0.5, 2.0)
    for k in range(2):
        a = W1[k][0] * z2  # the linear predictor z_2ᵀ w_{1,k}
        if family == "gamma":
            expected += _log_gamma(W1[k][0], 0.3, 0.7) + _log_gamma(z1[k], 0.5, 0.5 / a)
        elif family == "bernoulli":
            p = 1 / (1 + math.exp(-a))
            expected += _log_normal(W1[k][0], 1.5) + math.log(p if z1[k] else 1 - p)
        elif link == "identity":
            expected += _log_gamma(W1[k][0], 0.3, 0.7) + _log_poisson(z1[k], a)
        else:
            expected += _log_normal(W1[k][0], 1.5) + _log_poisson(z1[k], math.exp(a))
    for i in range(3):
        expected += _log_poisson(x[i], W0[i][0] * z1[0] + W0[i][1] * z1[1])
    assert trace.log_prob_sum().item() == pytest.approx(expected, rel=1e-5)


def _poisson_def_table(x, W0, W1, top_rate, link, most=30):
    """log p(x_n, z_2, z_1 | W) of a Poisson DEF with one top unit over K_1 Poisson units, in
    float64 for every row x_n and every (z_2, z_1) in 0..``most`` (beyond it the mass is
    negligible for these rates): Poisson(z2; λ) Π_k Poisson(z1_k; g(z2 w_{1,k})) Π_i
    Poisson(x_i; z1ᵀ w_{0,i}), g the identity or exp, a rate of zero floored at float32's
    smallest positive number as the model does. Returns the table [N, Z2, C] and the
    counts 0..most [Z2] and configurations of z1 [C, K1] it runs over."""
    x, W0, W1 = x.double(), W0.double(), W1.double()
    floor = torch.finfo(torch.float32).tiny
    counts = torch.arange(most + 1, dtype=torch.float64)
    log_poisson = lambda k, rate: k * rate.clamp(min=floor).log() - rate - torch.lgamma(k + 1)
    z1 = torch.cartesian_prod(*[counts] * W0.shape[1])  # [C, K1]: every configuration of z1
    rates = W1[:, 0] * counts[:, None]  # [Z2, K1]: z_2 w_{1,k} for each z2
    rates = rates if link == "identity" else rates.exp()
    log_z1 = log_poisson(z1, rates[:, None, :]).sum(-1)  # [Z2, C]
    log_z2 = log_poisson(counts, torch.tensor(top_rate, dtype=torch.float64))  # [Z2]
    log_x = log_poisson(x[:, None, :], (z1 @ W0.T)[None]).sum(-1)  # [N, C]
    return log_z2[None, :, None] + log_z1[None] + log_x[:, None, :], counts, z1


@pytest.mark.parametrize("link", ["identity", "log"])
def test_poisson_def_elbo_is_below_the_exact_log_likelihood(link):
    """A Poisson DEF 2-1 with its weights fixed, over three rows: log p(x | W) by enumeration;
    the ELBO of a local guide (Poisson factors, trained by the score function) by enumeration
    over q, which the objective's Monte Carlo estimate matches and which lies below log p(x | W)."""
    pyro.set_rng_seed(0)
    W0 = torch.tensor([[1.5, 0.1], [0.1, 2.0], [0.8, 0.8]])  # [V, K1]
    W1 = torch.tensor([[1.2], [0.6]]) if link == "identity" else torch.tensor([[0.7], [-0.4]])  # [K1, K2]
    x = torch.tensor([[4.0, 0.0, 2.0], [0.0, 3.0, 1.0], [1.0, 1.0, 1.0]])
    model = DeepExponentialFamily(3, num_data=3, layer_sizes=(2, 1), families=("poisson", "poisson"),
                                  poisson_link=link, top_poisson_rate=1.5)
    table, counts, z1 = _poisson_def_table(x, W0, W1, 1.5, link)
    log_likelihood = table.flatten(1).logsumexp(-1).sum().item()
    conditioned = poutine.condition(model.model, data={"W0": W0, "W1": W1})
    guide = LocalGuide(model, local_only=True)

    def exact_elbo():  # Σ_z q(z) [log p(x, z | W) − log q(z)], q(z) = q(z2) Π_k q(z1_k) per row
        rates = {name: mean.detach().double() for name, mean in guide.local_means().items()}  # [N, units]
        log_q2 = dist.Poisson(rates["z2"][:, 0]).log_prob(counts[:, None]).T  # [N, Z2]
        log_q1 = dist.Poisson(rates["z1"][:, None, :]).log_prob(z1[None]).sum(-1)  # [N, C]
        log_q = log_q2[:, :, None] + log_q1[:, None, :]
        return (log_q.exp() * (table - log_q)).sum().item()

    before = exact_elbo()
    optimizer = torch.optim.Adam(guide.parameters(), lr=0.05)
    with pyro.validation_enabled(False):
        for _ in range(200):
            loss = tracegraph_elbo(particles=8)(conditioned, guide, x=x)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            # The log link's draws are skewed (single estimates from −49 to −38 around −42), so 20 draws
            # can understate their spread: 100 do not.
            draws = torch.tensor([-float(elbo(particles=500)(conditioned, guide, x=x)) for _ in range(100)])
    after = exact_elbo()
    # The objective scores log p(x, z, W) with W conditioned on: its prior's log-density is in the bound.
    log_prior = sum(
        model.weight_prior(model.latent_sites[name].family, x).log_prob(value).sum().item()
        for name, value in {"W0": W0, "W1": W1}.items()
    )
    estimate, stderr = draws.mean().item() - log_prior, draws.std().item() / len(draws) ** 0.5
    assert abs(estimate - after) < 4 * stderr + 1e-4 * abs(after)
    assert before < after < log_likelihood
    # The other link is another likelihood of the same counts.
    other, _, _ = _poisson_def_table(x, W0, W1, 1.5, "log" if link == "identity" else "identity")
    assert abs(other.flatten(1).logsumexp(-1).sum().item() - log_likelihood) > 1.0


def test_double_def_sites_and_log_density():
    model = DoubleDEF(3, num_data=1, layer_sizes=(2,), column_layer_sizes=(2, 1), gamma_shape=0.5, top_gamma_rate=2.0)
    x = torch.tensor([[1.0, 0.0, 3.0]])
    sites = sample_sites(poutine.trace(model.model).get_trace(x))
    assert list(sites) == ["zr2", "Wr1", "zr1", "z1", "x"] == list(model.latent_sites) + ["x"]
    assert {n: tuple(s["value"].shape) for n, s in sites.items()} == {
        "zr2": (3, 1), "Wr1": (1, 2), "zr1": (3, 2), "z1": (2, 1), "x": (3, 1)
    }
    zr2, Wr1, zr1, z1 = [[1.0], [0.5], [2.0]], [[0.3, 1.2]], [[0.1, 0.4], [0.6, 0.2], [0.5, 0.5]], [0.7, 1.1]
    values = {"zr2": torch.tensor(zr2), "Wr1": torch.tensor(Wr1), "zr1": torch.tensor(zr1), "z1": torch.tensor(z1)[:, None]}
    trace = poutine.trace(poutine.condition(model.model, data=values)).get_trace(x)
    expected = sum(_log_gamma(v[0], 0.5, 2.0) for v in zr2) + sum(_log_gamma(w, 0.1, 0.3) for w in Wr1[0])
    for j in range(3):
        for k in range(2):  # zr_{1,jk} ~ Gamma(α, α / zr_{2,j} Wr_{1,k})
            expected += _log_gamma(zr1[j][k], 0.5, 0.5 / (zr2[j][0] * Wr1[0][k]))
    expected += sum(_log_gamma(z, 0.5, 2.0) for z in z1)  # the row DEF has one layer: its top prior
    for j in range(3):
        expected += _log_poisson(x[0, j].item(), zr1[j][0] * z1[0] + zr1[j][1] * z1[1])
    assert trace.log_prob_sum().item() == pytest.approx(expected, rel=1e-5)


def test_options_are_checked():
    with pytest.raises(ValueError, match="families has 1"):
        DeepExponentialFamily(5, 10, (3, 2), families=("gamma",))
    with pytest.raises(ValueError, match="unknown layer family 'normal'"):
        DeepExponentialFamily(5, 10, (3,), families=("normal",))
    with pytest.raises(ValueError, match="layer_sizes"):
        DeepExponentialFamily(5, 10, ())
    with pytest.raises(ValueError, match="gamma_shape"):
        DeepExponentialFamily(5, 10, (3,), gamma_shape=0.0)
    with pytest.raises(ValueError, match="poisson_link must be 'identity' .* or 'log' .*, got 'softplus'"):
        DeepExponentialFamily(5, 10, (3, 2), families=("poisson", "poisson"), poisson_link="softplus")
    with pytest.raises(ValueError, match="completion_particles must be a positive integer, got 0"):
        DeepExponentialFamily(5, 10, (3,), completion_particles=0)
    with pytest.raises(ValueError, match="completion_lr must be positive, got -0.1"):
        DeepExponentialFamily(5, 10, (3,), completion_lr=-0.1)
    with pytest.raises(ValueError, match=r"column_layer_sizes\[0\] must equal"):
        DoubleDEF(5, 10, (3,), column_layer_sizes=(4,))
    with pytest.raises(ValueError, match="'local'"):  # an amortized Gaussian guide cannot fit gamma units
        GUIDES.get("diag")(DeepExponentialFamily(5, 10, (3,)))
    model = DeepExponentialFamily.from_data(load_def_toy("train"), latent_dims=(4, 2), hidden_dims=(200,))
    assert model.layer_sizes == (4, 2) and model.num_data == 60 and model.data_shape == (30,)


def test_guide_matches_the_model_and_gathers_the_batch_rows():
    model = DeepExponentialFamily(6, num_data=10, layer_sizes=(3, 2), families=("gamma", "bernoulli"))
    guide = LocalGuide(model)
    x = torch.poisson(torch.full((10, 6), 1.5))
    for batch in (torch.tensor([1, 4, 7]), torch.tensor([0, 2, 9])):
        trace = poutine.trace(guide).get_trace(x[batch], index=batch)
        mean = softplus(guide.factors["z1"].unconstrained_mean[batch]).T  # [units, B]
        assert torch.allclose(trace.nodes["z1"]["fn"].mean, mean)
        assert torch.allclose(trace.nodes["z2"]["fn"].logits, guide.factors["z2"].logits[batch].T)
        guide.zero_grad()
        with pyro.validation_enabled(True):  # Pyro checks that the guide's sites match the model's
            tracegraph_elbo()(model.model, guide, x=x[batch], index=batch).backward()
        for name in ("z1", "z2"):
            for param in guide.factors[name].parameters():
                touched = param.grad.abs().sum(1) > 0
                assert touched.tolist() == [i in batch.tolist() for i in range(10)]
        assert (guide.factors["W0"].unconstrained_mean.grad != 0).all()
    with pytest.raises(ValueError, match="pass the batch's index"):
        guide(x[:3])


def _gamma_def_gradients(counts):
    """A gamma DEF 2-1 over the documents ``counts`` (3 words) with two copies of one local guide,
    reparameterized and ``local_score_function``: (the reparameterized guide, the score-function
    guide, gradient(guide, objective) of z1's means and W0's shapes)."""
    model = DeepExponentialFamily(3, num_data=2, layer_sizes=(2, 1), gamma_shape=0.5, weight_gamma_shape=0.5)
    x = torch.tensor(counts)
    reparameterized = LocalGuide(model, init_shape=3.0)
    score_function = GUIDES.get("local_score_function")(model)
    score_function.load_state_dict(reparameterized.state_dict())

    def gradient(guide, objective):
        guide.zero_grad()
        objective(model.model, guide, x=x).backward()
        return torch.cat([p.grad.flatten() for p in (guide.factors["z1"].unconstrained_mean, guide.factors["W0"].unconstrained_shape)])

    return reparameterized, score_function, gradient


def test_score_function_gradients_are_unbiased():
    """``local_score_function`` under TraceGraph_ELBO matches the reparameterized gradient of the same
    ELBO (each a mean over particles) within four standard errors."""
    pyro.set_rng_seed(0)
    reparameterized, score_function, gradient = _gamma_def_gradients([[3.0, 0.0, 1.0], [0.0, 2.0, 2.0]])
    exact = gradient(reparameterized, elbo(particles=20000))
    draws = torch.stack([gradient(score_function, tracegraph_elbo(particles=2000)) for _ in range(20)])
    mean, stderr = draws.mean(0), draws.std(0) / 20**0.5
    assert (stderr > 0).all()
    assert ((mean - exact).abs() < 4 * stderr + 1e-3 * exact.abs()).all()


def test_leave_one_out_baseline_is_unbiased_and_cuts_the_variance():
    """With 8 particles tracegraph_elbo gives the score-function sites the leave-one-out baseline: on
    documents of large counts its gradient matches the reparameterized gradient of the same ELBO within
    four standard errors, and its variance is under a quarter of that of the mean of 8 independent
    one-particle estimates (no baseline), which is what the same 8 particles gave before."""
    pyro.set_rng_seed(0)
    reparameterized, score_function, gradient = _gamma_def_gradients([[30.0, 0.0, 10.0], [0.0, 20.0, 20.0]])
    exact = gradient(reparameterized, elbo(particles=20000))
    draws = 200
    leave_one_out = torch.stack([gradient(score_function, tracegraph_elbo(particles=8)) for _ in range(draws)])
    single = torch.stack([gradient(score_function, tracegraph_elbo(particles=1)) for _ in range(draws)])
    mean, stderr = leave_one_out.mean(0), leave_one_out.std(0) / draws**0.5
    assert ((mean - exact).abs() < 4 * stderr + 1e-3 * exact.abs()).all()
    independent_variance = single.var(0) / 8  # the variance of the mean of 8 one-particle estimates
    assert (leave_one_out.var(0) < 0.25 * independent_variance).all()  # measured: 0.05–0.12


def _fit(model, guide, objective, x, steps, lr=0.05):
    optimizer = torch.optim.Adam(guide.parameters(), lr=lr)
    with pyro.validation_enabled(False):
        for _ in range(steps):
            loss = objective(model.model, guide, x=x)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()


@pytest.mark.parametrize(
    "guide_name, objective, particles",
    [("local", elbo, 1), ("local", tracegraph_elbo, 1), ("local_score_function", tracegraph_elbo, 32)],
)
def test_short_training_improves_the_elbo(guide_name, objective, particles):
    """100 steps raise the ELBO by over 10 % (from about −4,900 nats); the pure score-function
    estimator needs more particles per step to do it. A gamma factor drawn near 0 under a positive
    count costs that count times log of its rate, so single 100-particle estimates are heavy-tailed
    (one reached −229,397 where the median of 11 is about −3,700): the test compares medians."""
    pyro.set_rng_seed(0)
    x = load_def_toy("train").x
    model = DeepExponentialFamily(30, num_data=len(x), layer_sizes=(3, 2))
    guide = GUIDES.get(guide_name)(model)

    def elbo_estimate():
        with torch.no_grad(), pyro.validation_enabled(False):
            return torch.tensor([-float(elbo(particles=100)(model.model, guide, x=x)) for _ in range(11)]).median().item()

    before = elbo_estimate()
    _fit(model, guide, objective(particles), x, steps=100, lr=0.1)
    after = elbo_estimate()
    assert after > before + 0.1 * abs(before)


def test_double_def_recovers_planted_structure():
    """Rows simulated by a double DEF with planted globals (each column loads on one of three
    column factors; the row DEF's top unit 0 drives factors 0 and 1 together) and held out are
    completed as well by the fitted model as by the true one, and far better than by the
    column frequencies."""
    pyro.set_rng_seed(0)
    options = dict(layer_sizes=(3, 2), column_layer_sizes=(3,), gamma_shape=0.5, top_gamma_rate=0.1)
    group = torch.arange(24) // 8
    true_globals = {
        "zr1": torch.where(group[:, None] == torch.arange(3), 1.0, 0.05),
        "W1": torch.tensor([[1.0, 0.05], [1.0, 0.05], [0.05, 1.0]]),
    }
    simulate = poutine.condition(poutine.uncondition(DoubleDEF(24, num_data=200, **options).model), data=true_globals)
    with torch.no_grad():
        x = poutine.trace(simulate).get_trace(torch.zeros(200, 24)).nodes["x"]["value"].T
    x = x[x.sum(1) >= 10]  # rows with enough counts to split in two
    train, test = x[:-40], x[-40:]

    model = DoubleDEF(24, num_data=len(train), **options)
    guide = LocalGuide(model)
    _fit(model, guide, elbo(), train, steps=1000)
    fitted = document_completion(model, guide, test)["perplexity"]
    # The true model's held-out rows start from its own fit to the training rows, as the fitted model's do.
    true_rows = fit_local_factors(model, guide.local_guide(len(train)), train, true_globals)
    true = document_completion(model, true_rows, test, global_values=true_globals)["perplexity"]
    _, held = split_tokens(test)
    frequencies = perplexity((train.sum(0) / train.sum()).expand_as(held), held)
    assert true < 0.8 * frequencies
    assert fitted < 1.05 * true


def test_train_and_evaluate_with_the_engine(tmp_path):
    config = TrainConfig(
        model="def", data="def_toy", latent_dims=(4, 2), epochs=2, batch_size=30, lr=0.05, eval_every=1,
        model_args={"completion_steps": 20}, progress=False, device="cpu", out=str(tmp_path / "run"),
    )
    assert config.guide == "local"
    trainer = Trainer(config).fit()
    records = [r for r in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert len(records) == 2 and '"valid_perplexity"' in records[-1]
    result = trainer.evaluate()
    assert math.isfinite(result["perplexity"]) and result["held_out_words"] == 20 * 20


def test_poisson_def_trains_from_the_command_line(tmp_path, capsys):
    """`pyro-deepvi train def` with Poisson layers and either link, at a tiny size on reuters, with
    leave-one-out baselines (2 particles) in training and in the completion fit: the identity link's
    weights are gamma (positive) and the log link's normal; a bad link is one clear error."""
    common = ["def", "--latent-dims", "5,3", "--epochs", "3", "--eval-every", "0", "--no-progress",
              "--objective", "tracegraph_elbo", "--model-arg", 'families=["poisson","poisson"]', "--particles", "2",
              "--model-arg", "completion_steps=5", "--model-arg", "completion_particles=2",
              "--model-arg", "completion_lr=0.05"]
    for link in ("identity", "log"):
        out = tmp_path / link
        assert main(["train", *common, "--model-arg", f"poisson_link={link}", "--out", str(out)]) == 0
        config, components = pyro_deepvi.restore(out, device="cpu")
        model, guide = components.model, components.guide
        assert model.poisson_link == link and model.families == ("poisson", "poisson")
        assert (model.completion_particles, model.completion_lr, config.particles) == (2, 0.05, 2)
        assert math.isfinite(json.loads((out / "eval.json").read_text())["perplexity"])
        with torch.no_grad(), pyro.validation_enabled(False):
            weights = poutine.trace(guide).get_trace(config.load_data("train").x).nodes["W1"]["value"]
        if link == "identity":
            assert model.latent_sites["W1"].family == "gamma" and (weights > 0).all()
        else:
            assert model.latent_sites["W1"].family == "normal" and (weights < 0).any()
        assert model.latent_sites["W0"].family == "gamma" and (guide.global_means()["W0"] > 0).all()
    capsys.readouterr()
    assert main(["train", *common, "--model-arg", "poisson_link=logit", "--out", str(tmp_path / "bad")]) == 2
    err = capsys.readouterr().err
    assert "error: poisson_link must be 'identity'" in err and "got 'logit'" in err and "Traceback" not in err
    assert not (tmp_path / "bad").exists()


@pytest.mark.slow
def test_sparse_gamma_def_beats_poisson_factorization_on_reuters(tmp_path):
    """Ranganath et al. (2015): going beyond one layer improves held-out perplexity. A sparse gamma
    DEF 100-30-15 completes the 80 valid and test documents of reuters better than a one-layer
    Poisson factorization of 100 (the same model with one layer), each trained 1,500 full-batch
    steps with the same settings (3-4 minutes each on one core). Measured: 1,415 against 1,449
    (and 1,423 against 1,454 when trained with another random stream)."""
    held_out = torch.cat([load_reuters("valid").x, load_reuters("test").x])
    perplexities = {}
    for sizes in [(100,), (100, 30, 15)]:
        config = TrainConfig(
            model="def", data="reuters", latent_dims=sizes, epochs=1500, batch_size=315, lr=0.05, eval_every=0,
            progress=False, device="cpu", seed=0, out=str(tmp_path / "-".join(map(str, sizes))),
        )
        components = Trainer(config).fit().components
        perplexities[sizes] = document_completion(components.model, components.guide, held_out)["perplexity"]
    assert perplexities[(100, 30, 15)] < 0.99 * perplexities[(100,)]
