"""Bad input through the user's doors: one `error: <sentence>` naming what was wrong, no traceback, no empty run directory."""

import errno
import os
import shutil
import tempfile
import urllib.error
import urllib.request

import pytest
import torch

import pyro_deepvi
from pyro_deepvi import TrainConfig
from pyro_deepvi.cli import main
from pyro_deepvi.run_dir import CHECKPOINT

SMALL = ["--data", "digits", "--epochs", "1", "--latent-dims", "4", "--hidden-dims", "16", "--eval-every", "0",
         "--test-particles", "2", "--no-progress"]


def fails(argv, capsys, message):
    """``main(argv)`` exits 2 with one error line containing ``message``."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "error: " in err and message in err, err
    assert "Traceback" not in err
    return err


@pytest.mark.parametrize(
    "options, message",
    [
        (["--device", "tpu"], "unknown device 'tpu'"),
        (["--model-arg", "colour=1"], "model 'dlgm' has no option 'colour'; its options: "),
        (["--term", "mmd=1", "--term-arg", "mmd.kernal=imq"], "term 'mmd' has no option 'kernal'; its options: kernel, scale"),
        (["--latent-dims", "-3"], "latent_dims must be a list of positive integers"),
        (["--hidden-dims", "16,-2"], "hidden_dims must be a list of positive integers"),
        (["--guide-hidden-dims", "0"], "guide_hidden_dims must be a list of positive integers"),
        (["--latent-dims", "0"], "latent_dims must be a list of positive integers"),
        (["--latent-dims", ""], "latent_dims must name at least one latent layer"),
        (["--objective", "iwae", "--particles", "0"], "particles must be a positive integer, got 0"),
        (["--term", "rate=1", "--term", "rate=2"], "--term rate is given twice"),
        (["--model-arg", "kappa=1", "--model-arg", "kappa=2"], "--model-arg kappa is given twice"),
        (["--guide-arg", "activation=sigmoid"], "unknown encoder activation 'sigmoid'; choose one of: tanh, relu"),
        (["--guide", "iaf", "--guide-arg", "activation=relu"], "guide 'iaf' has no option 'activation'; its options: hidden_dims"),
        (["--guide-arg", "hidden_dims=[3]"], "set hidden_dims as options of their own, not in guide_args"),
        (["--lr", "inf"], "lr must be positive and finite"),
        (["--lr", "nan"], "lr must be positive and finite"),
        (["--adam-betas", "1,0.999"], "adam_betas must be two numbers in [0, 1) such as [0.9, 0.999], got (1.0, 0.999)"),
        (["--adam-betas", "0.5"], "adam_betas must be two numbers in [0, 1)"),
        (["--term", "rate=inf"], "the weight 'inf' must be finite"),
        (["--term", "rate=linear:0:nan:10"], "the weight 'linear:0:nan:10' must be finite"),
        (["--batch-size", "0"], "batch_size must be a positive integer"),
    ],
)
def test_bad_train_options(tmp_path, capsys, options, message):
    out = tmp_path / "run"
    fails(["train", "--out", str(out), *SMALL, *options], capsys, message)
    assert not out.exists()  # a failed command leaves no empty run directory


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"latent_dims": "12"}, "latent_dims must be a list of positive integers such as [200, 200], got '12'"),
        ({"latent_dims": (True,)}, "latent_dims must be a list of positive integers"),
        ({"epochs": True}, "epochs must be a positive integer, got True"),
        ({"particles": False}, "particles must be a positive integer"),
        ({"eval_every": True}, "eval_every must be a non-negative integer"),
        ({"lr": float("inf")}, "lr must be positive and finite"),
        ({"lr": True}, "lr must be positive and finite"),
        ({"adam_betas": (0.5, True)}, "adam_betas must be two numbers in [0, 1)"),
        ({"terms": {"rate": float("nan")}}, "must be finite"),
    ],
)
def test_bad_train_config(changes, message):
    with pytest.raises(ValueError) as e:
        TrainConfig(**changes)
    assert message in str(e.value)


def test_out_that_is_a_file(tmp_path, capsys):
    path = tmp_path / "notes.txt"
    path.write_text("mine")
    fails(["train", "--out", str(path), *SMALL], capsys, f"{path} is a file, not a directory")
    fails(["train", "--out", str(path / "run"), *SMALL], capsys, f"{path} is a file")
    assert path.read_text() == "mine"


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_out_and_eval_are_refused_before_any_work(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--out", str(run), *SMALL]) == 0
    capsys.readouterr()
    os.chmod(run, 0o555)
    os.chmod(tmp_path, 0o555)
    try:
        fails(["train", "--out", str(tmp_path / "new"), *SMALL], capsys, "cannot write to")
        fails(["eval", str(run)], capsys, "cannot write to")
    finally:
        os.chmod(tmp_path, 0o755)
        os.chmod(run, 0o755)


def writable(folder):
    try:
        with tempfile.TemporaryFile(dir=folder):
            return True
    except OSError:
        return False


@pytest.mark.skipif(not os.path.isdir("/sys") or writable("/sys"), reason="needs a folder no one may write into")
def test_out_where_no_one_may_write(capsys):
    fails(["train", "--out", "/sys/pyro-deepvi-run", *SMALL], capsys, "cannot write to /sys (Permission denied)")


def test_eval_checks_that_it_can_write_before_computing(trained, capsys, monkeypatch):
    def read_only(*args, **kwargs):
        raise PermissionError(errno.EROFS, "Read-only file system")

    def restore(*args, **kwargs):
        raise AssertionError("eval loaded the run before checking it can write eval.json")

    monkeypatch.setattr(tempfile, "TemporaryFile", read_only)
    monkeypatch.setattr(pyro_deepvi, "restore", restore)
    fails(["eval", str(trained)], capsys, f"cannot write to {trained} (Read-only file system)")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    run = tmp_path_factory.mktemp("trained") / "run"
    assert main(["train", "--out", str(run), *SMALL]) == 0
    return run


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda path: path.write_bytes(b""), "cannot be read as a checkpoint"),
        (lambda path: path.write_bytes(b"\x80\x02not a checkpoint at all"), "cannot be read as a checkpoint"),
        (lambda path: torch.save({"weights": torch.zeros(3)}, path), "is not a pyro-deepvi checkpoint (it has no components"),
        (lambda path: torch.save({**torch.load(path, weights_only=True), "components": {}}, path), "does not hold this run's model"),
    ],
    ids=["empty", "corrupt", "foreign", "another-model"],
)
@pytest.mark.parametrize("command", ["train", "eval"])
def test_damaged_checkpoint(trained, tmp_path, capsys, damage, message, command):
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    damage(run / CHECKPOINT)
    argv = ["train", "--out", str(run), *SMALL] if command == "train" else ["eval", str(run), "--no-progress"]
    err = fails(argv, capsys, message)
    assert str(run / CHECKPOINT) in err


def test_eval_of_a_damaged_config(trained, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    (run / "config.json").write_text('{"model": "dlgm", "lr"')
    fails(["eval", str(run)], capsys, f"{run / 'config.json'} is not a readable run config")


def test_eval_particles_zero_is_refused(trained, capsys):
    fails(["eval", str(trained), "--particles", "0"], capsys, "num_particles must be a positive integer, got 0")


def test_data_path_that_is_a_directory(tmp_path, capsys):
    (tmp_path / "binarized_mnist_train.amat").mkdir()
    fails(["train", "--data", "binarized_mnist", "--data-root", str(tmp_path), "--out", str(tmp_path / "run"), "--no-progress"],
          capsys, "binarized_mnist_train.amat is a directory, not the data file")


def test_download_without_network_names_the_url_and_the_manual_way(tmp_path, capsys, monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("Temporary failure in name resolution")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    err = fails(["train", "--data", "binarized_mnist", "--data-root", str(tmp_path / "data"), "--download",
                 "--out", str(tmp_path / "run"), "--no-progress"], capsys, "could not download http")
    assert "binarized_mnist_train.amat" in err and "by hand" in err and "--data-root" in err
    assert not (tmp_path / "run").exists() and not list((tmp_path / "data").glob("*.part"))


def test_disk_full_while_checkpointing_keeps_the_old_checkpoint(trained, tmp_path, capsys, monkeypatch):
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    before = (run / CHECKPOINT).read_bytes()

    def full(obj, path):
        with open(path, "wb") as f:
            f.write(b"part of a checkpoint")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full)
    err = fails(["train", "--out", str(run), *SMALL[:2], "--epochs", "2", *SMALL[4:]], capsys,
                "could not write the checkpoint of epoch 2")
    assert "No space left on device" in err and "last good checkpoint" in err and "(epoch 1)" in err
    assert (run / CHECKPOINT).read_bytes() == before
    assert sorted(p.name for p in run.iterdir() if p.name.startswith(".")) == []  # no temporary file left
    monkeypatch.undo()
    assert main(["train", "--out", str(run), *SMALL[:2], "--epochs", "2", *SMALL[4:]]) == 0  # and it resumes
