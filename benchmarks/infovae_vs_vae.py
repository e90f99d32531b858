"""VAE vs InfoVAE on mnist5k: log p(x), MMD between the aggregate posterior and the prior, a linear probe.

InfoVAE (Zhao, Song & Ermon, 2019) adds (α + λ − 1)·MMD²(q(z) ‖ p(z)) to the
loss and scales the rate by (1 − α) (``pyro_deepvi.objectives.mmd``), so with
the ELBO's loss D + R it is ``--term mmd=α+λ−1 --term rate=−α``. Trained, with
the same dlgm 784-200-200-50 (diag guide), epochs, batch 100, Adam lr 1e-3 and
seed:

=================  =======================================================
``vae``            the ELBO: loss D + R
``infovae-a0``     α = 0, λ = 1000: ``mmd`` weight 999, loss D + R + 999·MMD²
``infovae-a1``     α = 1, λ = 1000 (the MMD-VAE): ``mmd`` weight 1000 and
                   ``rate`` weight −1, loss D + 1000·MMD² (no KL at all)
=================  =======================================================

Columns, on the 1,000 test digits: test ELBO and log p(x) (IWAE,
k = ``--test-particles``) from ``eval.json``; rate R and distortion D; MMD²
between the aggregate posterior and the prior, as the unbiased U-statistic of
``pyro_deepvi.objectives.mmd.mmd_with_standard_error`` (RBF kernel, h = d, ±
its jackknife standard error) of 1,000 draws of N(0, I) against one draw
z_n ~ q(z|x_n) per test digit (``samples``; the term's own
``MMD.samples`` on the test traces) and against the posterior means E_q[z|x_n]
(``means``); the accuracy of a linear probe (logistic regression on the
posterior means, fit on the training digits, ``linear_probe_accuracy``); and
active units. The MMD-VAE has no KL to keep q(z|x) wide, so its encodings may
narrow and its IWAE estimate, which samples from q, becomes a looser lower
bound on its log p(x).

Zhao et al. report no log-likelihood for this setting; their claims are the
directions (InfoVAE's aggregate posterior matches the prior better, its code is
at least as informative), so no paper column.

Usage::

    python benchmarks/infovae_vs_vae.py --threads 1      # ~8 min on 2 shared CPU cores
    python benchmarks/infovae_vs_vae.py --smoke
"""

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pyro_deepvi  # noqa: E402
from _common import fmt, parser, start, train_once, train_seconds, write_table  # noqa: E402
from pyro_deepvi import TrainConfig  # noqa: E402
from pyro_deepvi.evaluation import posterior_means  # noqa: E402
from pyro_deepvi.evaluation.batches import seeded_batches  # noqa: E402
from pyro_deepvi.importance import importance_traces  # noqa: E402
from pyro_deepvi.objectives.mmd import MMD, mmd_with_standard_error  # noqa: E402

#: Measured on a 2-core AMD EPYC (--threads 1, load ~5 from other jobs): ~0.6-0.9 s per epoch, ~60 s per
#: evaluation with k = 1000, so three runs of 100 epochs take ~8 minutes.
DEFAULT_EPOCHS = 100
LAMBDA = 1000.0

RUNS = {
    "vae": ("ELBO", {}),
    "infovae-a0": ("InfoVAE α = 0, λ = 1000", {"mmd": LAMBDA - 1}),
    "infovae-a1": ("InfoVAE α = 1, λ = 1000 (MMD-VAE)", {"mmd": LAMBDA, "rate": -1.0}),
}


@torch.no_grad()
def aggregate_posterior_mmd(run_dir, device, seed=0):
    """MMD² (± jackknife s.e.) of the prior against one draw of q(z|x_n) per test point, and against E_q[z|x_n]."""
    config, components = pyro_deepvi.restore(run_dir, device)
    components.eval()
    test = config.load_data("test").to(next(components.parameters()).device)
    model, guide = components.model, components.guide
    term = MMD.from_model(model)
    for batch in seeded_batches(test, len(test), seed):  # one batch: the whole test split
        traces = importance_traces(model.model, guide, 1, model.max_plate_nesting, kwargs=batch)
        q, p = term.samples(*traces)
    means = posterior_means(guide, test, site=term.site, seed=seed)
    return {
        "test_mmd_samples": [float(v) for v in mmd_with_standard_error(q, p)],
        "test_mmd_means": [float(v) for v in mmd_with_standard_error(means, p)],
    }


def markdown(args, rows):
    lines = [
        f"mnist5k (3,500 train / 1,000 test digits), dlgm 784-200-200-50 + diag guide, {args.epochs} epochs, batch 100, "
        f"Adam lr 1e-3, seed {args.seed}; log p(x) by IWAE with k = {args.test_particles}; nats per digit; "
        "MMD² (RBF, h = d = 50) of 1,000 prior draws against the test digits' aggregate posterior (one draw each) "
        "and against their posterior means, ± jackknife s.e.",
        "",
        "| run | objective | test ELBO | test log p(x) | R | D | MMD² (samples) | MMD² (means) "
        "| linear probe acc. | AU | train time (s) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        (ms, ms_se), (mm, mm_se) = r["test_mmd_samples"], r["test_mmd_means"]
        lines.append(
            f"| {r['name']} | {r['what']} | {fmt(r['test_elbo'])} "
            f"| {fmt(r['test_log_likelihood'])} ± {fmt(r['test_log_likelihood_stderr'])} "
            f"| {fmt(r['test_rate'])} | {fmt(r['test_distortion'])} | {ms:.4f} ± {ms_se:.4f} | {mm:.4f} ± {mm_se:.4f} "
            f"| {fmt(r['linear_probe_accuracy'], 3)} | {r['active_units']['total']} | {fmt(r['train_seconds'], 1)} |"
        )
    return "\n".join(lines)


def main(argv=None):
    p = parser(__doc__, "infovae_vs_vae", DEFAULT_EPOCHS, 1000)
    p.add_argument("--seed", type=int, default=0)
    args = start(p.parse_args(argv))
    rows = []
    for name, (what, terms) in RUNS.items():
        config = TrainConfig(
            model="dlgm", data="mnist5k", guide="diag", objective="elbo", particles=1, terms=terms, epochs=args.epochs,
            batch_size=100, lr=1e-3, latent_dims=(50,), hidden_dims=(200, 200), seed=args.seed, device=args.device,
            out=str(args.out / name), eval_every=0, test_particles=args.test_particles, progress=False,
        )
        result = train_once(config, args.overwrite)
        rows.append({"name": name, "what": what, "terms": terms, "train_seconds": train_seconds(config.out), **result,
                     **aggregate_posterior_mmd(config.out, args.device)})
    write_table(args, markdown(args, rows), {"runs": rows})
    return rows


if __name__ == "__main__":
    main()
