"""Run directories keep their data: one writer, no silent overwrite, repaired metrics, no NaN checkpoint, any spelling of --out."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import torch

from pyro_deepvi.cli import main
from pyro_deepvi.run_dir import CHECKPOINT, CONFIG, EVAL, METRICS, read_metrics

LOCK = "run.lock"

SMALL = ["--data", "digits", "--latent-dims", "4", "--hidden-dims", "16", "--eval-every", "0", "--test-particles", "2",
         "--no-progress"]


def train(out, epochs, *options):
    return main(["train", "--out", str(out), "--epochs", str(epochs), *SMALL, *options])


def test_a_second_writer_is_refused_with_the_holder_named(tmp_path, capsys):
    run = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        run.mkdir()
        (run / LOCK).write_text(json.dumps({"host": socket.gethostname(), "pid": holder.pid}))
        assert train(run, 1) == 2
        err = capsys.readouterr().err
        assert f"is in use by process {holder.pid} on host {socket.gethostname()}" in err and str(run / LOCK) in err
        assert sorted(p.name for p in run.iterdir()) == [LOCK]  # nothing written
        assert main(["eval", str(run)]) == 2
        assert "is in use by process" in capsys.readouterr().err
    finally:
        holder.kill()
        holder.wait()
    # The holder is gone: its lock is stale, and the next command takes over (and releases it on exit).
    assert train(run, 1) == 0
    assert not (run / LOCK).exists()
    assert [r["epoch"] for r in read_metrics(run)] == [1]


def test_two_concurrent_commands_one_is_refused(tmp_path):
    run = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "pyro_deepvi.cli", "train", "--out", str(run), "--epochs", "3", *SMALL]
    first = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        while not (run / LOCK).exists():
            assert first.poll() is None, first.communicate()
            time.sleep(0.01)
        first.send_signal(signal.SIGSTOP)  # hold it mid-run, whatever the machine's speed
        second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    finally:
        first.send_signal(signal.SIGCONT)
    out, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    assert second.returncode == 2 and f"is in use by process {first.pid}" in second.stderr, second.stderr
    assert [r["epoch"] for r in read_metrics(run)] == [1, 2, 3]  # one writer's history, not two interleaved
    assert not (run / LOCK).exists()


def test_a_folder_that_is_not_a_run_is_not_overwritten(tmp_path, capsys):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / CONFIG).write_text('{"learning_rate": 0.1}\n')
    assert train(folder, 1) == 2
    err = capsys.readouterr().err
    assert f"{folder / CONFIG} exists and is not the config of a pyro-deepvi run" in err and "--overwrite" in err
    assert (folder / CONFIG).read_text() == '{"learning_rate": 0.1}\n'
    (folder / CONFIG).unlink()
    (folder / METRICS).write_text('{"loss": 1}\n')
    assert train(folder, 1) == 2
    assert f"{folder / METRICS} exists without a config.json" in capsys.readouterr().err
    assert (folder / METRICS).read_text() == '{"loss": 1}\n'
    assert train(folder, 1, "--overwrite") == 0
    assert [r["epoch"] for r in read_metrics(folder)] == [1]


def test_a_run_without_its_checkpoint_keeps_its_history(tmp_path, capsys):
    run = tmp_path / "run"
    assert train(run, 2) == 0
    history = (run / METRICS).read_text()
    (run / CHECKPOINT).unlink()
    assert train(run, 2) == 2
    err = capsys.readouterr().err
    assert f"{CHECKPOINT} is missing: starting over would wipe the history in {run / METRICS}" in err
    assert (run / METRICS).read_text() == history
    assert train(run, 1, "--overwrite") == 0  # start over on purpose: a fresh history, no stale eval
    assert [r["epoch"] for r in read_metrics(run)] == [1]


def test_interrupted_before_the_first_checkpoint_restarts(tmp_path):
    run = tmp_path / "run"
    assert train(run, 1) == 0
    (run / CHECKPOINT).unlink()
    (run / METRICS).write_text("")  # config.json written, no epoch finished: nothing to lose
    assert train(run, 1) == 0


def test_a_truncated_metrics_file_is_repaired_on_resume(tmp_path):
    run = tmp_path / "run"
    assert train(run, 2) == 0
    data = (run / METRICS).read_bytes()
    (run / METRICS).write_bytes(data[:-10])  # a disk that lost the end of epoch 2's record
    assert train(run, 3) == 0
    assert [r["epoch"] for r in read_metrics(run)] == [1, 3]
    assert all(json.loads(line) for line in (run / METRICS).read_text().splitlines())
    assert main(["eval", str(run), "--no-progress"]) == 0


def test_a_damaged_record_and_nul_padding_are_dropped(tmp_path):
    run = tmp_path / "run"
    assert train(run, 2) == 0
    with open(run / METRICS, "ab") as f:
        f.write(b'{"epoch": 3, "train_el' + b"\0" * 100)  # a cut record, padded by an earlier version's resume
    with pytest.warns(UserWarning, match=f"{METRICS}, line 3: not a JSON record"):
        assert main(["eval", str(run), "--no-progress"]) == 0  # eval reads past it, naming the file
    assert train(run, 3) == 0
    assert b"\0" not in (run / METRICS).read_bytes()
    assert [r["epoch"] for r in read_metrics(run)] == [1, 2, 3]


def test_metrics_bytes_is_bounded_by_the_file(tmp_path):
    run = tmp_path / "run"
    assert train(run, 1) == 0
    checkpoint = torch.load(run / CHECKPOINT, weights_only=True)
    checkpoint["metrics_bytes"] = 10**12  # a crafted checkpoint
    torch.save(checkpoint, run / CHECKPOINT)
    assert train(run, 2) == 0
    assert (run / METRICS).stat().st_size < 10_000
    assert [r["epoch"] for r in read_metrics(run)] == [1, 2]


def _overflow_at(monkeypatch, step_number):
    """Adam's step ``step_number`` (from 1) sets a parameter to NaN: what --lr inf did, a finite loss, then a NaN step."""
    step, count = torch.optim.Adam.step, [0]

    def overflowing_step(self, *args, **kwargs):
        result = step(self, *args, **kwargs)
        count[0] += 1
        if count[0] == step_number:
            with torch.no_grad():
                self.param_groups[0]["params"][0].fill_(float("nan"))
        return result

    monkeypatch.setattr(torch.optim.Adam, "step", overflowing_step)


def test_a_step_that_makes_parameters_non_finite_is_never_checkpointed(tmp_path, capsys, monkeypatch):
    run = tmp_path / "run"
    _overflow_at(monkeypatch, 1)
    # One step per epoch (1,197 points): the epoch's last step leaves non-finite parameters, checked before the save.
    assert train(run, 2, "--batch-size", "2000") == 2
    err = capsys.readouterr().err
    assert "training stopped at the end of epoch 1 (step 1): an optimizer step made 1 parameter(s) non-finite (" in err
    assert "model.decoder" in err or "guide." in err  # the parameter is named
    assert "no checkpoint was written yet" in err
    assert not (run / CHECKPOINT).exists()


def test_a_non_finite_parameter_inside_an_epoch_stops_at_the_next_step(tmp_path, capsys, monkeypatch):
    run = tmp_path / "run"
    _overflow_at(monkeypatch, 4)  # the first step of epoch 2 (3 steps per epoch)
    assert train(run, 3, "--batch-size", "500") == 2
    err = capsys.readouterr().err
    assert "training stopped at step 4 (epoch 2)" in err and "the last good checkpoint is" in err
    checkpoint = torch.load(run / CHECKPOINT, weights_only=True)
    assert checkpoint["epoch"] == 1
    assert all(torch.isfinite(value).all() for value in checkpoint["components"].values() if value.is_floating_point())


@pytest.mark.parametrize("spelling", ["r/x/", "./r/x", "absolute"])
def test_resume_with_any_spelling_of_out_and_more_epochs(tmp_path, monkeypatch, spelling):
    monkeypatch.chdir(tmp_path)
    assert train("r/x", 1) == 0
    out = str(tmp_path / "r" / "x") if spelling == "absolute" else spelling
    assert train(out, 2) == 0
    assert [r["epoch"] for r in read_metrics("r/x")] == [1, 2]
    assert json.loads((tmp_path / "r/x" / CONFIG).read_text())["epochs"] == 2


def test_eval_says_what_it_does_and_keeps_an_earlier_eval(tmp_path, capsys):
    run = tmp_path / "run"
    assert train(run, 1) == 0
    capsys.readouterr()
    assert main(["eval", str(run), "--particles", "3"]) == 0
    captured = capsys.readouterr()
    assert f"evaluating {run} on 400 test points (IWAE, k = 3)" in captured.out
    assert "IWAE-3" in captured.err  # the progress bar over the particle chunks
    assert f"kept the earlier evaluation (k = 2) as {run / 'eval-k2.json'}" in captured.out
    assert json.loads((run / "eval-k2.json").read_text())["num_particles"] == 2
    assert json.loads((run / EVAL).read_text())["num_particles"] == 3
    assert main(["eval", str(run), "--particles", "3", "--no-progress"]) == 0
    assert "kept" not in capsys.readouterr().out and not (run / "eval-k3.json").exists()  # same k: replaced
