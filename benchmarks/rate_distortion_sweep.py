"""Rate and distortion of a β sweep and a target-rate sweep on mnist5k (Alemi et al., 2018, "Fixing a broken ELBO").

The same dlgm 784-200-200-50 (diag guide, one particle) trained, with the same
epochs, batch 100, Adam lr 1e-3 and seed, on

==================  ==============================================================
``beta-<β>``        loss D + β·R: the ``rate`` term with weight β − 1 (β = 1 is the ELBO)
``target-<σ>``      loss D + |σ − R|: ``rate`` weight −1 (cancels the ELBO's R) plus
                    ``rate_target`` weight 1 with ``target=σ`` nats
==================  ==============================================================

then evaluated by ``pyro_deepvi.train`` on the 1,000 test digits: rate
R = E_q[log q(z|x) − log p(z)], distortion D = −E_q[log p(x|z)] (10 particles),
test ELBO = −(R + D), and log p(x) by IWAE with k = ``--test-particles``. The
runs are drawn on the rate–distortion plane with the line D = H − R
(``pyro_deepvi.evaluation.plot_rate_distortion``; H, unknown, is estimated from
above by −(the best test log p(x)), so the true line lies on or below the drawn
one): ``<out>/rate_distortion.png``. Every model sits above the line
(H − D ≤ I(x; z) ≤ R); a small β buys a low distortion with a high rate, a
large β the reverse, and the ELBO (β = 1) is the point where the line of slope
−1 touches the frontier.

Beside ours: Alemi et al.'s best ELBO, about −80 nats on the full (static)
binarized MNIST with autoregressive decoders and a learned marginal; ours is a
small fully connected model trained on 3,500 digits, so it stays far below.

Usage::

    python benchmarks/rate_distortion_sweep.py --threads 1            # ~14 min on 2 shared CPU cores
    python benchmarks/rate_distortion_sweep.py --smoke                # 1 epoch, k = 10
    python benchmarks/rate_distortion_sweep.py --betas 0.5,1,2 --targets ''
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import fmt, parser, start, train_once, train_seconds, write_table  # noqa: E402
from pyro_deepvi import TrainConfig  # noqa: E402
from pyro_deepvi.evaluation import plot_rate_distortion, rate_distortion_points  # noqa: E402

PAPER = "Alemi et al. 2018, static binarized MNIST: best test ELBO ≈ −80 nats (their most expressive models)"
PAPER_BEST_ELBO = -80.0

#: Measured on a 2-core AMD EPYC (--threads 1, load ~4-5 from other jobs): ~0.4-1 s per epoch, ~40 s per
#: evaluation with k = 1000, so nine runs of 50 epochs take ~14 minutes.
DEFAULT_EPOCHS = 50


def numbers(text):
    return [float(v) for v in text.split(",") if v.strip()]


def runs(args):
    """Run name -> (what it is, its TrainConfig)."""
    common = dict(
        model="dlgm", data="mnist5k", guide="diag", objective="elbo", particles=1, epochs=args.epochs, batch_size=100,
        lr=1e-3, latent_dims=(50,), hidden_dims=(200, 200), seed=args.seed, device=args.device, eval_every=0,
        test_particles=args.test_particles, progress=False,
    )
    configs = {}
    for beta in args.betas:
        name = f"beta-{beta:g}"
        terms = {} if beta == 1 else {"rate": beta - 1}
        configs[name] = (f"β = {beta:g}", TrainConfig(terms=terms, out=str(args.out / name), **common))
    for target in args.targets:
        name = f"target-{target:g}"
        configs[name] = (f"σ = {target:g} nats", TrainConfig(
            terms={"rate": -1, "rate_target": 1}, term_args={"rate_target": {"target": target}},
            out=str(args.out / name), **common))
    return configs


def markdown(args, rows, entropy):
    best = max(rows, key=lambda r: r["test_elbo"])
    lines = [
        f"mnist5k (3,500 train / 1,000 test digits), dlgm 784-200-200-50 + diag guide, {args.epochs} epochs, batch 100, "
        f"Adam lr 1e-3, seed {args.seed}; test R and D from 10 particles, log p(x) by IWAE with k = "
        f"{args.test_particles} (± standard error over test digits). Nats per digit.",
        "",
        "| run | objective | test R | test D | D − (Ĥ − R) | test ELBO = −(R + D) | test log p(x) | AU | train time (s) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['name']} | {r['what']} | {fmt(r['test_rate'])} | {fmt(r['test_distortion'])} "
            f"| {fmt(r['test_distortion'] - (entropy - r['test_rate']))} | {fmt(r['test_elbo'])} "
            f"| {fmt(r['test_log_likelihood'])} ± {fmt(r['test_log_likelihood_stderr'])} "
            f"| {r['active_units']['total']} | {fmt(r['train_seconds'], 1)} |"
        )
    lines += [
        "",
        "| best test ELBO | ours (mnist5k) | paper (static binarized MNIST)* |",
        "|---|---:|---:|",
        f"| | {fmt(best['test_elbo'])} ({best['name']}) | ≈ {PAPER_BEST_ELBO:.0f} |",
        "",
        f"H (test digits) ≤ Ĥ = −(best test log p(x)) = {fmt(entropy)} nats, the line D = Ĥ − R drawn in "
        "`rate_distortion.png`; D − (Ĥ − R) is a run's height above it (H − D ≤ I(x; z) ≤ R: never negative "
        "for the true H, which is at most Ĥ).",
        "",
        f"\\* {PAPER}. Beside ours, not a target: a different data set and far larger models.",
    ]
    return "\n".join(lines)


def main(argv=None):
    p = parser(__doc__, "rate_distortion_sweep", DEFAULT_EPOCHS, 1000)
    p.add_argument("--betas", type=numbers, default=numbers("0.1,0.3,1,3,10"),
                   help="comma-separated β of the β sweep (default 0.1,0.3,1,3,10)")
    p.add_argument("--targets", type=numbers, default=numbers("5,15,40,80"),
                   help="comma-separated target rates σ in nats (default 5,15,40,80; '' for none)")
    p.add_argument("--seed", type=int, default=0)
    args = start(p.parse_args(argv))
    if args.smoke:
        args.betas, args.targets = args.betas[:2], args.targets[:1]

    rows = []
    for name, (what, config) in runs(args).items():
        result = train_once(config, args.overwrite)
        rows.append({"name": name, "what": what, "train_seconds": train_seconds(config.out), **result})
    points = rate_distortion_points([args.out / r["name"] for r in rows])
    _, entropy, _ = plot_rate_distortion(points, args.out / "rate_distortion.png",
                                          title=f"mnist5k test digits, dlgm 784-200-200-50, {args.epochs} epochs")
    write_table(args, markdown(args, rows, entropy), {"paper": PAPER, "entropy_upper_estimate": entropy, "runs": rows})
    print(f"plot: {args.out / 'rate_distortion.png'}")
    return rows


if __name__ == "__main__":
    main()
