"""DARN and the sigmoid belief network: exact log p(x) by enumerating h, autoregressive layers, training."""

import itertools
import math

import pytest
import torch
from pyro import poutine

import pyro_deepvi
from pyro_deepvi import GUIDES, TrainConfig
from pyro_deepvi.data import Dataset
from pyro_deepvi.engine import Trainer, build
from pyro_deepvi.evaluation import bounds
from pyro_deepvi.models.darn import DARN, SigmoidBeliefNetwork
from pyro_deepvi.models.dlgm import DLGM
from pyro_deepvi.nn import MADE, AutoregressiveBernoulli

#: (model class, its options, guide) of the tiny models scored exactly.
TINY = [
    pytest.param(DARN, {}, "darn", id="darn"),
    pytest.param(DARN, {"masked_hidden_dims": (5,)}, "bernoulli", id="darn-masked-hidden"),
    pytest.param(SigmoidBeliefNetwork, {}, "bernoulli", id="sbn"),
]


def tiny(cls, options, num_pixels=4):
    torch.manual_seed(0)
    model = cls((num_pixels,), num_data=100, latent_dims=(2, 2), hidden_dims=(3,), **options).double()
    with torch.no_grad():  # larger weights than the initialization's, so that the layers are far from uniform
        for p in model.parameters():
            p.mul_(3.0)
    return model


def all_binary(n, dtype=torch.float64):
    return torch.tensor(list(itertools.product([0.0, 1.0], repeat=n)), dtype=dtype)


def exact_log_likelihood(model, x):
    """log p(x) = log Σ_h p(x, h), enumerating every configuration of every latent site."""
    sizes = [shape[0] for shape in model.latent_shapes.values()]
    log_joints = []
    for bits in all_binary(sum(sizes)):
        values = dict(zip(model.latent_shapes, bits.split(sizes)))
        conditioned = poutine.condition(model.model, data={k: v.expand(len(x), -1) for k, v in values.items()})
        trace = poutine.trace(conditioned).get_trace(x)
        sites = [site for name, site in trace.nodes.items() if site["type"] == "sample" and name != "data"]
        log_joints.append(sum(site["fn"].log_prob(site["value"]) for site in sites))
    return torch.logsumexp(torch.stack(log_joints), 0)


@pytest.mark.parametrize("cls, guide_name", [(DARN, "darn"), (SigmoidBeliefNetwork, "bernoulli")])
def test_sites_and_shapes(cls, guide_name):
    model = cls((12,), num_data=100, latent_dims=(4, 3), hidden_dims=(8,))
    assert model.latent_support == model.support == "binary"
    assert list(model.latent_shapes) == ["h2", "h1"]
    assert model.default_guide == guide_name
    x = torch.bernoulli(torch.full((5, 12), 0.5))
    trace = poutine.trace(model.model).get_trace(x, index=torch.arange(5))
    assert trace.nodes["h2"]["value"].shape == (5, 3)
    assert trace.nodes["h1"]["value"].shape == (5, 4)
    assert trace.nodes["x"]["is_observed"]
    assert trace.nodes["h1"]["scale"] == pytest.approx(100 / 5)  # the data plate scales N / B
    for name in ("h2", "h1"):
        assert set(trace.nodes[name]["value"].unique().tolist()) <= {0.0, 1.0}
    prior_draw = poutine.trace(poutine.uncondition(model.model)).get_trace(x).nodes["x"]["value"]
    assert prior_draw.shape == (5, 12) and set(prior_draw.unique().tolist()) <= {0.0, 1.0}
    guide = GUIDES.get(guide_name)(model, hidden_dims=(8,))
    guide_trace = poutine.trace(guide).get_trace(x, index=torch.arange(5))
    sites = [name for name, site in guide_trace.nodes.items() if site["type"] == "sample" and name != "data"]
    assert sites == ["h1", "h2"]  # bottom-up
    assert not guide_trace.nodes["h1"]["fn"].has_rsample


def test_log_prob_is_the_sum_of_sequential_conditionals():
    torch.manual_seed(1)
    made = MADE(5, context_dim=3, context_hidden_dims=(4,), hidden_dims=(6,)).double()
    context = torch.randn(7, 3, dtype=torch.float64)
    h = torch.bernoulli(torch.full((7, 5), 0.5, dtype=torch.float64))
    expected = 0.0
    for j in range(5):
        seen = h * (torch.arange(5) < j)  # h_{1:j-1}, the rest zeroed
        p_j = torch.sigmoid(made(seen, context)[:, j])
        expected = expected + torch.where(h[:, j] == 1, p_j, 1 - p_j).log()
    assert torch.allclose(AutoregressiveBernoulli(made, context).log_prob(h), expected)


def test_samples_follow_the_exact_probabilities_of_all_configurations():
    torch.manual_seed(2)
    made = MADE(3).double()
    with torch.no_grad():
        made.direct.weight.copy_(3 * torch.randn(3, 3))
        made.bias.copy_(torch.tensor([0.5, -1.0, 1.0]))
    layer = AutoregressiveBernoulli(made, batch_shape=())
    configurations = all_binary(3)
    probs = layer.log_prob(configurations).exp()
    assert probs.sum().item() == pytest.approx(1.0, abs=1e-12)
    num_samples = 40000
    samples = layer.sample((num_samples,))
    assert samples.shape == (num_samples, 3)
    counts = (samples @ torch.tensor([4.0, 2.0, 1.0], dtype=torch.float64)).long().bincount(minlength=8)
    frequencies = counts / num_samples
    stderr = (probs * (1 - probs) / num_samples).sqrt()
    assert ((frequencies - probs).abs() <= 4 * stderr + 1e-3).all(), (frequencies, probs)


@pytest.mark.parametrize("cls, options, guide_name", TINY)
def test_exact_likelihood_sums_to_one_over_all_images(cls, options, guide_name):
    model = tiny(cls, options)
    assert exact_log_likelihood(model, all_binary(4)).exp().sum().item() == pytest.approx(1.0, abs=1e-10)


@pytest.mark.parametrize("cls, options, guide_name", TINY)
def test_iwae_bounds_rise_towards_the_exact_log_likelihood(cls, options, guide_name):
    model = tiny(cls, options)
    x = all_binary(4).repeat(10, 1)  # every image, 10 times
    data = Dataset("tiny", "test", x, support="binary")
    guide = GUIDES.get(guide_name)(model, hidden_dims=(3,)).double()
    exact = exact_log_likelihood(model, x)
    elbo, _ = bounds(model.model, guide, data, num_particles=2000, seed=0)
    gap = (exact - elbo).mean()
    assert gap > 0.05  # the guide is not the posterior, so the ELBO is visibly below
    # Per data point, L_k − log p(x): below zero in expectation, and rising towards it with k.
    few, many = (bounds(model.model, guide, data, num_particles=k, seed=k)[1] - exact for k in (10, 2000))
    stderr = many.std() / len(many) ** 0.5
    assert -gap < few.mean() < many.mean() + 3 * stderr
    assert many.mean() < 3 * stderr  # ≤ 0 up to Monte Carlo error
    assert many.mean().abs() < 0.05 * gap


def test_short_training_improves_the_elbo(tmp_path):
    config = TrainConfig(
        model="darn", data="digits", objective="tracegraph_elbo", latent_dims=(16,), hidden_dims=(32,), epochs=4,
        batch_size=50, lr=3e-3, eval_every=0, progress=False, seed=0, device="cpu", out=str(tmp_path),
    )
    trainer = Trainer(config)
    valid = pyro_deepvi.load("digits", "valid")
    model, guide = trainer.components.model, trainer.components.guide
    before = bounds(model.model, guide, valid, num_particles=10)[0].mean()
    trainer.fit()
    after = bounds(model.model, guide, valid, num_particles=10)[0].mean()
    assert before < -64 * math.log(2) + 5  # near the uniform model's −64 ln 2 at the start
    assert after > before + 10


def test_binary_and_gaussian_guides_refuse_each_others_models():
    for name in ("darn", "bernoulli"):
        with pytest.raises(ValueError, match="real latents, but this guide is for binary ones"):
            GUIDES.get(name)(DLGM((6,), num_data=10))
    with pytest.raises(ValueError, match="binary latents, but this guide is for real ones"):
        GUIDES.get("diag")(DARN((6,), num_data=10))


def test_rejects_bad_options():
    with pytest.raises(ValueError, match="latent_dims"):
        DARN((6,), num_data=10, latent_dims=())
    with pytest.raises(ValueError, match="masked_hidden_dims"):
        SigmoidBeliefNetwork((6,), num_data=10, masked_hidden_dims=(4,))
    with pytest.raises(ValueError, match=r"darn expects x of shape \[batch, 6\], got \(3, 5\)"):
        DARN((6,), num_data=10).model(torch.zeros(3, 5))


def _mnist5k_test_log_likelihood(tmp_path, model, epochs=20, num_particles=200):
    config = TrainConfig(
        model=model, data="mnist5k", objective="tracegraph_elbo", latent_dims=(200,), hidden_dims=(500,),
        epochs=epochs, eval_every=0, progress=False, seed=0, device="cpu", out=str(tmp_path / model),
    )
    trainer = Trainer(config).fit()
    trainer.components.eval()
    test = pyro_deepvi.load("mnist5k", "test")
    return bounds(trainer.components.model.model, trainer.components.guide, test, num_particles=num_particles)[1]


@pytest.mark.slow
def test_darn_beats_a_sigmoid_belief_network_of_the_same_size_on_mnist5k(tmp_path):
    # 200 binary latents, 500 tanh units, each model with its own guide, 20 epochs of TraceGraph_ELBO.
    darn = _mnist5k_test_log_likelihood(tmp_path, "darn")
    sbn = _mnist5k_test_log_likelihood(tmp_path, "sbn")
    difference = darn - sbn  # paired on the same test digits
    assert difference.mean() > 3 * difference.std() / len(difference) ** 0.5


@pytest.mark.parametrize("model_name, latent_dims, particles", [("sbn", (4, 3), 1), ("sbn", (4,), 2), ("darn", (4, 3), 3)])
def test_tracegraph_baselines_fit_deep_models_and_several_particles(model_name, latent_dims, particles):
    """Each site's NVIL baseline has the shape of its downstream cost, and tracegraph_elbo trains it."""
    config = TrainConfig(
        model=model_name, data="digits", objective="tracegraph_elbo", particles=particles,
        latent_dims=latent_dims, hidden_dims=(8,), progress=False,
    )
    train = config.load_data("train")
    components = build(config, train)
    components(train.batch(torch.arange(10))).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in components.guide.baselines.parameters())
