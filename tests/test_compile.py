"""--compile: the traced loss against the eager one on the same draws, the fallbacks, and resume from the CLI."""

import pytest
import pyro
import torch

from pyro_deepvi.cli import main
from pyro_deepvi.engine import TrainConfig, Trainer
from pyro_deepvi.objectives import Term
from pyro_deepvi.run_dir import CHECKPOINT

SMALL = dict(latent_dims=(4,), hidden_dims=(16,), eval_every=0, progress=False)


def trainer(tmp_path, **options):
    return Trainer(TrainConfig(**{**SMALL, **options, "out": str(tmp_path / "run"), "compile": True}))


def loss_parts_gradients(components, forward, batch, seed):
    torch.manual_seed(seed)
    with pyro.validation_enabled(False):
        loss = forward(batch)
    gradients = torch.autograd.grad(loss, list(components.parameters()))
    return loss.detach(), dict(components.objective.parts), gradients


@pytest.mark.parametrize("model, data, latent_dims", [("dlgm", "digits", (4,)), ("lvae", "mnist5k", (4, 2))])
@pytest.mark.parametrize("objective", ["elbo", "iwae"])
def test_compiled_loss_parts_and_gradients_equal_eager_on_the_same_draws(tmp_path, model, data, latent_dims, objective):
    run = trainer(tmp_path, model=model, data=data, latent_dims=latent_dims, objective=objective,
                  terms={"rate": "linear:0:1:2"})
    components = run.components
    # Three minibatches of 20 (two checked against eager inside CompiledLoss, one not), then a last, smaller one.
    for step, (epoch, size) in enumerate([(0.0, 20), (0.5, 20), (1.0, 20), (1.5, 7)]):
        components.objective.set_epoch(epoch)
        batch = run.train_data.batch(torch.arange(size) + 20 * step)
        compiled = loss_parts_gradients(components, components.forward, batch, seed=step)
        eager = loss_parts_gradients(components, components.eager_forward, batch, seed=step)
        torch.testing.assert_close(compiled[0], eager[0], rtol=1e-6, atol=0)
        assert compiled[1].keys() == eager[1].keys() == {"elbo", "bound", "rate", "distortion"}
        torch.testing.assert_close(compiled[1], eager[1], rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(compiled[2], eager[2], rtol=1e-5, atol=1e-6)
    assert components.compiled.fallback is None and len(components.compiled.traced) == 2  # two shapes, two traces

    # The scheduled weight is an input of the trace, not a constant: on the same draws, weights 0.25 and 0.75
    # differ by 0.5 N · rate.
    batch = run.train_data.batch(torch.arange(20))
    losses = []
    for epoch in (0.5, 1.5):
        components.objective.set_epoch(epoch)
        loss, parts, _ = loss_parts_gradients(components, components.forward, batch, seed=7)
        losses.append(loss)
    expected = 0.5 * len(run.train_data) * parts["rate"]
    torch.testing.assert_close(losses[1] - losses[0], expected, rtol=1e-3, atol=1e-2)


def test_a_non_finite_compiled_loss_names_the_site_as_the_eager_guard_does(tmp_path):
    run = trainer(tmp_path, data="digits")
    for _ in range(2):  # the trace's two checked minibatches: the third step runs the trace alone
        run._train_step(torch.arange(20))
    with torch.no_grad():
        run.components.model.decoder[0].weight.fill_(float("nan"))
    with pytest.raises(FloatingPointError, match=r"training stopped at step 2 \(epoch 1\): loss is nan: site '\w+' has"):
        run._train_step(torch.arange(20))


def test_a_guide_with_discrete_sites_falls_back_with_the_reason_and_trains(tmp_path):
    with pytest.warns(UserWarning, match=r"--compile: model 'sbn', guide '\w+', objective '\w+' runs eagerly: "
                                         r"the guide's site\(s\) 'h1' are not reparameterized"):
        run = trainer(tmp_path, model="sbn", data="mnist5k", batch_size=500, epochs=1).fit()
    assert run.components.compiled.fallback is not None
    (record,) = [line for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert '"train_elbo": -' in record  # a finite training bound


class _ReadsANumber(Term):
    """A term that reads a tensor as a Python number: a trace would freeze it."""

    def forward(self, model_trace, guide_trace, log_weights):
        return (log_weights.log_q - log_weights.log_p_latent).mean() * float(log_weights.log_p_obs.mean())


def test_a_term_a_trace_would_freeze_falls_back_naming_the_cause_and_trains_eagerly(tmp_path):
    run = trainer(tmp_path, data="digits")
    components = run.components
    components.objective.add_term("reads_a_number", _ReadsANumber(), 1e-3)
    with pytest.warns(UserWarning, match=r"runs eagerly: the traced loss differs from the eager one .*"
                                         r"TracerWarnings at .*test_compile.py"):
        run._train_step(torch.arange(20))
    assert "differs from the eager one" in components.compiled.fallback
    batch = run.train_data.batch(torch.arange(20, 40))
    compiled = loss_parts_gradients(components, components.forward, batch, seed=3)
    eager = loss_parts_gradients(components, components.eager_forward, batch, seed=3)
    assert torch.equal(compiled[0], eager[0])  # the step is the eager one now


def cli_train(out, epochs, *options):
    return main(["train", "--out", str(out), "--epochs", str(epochs), "--data", "digits", "--latent-dims", "4",
                 "--hidden-dims", "16", "--eval-every", "0", "--test-particles", "2", "--no-progress",
                 "--term", "rate=linear:0:1:2", *options])


def test_resume_of_a_compiled_run_from_the_cli_is_exact_and_equals_eager(tmp_path):
    assert cli_train(tmp_path / "straight", 2, "--compile") == 0
    assert cli_train(tmp_path / "resumed", 1, "--compile") == 0
    assert cli_train(tmp_path / "resumed", 2, "--compile") == 0
    assert cli_train(tmp_path / "eager", 2) == 0
    straight, resumed, eager = (
        torch.load(tmp_path / name / CHECKPOINT, weights_only=True) for name in ("straight", "resumed", "eager")
    )
    assert straight["epoch"] == resumed["epoch"] == 2
    for key, value in straight["components"].items():
        assert torch.equal(value, resumed["components"][key]), key
        torch.testing.assert_close(value, eager["components"][key], rtol=1e-5, atol=1e-6)
