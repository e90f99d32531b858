"""The VampPrior: p(h_L) = (1/K) Σ_k q(h_L | u_k), checked against a hand computation; its
pseudo-inputs started at training points; its ReLU encoder, which keeps the units a tanh one saturates."""

import math

import pyro
import pytest
import torch

import pyro_deepvi
from pyro_deepvi import GUIDES, TrainConfig
from pyro_deepvi.engine import Trainer
from pyro_deepvi.evaluation import active_units
from pyro_deepvi.models.dlgm import DLGM
from pyro_deepvi.registry import OBJECTIVES
from pyro_deepvi.run_dir import read_metrics


def test_log_density_is_the_mixture_of_the_guide_posteriors_at_the_pseudo_inputs():
    torch.manual_seed(0)
    model = DLGM((6,), num_data=40, latent_dims=(4, 3), hidden_dims=(5,), prior="vamp", prior_components=7)
    guide = GUIDES.get("diag")(model, hidden_dims=(8,))
    h = torch.randn(11, 3)
    # By hand: q(h2 | u_k) = N(μ_k, σ_k²) from the guide's (ReLU) encoder and h2 head; log (1/K) Σ_k Π_d N(h_d; μ_kd, σ_kd²).
    params = guide.heads["h2"](torch.relu(guide.encoder.net[0](model.vamp.pseudo_inputs)))
    loc, scale = params[:, :3], torch.nn.functional.softplus(params[:, 3:]) + 1e-5
    log_n = -0.5 * ((h[:, None] - loc) / scale).pow(2) - scale.log() - 0.5 * math.log(2 * math.pi)
    expected = torch.logsumexp(log_n.sum(-1), dim=1) - math.log(7)
    assert torch.allclose(model.top_prior(h).log_prob(h), expected, atol=1e-5)


def test_pseudo_inputs_and_encoder_learn_through_the_prior():
    model = DLGM((6,), num_data=40, latent_dims=(3,), hidden_dims=(5,), prior="vamp", prior_components=4)
    guide = GUIDES.get("diag")(model, hidden_dims=(8,))
    x = torch.bernoulli(torch.full((5, 6), 0.5))
    OBJECTIVES.get("iwae")(particles=3)(model.model, guide, x=x, index=torch.arange(5)).backward()
    assert model.vamp.pseudo_inputs.grad.abs().sum() > 0
    # One owner per parameter: the guide's encoder is not copied into the model.
    assert not any(p is q for p in model.parameters() for q in guide.parameters())
    sample = pyro.poutine.trace(model.model).get_trace(x, index=torch.arange(5)).nodes["h1"]["value"]
    assert sample.shape == (5, 3)


def test_refuses_a_guide_without_a_closed_form_top_posterior():
    model = DLGM((6,), num_data=40, latent_dims=(4, 3), hidden_dims=(5,), prior="vamp")
    x = torch.zeros(2, 6)
    with pytest.raises(RuntimeError, match="no q\\(h_L \\| x\\) to mix"):
        model.model(x)
    guide = GUIDES.get("chain")(model, hidden_dims=(8,))
    with pytest.raises(ValueError, match="not a closed form"):
        OBJECTIVES.get("elbo")()(model.model, guide, x=x)


def test_pseudo_inputs_start_at_distinct_training_points_with_prior_init_data():
    data = pyro_deepvi.load("mnist5k", "train")
    torch.manual_seed(0)
    model = DLGM.from_data(data, prior="vamp", prior_components=30, prior_init="data")
    u = model.vamp.pseudo_inputs
    # Each pseudo-input is one training image (the grey levels, before binarization), 30 different ones.
    matches = (u.detach()[:, None] == data.x[None]).all(-1).nonzero()
    assert matches.shape[0] == 30 and matches[:, 0].tolist() == list(range(30))
    assert len(set(matches[:, 1].tolist())) == 30
    assert u.requires_grad and u.data_ptr() != data.x.data_ptr()  # a trained copy, not the data
    uniform = DLGM.from_data(data, prior="vamp", prior_components=30).vamp.pseudo_inputs
    assert 0.4 < float(uniform.detach().mean()) < 0.6  # uniform on [0, 1] by default


def test_prior_init_errors_name_what_is_wrong():
    data = pyro_deepvi.load("mnist5k", "train")
    with pytest.raises(ValueError, match="needs prior='vamp'"):
        DLGM.from_data(data, prior="normal", prior_init="data")
    with pytest.raises(ValueError, match="must be 'data'"):
        DLGM.from_data(data, prior="vamp", prior_init="train")
    with pytest.raises(ValueError, match="too few"):
        DLGM.from_data(data.rows(torch.arange(5)), prior="vamp", prior_components=10, prior_init="data")
    with pytest.raises(ValueError, match=r"shape \[4, 6\], got shape \[3, 6\]"):
        DLGM((6,), num_data=40, prior="vamp", prior_components=4, prior_init=torch.zeros(3, 6))


def test_the_vampprior_takes_a_relu_encoder_unless_given_another():
    vamp = DLGM((6,), num_data=40, prior="vamp")
    assert isinstance(GUIDES.get("diag")(vamp, hidden_dims=(8,)).encoder.net[-1], torch.nn.ReLU)
    assert isinstance(GUIDES.get("diag")(vamp, hidden_dims=(8,), activation="tanh").encoder.net[-1], torch.nn.Tanh)
    assert isinstance(GUIDES.get("diag")(DLGM((6,), num_data=40), hidden_dims=(8,)).encoder.net[-1], torch.nn.Tanh)


def _trained_encoder(tmp_path, epochs, **guide_args):
    config = TrainConfig(
        model="dlgm", data="mnist5k", epochs=epochs, eval_every=0, progress=False, out=str(tmp_path / "run"),
        model_args={"prior": "vamp", "prior_components": 100}, guide_args=guide_args,
    )
    trainer = Trainer(config, overwrite=True)
    trainer.fit()
    test = pyro_deepvi.load("mnist5k", "test").rows(torch.arange(500))
    with torch.no_grad():
        features = trainer.components.guide.encoder(test.x)
        means = trainer.components.guide.top_posterior(test.x).mean
    return features, means


def test_a_tanh_encoder_saturates_under_the_vampprior_and_the_relu_one_keeps_its_units(tmp_path):
    # The collapse this prior had with a tanh encoder: KL(q(h|x) || p_λ) = 0 for any encoder that ignores x,
    # and the tanh trunk reaches that within the first epoch by saturating for every input (zero gradient).
    features, means = _trained_encoder(tmp_path, epochs=2, activation="tanh")
    assert (features.abs() > 0.99).float().mean() > 0.5
    assert int((means.var(0) > 0.01).sum()) == 0
    features, means = _trained_encoder(tmp_path, epochs=2)
    assert (features > 0).float().mean() > 0.1
    assert int((means.var(0) > 0.01).sum()) >= 25


@pytest.mark.slow
def test_with_its_relu_encoder_the_vampprior_model_leaves_the_mean_image_plateau(tmp_path):
    # mnist5k's "mean image" (every digit decoded the same) has distortion ≈ 207 nats; the tanh-encoder
    # VampPrior stayed there for 100 epochs with 0 active units. With the ReLU encoder it leaves by epoch ~13.
    config = TrainConfig(
        model="dlgm", data="mnist5k", epochs=20, eval_every=0, progress=False, out=str(tmp_path / "run"),
        model_args={"prior": "vamp", "prior_components": 100},
    )
    trainer = Trainer(config)
    trainer.fit()
    last = read_metrics(tmp_path / "run")[-1]
    assert last["train_distortion"] < 190 and last["train_rate"] > 2
    test = pyro_deepvi.load("mnist5k", "test")
    assert active_units(trainer.components.guide, test)["total"] >= 25
