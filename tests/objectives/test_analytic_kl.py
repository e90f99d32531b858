"""The analytic-KL ELBO: Pyro's TraceMeanField_ELBO where it is right, a refusal where it is wrong."""

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.infer import Trace_ELBO, TraceMeanField_ELBO
from pyro.nn import PyroModule

from pyro_deepvi import GUIDES, OBJECTIVES, TrainConfig
from pyro_deepvi.engine import Trainer
from pyro_deepvi.models import data_plate
from pyro_deepvi.models.dlgm import DLGM


def dlgm_and_guide(latent_dims=(3, 2)):
    torch.manual_seed(0)
    model = DLGM((10,), num_data=40, latent_dims=latent_dims, hidden_dims=(8,)).double()
    return model, GUIDES.get("diag")(model, hidden_dims=(8,)).double()


def batch(n=8):
    return torch.bernoulli(torch.full((n, 10), 0.3, dtype=torch.float64), generator=torch.Generator().manual_seed(1))


def loss_and_grads(loss_fn, params):
    loss = loss_fn()
    return loss.detach(), torch.autograd.grad(loss, params)


@pytest.mark.parametrize("latent_dims", [(3,), (3, 2)], ids=["one_layer", "two_layers"])
def test_matches_trace_mean_field_elbo_on_the_same_draws(latent_dims):
    # The diag guide draws every layer from x alone: the mean-field order, where Pyro's estimator is right.
    model, guide = dlgm_and_guide(latent_dims)
    x = batch()
    objective = OBJECTIVES.get("elbo_analytic_kl")()
    objective(model.model, guide, x=x)
    assert objective.estimator.analytic_sites == tuple(f"h{l}" for l in range(len(latent_dims), 0, -1))
    params = list(guide.parameters()) + list(model.parameters())
    pyro.set_rng_seed(5)
    loss, grads = loss_and_grads(lambda: objective(model.model, guide, x=x), params)
    pyro.set_rng_seed(5)
    expected, expected_grads = loss_and_grads(
        lambda: TraceMeanField_ELBO(max_plate_nesting=1).differentiable_loss(model.model, guide, x=x), params
    )
    assert loss.item() == pytest.approx(expected.item(), rel=1e-10)
    for g, e in zip(grads, expected_grads):
        assert torch.allclose(g, e, rtol=1e-8, atol=1e-10)


def test_same_expectation_as_the_sampled_elbo_and_less_variance():
    model, guide = dlgm_and_guide((3,))
    x = batch()
    analytic, sampled = OBJECTIVES.get("elbo_analytic_kl")(particles=2000), OBJECTIVES.get("elbo")(particles=2000)
    with torch.no_grad():
        a = torch.stack([analytic(model.model, guide, x=x) for _ in range(5)])
        s = torch.stack([sampled(model.model, guide, x=x) for _ in range(5)])
    # Both estimate the same ELBO; differences at 2000 particles are Monte Carlo noise (a few tenths at most).
    assert a.mean().item() == pytest.approx(s.mean().item(), abs=0.5)
    single_a = torch.stack([OBJECTIVES.get("elbo_analytic_kl")()(model.model, guide, x=x).detach() for _ in range(200)])
    single_s = torch.stack([OBJECTIVES.get("elbo")()(model.model, guide, x=x).detach() for _ in range(200)])
    assert single_a.var() < single_s.var()


class BottomUpGuide(PyroModule):
    """q(h1 | x) q(h2 | h1): a bottom-up chain, the reverse of the DLGM's p(h2) p(h1 | h2)."""

    def __init__(self):
        super().__init__()
        self.h1 = torch.nn.Linear(10, 6).double()
        self.h2 = torch.nn.Linear(3, 4).double()

    def forward(self, x, y=None, index=None):
        with data_plate(40, x, index):
            loc, log_scale = self.h1(x).chunk(2, -1)
            h1 = pyro.sample("h1", dist.Normal(loc, log_scale.exp()).to_event(1))
            loc, log_scale = self.h2(h1).chunk(2, -1)
            pyro.sample("h2", dist.Normal(loc, log_scale.exp()).to_event(1))


def test_refuses_a_bottom_up_guide_for_a_top_down_model():
    model, _ = dlgm_and_guide((3, 2))
    x = batch()
    guide = BottomUpGuide()
    # Pyro's TraceMeanField_ELBO only warns about the order; its expectation is not the ELBO.
    with pytest.warns(UserWarning, match="mean field"):
        TraceMeanField_ELBO(max_plate_nesting=1).loss(model.model, guide, x=x)
    with pytest.raises(ValueError, match=r"p\(h1 \| \.\.\.\) depends on 'h2'"):
        OBJECTIVES.get("elbo_analytic_kl")()(model.model, guide, x=x)
    Trace_ELBO(max_plate_nesting=1).loss(model.model, guide, x=x)  # the sampled ELBO is fine with it


def test_trains_through_the_engine(tmp_path):
    config = TrainConfig(
        data="digits", objective="elbo_analytic_kl", latent_dims=(4,), hidden_dims=(16,), epochs=2,
        eval_every=0, progress=False, device="cpu", out=str(tmp_path / "run"),
    )
    trainer = Trainer(config)
    first = trainer.fit(until_epoch=1).components.objective.parts["elbo"].item()
    assert torch.isfinite(torch.tensor(first))
    trainer.fit()
    assert trainer.epoch == 2
