"""Test ELBO, test log p(x) (IWAE, k = 5000), active units and train time on mnist5k.

Trains, with the same epochs, batch size 100, lr 1e-3 and seed:

==================  ==========================================================
``elbo-diag``       pyro-deepvi dlgm, diag guide, ELBO (k = 1)
``elbo-rank_one``   pyro-deepvi dlgm, rank-one-precision guide, ELBO (k = 1)
``elbo-vamp``       pyro-deepvi dlgm with the VampPrior (100 learned pseudo-inputs), diag guide with
                    a ReLU encoder (the VampPrior's; a tanh one collapses), ELBO
``elbo-relu``       pyro-deepvi dlgm, N(0, I) prior, diag guide with a ReLU encoder, ELBO (elbo-vamp's baseline)
``elbo_kl-diag``    pyro-deepvi dlgm, diag guide, ELBO with the closed-form KL (``elbo_analytic_kl``)
``iwae5-diag``      pyro-deepvi dlgm, diag guide, IWAE k = 5
``iwae50-diag``     pyro-deepvi dlgm, diag guide, IWAE k = 50
``plain-vae``       the same network in plain PyTorch (benchmarks/plain_vae.py), ELBO
``plain-iwae5``     the same, IWAE k = 5
==================  ==========================================================

all 784-200-200-50 (tanh), one stochastic layer, on the 3,500 dynamically
binarized training digits of ``mnist5k``; then evaluates log p(x) on its 1,000
test digits (fixed binarization) with the IWAE-k estimate, k =
``--test-particles``. The library runs go through ``pyro_deepvi.train(TrainConfig(...))``
and write ordinary run directories under ``--out``; the plain ones write
``metrics.jsonl`` and ``eval.json`` there too. The table (markdown) is printed
and written with all numbers to ``<out>/mnist5k_table.json``.

Columns: test ELBO and log p(x) in nats per digit (± the standard error over
test digits); active units (``AU``: units whose E_q[z|x] varies over the test
digits with variance > 0.01) as ``pyro_deepvi.evaluation.active_units`` reports
them, which for these Gaussian guides is exact (the guide's mean; the plain runs
use μ(x) likewise, and the library's count is checked against μ(x) computed
directly from the guide's encoder); train time is the sum of the epochs' loop
times (no evaluation). The paper column holds the two figures of Burda et al. (2016),
Table 1, for this architecture (1 stochastic layer) on the full binarized MNIST
(50,000 training digits, 3,280 epochs): VAE −86.76, IWAE k = 50 −84.78; the
``elbo-vamp`` row's is Tomczak & Welling's (2018) one-layer VAE with the VampPrior
on dynamic MNIST, −85.57, and the ``elbo-relu`` row's theirs with the standard normal prior, −88.56. They
are a reference point, not a target: mnist5k has 14x fewer training digits and
these runs are far shorter, so expect worse (lower) log-likelihoods and a
larger gap to them.

Usage::

    python benchmarks/mnist5k_table.py                             # ~20 min on 2 CPU cores, without elbo-vamp
    python benchmarks/mnist5k_table.py --epochs 5 --test-particles 500   # smoke run, ~2 min
    python benchmarks/mnist5k_table.py --only elbo-diag,plain-vae --out runs/table2

The ``elbo-vamp`` row's evaluation is slow at k = 5000 (over 20 minutes at load 5): every
particle's log p(z) is a 100-component mixture. ``--test-particles 1000`` took 7 minutes.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import plain_vae  # noqa: E402
from _common import fresh_run_dirs  # noqa: E402
import pyro_deepvi  # noqa: E402
from pyro_deepvi import TrainConfig  # noqa: E402

PAPER = "Burda et al. 2016, Table 1, full binarized MNIST, 1 stochastic layer (elbo-vamp: Tomczak & Welling 2018)"

RUNS = {
    "elbo-diag": dict(kind="pyro-deepvi", objective="elbo", guide="diag", particles=1, paper=-86.76),
    "elbo_kl-diag": dict(kind="pyro-deepvi", objective="elbo_analytic_kl", guide="diag", particles=1, paper=-86.76),
    "elbo-rank_one": dict(kind="pyro-deepvi", objective="elbo", guide="rank_one", particles=1, paper=None),
    "elbo-vamp": dict(kind="pyro-deepvi", objective="elbo", guide="diag", particles=1, paper=-85.57,
                      model_args={"prior": "vamp", "prior_components": 100}, guide_args={"activation": "relu"}),
    "elbo-relu": dict(kind="pyro-deepvi", objective="elbo", guide="diag", particles=1, paper=-88.56,
                      guide_args={"activation": "relu"}),
    "iwae5-diag": dict(kind="pyro-deepvi", objective="iwae", guide="diag", particles=5, paper=None),
    "iwae50-diag": dict(kind="pyro-deepvi", objective="iwae", guide="diag", particles=50, paper=-84.78),
    "plain-vae": dict(kind="plain", objective="elbo", guide="diag", particles=1, paper=-86.76),
    "plain-iwae5": dict(kind="plain", objective="iwae", guide="diag", particles=5, paper=None),
}

#: Measured on a 2-core AMD EPYC (torch 2.13, --threads 1, load ~2 from other jobs): one epoch of all
#: six runs takes ~5.5 s (3.5 s of it IWAE k=50) and each k = 5000 evaluation 40-65 s (more for
#: rank_one, whose ELBO surgery takes ~35 s; see benchmarks/eval_time.py), so 100 epochs come to
#: ~18 minutes, ~25 with the machine half as fast.
DEFAULT_EPOCHS = 100


@torch.no_grad()
def check_active_units(components, data, reported, threshold=0.01, batch_size=500):
    """Check the library's active-unit count against E_q[h|x] = the guide's posterior mean, computed here.

    ``evaluation.active_units`` takes the guide distribution's ``.mean`` (exact for
    Gaussian guides); this recomputes it from the guide's encoder and heads, so a
    regression to sampled means (whose noise inflates the count) fails loudly.
    """
    guide = components.guide
    counts = {}
    for name in guide.latent_shapes:
        means = []
        for start in range(0, len(data), batch_size):
            x = data.x[start : start + batch_size]
            means.append(guide.posterior(name, guide.encoder(x)).mean)
        counts[name] = int((torch.cat(means).var(0) > threshold).sum())
    counts["total"] = sum(counts.values())
    if counts != reported:
        raise AssertionError(f"active units: the library reports {reported}, the guide's exact means give {counts}")


def run_library(name, spec, args, out):
    config = TrainConfig(
        model="dlgm", data="mnist5k", guide=spec["guide"], objective=spec["objective"], particles=spec["particles"],
        epochs=args.epochs, batch_size=100, lr=1e-3, latent_dims=(50,), hidden_dims=(200, 200),
        model_args=spec.get("model_args", {}), guide_args=spec.get("guide_args", {}), seed=args.seed,
        device=args.device, out=str(out), eval_every=args.eval_every, test_particles=args.test_particles,
        progress=False,
    )
    started = time.perf_counter()
    result = pyro_deepvi.train(config)
    wall = time.perf_counter() - started
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if line.strip()]
    _, components = pyro_deepvi.restore(out, device=args.device)
    test = pyro_deepvi.load("mnist5k", "test").to(next(components.parameters()).device)
    check_active_units(components.eval(), test, result["active_units"])
    return {
        **result,
        "train_seconds": sum(m["seconds"] for m in metrics),
        "final_train_elbo": metrics[-1].get("train_elbo"),
        "wall_seconds": wall,
    }


def run_plain(name, spec, args, out):
    started = time.perf_counter()
    result = plain_vae.train(
        data="mnist5k", objective=spec["objective"], particles=spec["particles"], epochs=args.epochs,
        batch_size=100, lr=1e-3, seed=args.seed, device=args.device, test_particles=args.test_particles,
        out=out, log=None,
    )
    result["wall_seconds"] = time.perf_counter() - started
    return result


def _fmt(value, digits=2):
    return "—" if value is None else f"{value:.{digits}f}"


def markdown(results, args):
    lines = [
        f"mnist5k (3,500 train / 1,000 test digits), 784-200-200-50, {args.epochs} epochs, batch 100, "
        f"Adam lr 1e-3, seed {args.seed}, device {args.device}; log p(x) by IWAE with k = {args.test_particles}.",
        "",
        "| run | implementation | objective (train k) | guide | test ELBO | test log p(x) | AU "
        "| train time (s) | s / epoch | paper log p(x)* |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in results.items():
        spec = RUNS[name]
        lines.append(
            f"| {name} | {spec['kind']} | {spec['objective']} ({spec['particles']}) | {spec['guide']} "
            f"| {_fmt(r['test_elbo'])} | {_fmt(r['test_log_likelihood'])} ± {_fmt(r['test_log_likelihood_stderr'])} "
            f"| {r['active_units'].get('total', '—')} "
            f"| {_fmt(r['train_seconds'], 1)} | {_fmt(r['train_seconds'] / args.epochs, 2)} | {_fmt(spec['paper'])} |"
        )
    lines += ["", f"\\* {PAPER}; a reference point only (50,000 training digits, 3,280 epochs)."]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS, help=f"training epochs (default {DEFAULT_EPOCHS})")
    parser.add_argument("--test-particles", type=int, default=5000, help="k of the test log p(x) estimate (default 5000)")
    parser.add_argument("--out", default="runs/mnist5k_table", help="runs directory (default runs/mnist5k_table)")
    parser.add_argument("--only", default=None, help=f"comma-separated subset of: {', '.join(RUNS)}")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--eval-every", type=int, default=0,
                        help="pyro-deepvi validation passes every N epochs (default 0: none, as for the plain runs)")
    parser.add_argument("--overwrite", action="store_true", help="delete existing run directories of the same names first")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch.set_num_threads (default: torch's); 1 is steadier on a machine shared with other jobs")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    names, out_root = fresh_run_dirs(parser, RUNS, args.only, args.out, args.overwrite)

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.2f}", flush=True)
    results = {}
    json_path = out_root / "mnist5k_table.json"
    for name in names:
        spec = RUNS[name]
        print(f"{name}: training {args.epochs} epochs ...", flush=True)
        run = run_library if spec["kind"] == "pyro-deepvi" else run_plain
        results[name] = run(name, spec, args, out_root / name)
        r = results[name]
        print(
            f"{name}: test ELBO {r['test_elbo']:.2f}, log p(x) {r['test_log_likelihood']:.2f}, "
            f"train {r['train_seconds']:.1f} s, total {r['wall_seconds']:.1f} s",
            flush=True,
        )
        record = {"config": {k: v for k, v in vars(args).items()}, "paper": PAPER, "runs": results}
        json_path.write_text(json.dumps(record, indent=2) + "\n")
    table = markdown(results, args)
    print()
    print(table)
    (out_root / "mnist5k_table.md").write_text(table + "\n")
    print(f"\nwritten: {json_path}, {out_root / 'mnist5k_table.md'}")
    return results


if __name__ == "__main__":
    main()
