"""Data parallelism: two gloo processes under torchrun against one process on the combined batch, and from the CLI."""

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

WORKER = Path(__file__).with_name("ddp_worker.py")
TORCHRUN = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
SMALL = ["--data", "digits", "--latent-dims", "4", "--hidden-dims", "16", "--eval-every", "0", "--test-particles", "2",
         "--no-progress", "--device", "cpu"]


def run(args, out):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("WORLD_SIZE", None)
    result = subprocess.run([sys.executable, *args, str(WORKER), str(out)], env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def torchrun_cli(*args, command="train"):
    """``torchrun --nproc_per_node 2 -m pyro_deepvi.cli COMMAND ARGS`` (train, as the README shows it); its stdout."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("WORLD_SIZE", None)
    command = [sys.executable, *TORCHRUN, "-m", "pyro_deepvi.cli", command, *args, *SMALL]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


def test_torchrun_cli_trains_evaluates_and_survives_an_uneven_last_batch(tmp_path):
    # 1,197 points in batches of 4: the last batch holds one point, for two ranks.
    out = torchrun_cli("--out", str(tmp_path / "run"), "--epochs", "1", "--batch-size", "4")
    assert out.count("run directory") == 1 and "test log-likelihood" in out  # rank 0 reports, rank 1 is quiet
    assert (tmp_path / "run" / "curves.png").exists() and (tmp_path / "run" / "eval.json").exists()


def test_torchrun_cli_compare_reports_once(tmp_path):
    out = torchrun_cli("dlgm", "--guides", "diag", "--objectives", "elbo", "--out", str(tmp_path / "cmp"), "--epochs", "1",
                       command="compare")
    assert out.count("test ELBO") == 1  # one table, from rank 0
    rows = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    assert [(r["guide"], r["objective"]) for r in rows] == [("diag", "elbo")]


def test_torchrun_cli_resume_is_exact(tmp_path):
    torchrun_cli("--out", str(tmp_path / "straight"), "--epochs", "2")
    torchrun_cli("--out", str(tmp_path / "resumed"), "--epochs", "1")
    torchrun_cli("--out", str(tmp_path / "resumed"), "--epochs", "2")
    straight, resumed = (torch.load(tmp_path / name / "checkpoint.pt", weights_only=True) for name in ("straight", "resumed"))
    assert resumed["epoch"] == straight["epoch"] == 2
    for key, value in straight["components"].items():
        assert torch.equal(value, resumed["components"][key]), key
    assert len(straight["rng"]) == 2  # each rank's own random state


def test_torchrun_cli_compiled_equals_eager(tmp_path):
    # 1,197 points in batches of 50: shards of 25 and, in the last batch of 47, of 24 and 23 (three traced shapes).
    for name, *compile_option in (("eager",), ("compiled", "--compile")):
        torchrun_cli("--out", str(tmp_path / name), "--epochs", "1", "--batch-size", "50", *compile_option)
    eager, compiled = (torch.load(tmp_path / name / "checkpoint.pt", weights_only=True) for name in ("eager", "compiled"))
    for key, value in eager["components"].items():
        torch.testing.assert_close(compiled["components"][key], value, rtol=1e-5, atol=1e-6, msg=key)


def test_two_ranks_hold_identical_parameters_and_match_one_process(tmp_path):
    run(["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"], tmp_path)
    run([], tmp_path)
    load = lambda name: torch.load(tmp_path / f"{name}.pt", weights_only=True)  # noqa: E731
    for model in ("mean", "dlgm"):
        rank0, rank1 = load(f"{model}_world2_rank0"), load(f"{model}_world2_rank1")
        for key in rank0:
            if key == "batch_sizes":
                continue
            assert torch.equal(rank0[key], rank1[key]), (model, key)
    # No latent variable, no noise: averaging the ranks' gradients is one process on the whole batch.
    single, parallel = load("mean_world1_rank0"), load("mean_world2_rank0")
    # After the warm-up (two calls: plate nesting, then traces), each rank trains on half of every minibatch of 16.
    assert set(single["batch_sizes"][2:].tolist()) == {16}
    assert set(parallel["batch_sizes"][2:].tolist()) == {8}
    initial = torch.zeros(3)
    for key in ("model.loc", "model.log_scale"):
        assert torch.allclose(single[key], parallel[key], atol=1e-5), key
        assert not torch.allclose(single[key], initial)  # and training moved them
