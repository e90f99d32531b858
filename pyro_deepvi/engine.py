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

Pyro's validation checks the model and guide once, on a first call before
training; the training steps run unvalidated, and the objective's NaN guard
names the first non-finite site if the loss stops being finite.

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
from tqdm import tqdm

from .data import load
from .data.checks import check_compatible, check_views
from .evaluation import evaluate_run, log_likelihood
from .objectives.schedules import parse_weight
from .registry import GUIDES, MODELS, OBJECTIVES, TERMS
from .run_dir import CHECKPOINT, CONFIG, METRICS, load_checkpoint, save_atomic, write_json_atomic


@dataclass
class TrainConfig:
    """Everything that defines a run; saved as ``config.json``."""

    model: str = "dlgm"
    data: str = "mnist5k"
    guide: str = None  # the model's default guide when None
    objective: str = "elbo"
    particles: int = 1
    terms: dict = field(default_factory=dict)  # plug-in term name -> weight or schedule ("linear:-1:0:10")
    term_args: dict = field(default_factory=dict)  # term name -> {option: value}, for the term's from_model
    epochs: int = 100
    batch_size: int = 100
    lr: float = 1e-3
    latent_dims: tuple = (50,)
    hidden_dims: tuple = (200, 200)
    guide_hidden_dims: tuple = None  # the encoder's widths; hidden_dims when None
    model_args: dict = field(default_factory=dict)
    seed: int = 0
    device: str = "auto"
    out: str = None  # runs/<model>-<guide>-<objective> when None
    eval_every: int = 10  # epochs between validation passes; 0 for none
    valid_particles: int = 100
    test_particles: int = 5000
    progress: bool = True
    data_root: str = None  # where file-based data sets live (default $PYRO_DEEPVI_DATA or ~/.cache/pyro_deepvi)
    download: bool = False  # fetch a missing file-based data set (checksum-verified)

    def __post_init__(self):
        for name in ("particles", "epochs", "batch_size", "valid_particles", "test_particles"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not isinstance(self.eval_every, int) or self.eval_every < 0:
            raise ValueError(f"eval_every must be a non-negative integer (0: no validation), got {self.eval_every!r}")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr!r}")
        self.latent_dims = tuple(self.latent_dims)
        self.hidden_dims = tuple(self.hidden_dims)
        if self.guide_hidden_dims is None:
            self.guide_hidden_dims = self.hidden_dims
        self.guide_hidden_dims = tuple(self.guide_hidden_dims)
        for weight in self.terms.values():
            parse_weight(weight)  # a clear error now for a weight that cannot be read
        stray = set(self.term_args) - set(self.terms)
        if stray:
            raise ValueError(f"term_args name term(s) {sorted(stray)} that are not among the terms {sorted(self.terms)}")
        repeated = {"latent_dims", "hidden_dims"} & set(self.model_args)
        if repeated:
            raise ValueError(f"set {', '.join(sorted(repeated))} as options of their own, not in model_args")
        if self.guide is None:
            self.guide = getattr(MODELS.get(self.model), "default_guide", "diag")
        if self.out is None:
            self.out = os.path.join("runs", f"{self.model}-{self.guide}-{self.objective}")

    def load_data(self, split):
        """One split of the run's data set."""
        return load(self.data, split, root=self.data_root, download=self.download)

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
    check_compatible(train_data.support, model.support, config.model, data_name=config.data)
    check_views(train_data.views, model.model, config.model, config.data)
    guide = GUIDES.get(config.guide)(model, hidden_dims=config.guide_hidden_dims)
    objective = OBJECTIVES.get(config.objective)(particles=config.particles)
    for name, weight in config.terms.items():
        objective.add_term(name, TERMS.get(name).from_model(model, **config.term_args.get(name, {})), weight)
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


def validate(components, data, num_particles, seed):
    """Validation ELBO and IWAE-k bound per data point (a non-amortized model's own ``evaluate``)."""
    components.eval()
    if getattr(components.model, "amortized", True):
        elbo, log_lik = log_likelihood.bounds(components.model.model, components.guide, data, num_particles, seed=seed)
        result = {"elbo": float(elbo.mean()), f"iwae_{num_particles}": float(log_lik.mean())}
    else:
        result = components.model.evaluate(components.guide, data, seed=seed)
    components.train()
    return result


def _create_lazy_parameters(components, data, batch_size):
    """Lazily created parameters (autoguides, flows) exist after one call: make them now."""
    device = data.x.device
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        components(data.batch(torch.arange(min(batch_size, len(data)), device=device)))


class Trainer:
    """One run: set up (or resumed) from ``config`` on construction, trained by :meth:`fit`.

    ``train(config)`` is ``Trainer(config).fit()`` followed by the test evaluation;
    the class is there for code (and tests) that need the live components.
    """

    def __init__(self, config):
        self.config = config
        self.device = resolve_device(config.device)
        self.distributed = _Distributed(self.device)
        self.run_dir = Path(config.out)
        self.checkpoint_path = self.run_dir / CHECKPOINT
        self.metrics_path = self.run_dir / METRICS
        resuming = self.checkpoint_path.exists()
        if resuming:
            self._check_same_run()
        elif self.distributed.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)

        pyro.set_rng_seed(config.seed + self.distributed.rank)
        self.train_data = config.load_data("train").to(self.device)
        self.valid_data = config.load_data("valid").to(self.device) if config.eval_every else None
        self.components = build(config, self.train_data).to(self.device)
        _create_lazy_parameters(self.components, self.train_data, config.batch_size)
        self.optimizer = torch.optim.Adam(self.components.parameters(), lr=config.lr)
        self.shuffle = torch.Generator().manual_seed(config.seed)
        self.epoch, self.step = 0, 0
        if resuming:
            self._resume()
        elif self.distributed.is_main:
            write_json_atomic(config.to_dict(), self.run_dir / CONFIG)
            self.metrics_path.write_text("")
        self.loss_module = self.components
        if self.distributed.enabled:
            self.loss_module = nn.parallel.DistributedDataParallel(self.components)

    def _check_same_run(self):
        previous = json.loads((self.run_dir / CONFIG).read_text())
        free = ("epochs", "progress", "device", "test_particles", "data_root", "download")
        current = json.loads(json.dumps(self.config.to_dict()))
        mismatched = sorted(k for k, v in current.items() if k not in free and v != previous.get(k))
        if mismatched:
            raise ValueError(
                f"{self.run_dir} holds a run with a different config ({', '.join(mismatched)}); "
                "choose another --out, or delete that directory to start over"
            )

    def _resume(self):
        checkpoint = load_checkpoint(self.checkpoint_path, self.device)
        self.components.load_state_dict(checkpoint["components"])
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        self.shuffle.set_state(checkpoint["shuffle"])
        _set_rng_state(checkpoint["rng"])
        self.epoch, self.step = checkpoint["epoch"], checkpoint["step"]
        if self.distributed.is_main and self.metrics_path.exists():
            # Records written after the checkpoint belong to an epoch that will be rerun.
            with open(self.metrics_path, "r+b") as f:
                f.truncate(checkpoint["metrics_bytes"])

    def _save(self):
        save_atomic(
            {
                "components": self.components.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "shuffle": self.shuffle.get_state(),
                "rng": _rng_state(),
                "epoch": self.epoch,
                "step": self.step,
                "metrics_bytes": self.metrics_path.stat().st_size,
            },
            self.checkpoint_path,
        )

    def _train_step(self, index):
        try:
            # Pyro's validation ran on the first call (shapes, supports, model/guide match);
            # per step it would recheck the data's support and add ~12% to the step time.
            with pyro.validation_enabled(False):
                loss = self.loss_module(self.train_data.batch(index))
        except FloatingPointError as e:
            kept = (
                f"the last good checkpoint is {self.checkpoint_path} (epoch {self.epoch})"
                if self.checkpoint_path.exists()
                else "no checkpoint was written yet"
            )
            raise FloatingPointError(f"training stopped at step {self.step} (epoch {self.epoch + 1}): {e}; {kept}") from e
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        self.step += 1

    def fit(self, until_epoch=None):
        """Train up to epoch ``until_epoch`` (default: ``config.epochs``), checkpointing every epoch."""
        config = self.config
        until_epoch = config.epochs if until_epoch is None else min(until_epoch, config.epochs)
        batch_size = config.batch_size
        num_batches = (len(self.train_data) + batch_size - 1) // batch_size
        while self.epoch < until_epoch:
            started = time.perf_counter()
            order = torch.randperm(len(self.train_data), generator=self.shuffle).to(self.device)
            sums = {}
            bar = tqdm(
                range(num_batches),
                desc=f"epoch {self.epoch + 1}/{config.epochs}",
                disable=not (config.progress and self.distributed.is_main),
                leave=False,
            )
            for b in bar:
                self.components.objective.set_epoch(self.epoch + b / num_batches)
                self._train_step(self.distributed.shard(order[b * batch_size : (b + 1) * batch_size]))
                for name, value in self.components.objective.parts.items():
                    sums[name] = sums.get(name, 0.0) + value
            self.epoch += 1
            record = {"epoch": self.epoch, "step": self.step, "seconds": time.perf_counter() - started}
            record.update({f"train_{k}": float(v) / num_batches for k, v in sums.items()})
            record.update({f"weight_{k}": v for k, v in self.components.objective.weights.items()})
            if config.eval_every and (self.epoch % config.eval_every == 0 or self.epoch == config.epochs):
                validation = validate(self.components, self.valid_data, config.valid_particles, config.seed)
                record.update({f"valid_{k}": v for k, v in validation.items()})
            if self.distributed.is_main:
                with open(self.metrics_path, "a") as f:
                    f.write(json.dumps(record) + "\n")
                self._save()
                if config.progress:
                    tqdm.write(_format_record(record))
        self.distributed.barrier()
        return self

    def evaluate(self, num_particles=None):
        """The test-split report of :func:`~pyro_deepvi.evaluation.evaluate_run` (``eval.json``)."""
        return evaluate_run(self.run_dir, self.components, self.config, num_particles)


def train(config):
    """Train (or resume) the run described by ``config``; returns its ``eval.json`` record.

    Under ``torchrun`` only rank 0 evaluates; the other ranks return ``None``.
    """
    trainer = Trainer(config).fit()
    return trainer.evaluate() if trainer.distributed.is_main else None


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
    train_data = config.load_data("train").to(device)
    components = build(config, train_data).to(device)
    _create_lazy_parameters(components, train_data, config.batch_size)
    components.load_state_dict(load_checkpoint(run_dir / CHECKPOINT, device)["components"])
    return config, components
