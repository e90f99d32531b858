"""Time of the evaluation pyro-deepvi runs at the end of training, against plain PyTorch.

``pyro_deepvi.train`` ends with ``Trainer.evaluate()``, i.e.
:func:`pyro_deepvi.evaluation.evaluate_run`: the test ELBO and log p(x) by the
IWAE-k estimate (``evaluation.bounds``, k = ``config.test_particles`` = 5000,
in chunks of ``chunk_size`` particles), active units
(``evaluation.active_units``), rate and distortion, ELBO surgery on (a part of)
the training split (``evaluation.elbo_surgery``), a linear probe of the labels,
``eval.json`` and the pictures. This script
builds a real run, dlgm 784-200-200-50 with the diag guide (``--guide``; 1 epoch
of training by default: the weights do not matter for timing), runs that report
(test split: the 1,000 test digits of mnist5k) with each estimator it calls
timed in place, and then times, in the same process (diag guide only, unless
``--no-sweep``):

- ``bounds`` alone for several ``--chunk-sizes`` (the library's default is 100, chosen from this sweep; 500 stays the sweep's reference);
- the same IWAE-k estimate of the same network in plain PyTorch
  (``benchmarks/plain_vae.py``'s ``bounds``, same weights, same chunking), and
  the ratio library / plain; their mean test log p(x) are printed as a check
  (the random draws differ: the library's ``bounds`` first runs the guide once
  to find the plate nesting, which shifts its random stream);
- ``bounds`` with Pyro's validation off, chunk 500 (``evaluate_run`` runs it
  with Pyro's default, validation on, which ``bounds`` applies to each batch's
  first chunk only).

The sweep runs every configuration on each batch of 100 test digits in turn
(the order rotating from batch to batch), so that a change of load on a shared
machine hits all of them alike; a configuration's time is the sum over the ten
batches, estimated robustly as ten times its median batch (one batch slowed
down by another process does not move it; the plain sums are in ``--json``),
and the ratio to plain is the median of the per-batch ratios. ``evaluate_run``
itself is timed once, as one call.

Usage::

    python benchmarks/eval_time.py                           # cpu, k = 5000, chunks 50,100,250,500,1000
    python benchmarks/eval_time.py --chunk-sizes 100,250,500,1000,2500 --repeats 2
    python benchmarks/eval_time.py --device cuda --chunk-sizes 500,1000,5000
    python benchmarks/eval_time.py --guide rank_one --no-sweep   # the report only
    python benchmarks/eval_time.py --threads 1 --chunk-sizes 100 --no-report --sweep-batches 5   # pyro-deepvi / plain
"""

import argparse
import contextlib
import dataclasses
import functools
import importlib
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pyro
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import plain_vae  # noqa: E402

from pyro_deepvi.engine import TrainConfig, Trainer  # noqa: E402
from pyro_deepvi.evaluation import bounds  # noqa: E402

report_module = importlib.import_module("pyro_deepvi.evaluation.report")

#: What ``evaluate_run`` calls (the names it looks up in its module), timed in place where present;
#: none of them calls another of them, so their times add up.
REPORT_PARTS = {
    "bounds": "`bounds`: test ELBO and log p(x) (1,000 test digits, the default chunk)",
    "rate_and_distortion": "`rate_and_distortion` (test digits)",
    "active_units": "`active_units` (test digits)",
    "elbo_surgery": "`elbo_surgery` (training digits)",
    "_representation_metrics": "linear probe / MIG of the posterior means",
    "_save_pictures": "samples.png, reconstructions.png",
    "save_curves": "curves.png",
}


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device):
    """(result, seconds) of ``fn()``, synchronized on a GPU."""
    _sync(device)
    start = time.perf_counter()
    result = fn()
    _sync(device)
    return result, time.perf_counter() - start


@contextlib.contextmanager
def timing_in_place(module, names, device, into):
    """Wrap ``module.<name>`` for each name so that every call's seconds are recorded in ``into[name]``."""
    originals = {name: getattr(module, name) for name in names}

    def wrap(name, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            result, seconds = timed(lambda: fn(*args, **kwargs), device)
            into.setdefault(name, []).append(seconds)
            return result

        return wrapper

    try:
        for name, fn in originals.items():
            setattr(module, name, wrap(name, fn))
        yield into
    finally:
        for name, fn in originals.items():
            setattr(module, name, fn)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--num-particles", type=int, default=5000, help="k of the IWAE-k estimate (default 5000)")
    parser.add_argument("--chunk-sizes", default="50,100,250,500,1000",
                        help="chunk_size values of bounds() to time (default 50,100,250,500,1000; 500 is always added)")
    parser.add_argument("--repeats", type=int, default=1, help="timings per chunk size and implementation (median)")
    parser.add_argument("--epochs", type=int, default=1, help="training epochs before evaluating (default 1)")
    parser.add_argument("--guide", default="diag", help="the run's guide (default diag; the sweep needs diag)")
    parser.add_argument("--no-sweep", action="store_true", help="time the report only, no chunk-size sweep")
    parser.add_argument("--sweep-batches", type=int, default=None,
                        help="sweep over the first N batches of 100 test digits only (default: all 10)")
    parser.add_argument("--no-report", action="store_true",
                        help="skip timing evaluate_run (minutes): the bounds sweep only")
    parser.add_argument("--no-validation-row", action="store_true",
                        help="skip timing bounds() with Pyro's validation off")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = parser.parse_args(argv)

    if args.no_report and (args.no_sweep or args.guide != "diag"):
        parser.error("--no-report leaves only the sweep, which needs the diag guide and no --no-sweep")
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: torch sees no CUDA device")
    if args.threads:
        torch.set_num_threads(args.threads)
    # 500 is always in the sweep: the reference of the ratios and of the validation-off row.
    chunk_sizes = sorted({int(c) for c in args.chunk_sizes.split(",") if c.strip()} | {500})
    k = args.num_particles
    print(
        f"torch {torch.__version__}, pyro {pyro.__version__}, device {device}, threads {torch.get_num_threads()}, "
        f"dlgm 784-200-200-50 + {args.guide} guide, mnist5k test (1,000 digits), k = {k}, "
        f"load average {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    load_before = os.getloadavg()[0]
    tmp = tempfile.TemporaryDirectory(prefix="eval_time_")
    config = TrainConfig(
        model="dlgm", data="mnist5k", guide=args.guide, objective="elbo", latent_dims=(50,), hidden_dims=(200, 200),
        epochs=args.epochs, seed=args.seed, device=str(device), out=str(Path(tmp.name) / "run"), eval_every=0,
        test_particles=k, progress=False,
    )
    trainer = Trainer(config)
    if args.epochs:
        trainer.fit()
    components = trainer.components
    model, guide = components.model.model, components.guide
    test = config.load_data("test").to(device)

    results = {"device": str(device), "threads": torch.get_num_threads(), "num_particles": k, "guide": args.guide,
               "load_before": load_before}
    whole = None
    if not args.no_report:
        # 1. The report the engine writes after training, with each estimator it calls timed in place.
        estimators = [name for name in REPORT_PARTS if callable(getattr(report_module, name, None))]
        in_place = {}
        with timing_in_place(report_module, estimators, device, in_place):
            report, whole = timed(trainer.evaluate, device)
        in_place = {name: sum(v) for name, v in in_place.items()}
        print(f"evaluate_run: {whole:.1f} s ("
              + ", ".join(f"{name} {seconds:.2f} s" for name, seconds in in_place.items())
              + f"), test log p(x) {report['test_log_likelihood']:.2f}; load average {os.getloadavg()[0]:.2f}",
              flush=True)
        results.update(evaluate_run_s=whole, evaluate_run_parts_s=in_place, report=report)
        _print_report_table(args, k, whole, in_place)
    if args.no_sweep or args.guide != "diag":
        results["load_after"] = os.getloadavg()[0]
        print(f"\nload average {load_before:.2f} before, {results['load_after']:.2f} after. The whole report "
              f"{'meets' if whole < 120 else 'misses'} the 2-minute target.")
        _write(args, results, tmp)
        return results
    vae = plain_vae.PlainVAE(num_data=len(trainer.train_data)).to(device).load_from_components(components)

    # 2. bounds() per chunk size, library and plain (and the library with validation off), interleaved
    #    per batch of 100 digits: every configuration sees every batch, in an order that rotates.
    configs = [(impl, c) for c in chunk_sizes for impl in ("pyro-deepvi", "plain")]
    if not args.no_validation_row:
        configs.append(("pyro-deepvi, validation off", 500))
    batches = [dataclasses.replace(test, x=test.x[s : s + 100], y=None if test.y is None else test.y[s : s + 100])
               for s in range(0, len(test), 100)]
    if args.sweep_batches:
        batches = batches[: args.sweep_batches]

    def run(config, data):
        impl, c = config
        if impl == "plain":
            return plain_vae.bounds(vae, data, k, chunk_size=c)[1]
        with pyro.validation_enabled(impl == "pyro-deepvi"):
            return bounds(model, guide, data, k, chunk_size=c)[1]

    seconds = {config: [[0.0] * len(batches) for _ in range(args.repeats)] for config in configs}
    log_liks = {config: [None] * len(batches) for config in configs}
    for rep in range(args.repeats):
        for b, data in enumerate(batches):
            shift = (b + rep * len(batches)) % len(configs)
            for config in configs[shift:] + configs[:shift]:
                log_liks[config][b], seconds[config][rep][b] = timed(functools.partial(run, config, data), device)
        print(f"sweep repetition {rep + 1}/{args.repeats} done, load average {os.getloadavg()[0]:.2f}", flush=True)
    # Every batch is the same work (100 digits, k particles), so ten times the median batch is a total (1,000 digits)
    # that one slowed-down batch does not move; the plain sums are kept in the JSON.
    total = {config: 10 * statistics.median(t for per_batch in seconds[config] for t in per_batch)
             for config in configs}
    sums = {config: [sum(per_batch) for per_batch in seconds[config]] for config in configs}
    # Paired per batch: the median over batches (and repetitions) of the time ratio pyro-deepvi / plain.
    paired = {c: statistics.median(lib / plain for r in range(args.repeats) for lib, plain in
                                   zip(seconds[("pyro-deepvi", c)][r], seconds[("plain", c)][r]))
              for c in chunk_sizes}
    # And of each chunk size against the default 500, pyro-deepvi, paired per batch.
    to_default = {c: statistics.median(a / b for r in range(args.repeats) for a, b in
                                       zip(seconds[("pyro-deepvi", c)][r], seconds[("pyro-deepvi", 500)][r]))
                  for c in chunk_sizes}
    sweep = {
        c: {"pyro-deepvi": total[("pyro-deepvi", c)], "plain": total[("plain", c)], "paired_ratio": paired[c],
            "to_chunk_500": to_default[c],
            "log_lik": float(torch.cat(log_liks[("pyro-deepvi", c)]).mean()),
            "plain_log_lik": float(torch.cat(log_liks[("plain", c)]).mean()),
            "sums": {"pyro-deepvi": sums[("pyro-deepvi", c)], "plain": sums[("plain", c)]},
            "seconds_per_batch": {"pyro-deepvi": seconds[("pyro-deepvi", c)], "plain": seconds[("plain", c)]}}
        for c in chunk_sizes
    }
    validation_off = total.get(("pyro-deepvi, validation off", 500))
    if validation_off is not None:
        validation_off_ratio = statistics.median(
            off / on for r in range(args.repeats)
            for off, on in zip(seconds[("pyro-deepvi, validation off", 500)][r], seconds[("pyro-deepvi", 500)][r]))
    load_after = os.getloadavg()[0]

    fastest = min(sweep, key=lambda c: sweep[c]["to_chunk_500"])
    print()
    print("| chunk_size | pyro-deepvi `bounds` (s, 10 x median batch) | pyro-deepvi time / chunk 500 "
          "(paired) | plain PyTorch `bounds` (s, same) | pyro-deepvi / plain (paired) "
          "| mean log p(x), pyro-deepvi / plain |")
    print("|---:|---:|---:|---:|---:|---:|")
    for c, row in sweep.items():
        mark = " (default)" if c == 100 else ""
        print(f"| {c}{mark} | {row['pyro-deepvi']:.1f} | {row['to_chunk_500']:.2f} | {row['plain']:.1f} "
              f"| {row['paired_ratio']:.2f} | {row['log_lik']:.2f} / {row['plain_log_lik']:.2f} |")
    if validation_off is not None:
        print(f"| 500, pyro-deepvi with Pyro's validation off | {validation_off:.1f} | "
              f"{validation_off_ratio:.2f} | | | |")
    plain_eval = sweep[500]["plain"]
    if whole is not None:
        print(f"\nthe whole report / a plain IWAE-{k} evaluation (plain `bounds`, chunk 500): {whole:.1f} / "
              f"{plain_eval:.1f} s = {whole / plain_eval:.2f} (the report was timed once, at the start; the plain "
              f"evaluation is 10 x its median batch; the report also does everything else above). The whole "
              f"report {'meets' if whole < 120 else 'misses'} the 2-minute target.")
        results.update(report_to_plain_evaluation=whole / plain_eval)
    print(f"fastest chunk_size for pyro-deepvi: {fastest}; load average {load_before:.2f} before, "
          f"{load_after:.2f} after (2 cores: above 2, other processes shared the CPU).")
    results.update(load_after=load_after, bounds_validation_off_s=validation_off, chunk_sizes=sweep,
                   fastest_chunk_size=fastest)
    _write(args, results, tmp)
    return results


def _print_report_table(args, k, whole, parts):
    print()
    print(f"| `evaluate_run`, dlgm 784-200-200-50 + {args.guide}, k = {k} | seconds |")
    print("|---|---:|")
    print(f"| the whole report (`Trainer.evaluate()`) | {whole:.1f} |")
    for name, seconds in parts.items():
        print(f"| of which {REPORT_PARTS[name]} | {seconds:.2f} |")
    print(f"| of which the rest (loading data, eval.json) | {whole - sum(parts.values()):.2f} |")


def _write(args, results, tmp):
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str) + "\n")
    tmp.cleanup()

if __name__ == "__main__":
    main()
