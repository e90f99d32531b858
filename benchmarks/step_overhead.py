"""Time of one training step of pyro-deepvi's dlgm against the same network in plain PyTorch.

One step is what ``pyro_deepvi.engine.Trainer.fit`` does per minibatch:
``Trainer._train_step`` (the loss ``Components(batch)`` under
``pyro.validation_enabled(False)``: trace the guide, replay the model,
log-densities, objective, NaN guard; then ``zero_grad``, ``backward``, Adam
``step``) and the sum of the objective's logged parts. The ``pyro-deepvi`` row
calls that code itself: a real ``Trainer`` (its run directory in a temporary
folder) whose ``train_data`` hands out one fixed minibatch. The plain step
(``benchmarks/plain_vae.py``) is the same network, the same estimator and the
same Adam, written directly in torch. Both start from the same weights and see
the same minibatch (batch 100 of mnist5k, dynamically binarized once); they run
in the same process, interleaved (the order rotates every repetition), warm-up
excluded, and the table gives the median time per step and the ratio
pyro-deepvi / plain (the median of the per-repetition ratios, which is robust
to a shared, noisy machine).

Rows, for each objective (``elbo``, k = 1 and ``iwae``, k = 5):

- ``plain``: the plain PyTorch step;
- ``pyro-deepvi``: the engine's step as shipped (``Trainer._train_step``: Pyro
  validation off; the engine validates only on its first, warm-up call);
- ``pyro-deepvi, validation on``: for comparison, the same step with Pyro's
  validation on (Pyro's default, and the engine's step before it turned it off);
- ``pyro-deepvi, per-step parameter check``: the step plus the finiteness check
  of every parameter that ``_train_step`` ran every step before it moved to the
  end of the epoch (what that move saved);
- ``pyro-deepvi, compiled``: the engine's step with ``TrainConfig(compile=True)``
  (``--compile``: the loss traced once, :mod:`pyro_deepvi.compile`).

Each row also gives its overhead over plain PyTorch in microseconds per step
(the median of the per-repetition differences). ``--batch-size 1`` is where
Python overhead dominates; ``--hidden-dims 16 --latent-dim 2`` (a tiny network
whose matrix work is negligible) is the proxy for a GPU, where the per-step
host cost is what remains.

``--ablations`` adds rows that take one more cost out of the shipped step, to
measure what each remaining piece costs (see benchmarks/README.md):
``ELBO.loss`` through Trace_ELBO's surrogate (elbo only: the path the ELBO still
takes for non-reparameterized guides, and took for every guide before), no
logged parts and NaN guard, and bare Pyro tracing with no library code.
``--breakdown`` times the stages of the step one by one; ``--profile N`` runs
cProfile over N steps of the shipped step.

Usage::

    python benchmarks/step_overhead.py                       # cpu, 300 timed steps per row
    python benchmarks/step_overhead.py --ablations --breakdown
    python benchmarks/step_overhead.py --device cuda --steps 500
    python benchmarks/step_overhead.py --profile 100
    python benchmarks/step_overhead.py --threads 1 --batch-size 1
    python benchmarks/step_overhead.py --threads 1 --hidden-dims 16 --latent-dim 2   # the GPU-cost proxy
"""

import argparse
import cProfile
import io
import json
import math
import os
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pyro
import torch
from pyro import poutine
from pyro.poutine.util import prune_subsample_sites
from pyro.util import check_model_guide_match, check_site_shape
from torch.utils._python_dispatch import TorchDispatchMode

sys.path.insert(0, str(Path(__file__).resolve().parent))

from plain_vae import PlainVAE  # noqa: E402

import pyro_deepvi  # noqa: E402
from pyro_deepvi.engine import TrainConfig, Trainer  # noqa: E402
from pyro_deepvi.importance import PARTICLES, importance_traces, log_weights, total  # noqa: E402
from pyro_deepvi.objectives.estimators import ELBO, _with_gradient_of  # noqa: E402


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class _FixedMinibatch:
    """Stands in for ``Trainer.train_data``: ``batch(index)`` returns the same minibatch every step."""

    def __init__(self, batch):
        self._batch = batch

    def batch(self, index):
        return self._batch


class _TraceELBOSurrogate(ELBO):
    """``ELBO.loss`` through Trace_ELBO's surrogate for every guide.

    This is ``ELBO.loss``'s branch for guides with non-reparameterized sites (and
    what it did for every guide before it computed reparameterized losses from
    the log weights): ``_differentiable_loss_particle`` sums every site a second
    time and turns the loss into a float through ``torch_item`` (host syncs).
    """

    def loss(self, model_trace, guide_trace, weights):
        loss, surrogate = self._pyro_elbo._differentiable_loss_particle(model_trace, guide_trace)
        return _with_gradient_of(loss, surrogate) / self.num_particles


class Case:
    """One objective: a pyro-deepvi ``Trainer`` per row and the plain VAE, all from the same weights."""

    def __init__(self, objective, particles, args, device):
        self.objective, self.particles, self.device = objective, particles, device
        self.hidden_dims, self.latent_dim = args.hidden_dims, args.latent_dim
        self.config = TrainConfig(
            objective=objective, particles=particles, batch_size=args.batch_size, seed=args.seed,
            device=str(device), progress=False, eval_every=0, latent_dims=(args.latent_dim,), hidden_dims=args.hidden_dims,
        )
        self.train_data = pyro_deepvi.load("mnist5k", "train").to(device)
        pyro.set_rng_seed(args.seed)
        self.batch = self.train_data.batch(torch.arange(args.batch_size, device=device))
        self.num_data = len(self.train_data)
        self._tmp = tempfile.TemporaryDirectory(prefix="step_overhead_")
        self._trainers = 0
        self.reference = self.trainer().components

    def plain_vae(self):
        return PlainVAE(z_dim=self.latent_dim, hidden_dims=self.hidden_dims, num_data=self.num_data).to(self.device)

    def trainer(self, **options):
        """A fresh ``Trainer`` (same seed, so same initial weights) that trains on the fixed minibatch."""
        self._trainers += 1
        out = Path(self._tmp.name) / f"run{self._trainers}"
        trainer = Trainer(TrainConfig(**{**self.config.to_dict(), "out": str(out), **options}))
        trainer.train_data = _FixedMinibatch(self.batch)
        return trainer

    # Step functions: each returns a closure that runs one training step.

    def engine_step(self, parameter_check=False, **options):
        """The engine's step as shipped: the body of ``Trainer.fit``'s inner loop, calling its code.

        ``parameter_check``: also run the end-of-epoch parameter check every step (as the step did before).
        ``options``: TrainConfig fields, e.g. ``compile=True``.
        """
        trainer = self.trainer(**options)
        index = self.batch["index"]
        num_batches = -(-self.num_data // self.config.batch_size)
        sums = {}

        def step():
            trainer.components.objective.set_epoch(trainer.epoch + (trainer.step % num_batches) / num_batches)
            trainer._train_step(trainer.distributed.shard(index))
            if parameter_check:
                trainer._check_parameters()
            for name, value in trainer.components.objective.parts.items():
                sums[name] = sums.get(name, 0.0) + value

        step.components = trainer.components
        return step

    def validated_step(self):
        """``Trainer._train_step`` with Pyro's validation on (Pyro's default; the engine's step before)."""
        trainer = self.trainer()
        index = self.batch["index"]
        num_batches = -(-self.num_data // self.config.batch_size)
        sums = {}

        def step():
            trainer.components.objective.set_epoch(trainer.epoch + (trainer.step % num_batches) / num_batches)
            with pyro.validation_enabled(True):
                loss = trainer.loss_module(trainer.train_data.batch(trainer.distributed.shard(index)))
            trainer.optimizer.zero_grad()
            loss.backward()
            trainer.optimizer.step()
            trainer.step += 1
            for name, value in trainer.components.objective.parts.items():
                sums[name] = sums.get(name, 0.0) + value

        step.components = trainer.components
        return step

    def trace_elbo_step(self):
        """The engine's step with ``ELBO.loss`` through Trace_ELBO's surrogate (elbo only)."""
        step = self.engine_step()
        objective = step.components.objective
        objective.estimator = _TraceELBOSurrogate(objective.estimator.num_particles)
        return step

    def plain_step(self):
        vae = self.plain_vae().load_from_components(self.reference)
        optimizer = torch.optim.Adam(vae.parameters(), lr=self.config.lr)
        x = self.batch["x"]

        def step():
            loss, _ = vae.loss(x, self.objective, self.particles)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

        return step

    def lean_step(self):
        """The engine's step without the logged parts and the NaN guard (``torch.isfinite(loss)``).

        ``Objective.forward`` reduced to importance_traces, log_weights and the
        estimator's loss, under ``pyro.validation_enabled(False)``.
        """
        trainer = self.trainer()
        components, optimizer = trainer.components, trainer.optimizer
        model, guide, objective = components.model.model, components.guide, components.objective
        estimator, k = objective.estimator, self.particles
        nesting = objective._max_plate_nesting

        def step():
            with pyro.validation_enabled(False):
                model_trace, guide_trace = importance_traces(model, guide, k, nesting, kwargs=self.batch)
                loss = estimator.loss(model_trace, guide_trace, log_weights(model_trace, guide_trace, nesting))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

        return step

    def bare_pyro_step(self):
        """The floor of Pyro's machinery: trace the guide, replay the model, log_prob, no library code."""
        trainer = self.trainer()
        components, optimizer = trainer.components, trainer.optimizer
        model, guide, k = components.model.model, components.guide, self.particles
        scale = self.num_data / self.batch["x"].shape[0]

        def step():
            with pyro.validation_enabled(False):
                particles = pyro.plate(PARTICLES, k, dim=-2)
                guide_trace = poutine.trace(particles(guide)).get_trace(**self.batch)
                model_trace = poutine.trace(poutine.replay(particles(model), trace=guide_trace)).get_trace(**self.batch)
                log_w = 0.0
                for sign, trace in ((1, model_trace), (-1, guide_trace)):
                    for site in trace.nodes.values():
                        if site["type"] == "sample" and site["name"] != "data":
                            log_w = log_w + sign * site["fn"].log_prob(site["value"])
                bound = log_w.mean(0) if self.objective == "elbo" else torch.logsumexp(log_w, 0) - math.log(k)
                loss = -scale * bound.sum()
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()

        return step

    def check_equivalence(self):
        """Loss and gradients of pyro-deepvi and the plain VAE from the same weights and random draws."""
        components, vae = self.reference, self.plain_vae()
        vae.load_from_components(components)
        components.zero_grad()
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            torch.manual_seed(1)
            with pyro.validation_enabled(False):
                loss_pyro = components(self.batch)
            loss_pyro.backward()
            torch.manual_seed(1)
            loss_plain, _ = vae.loss(self.batch["x"], self.objective, self.particles)
            loss_plain.backward()
        guide = components.guide
        theirs = [*components.model.decoder.parameters(), *guide.encoder.net.parameters(), *guide.heads["h1"].parameters()]
        g_pyro = torch.cat([p.grad.flatten() for p in theirs])
        g_plain = torch.cat([p.grad.flatten() for p in vae.parameters()])
        components.zero_grad()
        return {
            "loss_rel_diff": abs(loss_pyro.item() - loss_plain.item()) / abs(loss_plain.item()),
            "grad_rel_diff": float((g_pyro - g_plain).norm() / g_plain.norm()),
        }


class _CountOps(TorchDispatchMode):
    """Counts aten ops, and host syncs (``.item()``, ``bool(tensor)``: ``aten._local_scalar_dense``)
    outside ``torch.optim`` (Adam reads its CPU step counters that way, which is no device sync)."""

    def __init__(self):
        super().__init__()
        self.ops, self.syncs = 0, 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops += 1
        if func is torch.ops.aten._local_scalar_dense.default:
            frame = sys._getframe(1)
            while frame is not None and "torch/optim/" not in frame.f_code.co_filename.replace("\\", "/"):
                frame = frame.f_back
            self.syncs += frame is None
        return func(*args, **(kwargs or {}))


def count_ops(step):
    """(aten ops, host syncs) of one call of ``step`` (after one uncounted call, which creates
    Adam's state); each sync blocks the host on a GPU."""
    step()
    with _CountOps() as counter:
        step()
    return counter.ops, counter.syncs


def time_interleaved(steps, device, num_steps, warmup):
    """Median seconds per step of each closure, run in rotating order; and per-repetition times."""
    names = list(steps)
    times = {name: [] for name in names}
    for rep in range(warmup + num_steps):
        shift = rep % len(names)
        for name in names[shift:] + names[:shift]:
            _sync(device)
            start = time.perf_counter()
            steps[name]()
            _sync(device)
            if rep >= warmup:
                times[name].append(time.perf_counter() - start)
    return times


def breakdown(case, device, num_steps, warmup, validation=False):
    """Median time of each stage of the engine's step (its code path replayed stage by stage).

    The stages are those of ``Trainer._train_step`` -> ``Objective.forward`` ->
    ``importance_traces`` (Pyro's ``get_importance_trace``) -> ``ELBO``/``IWAE.loss``,
    then ``fit``'s sum of the logged parts; ``validation=True`` adds Pyro's checks.
    Returns ``(stages, aside)``: ``aside`` holds timings that are not part of the
    step (for a reparameterized ELBO, the Trace_ELBO surrogate it no longer computes).
    """
    trainer = case.trainer()
    components, optimizer = trainer.components, trainer.optimizer
    objective = components.objective
    model, guide = components.model.model, components.guide
    estimator, nesting, k = objective.estimator, objective._max_plate_nesting, case.particles
    old_path = _TraceELBOSurrogate(k) if type(estimator) is ELBO else None
    batch = case.batch
    stages, aside, sums = {}, {}, {}

    def mark(name, start, into=stages):
        _sync(device)
        now = time.perf_counter()
        into.setdefault(name, []).append(now - start)
        return now

    for rep in range(warmup + num_steps):
        if rep == warmup:
            stages.clear()
            aside.clear()
        with pyro.validation_enabled(validation):
            _sync(device)
            t = time.perf_counter()
            particles = pyro.plate(PARTICLES, k, dim=-(nesting + 1))
            guide_trace = poutine.trace(particles(guide), graph_type="flat").get_trace(**batch)
            t = mark("trace guide (encoder forward, sample)", t)
            model_trace = poutine.trace(
                poutine.replay(particles(model), trace=guide_trace), graph_type="flat").get_trace(**batch)
            t = mark("trace model, replayed (decoder forward)", t)
            if validation:
                check_model_guide_match(model_trace, guide_trace, nesting + 1)
                t = mark("validation: check_model_guide_match", t)
            guide_trace = prune_subsample_sites(guide_trace)
            model_trace = prune_subsample_sites(model_trace)
            model_trace.compute_log_prob()
            t = mark("model log_prob" + (" (+ support check, NaN/Inf warning)" if validation else ""), t)
            guide_trace.compute_score_parts()
            t = mark("guide score_parts (log_prob, entropy term)", t)
            if validation:
                for trace in (model_trace, guide_trace):
                    for site in trace.nodes.values():
                        if site["type"] == "sample":
                            check_site_shape(site, nesting + 1)
                t = mark("validation: check_site_shape", t)
            weights = log_weights(model_trace, guide_trace, nesting)
            t = mark("log_weights bookkeeping", t)
            loss = estimator.loss(model_trace, guide_trace, weights)
            t = mark(f"estimator loss ({type(estimator).__name__}.loss)", t)
            if old_path is not None:
                old_path.loss(model_trace, guide_trace, weights)
                t = mark("Trace_ELBO surrogate loss (ELBO.loss for non-reparameterized guides)", t, aside)
            log_w = total(weights).detach()
            parts = {
                "elbo": log_w.mean(),
                "bound": estimator.bound(log_w).mean(),
                "rate": (weights.log_q - weights.log_p_latent).detach().mean(),
                "distortion": -weights.log_p_obs.detach().mean(),
            }
            t = mark("logged parts", t)
            if not torch.isfinite(loss):
                raise FloatingPointError("non-finite loss")
            t = mark("NaN guard: isfinite(loss) (a sync on GPU)", t)
        optimizer.zero_grad()
        loss.backward()
        t = mark("backward", t)
        optimizer.step()
        t = mark("Adam step", t)
        for name, value in parts.items():
            sums[name] = sums.get(name, 0.0) + value
        t = mark("sum of the logged parts (fit loop)", t)
    return ({name: statistics.median(v) for name, v in stages.items()},
            {name: statistics.median(v) for name, v in aside.items()})


def plain_breakdown(case, device, num_steps, warmup):
    vae = case.plain_vae().load_from_components(case.reference)
    optimizer = torch.optim.Adam(vae.parameters(), lr=case.config.lr)
    x = case.batch["x"]
    stages = {}
    for rep in range(warmup + num_steps):
        _sync(device)
        t0 = time.perf_counter()
        loss, _ = vae.loss(x, case.objective, case.particles)
        _sync(device)
        t1 = time.perf_counter()
        optimizer.zero_grad()
        loss.backward()
        _sync(device)
        t2 = time.perf_counter()
        optimizer.step()
        _sync(device)
        t3 = time.perf_counter()
        if rep >= warmup:
            for name, value in (("forward + loss", t1 - t0), ("backward", t2 - t1), ("Adam step", t3 - t2)):
                stages.setdefault(name, []).append(value)
    return {name: statistics.median(v) for name, v in stages.items()}


def profile(step, num_steps, top):
    step()
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(num_steps):
        step()
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("cumulative").print_stats(top)
    stats.sort_stats("tottime").print_stats(top)
    return out.getvalue()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--steps", type=int, default=300, help="timed steps per row (default 300)")
    parser.add_argument("--warmup", type=int, default=30, help="untimed steps first (default 30)")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--hidden-dims", type=lambda s: tuple(int(d) for d in s.split(",")), default=(200, 200),
                        help="hidden widths, e.g. 16 (default 200,200)")
    parser.add_argument("--latent-dim", type=int, default=50, help="default 50")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--objectives", default="elbo:1,iwae:5", help="objective:k,... (default elbo:1,iwae:5)")
    parser.add_argument("--no-validation-row", action="store_true",
                        help="leave out the 'validation on' comparison row")
    parser.add_argument("--ablations", action="store_true", help="add rows that remove one library cost at a time")
    parser.add_argument("--breakdown", action="store_true", help="time the stages of the engine's step")
    parser.add_argument("--profile", type=int, default=0, metavar="N", help="cProfile N engine steps per objective")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = parser.parse_args(argv)

    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: torch sees no CUDA device")
    if args.threads:
        torch.set_num_threads(args.threads)
    cases = [(o, int(k)) for o, k in (item.split(":") for item in args.objectives.split(","))]
    print(
        f"torch {torch.__version__}, pyro {pyro.__version__}, device {device}, threads {torch.get_num_threads()}, "
        f"batch {args.batch_size}, dlgm 784-{'-'.join(map(str, args.hidden_dims))}-{args.latent_dim} + diag guide, {args.steps} timed steps per row "
        f"(+{args.warmup} warm-up), interleaved"
    )
    results = {"device": str(device), "threads": torch.get_num_threads(), "steps": args.steps, "cases": []}
    load_before = os.getloadavg()[0]
    rows = []
    for objective, k in cases:
        case = Case(objective, k, args, device)
        equivalence = case.check_equivalence()
        steps = {"plain": case.plain_step(), "pyro-deepvi": case.engine_step(),
                 "pyro-deepvi, compiled": case.engine_step(compile=True),
                 "pyro-deepvi, per-step parameter check": case.engine_step(parameter_check=True)}
        if not args.no_validation_row:
            steps["pyro-deepvi, validation on"] = case.validated_step()
        if args.ablations:
            if objective == "elbo":
                steps["  ablation: ELBO.loss via Trace_ELBO's surrogate (the pre-change path)"] = case.trace_elbo_step()
            steps["  ablation: no logged parts, no NaN guard"] = case.lean_step()
            steps["  ablation: bare Pyro (trace + replay + log_prob)"] = case.bare_pyro_step()
        times = time_interleaved(steps, device, args.steps, args.warmup)
        counts = {name: count_ops(step) for name, step in steps.items()}  # after warm-up: a compiled step's steady state
        plain = times["plain"]
        record = {"objective": objective, "particles": k, "equivalence": equivalence, "rows": {}}
        for name, values in times.items():
            ratio = statistics.median(v / p for v, p in zip(values, plain))
            q = statistics.quantiles(values, n=4)
            record["rows"][name] = {"median_ms": 1e3 * statistics.median(values), "q1_ms": 1e3 * q[0],
                                    "q3_ms": 1e3 * q[2], "ratio_to_plain": ratio,
                                    "overhead_us": 1e6 * statistics.median(v - p for v, p in zip(values, plain)),
                                    "aten_ops": counts[name][0], "host_syncs": counts[name][1]}
            rows.append((f"{objective} k={k}", name, record["rows"][name]))
        if args.breakdown:
            shipped, aside = breakdown(case, device, args.steps, args.warmup, validation=False)
            validated, _ = breakdown(case, device, args.steps, args.warmup, validation=True)
            plain_stages = plain_breakdown(case, device, args.steps, args.warmup)
            record["breakdown_ms"] = {
                variant: {n: 1e3 * v for n, v in stages.items()}
                for variant, stages in (("pyro-deepvi (the engine's step, validation off)", shipped),
                                        ("pyro-deepvi, validation on", validated), ("plain", plain_stages))
            }
            record["breakdown_aside_ms"] = {n: 1e3 * v for n, v in aside.items()}
        if args.profile:
            record["profile"] = profile(case.engine_step(), args.profile, 35)
        results["cases"].append(record)

    print()
    print("| objective | step | ms/step (median) | IQR | ratio to plain | overhead µs/step | aten ops | host syncs |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for label, name, row in rows:
        print(f"| {label} | {name.strip()} | {row['median_ms']:.2f} | {row['q1_ms']:.2f}–{row['q3_ms']:.2f} | "
              f"{row['ratio_to_plain']:.2f} | {row['overhead_us']:.0f} | {row['aten_ops']} | {row['host_syncs']} |")
    print(f"\nload average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after (2 cores: a load above 2 "
          "means other processes shared the CPU; the ratios, paired per repetition, are the robust numbers). "
          "aten ops: forward + backward + Adam of one step; host syncs: .item()/bool(tensor) outside the "
          "optimizer, each a device-to-host sync on a GPU.")
    print()
    for record in results["cases"]:
        eq = record["equivalence"]
        print(f"{record['objective']} k={record['particles']}: same weights and draws give loss rel. diff "
              f"{eq['loss_rel_diff']:.1e}, gradient rel. diff {eq['grad_rel_diff']:.1e} (pyro-deepvi vs plain)")
    for record in results["cases"]:
        if "breakdown_ms" in record:
            print(f"\nstage breakdown, {record['objective']} k={record['particles']} (median ms per stage; "
                  f"stages are synced and timed separately, so they sum to a bit more than one step)")
            for variant, stages in record["breakdown_ms"].items():
                print(f"  {variant}: total {sum(stages.values()):.2f} ms")
                for name, ms in stages.items():
                    print(f"    {ms:7.3f}  {name}")
            for name, ms in record.get("breakdown_aside_ms", {}).items():
                print(f"  not part of the step, for comparison: {ms:.3f} ms  {name}")
    for record in results["cases"]:
        if "profile" in record:
            print(f"\ncProfile of {args.profile} steps of the engine's step, {record['objective']} k={record['particles']}")
            print(record["profile"])
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    main()
