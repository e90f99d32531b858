"""The VampPrior: p(h_L) = (1/K) Σ_k q(h_L | u_k), checked against a hand computation."""

import math

import pyro
import pytest
import torch

from pyro_deepvi import GUIDES
from pyro_deepvi.models.dlgm import DLGM
from pyro_deepvi.registry import OBJECTIVES


def test_log_density_is_the_mixture_of_the_guide_posteriors_at_the_pseudo_inputs():
    torch.manual_seed(0)
    model = DLGM((6,), num_data=40, latent_dims=(4, 3), hidden_dims=(5,), prior="vamp", prior_components=7)
    guide = GUIDES.get("diag")(model, hidden_dims=(8,))
    h = torch.randn(11, 3)
    # By hand: q(h2 | u_k) = N(μ_k, σ_k²) from the guide's encoder and h2 head; log (1/K) Σ_k Π_d N(h_d; μ_kd, σ_kd²).
    params = guide.heads["h2"](torch.tanh(guide.encoder.net[0](model.vamp.pseudo_inputs)))
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
