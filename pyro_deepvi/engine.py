"""The training loop: one for every model, guide and objective.

``train(TrainConfig(...))`` loads the data, builds the model, guide and
objective from the registries, and runs minibatch stochastic optimization of
the objective's differentiable loss with a torch optimizer. It writes a run
directory that holds everything needed to continue or evaluate the run::

    runs/<name>/config.json     the TrainConfig, to rebuild the run
    runs/<name>/metrics.jsonl   one JSON record per epoch (train parts, validation bounds)
    runs/<name>/checkpoint.pt   model, guide, optimizer, RNG states, epoch (atomic, weights_only)
    runs/<name>/eval.json       test ELBO, IWAE-k log-likelihood, active units (after training)
    runs/<name>/*.png           samples, reconstructions, training curves

Checkpoints are written to a temporary file and renamed, at the end of every
epoch, so a crash or Ctrl-C leaves the last good one intact; running the same
command again resumes from it and continues exactly as an uninterrupted run
would (same parameters, same random draws). Under ``torchrun`` every rank takes
its share of each minibatch (the data plate gets the full size N and the
rank's indices), and ``DistributedDataParallel`` averages the gradients.
"""

import dataclasses
import json
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyro
import torch
import torch.distributed as torch_dist
from torch import nn
from tqdm.auto import tqdm

from .data import load
from .data.checks import check_compatible
from .evaluation import evaluate_run, log_likelihood
from .registry import GUIDES, MODELS, OBJECTIVES
from .run_dir import CHECKPOINT, CONFIG, METRICS, load_checkpoint, save_atomic, write_json_atomic



@dataclass
class TrainConfig:
    """Everything that defines a run; saved as ``config.json``."""

    model: str = "dlgm"
    data: str = "mnist5k"
    guide: str = None  # the model's default guide when None
    objective: str = "elbo"
    particles: int = 1
    epochs: int = 100
    batch_size: int = 100
    lr: float = 1e-3
    latent_dims: tuple = (50,)
    hidden_dims: tuple = (200, 200)
    model_args: dict = field(default_factory=dict)
    seed: int = 0
    device: str = "auto"
    out: str = None  # runs/<model>-<guide>-<objective> when None
    eval_every: int = 10  # epochs between validation passes; 0 for none
    valid_particles: int = 100
    test_particles: int = 5000
    progress: bool = True

    def __post_init__(self):
        for name in ("particles", "epochs", "batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr!r}")
        self.latent_dims = tuple(self.latent_dims)
        self.hidden_dims = tuple(self.hidden_dims)
        if self.guide is None:
            self.guide = getattr(MODELS.get(self.model), "default_guide", "diag")
        if self.out is None:
            self.out = os.path.join("runs", f"{self.model}-{self.guide}-{self.objective}")

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, config):
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(config) - known
        if unknown:
            raise ValueError(f"unknown config keys {sorted(unknown)}; known: {sorted(known)}")
        return cls(**config)


def resolve_device(device):
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for, but torch sees no CUDA device")
    return device


class Components(nn.Module):
    """The model, guide and objective of a run, as one module whose ``forward`` is the loss.

    Wrapping both in one ``nn.Module`` gives the optimizer, the checkpoint and
    ``DistributedDataParallel`` a single owner of every parameter.
    """

    def __init__(self, model, guide, objective):
        super().__init__()
        self.model = model
        self.guide = guide
        self.objective = objective

    def forward(self, batch):
        return self.objective(self.model.model, self.guide, **batch)


def build(config, train_data):
    """Model, guide and objective of ``config``, sized for ``train_data``."""
    model = MODELS.get(config.model).from_data(
        train_data, latent_dims=config.latent_dims, hidden_dims=config.hidden_dims, **config.model_args
    )
    check_compatible(train_data.support, model.support, config.model)
    guide = GUIDES.get(config.guide)(model, hidden_dims=config.hidden_dims)
    objective = OBJECTIVES.get(config.objective)(particles=config.particles)
    return Components(model, guide, objective)


def _rng_state():
    state = {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": [np.random.get_state()[0], torch.from_numpy(np.random.get_state()[1].copy()), *np.random.get_state()[2:]],
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state):
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, keys.numpy(), *rest))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class _Distributed:
    """Rank and world size under ``torchrun`` (WORLD_SIZE > 1); one process otherwise."""

    def __init__(self, device):
        self.world_size = int(os.environ.get("WORLD_SIZE", "1"))
        self.enabled = self.world_size > 1
        self.rank = int(os.environ.get("RANK", "0"))
        if self.enabled and not torch_dist.is_initialized():
            torch_dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        if self.enabled and device.type == "cuda":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))

    @property
    def is_main(self):
        return self.rank == 0

    def shard(self, index):
        """This rank's share of a global minibatch of indices."""
        return index[self.rank :: self.world_size]

    def barrier(self):
        if self.enabled:
            torch_dist.barrier()


def _mean_parts(sums, count):
    return {name: float(value) / count for name, value in sums.items()}


def validate(components, data, num_particles, seed):
    """Validation ELBO and IWAE-k bound per data point."""
    components.eval()
    elbo, log_lik = log_likelihood.bounds(components.model.model, components.guide, data, num_particles, seed=seed)
    components.train()
    return {"elbo": float(elbo.mean()), f"iwae_{num_particles}": float(log_lik.mean())}


def train(config, stop_after_epochs=None):
    """Train (or resume) the run described by ``config``; returns its final ``eval.json`` record.

    :param TrainConfig config: the run.
    :param int stop_after_epochs: stop once this many epochs are done in this call
        (as if interrupted; for tests of resuming), without the final evaluation.
    """
    device = resolve_device(config.device)
    distributed = _Distributed(device)
    run_dir = Path(config.out)
    if distributed.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
    saved_config = run_dir / CONFIG
    checkpoint_path = run_dir / CHECKPOINT
    resuming = checkpoint_path.exists()
    if resuming:
        previous = json.loads(saved_config.read_text())
        mismatched = {
            k for k, v in config.to_dict().items() if k not in ("epochs", "progress", "device", "test_particles") and json.loads(json.dumps(v)) != previous.get(k)
        }
        if mismatched:
            raise ValueError(
                f"{run_dir} holds a run with a different config ({', '.join(sorted(mismatched))}); "
                "choose another --out, or delete that directory to start over"
            )

    pyro.set_rng_seed(config.seed + distributed.rank)
    train_data = load(config.data, "train").to(device)
    valid_data = load(config.data, "valid").to(device) if config.eval_every else None
    components = build(config, train_data).to(device)
    # Lazily created parameters (autoguides, flows) exist after one call: make them before the optimizer.
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        components(train_data.batch(torch.arange(min(config.batch_size, len(train_data)), device=device)))
    optimizer = torch.optim.Adam(components.parameters(), lr=config.lr)
    shuffle = torch.Generator().manual_seed(config.seed)
    start_epoch, step = 0, 0
    metrics_path = run_dir / METRICS
    if resuming:
        checkpoint = load_checkpoint(checkpoint_path, device)
        components.load_state_dict(checkpoint["components"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        shuffle.set_state(checkpoint["shuffle"])
        _set_rng_state(checkpoint["rng"])
        start_epoch, step = checkpoint["epoch"], checkpoint["step"]
        if distributed.is_main and metrics_path.exists():
            # Records written after the checkpoint belong to an epoch that will be rerun.
            with open(metrics_path, "r+b") as f:
                f.truncate(checkpoint["metrics_bytes"])
    elif distributed.is_main:
        write_json_atomic(config.to_dict(), saved_config)
        metrics_path.write_text("")

    loss_module = components
    if distributed.enabled:
        loss_module = nn.parallel.DistributedDataParallel(components)

    num_batches = (len(train_data) + config.batch_size - 1) // config.batch_size
    last_epoch = config.epochs if stop_after_epochs is None else min(config.epochs, start_epoch + stop_after_epochs)
    for epoch in range(start_epoch, last_epoch):
        started = time.perf_counter()
        order = torch.randperm(len(train_data), generator=shuffle).to(device)
        sums = {}
        bar = tqdm(
            range(num_batches),
            desc=f"epoch {epoch + 1}/{config.epochs}",
            disable=not (config.progress and distributed.is_main),
            leave=False,
        )
        for b in bar:
            index = distributed.shard(order[b * config.batch_size : (b + 1) * config.batch_size])
            try:
                loss = loss_module(train_data.batch(index))
            except FloatingPointError as e:
                kept = f"the last good checkpoint is {checkpoint_path}" if checkpoint_path.exists() else "no checkpoint was written yet"
                raise FloatingPointError(f"training stopped at step {step} (epoch {epoch + 1}): {e}; {kept}") from e
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            step += 1
            for name, value in components.objective.parts.items():
                sums[name] = sums.get(name, 0.0) + value
        record = {"epoch": epoch + 1, "step": step, "seconds": time.perf_counter() - started}
        record.update({f"train_{k}": v for k, v in _mean_parts(sums, num_batches).items()})
        if config.eval_every and ((epoch + 1) % config.eval_every == 0 or epoch + 1 == config.epochs):
            record.update({f"valid_{k}": v for k, v in validate(components, valid_data, config.valid_particles, config.seed).items()})
        if distributed.is_main:
            with open(metrics_path, "a") as f:
                f.write(json.dumps(record) + "\n")
            save_atomic(
                {
                    "components": components.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "shuffle": shuffle.get_state(),
                    "rng": _rng_state(),
                    "epoch": epoch + 1,
                    "step": step,
                    "metrics_bytes": metrics_path.stat().st_size,
                },
                checkpoint_path,
            )
            if config.progress:
                tqdm.write(_format_record(record))
        resuming = True
    distributed.barrier()
    if last_epoch < config.epochs or not distributed.is_main:
        return None
    return evaluate_run(run_dir, components, config)


def _format_record(record):
    shown = {k: v for k, v in record.items() if k in ("epoch", "train_elbo", "train_bound") or k.startswith("valid_")}
    return "  ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}" for k, v in shown.items())


def restore(run_dir, device="auto"):
    """Rebuild a run's components from ``config.json`` and ``checkpoint.pt`` alone."""
    run_dir = Path(run_dir)
    for name in (CONFIG, CHECKPOINT):
        if not (run_dir / name).exists():
            raise FileNotFoundError(f"{run_dir} is not a run directory: {name} is missing")
    config = TrainConfig.from_dict(json.loads((run_dir / CONFIG).read_text()))
    device = resolve_device(device if device != "auto" else config.device)
    train_data = load(config.data, "train").to(device)
    components = build(config, train_data).to(device)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        components(train_data.batch(torch.arange(min(config.batch_size, len(train_data)), device=device)))
    components.load_state_dict(load_checkpoint(run_dir / CHECKPOINT, device)["components"])
    return config, components
