"""load_run: a trained run from its directory alone, without its training data, and what it offers."""

import json

import pytest
import torch

import pyro_deepvi
from pyro_deepvi import TrainConfig, load, load_run, train
from pyro_deepvi.run_dir import load_checkpoint, save_atomic

TINY = dict(data="digits", latent_dims=(4, 2), hidden_dims=(16,), epochs=2, eval_every=0, test_particles=30,
            progress=False, device="cpu")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "dlgm"
    train(TrainConfig(out=str(out), **TINY))
    return out


def _no_data(*args, **kwargs):
    raise AssertionError("load_run loaded a data set")


def test_load_run_reproduces_the_run_s_own_evaluation_without_its_data(run_dir, monkeypatch):
    """The bounds of the loaded model and guide, on the same test points and seed, are eval.json's to float
    precision; the training data is never loaded."""
    test = load("digits", "test")
    recorded = json.loads((run_dir / "eval.json").read_text())
    monkeypatch.setattr(TrainConfig, "load_data", _no_data)
    run = load_run(run_dir)
    assert (run.config.model, run.config.latent_dims, run.device.type) == ("dlgm", (4, 2), "cpu")
    log_lik = run.log_likelihood(test.x, particles=30)
    elbo = run.elbo(test.x, particles=30)
    assert log_lik.shape == elbo.shape == (len(test),)
    assert float(log_lik.mean()) == pytest.approx(recorded["test_log_likelihood"], abs=1e-4)
    assert float(elbo.mean()) == pytest.approx(recorded["test_elbo"], abs=1e-4)
    assert log_lik.mean() > elbo.mean()  # L_30 above the ELBO


def test_encode_decode_sample_reconstruct(run_dir):
    run = pyro_deepvi.Run.load(run_dir, device="cpu")
    x = load("digits", "test").x[:5]
    posterior = run.encode(x)
    assert sorted(posterior) == ["h1", "h2"]
    assert posterior["h1"].mean.shape == (5, 4) and posterior["h2"].mean.shape == (5, 2)
    assert (posterior["h1"].stddev > 0).all()
    means = run.decode({name: q.mean for name, q in posterior.items()})
    assert means.shape == (5, 64) and ((means >= 0) & (means <= 1)).all()
    draws = run.sample(7)
    assert draws.shape == (7, 64) and set(draws.unique().tolist()) <= {0.0, 1.0}
    assert run.sample(3, mean=True).shape == (3, 64)
    assert run.reconstruct(x).shape == (5, 64)
    with pytest.raises(ValueError, match=r"expects x of shape \[batch, 64\], got \(5, 63\)"):
        run.encode(x[:, :63])
    with pytest.raises(ValueError, match="latent sites"):
        run.decode(torch.zeros(5, 4))


def test_two_loaded_runs_keep_their_own_parameters(run_dir, tmp_path):
    other = tmp_path / "other"
    train(TrainConfig(out=str(other), **{**TINY, "seed": 1}))
    first, second = load_run(run_dir), load_run(other)
    x = load("digits", "test").x
    for run, directory in ((first, run_dir), (second, other)):
        recorded = json.loads((directory / "eval.json").read_text())["test_log_likelihood"]
        assert float(run.log_likelihood(x, particles=30).mean()) == pytest.approx(recorded, abs=1e-4)


def test_a_run_trained_before_checkpoints_recorded_the_data_still_loads(run_dir, tmp_path):
    """Older checkpoints have no description of the training data: the data set sizes the model instead."""
    old = tmp_path / "old"
    old.mkdir()
    for name in ("config.json", "eval.json"):
        (old / name).write_text((run_dir / name).read_text())
    checkpoint = load_checkpoint(run_dir / "checkpoint.pt")
    del checkpoint["data"]
    save_atomic(checkpoint, old / "checkpoint.pt")
    x = load("digits", "test").x
    assert torch.equal(load_run(old).log_likelihood(x, particles=30), load_run(run_dir).log_likelihood(x, particles=30))


def test_a_run_on_the_user_s_own_arrays_loads_without_them(tmp_path):
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(300, 10, generator=g) < 0.3).float()
    out = tmp_path / "arrays"
    train(TrainConfig(out=str(out), **{**TINY, "data": {"x": x}}))
    run = load_run(out)
    assert run.config.data == "arrays" and run.log_likelihood(x[:20], particles=5).shape == (20,)
    with pytest.raises(ValueError, match="numpy.savez"):
        pyro_deepvi.evaluate(out)


def test_a_non_amortized_model_says_what_it_cannot_do(tmp_path):
    out = tmp_path / "def"
    train(TrainConfig(model="def", data="reuters", latent_dims=(3,), epochs=1, batch_size=315, eval_every=0,
                      model_args={"completion_steps": 2}, progress=False, device="cpu", out=str(out)))
    run = load_run(out)
    with pytest.raises(ValueError, match="amortized = False"):
        run.log_likelihood(torch.zeros(2, 4258))
    assert run.sample(2).shape == (2, 4258)


def test_missing_run_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a run directory"):
        load_run(tmp_path)
