"""The engine: exact resume, atomic checkpoints, the NaN guard, clear errors for bad runs."""

import json
import math

import pytest
import torch

from pyro_deepvi import TrainConfig, evaluate, train
from pyro_deepvi.engine import Trainer
from pyro_deepvi.run_dir import CHECKPOINT, load_checkpoint, read_metrics


def small_config(out, **changes):
    config = dict(
        model="dlgm", data="digits", epochs=3, batch_size=100, latent_dims=(4,), hidden_dims=(16,),
        out=str(out), eval_every=1, valid_particles=5, test_particles=20, progress=False,
    )
    config.update(changes)
    return TrainConfig(**config)


def parameters(trainer):
    return {k: v.clone() for k, v in trainer.components.state_dict().items()}


def test_resumed_run_matches_uninterrupted_run(tmp_path):
    straight = Trainer(small_config(tmp_path / "straight")).fit()
    Trainer(small_config(tmp_path / "resumed")).fit(until_epoch=1)
    resumed = Trainer(small_config(tmp_path / "resumed"))
    assert resumed.epoch == 1
    resumed.fit()
    for name, value in parameters(straight).items():
        assert torch.equal(value, parameters(resumed)[name]), name
    assert read_metrics(tmp_path / "straight") == [
        {**r, "seconds": s["seconds"]} for r, s in zip(read_metrics(tmp_path / "resumed"), read_metrics(tmp_path / "straight"))
    ]


def test_metrics_written_after_the_checkpoint_are_dropped_on_resume(tmp_path):
    Trainer(small_config(tmp_path)).fit(until_epoch=2)
    checkpoint = load_checkpoint(tmp_path / CHECKPOINT)
    with open(tmp_path / "metrics.jsonl", "a") as f:
        f.write('{"epoch": 3, "partial": tru')  # a crash while writing epoch 3's record
    assert checkpoint["epoch"] == 2
    Trainer(small_config(tmp_path)).fit()
    assert [r["epoch"] for r in read_metrics(tmp_path)] == [1, 2, 3]


def test_checkpoint_is_atomic_and_weights_only(tmp_path, monkeypatch):
    trainer = Trainer(small_config(tmp_path)).fit(until_epoch=1)
    before = (tmp_path / CHECKPOINT).read_bytes()
    load_checkpoint(tmp_path / CHECKPOINT)  # weights_only=True succeeds

    def crash(obj, path):
        with open(path, "wb") as f:
            f.write(b"half a checkpoint")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        trainer.fit(until_epoch=2)
    assert (tmp_path / CHECKPOINT).read_bytes() == before


def test_a_different_config_in_the_same_directory_is_refused(tmp_path):
    Trainer(small_config(tmp_path)).fit(until_epoch=1)
    with pytest.raises(ValueError, match="different config .*lr"):
        Trainer(small_config(tmp_path, lr=0.1))
    Trainer(small_config(tmp_path, epochs=5))  # more epochs continue the same run


def test_nan_loss_stops_with_step_site_and_checkpoint(tmp_path):
    trainer = Trainer(small_config(tmp_path)).fit(until_epoch=1)
    with torch.no_grad():
        trainer.components.model.decoder[-1].bias.fill_(float("nan"))
    with pytest.raises(FloatingPointError, match=r"step 12 \(epoch 2\).*site 'x'.*checkpoint.pt \(epoch 1\)"):
        trainer.fit()
    assert load_checkpoint(tmp_path / CHECKPOINT)["epoch"] == 1


def test_model_data_mismatch_is_named(tmp_path):
    with pytest.raises(ValueError, match="'binary' likelihood.*'real'"):
        Trainer(small_config(tmp_path, data="ppca_toy"))


@pytest.mark.parametrize(
    "change, message",
    [
        ({"epochs": 0}, "epochs must be a positive integer"),
        ({"lr": -1.0}, "lr must be positive"),
        ({"guide": "nope"}, "unknown guide 'nope'"),
        ({"model": "nope"}, "unknown model 'nope'"),
        ({"data": "nope"}, "unknown data set 'nope'"),
        ({"model_args": {"hidden_dims": [3]}}, "hidden_dims as options of their own"),
        ({"eval_every": -1}, "eval_every must be a non-negative integer"),
    ],
)
def test_bad_options_are_named(tmp_path, change, message):
    with pytest.raises((ValueError, KeyError), match=message):
        Trainer(small_config(tmp_path, **change))


def test_train_writes_a_complete_run_directory_and_eval_reproduces_it(tmp_path):
    result = train(small_config(tmp_path, epochs=2))
    for name in ("config.json", "metrics.jsonl", "checkpoint.pt", "eval.json", "samples.png", "reconstructions.png", "curves.png"):
        assert (tmp_path / name).exists(), name
    assert result["test_elbo"] <= result["test_log_likelihood"]
    assert result["test_description_length_bits"] == pytest.approx(-result["test_elbo"] / math.log(2))
    assert json.loads((tmp_path / "eval.json").read_text()) == result
    assert evaluate(tmp_path) == result  # from the directory alone, same seed
