"""Objectives: each estimator's value and gradient against Pyro's own ELBOs, terms, the NaN guard."""

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.infer import RenyiELBO, Trace_ELBO, TraceGraph_ELBO
from pyro.nn import PyroModule

from pyro_deepvi import GUIDES, OBJECTIVES
from pyro_deepvi.models import data_plate
from pyro_deepvi.models.dlgm import DLGM
from pyro_deepvi.objectives import NonFiniteLossError, Objective, Term
from pyro_deepvi.objectives.estimators import ELBO


def dlgm_and_guide(guide="diag", kappa=None):
    torch.manual_seed(0)
    model = DLGM((10,), num_data=40, latent_dims=(3, 2), hidden_dims=(8,), kappa=kappa).double()
    return model, GUIDES.get(guide)(model, hidden_dims=(8,)).double()


def batch(n=8):
    return torch.bernoulli(torch.full((n, 10), 0.3, dtype=torch.float64), generator=torch.Generator().manual_seed(1))


class SigmoidBelief(PyroModule):
    """Two binary latents per data point: a model whose guide needs score-function gradients."""

    def __init__(self):
        super().__init__()
        self.logits = torch.nn.Parameter(torch.tensor([0.3, -0.2], dtype=torch.float64))
        self.weight = torch.nn.Parameter(torch.randn(2, 4, dtype=torch.float64))
        self.q_logits = torch.nn.Linear(4, 2).double()

    def model(self, x, y=None, index=None):
        with data_plate(10, x, index):
            z = pyro.sample("z", dist.Bernoulli(logits=self.logits).to_event(1))
            pyro.sample("x", dist.Bernoulli(logits=z @ self.weight).to_event(1), obs=x)

    def guide(self, x, y=None, index=None):
        with data_plate(10, x, index):
            pyro.sample("z", dist.Bernoulli(logits=self.q_logits(x)).to_event(1))


def grads(loss, params):
    return torch.autograd.grad(loss, params)


def warm(objective, model, guide, x):
    objective(model, guide, x=x)  # the first call guesses the plate nesting and draws once


def test_iwae_matches_renyi_elbo_alpha_zero():
    model, guide = dlgm_and_guide()
    x = batch()
    objective = OBJECTIVES.get("iwae")(particles=7)
    warm(objective, model.model, guide, x)
    renyi = RenyiELBO(alpha=0, num_particles=7, vectorize_particles=True, max_plate_nesting=1)
    pyro.set_rng_seed(3)
    expected = renyi.loss(model.model, guide, x=x)
    pyro.set_rng_seed(3)
    actual = objective(model.model, guide, x=x)
    assert actual.item() == pytest.approx(expected, rel=1e-10)
    assert objective.parts["bound"].item() == pytest.approx(-expected / len(x), rel=1e-10)


def test_iwae_is_per_data_point_with_a_global_factor():
    model, guide = dlgm_and_guide(kappa=10.0)
    x = batch()
    objective = OBJECTIVES.get("iwae")(particles=5)
    warm(objective, model.model, guide, x)
    pyro.set_rng_seed(4)
    loss = objective(model.model, guide, x=x)
    log_prior = model.weight_log_prior().item()
    model.kappa = None
    pyro.set_rng_seed(4)
    without_prior = objective(model.model, guide, x=x)
    assert loss.item() == pytest.approx(without_prior.item() - log_prior, rel=1e-10)


def test_elbo_gradient_matches_trace_elbo():
    model, guide = dlgm_and_guide("rank_one")
    x = batch()
    params = list(model.parameters()) + list(guide.parameters())
    objective = OBJECTIVES.get("elbo")(particles=3)
    warm(objective, model.model, guide, x)
    pyro.set_rng_seed(5)
    ours = objective(model.model, guide, x=x)
    ours_grads = grads(ours, params)
    pyro.set_rng_seed(5)
    pyro_loss = Trace_ELBO(num_particles=3, vectorize_particles=True, max_plate_nesting=1).differentiable_loss(
        model.model, guide, x=x
    )
    for a, b in zip(ours_grads, grads(pyro_loss, params)):
        assert torch.allclose(a, b, rtol=1e-8, atol=1e-10)
    assert ours.item() == pytest.approx(pyro_loss.item(), rel=1e-10)


# With k ≥ 2 particles tracegraph_elbo adds leave-one-out baselines, which Pyro's TraceGraph_ELBO
# lacks (tests/models/test_exponential_families.py): one particle compares the rest of it.
@pytest.mark.parametrize("name, pyro_elbo, particles", [("elbo", Trace_ELBO, 4), ("tracegraph_elbo", TraceGraph_ELBO, 1)])
def test_score_function_gradients_match_pyro(name, pyro_elbo, particles):
    torch.manual_seed(0)
    sbn = SigmoidBelief()
    x = torch.bernoulli(torch.full((6, 4), 0.5, dtype=torch.float64))
    params = list(sbn.parameters())
    objective = OBJECTIVES.get(name)(particles=particles)
    warm(objective, sbn.model, sbn.guide, x)
    pyro.set_rng_seed(6)
    ours = grads(objective(sbn.model, sbn.guide, x=x), params)
    pyro.set_rng_seed(6)
    reference = pyro_elbo(num_particles=particles, vectorize_particles=True, max_plate_nesting=1)
    # Module-local parameters record no param sites, so Pyro's loss_and_grads would skip
    # its backward pass: differentiate the surrogate it builds instead.
    if pyro_elbo is Trace_ELBO:
        surrogate = reference.differentiable_loss(sbn.model, sbn.guide, x=x)
    else:
        surrogate = reference._loss_and_surrogate_loss(sbn.model, sbn.guide, (), {"x": x})[1]
    for a, b in zip(ours, grads(surrogate, params)):
        assert torch.allclose(a, b, rtol=1e-8, atol=1e-10)
    assert any(g.abs().sum() > 0 for g in ours[2:])  # the guide's parameters do get a gradient


def test_iwae_gives_discrete_guide_sites_a_gradient():
    """Where RenyiELBO's would be zero, iwae's (VIMCO, tests/objectives/test_vimco.py) is not."""
    sbn = SigmoidBelief()
    x = torch.ones(3, 4, dtype=torch.float64)
    loss = OBJECTIVES.get("iwae")(particles=3)(sbn.model, sbn.guide, x=x)
    assert all(g.abs().sum() > 0 for g in grads(loss, list(sbn.q_logits.parameters())))


def test_terms_see_the_same_run_and_enter_with_data_size_scale():
    model, guide = dlgm_and_guide()
    x = batch()
    seen = {}

    class Rate(Term):
        def forward(self, model_trace, guide_trace, weights):
            seen["value"] = guide_trace.nodes["h1"]["value"]
            return (weights.log_q - weights.log_p_latent).mean()

    plain = Objective(ELBO())
    with_term = Objective(ELBO(), {"rate": (Rate(), 0.5)})
    index = torch.arange(8)
    warm(plain, model.model, guide, x)
    warm(with_term, model.model, guide, x)
    pyro.set_rng_seed(7)
    base = plain(model.model, guide, x=x, index=index)
    pyro.set_rng_seed(7)
    total = with_term(model.model, guide, x=x, index=index)
    num_data = 40  # the data plate's N: the term is per data point, the loss is for the data set
    assert total.item() == pytest.approx(base.item() + num_data * 0.5 * with_term.parts["rate"].item(), rel=1e-10)
    assert with_term.parts["rate"].item() == pytest.approx(with_term.parts["rate"].item())
    assert with_term.parts["elbo"].item() == pytest.approx(
        -(with_term.parts["rate"] + with_term.parts["distortion"]).item(), rel=1e-10
    )
    assert seen["value"].shape == (1, 8, 3)  # particle, data, event


def test_a_term_with_parameters_is_trained_and_saved_with_the_run():
    class Learned(Term):
        def __init__(self):
            super().__init__()
            self.log_scale = torch.nn.Parameter(torch.zeros((), dtype=torch.float64))

        def forward(self, model_trace, guide_trace, weights):
            return self.log_scale.exp() * weights.log_q.mean()

    model, guide = dlgm_and_guide()
    objective = Objective(ELBO(), {"learned": (Learned(), 1.0)})
    assert [name for name, _ in objective.named_parameters()] == ["terms.learned.log_scale"]
    grad = grads(objective(model.model, guide, x=batch()), [objective.terms["learned"].log_scale])[0]
    assert grad != 0


def test_non_finite_loss_names_the_site():
    model, guide = dlgm_and_guide()
    with torch.no_grad():
        model.decoder[-1].bias[0] = float("nan")
    objective = OBJECTIVES.get("elbo")()
    with pytest.raises(NonFiniteLossError, match="site 'x'"):
        objective(model.model, guide, x=batch())


@pytest.mark.parametrize("guide_name", ["diag", "rank_one", "full", "iaf"])
def test_every_guide_fits_a_two_layer_model_and_learns(guide_name):
    model, guide = dlgm_and_guide(guide_name)
    x = batch()
    objective = OBJECTIVES.get("iwae")(particles=3)
    loss = objective(model.model, guide, x=x)
    guide_grads = grads(loss, list(guide.parameters()))
    assert torch.isfinite(loss)
    assert all(torch.isfinite(g).all() for g in guide_grads)
    assert sum(g.abs().sum() for g in guide_grads) > 0
    assert objective.parts["bound"] >= objective.parts["elbo"] - 1e-9  # L_k ≥ mean log w within one draw


def test_rate_term_makes_a_beta_vae(tmp_path):
    from pyro_deepvi import TrainConfig
    from pyro_deepvi.engine import Trainer

    config = TrainConfig(
        data="digits", terms={"rate": 3.0}, epochs=1, latent_dims=(4,), hidden_dims=(16,), out=str(tmp_path),
        eval_every=0, progress=False,
    )
    components = Trainer(config).components
    objective = components.objective
    assert objective.weights == {"rate": 3.0}
    loss = objective(components.model.model, components.guide, x=torch.bernoulli(torch.full((8, 64), 0.5)), index=torch.arange(8))
    parts = objective.parts
    num_data = 1197  # digits' training split: the loss is for the whole data set
    # D + (1 + 3) R per data point, with one particle
    assert loss.item() == pytest.approx(num_data * (parts["distortion"] + 4 * parts["rate"]).item(), rel=1e-5)


class GlobalWeight(PyroModule):
    """A global latent w ~ N(0, 1) shared by every data point, and a local z_n."""

    def __init__(self):
        super().__init__()
        self.w_loc = torch.nn.Parameter(torch.tensor(0.3, dtype=torch.float64))
        self.z_loc = torch.nn.Linear(3, 1).double()

    def model(self, x, y=None, index=None):
        w = pyro.sample("w", dist.Normal(torch.tensor(0.0, dtype=torch.float64), 1.0))
        with data_plate(20, x, index):
            z = pyro.sample("z", dist.Normal(torch.zeros(len(x), dtype=torch.float64), 1.0))
            pyro.sample("x", dist.Normal((w + z).unsqueeze(-1) + torch.zeros_like(x), 1.0).to_event(1), obs=x)

    def guide(self, x, y=None, index=None):
        pyro.sample("w", dist.Normal(self.w_loc, 0.5))
        with data_plate(20, x, index):
            pyro.sample("z", dist.Normal(self.z_loc(x).squeeze(-1), 0.7))


def test_global_latents_work_with_the_elbo_and_are_refused_by_iwae():
    torch.manual_seed(0)
    m = GlobalWeight()
    x, index = torch.randn(5, 3, dtype=torch.float64), torch.arange(5)
    params = list(m.parameters())
    objective = OBJECTIVES.get("elbo")(particles=4)
    warm(objective, m.model, m.guide, x)
    pyro.set_rng_seed(8)
    ours = objective(m.model, m.guide, x=x, index=index)
    pyro.set_rng_seed(8)
    reference = Trace_ELBO(num_particles=4, vectorize_particles=True, max_plate_nesting=1).differentiable_loss(
        m.model, m.guide, x=x, index=index
    )
    assert ours.item() == pytest.approx(reference.item(), rel=1e-10)
    for a, b in zip(grads(ours, params), grads(reference, params)):
        assert torch.allclose(a, b, rtol=1e-8, atol=1e-10)
    with pytest.raises(ValueError, match="iwae needs one importance weight per data point.*'w'"):
        OBJECTIVES.get("iwae")(particles=3)(m.model, m.guide, x=x, index=index)
