"""The rate_target term |σ − R| (Alemi et al. 2018): value, gradient sign, and training to a target rate; the rate term's
negative weights refused under IWAE."""

import pytest
import torch
from pyro.poutine import Trace

from pyro_deepvi import TrainConfig
from pyro_deepvi.engine import Trainer
from pyro_deepvi.importance import LogWeights
from pyro_deepvi.objectives import ELBO, IWAE, Objective
from pyro_deepvi.objectives.rate import Rate, RateTarget
from pyro_deepvi.registry import TERMS
from pyro_deepvi.run_dir import read_metrics


NO_SITES = Trace()  # a guide trace without discrete sites: the rate is differentiated pathwise


def weights(log_q, log_p_latent):
    zero = torch.zeros_like(log_q)
    return LogWeights(zero, log_p_latent, log_q, zero[:, 0], zero[:, 0], (), 1.0)


def test_value_is_the_distance_of_the_minibatch_rate_to_the_target():
    log_q = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])  # [particles, batch]
    log_p = torch.tensor([[0.5, 0.5, 0.5], [1.0, 1.0, 1.0]])
    rate = (log_q - log_p).mean()  # 2.75
    w = weights(log_q, log_p)
    assert Rate()(None, NO_SITES, w).item() == pytest.approx(2.75)
    assert RateTarget(2.0)(None, NO_SITES, w).item() == pytest.approx(abs(2.0 - rate.item()))
    assert RateTarget(5.0)(None, NO_SITES, w).item() == pytest.approx(5.0 - 2.75)


@pytest.mark.parametrize("target, direction", [(1.0, -1), (10.0, +1)])
def test_gradient_descent_moves_the_rate_toward_the_target(target, direction):
    # R = 3 here: above σ = 1 a descent step lowers R, below σ = 10 it raises it.
    shift = torch.zeros((), requires_grad=True)  # R = 3 + shift
    log_q = torch.full((1, 4), 3.0) + shift
    value = RateTarget(target)(None, NO_SITES, weights(log_q, torch.zeros(1, 4)))
    (grad,) = torch.autograd.grad(value, shift)
    assert grad.item() == pytest.approx(-direction)  # d|σ − R|/dR = sign(R − σ)


def test_target_is_required_and_checked():
    with pytest.raises(ValueError, match=r"rate_target\.target=σ"):
        TERMS.get("rate_target").from_model(None)
    assert TERMS.get("rate_target").from_model(None, target="2.5").target == 2.5  # a CLI string is read as nats
    with pytest.raises(ValueError, match="non-negative"):
        RateTarget(-1.0)
    with pytest.raises(ValueError, match="number of nats"):
        RateTarget("many")


def test_with_rate_weight_minus_one_the_loss_is_the_papers_d_plus_abs_sigma_minus_r(tmp_path):
    config = TrainConfig(
        data="digits", terms={"rate": -1, "rate_target": 1}, term_args={"rate_target": {"target": 4.0}},
        epochs=1, latent_dims=(4,), hidden_dims=(16,), out=str(tmp_path), eval_every=0, progress=False,
    )
    components = Trainer(config).components
    objective = components.objective
    x = torch.bernoulli(torch.full((8, 64), 0.5))
    loss = objective(components.model.model, components.guide, x=x, index=torch.arange(8))
    parts = objective.parts
    num_data = 1197
    expected = num_data * (parts["distortion"] + (4.0 - parts["rate"]).abs())
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert parts["rate_target"].item() == pytest.approx(abs(4.0 - parts["rate"].item()), rel=1e-5)


def test_training_holds_the_rate_at_two_different_targets(tmp_path):
    # Measured (20 epochs, digits, z ∈ R^8): the last epoch's mean train rate is within 0.2 nats of
    # σ = 2 and of σ = 10 (0.6 nats after 10 epochs); 1 nat leaves room for other seeds and platforms.
    final = {}
    for target in (2.0, 10.0):
        config = TrainConfig(
            data="digits", terms={"rate": -1, "rate_target": 1}, term_args={"rate_target": {"target": target}},
            latent_dims=(8,), hidden_dims=(32,), epochs=20, eval_every=0, progress=False,
            out=str(tmp_path / f"sigma-{target}"),
        )
        Trainer(config).fit()
        final[target] = read_metrics(tmp_path / f"sigma-{target}")[-1]["train_rate"]
    for target, rate in final.items():
        assert abs(rate - target) < 1.0, final
    assert final[10.0] - final[2.0] > 6.0


def test_negative_rate_weight_is_refused_under_iwae_and_kept_under_the_elbo():
    for weight in (-1, "linear:-1:0:10", "cyclic:-0.5:0:4"):
        with pytest.raises(ValueError, match=r"'rate'.*" + str(weight).split(":")[0] + r".*'iwae' objective \(k = 5\)"):
            Objective(IWAE(5), {"rate": (Rate(), weight)})
        Objective(ELBO(), {"rate": (Rate(), weight)})  # D + (1 + w)·R: the β-VAE and its warm-up
        Objective(IWAE(1), {"rate": (Rate(), weight)})  # L_1 is the ELBO
    Objective(IWAE(5), {"rate": (Rate(), 2.0)})  # −L_k + w·R with w ≥ 0 is bounded below


def test_under_iwae_minus_the_bound_minus_the_rate_falls_without_bound_as_q_widens():
    # Why the refusal: z ~ N(0, 1), x | z ~ N(z, 1), x = 1, q(z) = N(0.5, s²). −L_5 − R, the loss of
    # --objective iwae --term rate=-1 per data point, decreases without bound in s (−L_5 grows like s²/6,
    # R like s²/2), while under the ELBO −L_1 − R is the distortion D, bounded below.
    torch.manual_seed(0)
    losses = []
    for s in (1.0, 10.0, 100.0):
        z = 0.5 + s * torch.randn(5, 20000)
        log_q = torch.distributions.Normal(0.5, s).log_prob(z)
        log_p_z = torch.distributions.Normal(0.0, 1.0).log_prob(z)
        log_w = torch.distributions.Normal(z, 1.0).log_prob(torch.tensor(1.0)) + log_p_z - log_q
        losses.append(float(-IWAE(5).bound(log_w).mean() - (log_q - log_p_z).mean()))
    assert losses[0] > losses[1] > losses[2] and losses[2] < -1000
