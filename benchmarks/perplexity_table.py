"""Held-out perplexity on reuters by document completion: DEFs, one-layer Poisson factorization, LDA.

Every run fits the 315 training documents of ``reuters`` (4,258 words) and completes its 40
test documents: each test document's tokens are split in half (seed 0), its latent
variables are inferred from the first half with everything global fixed, and the second
half is scored (``pyro_deepvi.evaluation.perplexity``). The runs:

======================  ===================================================================
``pf-100``              one-layer Poisson factorization: ``def`` with one gamma layer of 100
``gamma-100-30-15``     sparse gamma DEF 100-30-15, ``local`` guide, ``elbo`` (reparameterized)
``mixed-100-30``        DEF of 100 gamma units over 30 Poisson units (log link, normal W1),
                        ``tracegraph_elbo`` (reparameterized gamma, Rao-Blackwellized score
                        function for the Poisson units)
``poisson-100-30``       the paper's Poisson DEF 100-30: Poisson units, rates z_{l+1}ᵀ w (identity
                        link, gamma weights), ``tracegraph_elbo``
``poisson-100-30-log``   the same with the log link, rates exp(z_2ᵀ w_1) and normal W1
                        (``poisson_link="log"``; W0 stays gamma, the rate of x linear)
``gamma-100-30-15-score``  the gamma DEF, ``local_score_function`` guide, ``tracegraph_elbo``: the
                        paper's Rao-Blackwellized score function, no reparameterization (with
                        ``local``, ``tracegraph_elbo`` gives the same gradient as ``elbo``)
``hvm-100-30-15``         the gamma DEF with the hierarchical variational model over its local
                        guide (``hvm_local``, Ranganath, Tran & Blei 2016), ``elbo``: its ELBO
                        column is the auxiliary (hierarchical) ELBO
``hvm-poisson-100-30``     the Poisson DEF 100-30 with ``hvm_local``, ``tracegraph_elbo`` (the HVM
                        paper's setting: a deep discrete DEF, where mean-field BBVI is weakest)
``hvm-poisson-100-30-slow``  the same with the shared flows' and r's steps 10 times smaller
                        (``shared_step=0.005``), against their random walk under score-function noise
``lda-50``, ``lda-100``   LDA (the ``lda`` package's collapsed Gibbs sampler, α = 0.1, η = 0.01)
======================  ===================================================================

The DEF runs go through ``pyro_deepvi.train(TrainConfig(...))`` with full batches (one Adam step,
lr 0.05, per epoch, ``--steps`` epochs) and write ordinary run directories under ``--out``; the
estimator comparison is ``gamma-100-30-15`` (reparameterized) against ``gamma-100-30-15-score``,
at equal steps. Columns: the ELBO per training document after training
(the full ELBO, global KL included, by 10 reparameterized particles), the test perplexity and
the training time. The paper's figures (Ranganath et al. 2015) are on the New York Times, a
corpus hundreds of times larger than reuters with another vocabulary and held-out split, so
they are a reference point, not a target.

Usage::

    python benchmarks/perplexity_table.py --threads 1                # ~1 h on one shared CPU core
    python benchmarks/perplexity_table.py --steps 50 --only pf-100,lda-50   # smoke run
"""

import argparse
import json
import os
import time

import torch
from _common import fresh_run_dirs

import pyro_deepvi
from pyro_deepvi import TrainConfig
from pyro_deepvi.evaluation.perplexity import lda_perplexity
from pyro_deepvi.objectives import tracegraph_elbo

PAPER = "Ranganath et al. 2015, New York Times"

RUNS = {
    "pf-100": dict(kind="def", latent_dims=(100,), guide="local", objective="elbo", paper=None),
    "gamma-100-30-15": dict(kind="def", latent_dims=(100, 30, 15), guide="local", objective="elbo", paper=2251),
    "mixed-100-30": dict(
        kind="def", latent_dims=(100, 30), guide="local", objective="tracegraph_elbo",
        model_args={"families": ["gamma", "poisson"]}, paper=None,
    ),
    "poisson-100-30": dict(
        kind="def", latent_dims=(100, 30), guide="local", objective="tracegraph_elbo",
        model_args={"families": ["poisson", "poisson"]}, paper=None,
    ),
    "poisson-100-30-log": dict(
        kind="def", latent_dims=(100, 30), guide="local", objective="tracegraph_elbo",
        model_args={"families": ["poisson", "poisson"], "poisson_link": "log"}, paper=None,
    ),
    "gamma-100-30-15-score": dict(
        kind="def", latent_dims=(100, 30, 15), guide="local_score_function", objective="tracegraph_elbo", paper=None
    ),
    "hvm-100-30-15": dict(kind="def", latent_dims=(100, 30, 15), guide="hvm_local", objective="elbo", paper=None),
    "hvm-poisson-100-30": dict(
        kind="def", latent_dims=(100, 30), guide="hvm_local", objective="tracegraph_elbo",
        model_args={"families": ["poisson", "poisson"]}, paper=None,
    ),
    "hvm-poisson-100-30-slow": dict(
        kind="def", latent_dims=(100, 30), guide="hvm_local", objective="tracegraph_elbo",
        model_args={"families": ["poisson", "poisson"]}, guide_args={"shared_step": 0.005}, paper=None,
    ),
    "lda-50": dict(kind="lda", num_topics=50, paper=None),
    "lda-100": dict(kind="lda", num_topics=100, paper=2717),
}


@torch.no_grad()
def final_elbo(out, particles=10, seed=0):
    """The full ELBO (global KL included) per training document, by reparameterized particles."""
    config, components = pyro_deepvi.restore(out, device="cpu")
    train = config.load_data("train")
    guide = components.guide
    if not guide.options["reparameterize"]:  # score the same q with reparameterized draws
        guide = type(guide)(components.model, num_data=guide.num_data)
        guide.load_state_dict(components.guide.state_dict())
    torch.manual_seed(seed)
    objective = tracegraph_elbo(particles=particles)  # the ELBO's value; Trace_ELBO refuses hvm_local over score-function z
    loss = objective(components.model.model, guide, x=train.x)
    return -float(loss) / len(train)


def run_def(name, spec, args, out):
    config = TrainConfig(
        model="def", data="reuters", guide=spec["guide"], objective=spec["objective"], latent_dims=spec["latent_dims"],
        model_args=spec.get("model_args", {}), guide_args=spec.get("guide_args", {}), epochs=args.steps, batch_size=315, lr=args.lr, seed=args.seed, particles=args.particles,
        device="cpu", out=str(out), eval_every=0, progress=False,
    )
    started = time.perf_counter()
    result = pyro_deepvi.train(config)
    wall = time.perf_counter() - started
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return {
        **result,
        "steps": args.steps,
        "particles": config.particles,
        "train_seconds": sum(m["seconds"] for m in metrics),
        "wall_seconds": wall,
        "final_elbo_per_document": final_elbo(out),
    }


def run_lda(name, spec, args, out):
    train, test = pyro_deepvi.load("reuters", "train"), pyro_deepvi.load("reuters", "test")
    started = time.perf_counter()
    value = lda_perplexity(train.x, test.x, spec["num_topics"], seed=args.seed, iterations=args.lda_iterations)
    wall = time.perf_counter() - started
    out.mkdir(parents=True, exist_ok=True)
    result = {"perplexity": value, "steps": args.lda_iterations, "train_seconds": wall, "wall_seconds": wall}
    (out / "eval.json").write_text(json.dumps(result, indent=2))
    return result


def _fmt(value, digits=0):
    return "—" if value is None else f"{value:,.{digits}f}"


def markdown(results, table, args):
    lines = [
        f"reuters (315 train / 40 test documents, 4,258 words), document completion (half of each test "
        f"document's tokens held out, seed {args.seed}); DEFs: full-batch Adam, lr {args.lr}, {args.steps} steps; "
        f"LDA: {args.lda_iterations} Gibbs sweeps.",
        "",
        "| run | model | guide / objective | steps | train time (s) | ELBO / doc | test perplexity | paper (NYT)* |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for name, r in results.items():
        spec = table[name]
        if spec["kind"] == "def":
            families, link = spec.get("model_args", {}).get("families"), spec.get("model_args", {}).get("poisson_link")
            model = "DEF " + "-".join(map(str, spec["latent_dims"])) + (f" ({'/'.join(families)})" if families else "")
            model += f", {link} link" if link else ""
            how = f"{spec['guide']} / {spec['objective']}"
            elbo_value = _fmt(r["final_elbo_per_document"], 1)
        else:
            model, how, elbo_value = f"LDA, {spec['num_topics']} topics", "collapsed Gibbs", "—"
        lines.append(
            f"| {name} | {model} | {how} | {r['steps']} | {_fmt(r['train_seconds'], 1)} | {elbo_value} "
            f"| {_fmt(r['perplexity'])} | {_fmt(spec['paper'])} |"
        )
    lines += ["", f"\\* {PAPER} (gamma DEF 100-30-15 and LDA); a reference point only."]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1500, help="full-batch Adam steps of every DEF (default 1500)")
    parser.add_argument("--lr", type=float, default=0.05, help="Adam's step size (default 0.05)")
    parser.add_argument("--particles", type=int, default=None,
                        help="particles per step of every DEF (default: the objective's, 1); with k ≥ 2, tracegraph_elbo "
                             "gives each score-function site the leave-one-out baseline")
    parser.add_argument("--lda-iterations", type=int, default=500, help="LDA's Gibbs sweeps (default 500)")
    parser.add_argument("--out", default="runs/perplexity_table", help="runs directory (default runs/perplexity_table)")
    parser.add_argument("--only", default=None, help="comma-separated subset of the runs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--overwrite", action="store_true", help="delete existing run directories of the same names first")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (1 is steadier on a shared machine)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    table = RUNS
    names, out_root = fresh_run_dirs(parser, table, args.only, args.out, args.overwrite)

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.2f}", flush=True)
    results = {}
    for name in names:
        spec = table[name]
        print(f"{name}: ...", flush=True)
        results[name] = (run_def if spec["kind"] == "def" else run_lda)(name, spec, args, out_root / name)
        r = results[name]
        print(f"{name}: test perplexity {r['perplexity']:.0f}, train {r['train_seconds']:.0f} s", flush=True)
        (out_root / "perplexity_table.json").write_text(json.dumps({"args": vars(args), "results": results}, indent=2))
    text = markdown(results, table, args)
    (out_root / "perplexity_table.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
