"""A user's own data: arrays given to train(), or a .npz file given to the command line."""

import json

import numpy as np
import pytest
import torch

from pyro_deepvi import TrainConfig, load, train
from pyro_deepvi.cli import main
from pyro_deepvi.data.arrays import splits_from_arrays

TINY = ["--epochs", "1", "--latent-dims", "3", "--hidden-dims", "16", "--test-particles", "10", "--eval-every", "1",
        "--no-progress", "--device", "cpu"]


def _binary(n, d=12, seed=0):
    return (np.random.default_rng(seed).random((n, d)) < 0.3).astype(np.float32)


def test_an_npz_file_trains_from_the_command_line_with_its_own_splits(tmp_path, capsys, monkeypatch):
    x, x_test = _binary(200), _binary(40, seed=1)
    np.savez(tmp_path / "mine.npz", x=x, x_test=x_test)
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--data", "mine.npz", "--out", str(tmp_path / "run"), *TINY]) == 0
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["data"] == str(tmp_path / "mine.npz")  # absolute: `eval` works from anywhere
    result = json.loads((tmp_path / "run" / "eval.json").read_text())
    assert result["num_data"] == 40  # the file's own test split
    assert len(load(config["data"], "train")) == 180 and len(load(config["data"], "valid")) == 20  # valid carved from x
    assert torch.equal(load(config["data"], "test").x, torch.from_numpy(x_test))
    assert "valid_elbo" in (tmp_path / "run" / "metrics.jsonl").read_text()


def test_arrays_in_memory_with_labels_train_a_classifier():
    """Integer labels give the classes; VIB trains on the user's arrays with a given validation split."""
    g = np.random.default_rng(0)
    y = g.integers(0, 3, 240)
    x = (np.eye(3)[y] @ g.normal(size=(3, 8)) + 0.3 * g.normal(size=(240, 8))).astype(np.float32)
    data = {"x": x[:150], "y": y[:150], "x_valid": x[150:190], "y_valid": y[150:190], "x_test": x[190:], "y_test": y[190:]}
    config = TrainConfig(model="vib", data=data, latent_dims=(2,), hidden_dims=(16,), epochs=30, lr=1e-2, batch_size=50,
                         eval_every=0, progress=False, device="cpu", out=None)
    assert config.data == "arrays" and config.load_data("train").num_classes == 3
    config.out = str(__import__("tempfile").mkdtemp())
    result = train(config)
    assert result["test_error"] < 0.2  # three well-separated classes; chance is 2/3


@pytest.mark.parametrize(
    "data, message",
    [
        ({"x": np.full((20, 3), np.nan)}, "arrays: x has 60 NaN values"),
        ({"x": np.ones((20, 3)), "x_val": np.ones((5, 3))}, r"unknown arrays \['x_val'\]"),
        ({"y": np.ones(20)}, "no array 'x'"),
        ({"x": np.ones(20)}, r"x must have shape \[N, \*event_shape\]"),
        ({"x": np.ones((20, 3)), "y": np.ones(19, dtype=int)}, "y has 19 rows but x has 20"),
        ({"x": np.ones((20, 3)), "y_test": np.ones(4, dtype=int)}, "y_test is given without x_test"),
        ({"x": np.ones((20, 3)), "support": np.array("binary"), "x_test": np.full((4, 3), 0.5)}, "values must be in {0, 1}"),
        ({"x": np.array([["a", "b"]])}, "x must be an array of numbers"),
    ],
)
def test_bad_arrays_are_named(data, message):
    with pytest.raises(ValueError, match=message):
        splits_from_arrays(data)


def test_supports_are_inferred_and_the_data_checked_against_the_model(tmp_path):
    assert splits_from_arrays(_binary(50))["train"].support == "binary"
    assert splits_from_arrays(np.arange(100.0).reshape(50, 2))["train"].support == "count"
    assert splits_from_arrays(np.random.default_rng(0).random((50, 2)))["train"].support == "unit_interval"
    assert splits_from_arrays(np.random.default_rng(0).normal(size=(50, 2)))["train"].support == "real"
    real = np.random.default_rng(0).normal(size=(50, 2)).astype(np.float32)
    with pytest.raises(ValueError, match="'binary' likelihood but data set arrays gives 'real' values"):
        train(TrainConfig(data=real, latent_dims=(2,), hidden_dims=(4,), epochs=1, progress=False, device="cpu",
                          out=str(tmp_path / "r")))


def test_a_bad_npz_path_is_named(tmp_path, capsys):
    assert main(["train", "--data", str(tmp_path / "absent.npz"), "--out", str(tmp_path / "r"), *TINY]) == 2
    assert "absent.npz' does not exist" in capsys.readouterr().err
    (tmp_path / "broken.npz").write_text("not a zip")
    assert main(["train", "--data", str(tmp_path / "broken.npz"), "--out", str(tmp_path / "r"), *TINY]) == 2
    assert "not a readable .npz file" in capsys.readouterr().err
