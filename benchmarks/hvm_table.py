"""Hierarchical variational models against the Gaussian and flow guides on mnist5k: test ELBO and log p(x).

The same dlgm 784-200-200-50 (tanh, one stochastic layer of 50 units), trained by the
ELBO with the same epochs, batch 100, Adam lr 1e-3 and seed, under four guides:

============  ==================================================================
``diag``      amortized Gaussian, diagonal covariance (mean field given x)
``rank_one``  amortized Gaussian, rank-one precision (Rezende et al. 2014)
``iaf``       a diagonal Gaussian and two conditional IAF steps (Kingma et al. 2016)
``hvm``       hierarchical variational model (Ranganath, Tran & Blei 2016): q(λ|x) a
              diagonal Gaussian and two conditional affine autoregressive steps over
              λ = (μ, softplus⁻¹ σ) of the mean-field N(μ, diag σ²), r(λ|z, x) the
              Gaussian of q(λ|x) plus an MLP correction that starts at zero
============  ==================================================================

Columns, on the 1,000 test digits: the test ELBO (for ``hvm`` the hierarchical, auxiliary
ELBO E_q[log p(x,z) + log r(λ|z) − log q(λ|x) − log q(z|λ)], a lower bound on its marginal
ELBO) and log p(x) by IWAE with k = ``--test-particles`` (for ``hvm``, importance sampling
of the pair (z, λ) against p(x,z) r(λ|z): still a lower bound on log p(x)), nats per digit;
active units; train time (the epochs' loop times) and seconds per epoch. Ranganath et al.
report their HVM on other models (DEFs), not on this one, so there is no paper column; the
claim checked is "HVM ≥ mean field on the same model", by a few nats.

Trained jointly, each guide has its own model. ``--fixed-model GUIDE`` separates the family from
that: it takes the model trained with GUIDE, holds it fixed (its parameters get no gradient) and
fits a fresh guide of each family to it for the same epochs, batch, step and seed. On one model
log p(x) is one number, so the test ELBOs compare the families' gaps KL(q ‖ p(z|x)) directly;
the table adds each ELBO's paired difference from the first guide's, over the same test digits.

Usage::

    python benchmarks/hvm_table.py --threads 1 --epochs 20 --test-particles 1000   # ~20 min on 2 shared cores
    python benchmarks/hvm_table.py --threads 1 --epochs 40 --test-particles 500 --fixed-model diag
    python benchmarks/hvm_table.py --smoke
"""

import functools
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
from _common import fmt, parser, start, train_once, train_seconds, write_table  # noqa: E402
from pyro_deepvi import TrainConfig, restore, run_lock  # noqa: E402
from pyro_deepvi.engine import Trainer  # noqa: E402
from pyro_deepvi.evaluation import paired_difference  # noqa: E402
from pyro_deepvi.run_dir import TEST_BOUNDS  # noqa: E402

GUIDES = ("diag", "rank_one", "iaf", "hvm")
DEFAULT_EPOCHS = 100


def markdown(args, rows):
    lines = [
        f"mnist5k (3,500 train / 1,000 test digits), dlgm 784-200-200-50, ELBO, {args.epochs} epochs, batch 100, "
        f"Adam lr 1e-3, seed {args.seed}; log p(x) by IWAE with k = {args.test_particles}; nats per digit.",
        "",
        "| guide | test ELBO | test log p(x) | AU | train time (s) | s / epoch |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['guide']} | {fmt(r['test_elbo'])} | {fmt(r['test_log_likelihood'])} ± "
            f"{fmt(r['test_log_likelihood_stderr'])} | {r['active_units']['total']} | {fmt(r['train_seconds'], 1)} "
            f"| {fmt(r['train_seconds'] / args.epochs, 2)} |"
        )
    return "\n".join(lines)


def fit_to_fixed_model(config, model_run):
    """Train (or resume) ``config``'s guide on the model of ``model_run``, which stays as trained; its ``eval.json``.

    As :func:`pyro_deepvi.train`, with the run directory locked. The model's parameters get no gradient; a
    model with batch norm would still move its running statistics in training mode, which this table's dlgm
    does not have.
    """
    with run_lock(config.out):
        trainer = Trainer(config)
        if trainer.epoch == 0:  # a resumed run's checkpoint already holds the fixed model
            trainer.components.model.load_state_dict(restore(model_run, config.device)[1].model.state_dict())
        trainer.components.model.requires_grad_(False)  # no gradient, so Adam leaves it where it is
        return trainer.fit().evaluate()


def fixed_model_markdown(args, rows):
    reference = torch.load(args.out / rows[0]["run"] / TEST_BOUNDS)["elbo"]
    lines = [
        f"The model trained with `{args.fixed_model}` above, held fixed; a fresh guide of each family fitted to it "
        f"by the ELBO ({args.epochs} epochs, batch 100, Adam 1e-3, seed {args.seed}). Δ ELBO: paired over the test "
        f"digits, against `{rows[0]['guide']}`.",
        "",
        "| guide | test ELBO | Δ ELBO, paired | test log p(x) | AU | train time (s) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        mean, stderr = paired_difference(torch.load(args.out / r["run"] / TEST_BOUNDS)["elbo"], reference)
        lines.append(
            f"| {r['guide']} | {fmt(r['test_elbo'])} | {mean:+.2f} ± {stderr:.2f} | {fmt(r['test_log_likelihood'])} ± "
            f"{fmt(r['test_log_likelihood_stderr'])} | {r['active_units']['total']} | {fmt(r['train_seconds'], 1)} |"
        )
    return "\n".join(lines)


def main(argv=None):
    p = parser(__doc__, "hvm_table", DEFAULT_EPOCHS, 5000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--guides", default=",".join(GUIDES), help=f"comma-separated subset of {', '.join(GUIDES)}")
    p.add_argument("--fixed-model", choices=GUIDES, default=None,
                   help="also fit each guide to the model trained with this guide, the model held fixed")
    args = start(p.parse_args(argv))
    guides = args.guides.split(",")

    def config(guide, run):
        return TrainConfig(
            model="dlgm", data="mnist5k", guide=guide, objective="elbo", epochs=args.epochs, batch_size=100, lr=1e-3,
            latent_dims=(50,), hidden_dims=(200, 200), seed=args.seed, device=args.device, out=str(args.out / run),
            eval_every=0, test_particles=args.test_particles, progress=False,
        )

    rows = []
    for guide in guides if args.fixed_model is None else dict.fromkeys([args.fixed_model, *guides]):
        result = train_once(config(guide, guide), args.overwrite)
        rows.append({"guide": guide, "train_seconds": train_seconds(args.out / guide), **result})
    table, record = markdown(args, rows), {"runs": rows}
    if args.fixed_model is not None:
        fixed = []
        for guide in guides:
            run = f"fixed-{args.fixed_model}-{guide}"
            fit = functools.partial(fit_to_fixed_model, model_run=args.out / args.fixed_model)
            result = train_once(config(guide, run), args.overwrite, train=fit)
            fixed.append({"guide": guide, "run": run, "train_seconds": train_seconds(args.out / run), **result})
        table, record = table + "\n\n" + fixed_model_markdown(args, fixed), {**record, "fixed_model": fixed}
    write_table(args, table, record)
    return rows


if __name__ == "__main__":
    main()
