"""Per-epoch callbacks for the user's own loggers, and the optional TensorBoard writer."""

import builtins
import json

import pytest

from pyro_deepvi import TrainConfig, train
from pyro_deepvi.callbacks import tensorboard_writer
from pyro_deepvi.cli import main

TINY = dict(data="digits", latent_dims=(3,), hidden_dims=(16,), epochs=3, eval_every=2, test_particles=5,
            progress=False, device="cpu")


def test_a_callback_sees_every_epoch_s_metrics_record(tmp_path):
    seen = []
    train(TrainConfig(out=str(tmp_path / "run"), **TINY), callbacks=[seen.append])
    written = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert seen == written and [r["epoch"] for r in seen] == [1, 2, 3]
    assert "valid_elbo" in seen[1] and "valid_elbo" not in seen[0] and "train_elbo" in seen[0]


def test_without_tensorboard_the_error_names_the_package(tmp_path, monkeypatch, capsys):
    real_import = builtins.__import__

    def no_tensorboard(name, *args, **kwargs):
        if name.startswith("torch.utils.tensorboard") or name.startswith("tensorboard"):
            raise ModuleNotFoundError("No module named 'tensorboard'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tensorboard)
    args = ["train", "--data", "digits", "--epochs", "1", "--latent-dims", "3", "--hidden-dims", "16",
            "--no-progress", "--tensorboard", "--out", str(tmp_path / "run")]
    assert main(args) == 2
    assert "pip install tensorboard" in capsys.readouterr().err


def test_the_tensorboard_writer_logs_each_number_at_its_epoch(tmp_path):
    pytest.importorskip("tensorboard", reason="tensorboard is optional and not installed here")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    args = ["train", "--data", "digits", "--epochs", "2", "--eval-every", "1", "--latent-dims", "3", "--hidden-dims",
            "16", "--test-particles", "5", "--no-progress", "--device", "cpu", "--tensorboard", "--out", str(tmp_path / "run")]
    assert main(args) == 0
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard"))
    events.Reload()
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    numbers = {key for record in records for key in record if key != "epoch"}  # every field but epoch is a number
    assert {"train_elbo", "valid_elbo"} <= numbers and set(events.Tags()["scalars"]) == numbers
    assert [e.step for e in events.Scalars("train_elbo")] == [1, 2]
    assert tensorboard_writer(tmp_path / "other") is not None
