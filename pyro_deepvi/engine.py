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
rank's indices), and ``DistributedDataParallel`` averages the gradients; the
checkpoint holds every rank's random state. ``train`` holds the run directory's
lock (:mod:`~pyro_deepvi.lock`) while it runs.
"""

import atexit
import contextlib
import copy
import dataclasses
import datetime
import io
import json
import math
import numbers
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyro
import torch
import torch.distributed as torch_dist
from torch import nn
from tqdm import tqdm

from .compile import CompiledLoss
from .data import load
from .data.arrays import ARRAYS, splits_from_arrays
from .data.checks import check_compatible, check_views
from .data.spec import data_spec, stand_in
from .evaluation import evaluate_run, log_likelihood
from .objectives.schedules import parse_weight
from .lock import run_lock
from .plugins import import_plugins
from .registry import GUIDES, MODELS, OBJECTIVES, TERMS, call_with_options
from .run_dir import CHECKPOINT, CONFIG, EVAL, METRICS, check_fresh_start, load_checkpoint, recover_metrics, save_atomic, write_json_atomic
from .settings import module_local_params


#: The value of each TrainConfig field left as ``None`` that the model's ``train_defaults`` do not set.
#: ``particles`` left unset is 5 for the ``iwae`` objective and 1 otherwise.
DEFAULTS = {
    "data": "mnist5k",
    "objective": "elbo",
    "terms": {},
    "term_args": {},
    "epochs": 100,
    "batch_size": 100,
    "lr": 1e-3,
    "adam_betas": (0.9, 0.999),
    "latent_dims": (50,),
    "hidden_dims": (200, 200),
    "model_args": {},
    "guide_args": {},
    "eval_every": 10,
    "valid_particles": 100,
    "test_particles": 5000,
}


@dataclass
class TrainConfig:
    """Everything that defines a run; saved as ``config.json``.

    A field left as ``None`` takes the model's default: a model class may set
    ``train_defaults = {field: value}`` (e.g. ``def``'s data set and layer sizes),
    and fields it does not set take :data:`DEFAULTS`.
    """

    model: str = "dlgm"
    data: str = None  # a registered data set, a .npz file, or arrays (see pyro_deepvi.data.arrays)
    guide: str = None  # the model's default guide when None
    objective: str = None
    particles: int = None
    terms: dict = None  # plug-in term name -> weight or schedule ("linear:-1:0:10")
    term_args: dict = None  # term name -> {option: value}, for the term's from_model
    epochs: int = None
    batch_size: int = None
    lr: float = None
    adam_betas: tuple = None  # Adam's (β₁, β₂); deep VIB's paper uses (0.5, 0.999)
    latent_dims: tuple = None
    hidden_dims: tuple = None
    guide_hidden_dims: tuple = None  # the encoder's widths; hidden_dims when None
    model_args: dict = None
    guide_args: dict = None  # options of the guide's builder, e.g. {"activation": "relu"}
    seed: int = 0
    device: str = "auto"
    out: str = None  # runs/<model>-<guide>-<objective> when None
    eval_every: int = None  # epochs between validation passes; 0 for none
    valid_particles: int = None
    test_particles: int = None
    progress: bool = True
    data_root: str = None  # where file-based data sets live (default $PYRO_DEEPVI_DATA or ~/.cache/pyro_deepvi)
    download: bool = False  # fetch a missing file-based data set (checksum-verified)
    imports: tuple = ()  # plug-in modules imported before the registries are read (pyro_deepvi.plugins)
    compile: bool = False  # trace the loss once per batch shape (pyro_deepvi.compile); eager where it cannot be

    def __post_init__(self):
        self.imports = import_plugins(self.imports)
        self._apply_defaults()
        for name in ("particles", "epochs", "batch_size", "valid_particles", "test_particles"):
            value = getattr(self, name)
            if not _is_count(value) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not _is_count(self.eval_every) or self.eval_every < 0:
            raise ValueError(f"eval_every must be a non-negative integer (0: no validation), got {self.eval_every!r}")
        if not isinstance(self.compile, bool):
            raise ValueError(f"compile must be true or false, got {self.compile!r}")
        if isinstance(self.lr, bool) or not isinstance(self.lr, numbers.Real) or not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be positive and finite, got {self.lr!r}")
        if not (
            isinstance(self.adam_betas, (list, tuple)) and len(self.adam_betas) == 2
            and all(isinstance(b, numbers.Real) and not isinstance(b, bool) and 0 <= b < 1 for b in self.adam_betas)
        ):
            raise ValueError(f"adam_betas must be two numbers in [0, 1) such as [0.9, 0.999], got {self.adam_betas!r}")
        self.adam_betas = tuple(float(b) for b in self.adam_betas)
        for name in ("latent_dims", "hidden_dims", "guide_hidden_dims"):
            dims = getattr(self, name)
            if not (dims is None and name == "guide_hidden_dims") and (
                not isinstance(dims, (list, tuple)) or not all(_is_count(d) and d > 0 for d in dims)
            ):
                raise ValueError(f"{name} must be a list of positive integers such as [200, 200], got {dims!r}")
        if not self.latent_dims and not getattr(MODELS.get(self.model), "latent_dims_may_be_empty", False):
            raise ValueError("latent_dims must name at least one latent layer, e.g. [50]")
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
        for name, owned in (("model_args", {"latent_dims", "hidden_dims"}), ("guide_args", {"hidden_dims"})):
            repeated = owned & set(getattr(self, name))
            if repeated:
                raise ValueError(f"set {', '.join(sorted(repeated))} as options of their own, not in {name}")
        if self.guide is None:
            self.guide = getattr(MODELS.get(self.model), "default_guide", "diag")
        if self.out is None:
            self.out = os.path.join("runs", f"{self.model}-{self.guide}-{self.objective}")

    def _apply_defaults(self):
        model_defaults = dict(getattr(MODELS.get(self.model), "train_defaults", {}))
        fields = {f.name for f in dataclasses.fields(self)}
        unknown = set(model_defaults) - fields
        if unknown:
            raise ValueError(f"model {self.model!r}: train_defaults names unknown fields {sorted(unknown)}")
        if self.data is not None and not isinstance(self.data, str):
            self._arrays, self.data = splits_from_arrays(self.data), ARRAYS
        elif isinstance(self.data, str) and self.data.endswith(".npz"):
            self.data = os.path.abspath(self.data)
        for name, value in {**DEFAULTS, **model_defaults}.items():
            if getattr(self, name) is None:
                setattr(self, name, copy.deepcopy(value))
        if self.particles is None:
            self.particles = 5 if self.objective == "iwae" else 1

    def load_data(self, split):
        """One split of the run's data set."""
        if self.data == ARRAYS:
            if not hasattr(self, "_arrays"):
                raise ValueError(
                    "this run was trained on arrays given to TrainConfig(data=...), which a run directory does not "
                    "keep; save them with numpy.savez (see pyro_deepvi.data.arrays) and train with data='file.npz'"
                )
            return self._arrays[split]
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


def _is_count(value):
    """An integer that is not a bool (``True`` is not a number of epochs)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def resolve_device(device):
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"unknown device {device!r}; use auto, cpu, cuda or cuda:N") from None
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
        self.compiled = None  # a pyro_deepvi.compile.CompiledLoss that computes the loss instead (--compile)

    def forward(self, batch):
        if self.compiled is not None:
            return self.compiled(batch)
        return self.eager_forward(batch)

    def eager_forward(self, batch):
        return self.objective(self.model.model, self.guide, **batch)


def build(config, train_data):
    """Model, guide and objective of ``config``, sized for ``train_data``."""
    model = call_with_options(
        MODELS.get(config.model).from_data, f"model {config.model!r}",
        train_data, latent_dims=config.latent_dims, hidden_dims=config.hidden_dims, **config.model_args
    )
    check_compatible(train_data.support, model.support, config.model, data_name=config.data)
    check_views(train_data.views, model.model, config.model, config.data)
    guide = call_with_options(
        GUIDES.get(config.guide), f"guide {config.guide!r}", model, hidden_dims=config.guide_hidden_dims, **config.guide_args
    )
    objective = OBJECTIVES.get(config.objective)(particles=config.particles)
    for name, weight in config.terms.items():
        term = call_with_options(TERMS.get(name).from_model, f"term {name!r}", model, **config.term_args.get(name, {}))
        objective.add_term(name, term, weight)
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


def _destroy_process_group():
    if torch_dist.is_initialized():
        torch_dist.destroy_process_group()


class _Distributed:
    """Rank and world size under ``torchrun`` (WORLD_SIZE > 1); one process otherwise."""

    def __init__(self, device):
        self.world_size = int(os.environ.get("WORLD_SIZE", "1"))
        self.enabled = self.world_size > 1
        self.rank = int(os.environ.get("RANK", "0"))
        if self.enabled and not torch_dist.is_initialized():
            torch_dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
            # Destroyed at exit, while the interpreter is whole: a gloo group left to interpreter
            # finalization can abort the process (SIGABRT, "terminate called without an active
            # exception"; pytorch/pytorch#190489). Not after each run: a destroyed default group
            # cannot be initialized again in the same process, and one process may train several runs.
            atexit.register(_destroy_process_group)
        if self.enabled and device.type == "cuda":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))

    @property
    def is_main(self):
        return self.rank == 0

    def shard(self, index):
        """This rank's share of a global minibatch of indices (a short last batch is repeated, so none is empty)."""
        if len(index) < self.world_size:
            index = index[torch.arange(self.world_size, device=index.device) % len(index)]
        return index[self.rank :: self.world_size]

    def barrier(self):
        if self.enabled:
            torch_dist.barrier()

    def wait_for_main(self):
        """Hold every rank until rank 0 is done (its evaluation may take hours, past a barrier's default
        timeout): a rank that leaves while a peer still holds the gloo group open can abort at exit
        (SIGABRT, "terminate called without an active exception"), which failed torchrun runs in CI."""
        if self.enabled and torch_dist.get_backend() == "gloo":
            torch_dist.monitored_barrier(timeout=datetime.timedelta(days=1))
        elif self.enabled:
            torch_dist.barrier()

    def gather(self, obj):
        """Every rank's ``obj``, as a list on rank 0 (``None`` on the others)."""
        if not self.enabled:
            return [obj]
        # As torch.save bytes: gather_object's own pickling of tensors fails to unpickle them.
        buffer = io.BytesIO()
        torch.save(obj, buffer)
        gathered = [None] * self.world_size if self.is_main else None
        torch_dist.gather_object(buffer.getvalue(), gathered, dst=0)
        return [torch.load(io.BytesIO(b), weights_only=True) for b in gathered] if self.is_main else None


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

    @module_local_params()
    def __init__(self, config, overwrite=False, callbacks=()):
        self.config = config
        self.callbacks = list(callbacks)  # called with each epoch's metrics record (pyro_deepvi.callbacks)
        self.device = resolve_device(config.device)
        self.distributed = _Distributed(self.device)
        self.run_dir = Path(config.out)
        self.checkpoint_path = self.run_dir / CHECKPOINT
        self.metrics_path = self.run_dir / METRICS
        resuming = self.checkpoint_path.exists() and not overwrite
        if resuming:
            self._check_same_run()
        elif self.distributed.is_main:
            if not overwrite:
                check_fresh_start(self.run_dir)
            self.run_dir.mkdir(parents=True, exist_ok=True)

        pyro.set_rng_seed(config.seed + self.distributed.rank)
        self.train_data = config.load_data("train").to(self.device)
        self.valid_data = config.load_data("valid").to(self.device) if config.eval_every else None
        self.components = build(config, self.train_data).to(self.device)
        _create_lazy_parameters(self.components, self.train_data, config.batch_size)
        self.optimizer = torch.optim.Adam(self.components.parameters(), lr=config.lr, betas=config.adam_betas)
        self.shuffle = torch.Generator().manual_seed(config.seed)
        self.epoch, self.step = 0, 0
        self.saved_epoch = None  # the epoch of the checkpoint on disk
        if resuming:
            self._resume()
        elif self.distributed.is_main:
            for name in (CHECKPOINT, EVAL):  # an earlier run's, with --overwrite
                (self.run_dir / name).unlink(missing_ok=True)
            write_json_atomic(config.to_dict(), self.run_dir / CONFIG)
            self.metrics_path.write_text("")
        if config.compile:
            terms = f", terms {sorted(config.terms)}" if config.terms else ""
            self.components.compiled = CompiledLoss(
                self.components, f"model {config.model!r}, guide {config.guide!r}, objective {config.objective!r}{terms}"
            )
        self.loss_module = self.components
        if self.distributed.enabled:
            self.loss_module = nn.parallel.DistributedDataParallel(self.components)

    def _check_same_run(self):
        try:
            previous = json.loads((self.run_dir / CONFIG).read_text())
        except (OSError, ValueError) as e:
            raise ValueError(
                f"{self.run_dir} has a {CHECKPOINT} but no readable {CONFIG} ({e}); "
                "choose another --out, or pass --overwrite to start over"
            ) from None
        # The directory is this one however it is spelled (r/x, ./r/x/, an absolute path).
        free = ("epochs", "progress", "device", "test_particles", "data_root", "download", "out", "imports", "compile")
        current = json.loads(json.dumps(self.config.to_dict()))
        # A field a run's config.json predates has its default value there.
        defaults = json.loads(json.dumps(DEFAULTS))
        mismatched = sorted(k for k, v in current.items() if k not in free and v != previous.get(k, defaults.get(k)))
        if mismatched:
            raise ValueError(
                f"{self.run_dir} holds a run with a different config ({', '.join(mismatched)}); "
                "choose another --out, or delete that directory to start over"
            )

    def _resume(self):
        keys = ("components", "optimizer", "shuffle", "rng", "epoch", "step", "metrics_bytes")
        checkpoint = load_checkpoint(self.checkpoint_path, self.device, keys)
        load_components(self.components, checkpoint, self.checkpoint_path)
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        self.shuffle.set_state(checkpoint["shuffle"])
        # One RNG state per rank (a dict in checkpoints of one process before there were several).
        states = checkpoint["rng"] if isinstance(checkpoint["rng"], list) else [checkpoint["rng"]]
        if self.distributed.rank < len(states):
            _set_rng_state(states[self.distributed.rank])
        self.epoch, self.step = checkpoint["epoch"], checkpoint["step"]
        self.saved_epoch = self.epoch
        if self.distributed.is_main:
            recover_metrics(self.metrics_path, checkpoint["metrics_bytes"], self.epoch)
            write_json_atomic(self.config.to_dict(), self.run_dir / CONFIG)  # a larger --epochs, another device

    def _save(self, rng_states):
        save_atomic(
            {
                "components": self.components.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "shuffle": self.shuffle.get_state(),
                "rng": rng_states,
                "epoch": self.epoch,
                "step": self.step,
                "metrics_bytes": self.metrics_path.stat().st_size,
                "data": data_spec(self.train_data),  # load_run sizes the model from it, without the data
            },
            self.checkpoint_path,
        )
        self.saved_epoch = self.epoch

    def _last_good(self):
        if self.saved_epoch is None:
            return "no checkpoint was written yet"
        return f"the last good checkpoint is {self.checkpoint_path} (epoch {self.saved_epoch})"

    def _train_step(self, index):
        try:
            # Pyro's validation ran on the first call (shapes, supports, model/guide match);
            # per step it would recheck the data's support and add ~12% to the step time.
            with pyro.validation_enabled(False):
                loss = self.loss_module(self.train_data.batch(index))
        except FloatingPointError as e:
            raise FloatingPointError(f"training stopped at step {self.step} (epoch {self.epoch + 1}): {e}; {self._last_good()}") from e
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        self.step += 1

    def _check_parameters(self):
        """A finite loss can still take a step to inf or NaN (an enormous lr): stop before it is saved.

        Once per epoch, before the checkpoint (per step it cost ~10% of a step; a non-finite
        parameter makes the next step's loss non-finite, which the loss guard catches)."""
        parameters = dict(self.components.named_parameters())
        if not torch.stack([torch.isfinite(p).all() for p in parameters.values()]).all():
            bad = [name for name, p in parameters.items() if not torch.isfinite(p).all()]
            raise FloatingPointError(
                f"training stopped at the end of epoch {self.epoch + 1} (step {self.step}): an optimizer step made "
                f"{len(bad)} parameter(s) non-finite ({', '.join(bad[:3])}; lr {self.config.lr}); {self._last_good()}"
            )

    @module_local_params()
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
            self._check_parameters()
            self.epoch += 1
            record = {"epoch": self.epoch, "step": self.step, "seconds": time.perf_counter() - started}
            record.update({f"train_{k}": float(v) / num_batches for k, v in sums.items()})
            record.update({f"weight_{k}": v for k, v in self.components.objective.weights.items()})
            if config.eval_every and (self.epoch % config.eval_every == 0 or self.epoch == config.epochs):
                validation = validate(self.components, self.valid_data, config.valid_particles, config.seed)
                record.update({f"valid_{k}": v for k, v in validation.items()})
            rng_states = self.distributed.gather(_rng_state())
            if self.distributed.is_main:
                with open(self.metrics_path, "a") as f:
                    f.write(json.dumps(record) + "\n")
                try:
                    self._save(rng_states)
                except OSError as e:  # a full disk: save_atomic left the last checkpoint as it was
                    raise OSError(
                        f"could not write the checkpoint of epoch {self.epoch} to {self.checkpoint_path} "
                        f"({e.strerror or e}); {self._last_good()}, and running the command again resumes from it"
                    ) from e
                if config.progress:
                    tqdm.write(_format_record(record))
                for callback in self.callbacks:
                    callback(record)
        self.distributed.barrier()
        return self

    @module_local_params()
    def evaluate(self, num_particles=None):
        """The test-split report of :func:`~pyro_deepvi.evaluation.evaluate_run` (``eval.json``)."""
        return evaluate_run(self.run_dir, self.components, self.config, num_particles, progress=self.config.progress)


def train(config, overwrite=False, callbacks=()):
    """Train (or resume) the run described by ``config``; returns its ``eval.json`` record.

    The run directory is locked while it runs (:mod:`~pyro_deepvi.lock`). A
    directory with files that are not a run's, or a run whose checkpoint is
    missing, is refused unless ``overwrite``, which starts the run over.
    ``callbacks`` are called with each epoch's metrics record (:mod:`pyro_deepvi.callbacks`).
    Under ``torchrun`` only rank 0 evaluates; the other ranks return ``None``.
    """
    is_main = int(os.environ.get("RANK", "0")) == 0
    with run_lock(config.out) if is_main else contextlib.nullcontext():
        trainer = Trainer(config, overwrite=overwrite, callbacks=callbacks).fit()
        record = trainer.evaluate() if trainer.distributed.is_main else None
        trainer.distributed.wait_for_main()
        return record


def _format_record(record):
    shown = {k: v for k, v in record.items() if k in ("epoch", "train_elbo", "train_bound") or k.startswith("valid_")}
    return "  ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}" for k, v in shown.items())


@module_local_params()
def restore(run_dir, device="auto"):
    """Rebuild a run's components from ``config.json`` and ``checkpoint.pt`` alone, without its training data
    (except for a model that sets ``reads_training_data``: its ``from_data`` uses the values, not only the shape)."""
    run_dir = Path(run_dir)
    for name in (CONFIG, CHECKPOINT):
        if not (run_dir / name).exists():
            raise FileNotFoundError(f"{run_dir} is not a run directory: {name} is missing")
    try:
        config = TrainConfig.from_dict(json.loads((run_dir / CONFIG).read_text()))
    except ValueError as e:
        raise ValueError(f"{run_dir / CONFIG} is not a readable run config: {e}") from None
    device = resolve_device(device if device != "auto" else config.device)
    checkpoint = load_checkpoint(run_dir / CHECKPOINT, device)
    # Checkpoints record the training data's description, which sizes a model. Older checkpoints, and models
    # whose from_data reads the data's values (``reads_training_data``, e.g. deep GPs' inducing inputs), need the data.
    reads_values = getattr(MODELS.get(config.model), "reads_training_data", False)
    use_spec = "data" in checkpoint and not reads_values
    train_data = (stand_in(checkpoint["data"]) if use_spec else config.load_data("train")).to(device)
    components = build(config, train_data).to(device)
    _create_lazy_parameters(components, train_data, config.batch_size)
    load_components(components, checkpoint, run_dir / CHECKPOINT)
    components.data_spec = data_spec(train_data)
    return config, components


def load_components(components, checkpoint, path):
    """The checkpoint's parameters into ``components``; one of another model is a ValueError naming the file."""
    try:
        components.load_state_dict(checkpoint["components"])
    except RuntimeError as e:
        # The missing and unexpected parameter names, shortened: they say which module differs.
        details = "; ".join(line.strip()[:160] for line in str(e).splitlines()[1:3])
        raise ValueError(
            f"{path} does not hold this run's model ({details}); it is from another run, or from a version of "
            "the model or guide with other defaults (see its model_args and guide_args in config.json)"
        ) from None
