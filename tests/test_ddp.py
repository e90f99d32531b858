"""Data parallelism: two gloo processes under torchrun against one process on the combined batch."""

import os
import subprocess
import sys
from pathlib import Path

import torch

WORKER = Path(__file__).with_name("ddp_worker.py")


def run(args, out):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("WORLD_SIZE", None)
    result = subprocess.run([sys.executable, *args, str(WORKER), str(out)], env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


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
