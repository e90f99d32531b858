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

Usage::

    python benchmarks/hvm_table.py --threads 1 --epochs 20 --test-particles 1000   # ~20 min on 2 shared cores
    python benchmarks/hvm_table.py --smoke
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import fmt, parser, start, train_once, train_seconds, write_table  # noqa: E402
from pyro_deepvi import TrainConfig  # noqa: E402

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


def main(argv=None):
    p = parser(__doc__, "hvm_table", DEFAULT_EPOCHS, 5000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--guides", default=",".join(GUIDES), help=f"comma-separated subset of {', '.join(GUIDES)}")
    args = start(p.parse_args(argv))
    rows = []
    for guide in args.guides.split(","):
        config = TrainConfig(
            model="dlgm", data="mnist5k", guide=guide, objective="elbo", epochs=args.epochs, batch_size=100, lr=1e-3,
            latent_dims=(50,), hidden_dims=(200, 200), seed=args.seed, device=args.device, out=str(args.out / guide),
            eval_every=0, test_particles=args.test_particles, progress=False,
        )
        result = train_once(config, args.overwrite)
        rows.append({"guide": guide, "train_seconds": train_seconds(config.out), **result})
    write_table(args, markdown(args, rows), {"runs": rows})
    return rows


if __name__ == "__main__":
    main()
