"""Deep VIB: sites and shapes, labels, predictions, β as the rate weight, and the paper's effect (slow)."""

import json

import pyro
import pytest
import torch

import pyro_deepvi
from pyro_deepvi import GUIDES, MODELS, TrainConfig
from pyro_deepvi.data import check_compatible, load
from pyro_deepvi.engine import Trainer
from pyro_deepvi.models.vib import VIB, deterministic_baseline


def model_and_guide(K=3, C=4, D=6, num_data=100, decoder_hidden_dims=()):
    model = VIB((D,), num_data, C, latent_dims=(K,), decoder_hidden_dims=decoder_hidden_dims)
    guide = GUIDES.get(model.default_guide)(model, hidden_dims=(8,))
    return model, guide


def test_registered_with_the_model_contract():
    assert MODELS.get("vib") is VIB
    model, _ = model_and_guide()
    assert model.max_plate_nesting == 1 and model.default_guide == "diag"
    assert dict(model.latent_shapes) == {"z": torch.Size([3])}
    assert len(model.decoder) == 1  # the paper's single softmax layer by default
    assert len(model_and_guide(decoder_hidden_dims=(5,))[0].decoder) == 3


def test_sites_and_shapes():
    model, guide = model_and_guide()
    x, y = torch.randn(5, 6), torch.tensor([0, 1, 2, 3, 0])
    trace = pyro.poutine.trace(model.model).get_trace(x, y, index=torch.arange(5))
    assert trace.nodes["z"]["value"].shape == (5, 3)
    assert not trace.nodes["z"]["is_observed"]
    assert trace.nodes["y"]["is_observed"]
    assert trace.nodes["y"]["fn"].logits.shape == (5, 4)
    assert trace.nodes["z"]["scale"] == pytest.approx(100 / 5)  # the data plate scales N / B
    assert "x" not in trace.nodes  # x only conditions the guide (the encoder p(z|x))
    guide_trace = pyro.poutine.trace(guide).get_trace(x, y, index=torch.arange(5))
    assert guide_trace.nodes["z"]["fn"].batch_shape == (5,)
    # The pair is a valid Pyro model/guide: the ELBO runs under validation.
    with pyro.validation_enabled():
        loss = pyro.infer.Trace_ELBO().differentiable_loss(model.model, guide, x, y, index=torch.arange(5))
    assert torch.isfinite(loss)


def test_labels_are_required():
    model, _ = model_and_guide()
    with pytest.raises(ValueError, match="needs labels y"):
        model.model(torch.randn(5, 6))
    with pytest.raises(ValueError, match="integer class labels"):
        model.model(torch.randn(5, 6), torch.zeros(5))


def test_from_data_needs_a_labeled_data_set(ppca_data):
    with pytest.raises(ValueError, match="needs a labeled data set"):
        VIB.from_data(ppca_data["train"])
    digits = load("digits", "train")
    model = VIB.from_data(digits, latent_dims=(8,), hidden_dims=(16,))
    assert model.num_classes == 10 and model.num_data == len(digits) and model.data_shape == (64,)


@pytest.mark.parametrize("support", ["binary", "unit_interval", "real"])
def test_accepts_any_input_values(support):
    check_compatible(support, VIB.support, "vib")  # a classifier of x does not score x


def test_predictions_are_probabilities_and_reduce_to_the_mean_as_variance_vanishes():
    torch.manual_seed(0)
    model, guide = model_and_guide(K=3, C=4)
    x = torch.randn(7, 6)
    with torch.no_grad():
        model.decoder[0].weight.mul_(5.0)  # a decoder sensitive to z, so noise would show
        probs = model.predict(guide, x)
        assert probs.shape == (7, 4)
        assert (probs >= 0).all()
        assert torch.allclose(probs.sum(-1), torch.ones(7))
        mean_probs = model.predict(guide, x, num_samples=0)
        assert (model.predict(guide, x, 200) - mean_probs).abs().max() > 1e-2  # the noise matters here
        head = guide.heads["z"]
        head.weight[3:] = 0.0
        head.bias[3:] = -50.0  # encoder scale softplus(-50) + 1e-5 ≈ 1e-5
        assert torch.allclose(model.predict(guide, x), model.predict(guide, x, num_samples=0), atol=1e-3)


def train_digits(tmp_path, rate, epochs=15):
    config = TrainConfig(
        model="vib", data="digits", terms={"rate": rate}, epochs=epochs, batch_size=50, lr=3e-3,
        latent_dims=(8,), hidden_dims=(64,), out=str(tmp_path / f"rate{rate}"), eval_every=0,
        test_particles=10, progress=False,
    )
    result = pyro_deepvi.train(config)
    last = json.loads((tmp_path / f"rate{rate}" / "metrics.jsonl").read_text().splitlines()[-1])
    return result, last


def test_training_on_digits_beats_chance_and_beta_matters(tmp_path):
    # β = 1e-2: rate weight β − 1 makes the loss D + β R.
    result, last = train_digits(tmp_path, rate=1e-2 - 1)
    on_disk = json.loads((tmp_path / "rate-0.99" / "eval.json").read_text())
    assert on_disk["test_error"] == result["test_error"]
    assert {"test_error_one_sample", "test_error_mean"} <= set(result)
    assert result["test_error"] < 0.3, result
    assert last["train_rate"] > 2.0
    # A huge β squeezes the rate to ~0: z carries no information about x, the error is chance.
    result, last = train_digits(tmp_path, rate=1e3)
    assert last["train_rate"] < 0.5, last
    assert result["test_error"] > 0.7, result


def test_eval_without_labels_errors(ppca_data):
    model, guide = model_and_guide(D=6)
    with pytest.raises(ValueError, match="no labels"):
        model.evaluate(guide, ppca_data["test"])


@pytest.mark.slow
def test_vib_is_not_worse_than_a_deterministic_net_on_mnist5k(tmp_path):
    latent, hidden, epochs, batch_size, lr = (64,), (512, 512), 60, 100, 1e-3
    config = TrainConfig(
        model="vib", data="mnist5k", terms={"rate": 1e-3 - 1}, epochs=epochs, batch_size=batch_size, lr=lr,
        latent_dims=latent, hidden_dims=hidden, out=str(tmp_path / "vib"), eval_every=0, progress=False,
    )
    trainer = Trainer(config).fit()
    test = config.load_data("test")
    vib_error = trainer.components.model.evaluate(trainer.components.guide, test)["test_error"]

    baseline = deterministic_baseline(config.load_data("train"), test, hidden, latent[0], epochs, batch_size, lr)
    det_error = baseline["test_error"]
    print(f"mnist5k test error: VIB (beta=1e-3, 12 draws) {vib_error:.4f}, deterministic {det_error:.4f}")
    assert vib_error <= det_error + 0.01


def test_deterministic_baseline_learns_digits():
    train, test = load("digits", "train"), load("digits", "test")
    baseline = deterministic_baseline(train, test, hidden_dims=(32,), latent_dim=8, epochs=5, lr=1e-2)
    assert baseline["test_error"] < 0.3  # chance is 0.9
    assert baseline["network"][-1].out_features == train.num_classes
