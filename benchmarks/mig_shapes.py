"""Mutual information gap (MIG) on ``shapes``: ELBO, β-VAE, β-TCVAE and AnchorVAE, over several seeds.

The same dlgm 1024-H-H-10 (``--hidden``; ReLU, or ``--activation``, in the
decoder and the diag guide's encoder, as Chen et al.'s encoder; one particle)
trained with the same epochs, batch size (500, toward Chen et al.'s 2,048: the
TC term estimates q(z) from the minibatch), Adam lr 1e-3 and seeds on the
generated dSprites-like sprites of ``--data`` (``shapes``: 16,000 training
images; ``shapes_small``: 2,400), with

====================  ===================================================================
``elbo``              the ELBO (β = 1). It is also CorEx: for a one-layer dlgm with the
                      diag guide (factorized encoder and decoder, N(0, I) prior) CorEx's
                      bound is the ELBO (``pyro_deepvi.objectives.total_correlation``)
``beta-vae``          β-VAE, β = 4: ``--term rate=3``
``beta-tcvae``        β-TCVAE, β = 6: ``--term tc=5`` (stratified minibatch estimate of TC)
``beta-tcvae-mws``    the same with Chen et al.'s minibatch-weighted sampling estimate
``anchor-vae``        AnchorVAE: the ELBO plus λ·Î(z_0; x), ``--term anchor=1`` (λ = 1,
                      the first latent dimension anchored)
====================  ===================================================================

Each is scored two ways. Chen et al.'s own estimate
(``pyro_deepvi.evaluation.encoder_mutual_information_gap``): I(z_j; v_k) from
the encoder's distribution q(z|x) over the training split, so a latent the
encoder leaves at its prior carries nothing; and the estimate
``pyro_deepvi.train`` writes to ``eval.json``: the test split's posterior
means binned in 20 bins, as disentanglement_lib does
(``pyro_deepvi.evaluation.mutual_information_gap``). Both average the gaps of
the five factors (Chen et al. leave out dSprites' shape, whose gap is about 0
in every row here). MIG is noisy from seed to seed, so each objective runs
``--seeds`` and the table gives the mean ± the standard deviation over seeds
with the single values; the per-factor gaps (means over seeds) show which
factors a single latent dimension captured.

Beside ours: Chen et al. (2018; their plots of MIG against β) report on dSprites
(737,280 images, convolutional and larger MLP networks, long training) MIG of
about 0.4–0.5 for β-TCVAE and 0.2–0.35 for β-VAE at their best β; our data
set is smaller, our network modest and our training short, so expect lower
values; the comparison that matters is between our rows.

Usage::

    python benchmarks/mig_shapes.py --threads 1 --only elbo,beta-vae,beta-tcvae   # ~35 min on 2 shared CPU cores
    python benchmarks/mig_shapes.py --smoke
    python benchmarks/mig_shapes.py --activation tanh --batch-size 100 --epochs 20   # the earlier set-up
"""

import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pyro_deepvi  # noqa: E402
from _common import fmt, parser, start, train_once, train_seconds, write_table  # noqa: E402
from pyro_deepvi import TrainConfig  # noqa: E402
from pyro_deepvi.data.shapes import FACTOR_NAMES, FACTOR_SIZES  # noqa: E402
from pyro_deepvi.evaluation import encoder_mutual_information_gap, mutual_information_gap, posterior_means  # noqa: E402

PAPER = "Chen et al. 2018, dSprites, read off approximately from their plots of MIG against β"

#: name -> (objective, terms, term_args, paper MIG on dSprites)
RUNS = {
    "elbo": ("ELBO (β = 1; = CorEx)", {}, {}, None),
    "beta-vae": ("β-VAE, β = 4", {"rate": 3.0}, {}, "≈ 0.2–0.35"),
    "beta-tcvae": ("β-TCVAE, β = 6 (stratified)", {"tc": 5.0}, {}, "≈ 0.4–0.5"),
    "beta-tcvae-mws": ("β-TCVAE, β = 6 (MWS)", {"tc": 5.0}, {"tc": {"estimator": "mws"}}, "≈ 0.4–0.5"),
    "anchor-vae": ("AnchorVAE, λ = 1 on z_0", {"anchor": 1.0}, {}, None),
}

#: Measured on a 2-core AMD EPYC (--threads 1, load ~5 from other jobs), at batch 500: 40 epochs take 1.5-2.5 min
#: (ELBO, β-VAE) and 5.5-6 min (β-TCVAE, its B × B × D pairs), and scoring one run ~1.5 min, so elbo, beta-vae and
#: beta-tcvae over 3 seeds take ~35 minutes.
DEFAULT_EPOCHS = 40


def integers(text):
    return tuple(int(v) for v in text.split(",") if v.strip())


@torch.no_grad()
def factor_gaps(run_dir, device, num_samples):
    """Each factor's normalized gap by both estimators: binned posterior means of the test split (as the run's
    ``eval.json``'s MIG), and Chen et al.'s from q(z|x) over the training split (``num_samples`` draws)."""
    config, components = pyro_deepvi.restore(run_dir, device)
    guide = components.eval().guide
    test, train = (config.load_data(split).to(next(components.parameters()).device) for split in ("test", "train"))
    binned = mutual_information_gap(posterior_means(guide, test), test.y, FACTOR_SIZES)
    encoder = encoder_mutual_information_gap(guide, train, FACTOR_SIZES, num_samples=num_samples)
    return [float(g) for g in binned["gaps"]], [float(g) for g in encoder["gaps"]]


def mean_and_sd(values):
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def markdown(args, rows):
    factors = " | ".join(FACTOR_NAMES)
    lines = [
        f"{args.data}, dlgm 1024-{'-'.join(map(str, args.hidden))}-10 ({args.activation}) + diag guide "
        f"({args.activation}), {args.epochs} epochs, batch {args.batch_size}, Adam lr 1e-3, seeds "
        f"{', '.join(map(str, args.seeds))}; mean ± s.d. over seeds. MIG by q(z|x): Chen et al.'s estimate from the "
        f"encoder's distribution over the training split ({args.mig_samples} draws), with its per-factor gaps (means "
        "over seeds); MIG by means: the test split's posterior means in 20 bins (eval.json's); test ELBO by "
        f"k = {args.test_particles}.",
        "",
        f"| run | objective | MIG, q(z\\|x) | per seed | {factors} (gaps, q(z\\|x)) | MIG, means | per seed "
        "| test ELBO | test R | train time (s) | paper MIG (dSprites)* |",
        "|---|---|---:|---|" + "---:|" * len(FACTOR_NAMES) + "---:|---|---:|---:|---:|---:|",
    ]
    for name, r in rows.items():
        gaps = " | ".join(f"{statistics.fmean(g):.2f}" for g in zip(*r["encoder_gaps"]))
        lines.append(
            f"| {name} | {RUNS[name][0]} | {cell(r['encoder_mig'])} | {gaps} | {cell(r['mig'])} "
            f"| {fmt(statistics.fmean(r['test_elbo']))} | {fmt(statistics.fmean(r['test_rate']))} "
            f"| {fmt(statistics.fmean(r['train_seconds']), 1)} | {RUNS[name][3] or '—'} |"
        )
    lines += ["", f"\\* {PAPER}; beside ours, not a target (another data set, larger networks, far longer training)."]
    return "\n".join(lines)


def cell(values):
    """``mean ± s.d. | v1, v2, ...``: two table cells."""
    mean, sd = mean_and_sd(values)
    return f"{mean:.3f} ± {sd:.3f} | {', '.join(f'{v:.3f}' for v in values)}"


def main(argv=None):
    p = parser(__doc__, "mig_shapes", DEFAULT_EPOCHS, 100)
    p.add_argument("--data", default="shapes", choices=("shapes", "shapes_small"))
    p.add_argument("--seeds", type=integers, default=(0, 1, 2), help="comma-separated seeds (default 0,1,2)")
    p.add_argument("--hidden", type=integers, default=(256, 256), help="hidden widths of encoder and decoder (default 256,256)")
    p.add_argument("--batch-size", type=int, default=500,
                   help="minibatch, also the points of the TC term's estimate of q(z) (default 500)")
    p.add_argument("--activation", default="relu", help="nonlinearity of the encoder and the decoder (default relu)")
    p.add_argument("--mig-samples", type=int, default=1000, help="draws of q(z|x) that average Chen et al.'s MIG")
    p.add_argument("--only", default=None, help=f"comma-separated subset of: {', '.join(RUNS)}")
    args = start(p.parse_args(argv))
    if args.smoke:
        args.data, args.seeds = "shapes_small", args.seeds[:1]
    names = list(RUNS) if args.only is None else [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in names if n not in RUNS]
    if unknown:
        p.error(f"unknown runs {unknown}; choose from: {', '.join(RUNS)}")

    # tanh is the library's default for both, left unset so that such runs' configs stay those of earlier sweeps
    activation = {} if args.activation == "tanh" else {"activation": args.activation}
    rows = {}
    for seed in args.seeds:  # seed by seed, so that an interrupted sweep has every objective on the first seeds
        for name in names:
            _, terms, term_args, _ = RUNS[name]
            config = TrainConfig(
                model="dlgm", data=args.data, guide="diag", objective="elbo", particles=1, terms=terms,
                term_args=term_args, epochs=args.epochs, batch_size=args.batch_size, lr=1e-3, latent_dims=(10,),
                hidden_dims=args.hidden, model_args=activation, guide_args=activation, seed=seed, device=args.device,
                out=str(args.out / f"{name}-seed{seed}"),
                eval_every=0, test_particles=args.test_particles, progress=False,
            )
            result = train_once(config, args.overwrite)
            keys = ("mig", "gaps", "encoder_mig", "encoder_gaps", "test_elbo", "test_rate", "train_seconds")
            row = rows.setdefault(name, {k: [] for k in keys})
            gaps, encoder_gaps = factor_gaps(config.out, args.device, args.mig_samples)
            row["mig"].append(result["mig"])
            row["gaps"].append(gaps)
            row["encoder_mig"].append(statistics.fmean(encoder_gaps))
            row["encoder_gaps"].append(encoder_gaps)
            row["test_elbo"].append(result["test_elbo"])
            row["test_rate"].append(result["test_rate"])
            row["train_seconds"].append(train_seconds(config.out))
            print(f"{name}-seed{seed}: MIG {row['encoder_mig'][-1]:.3f} by q(z|x), {result['mig']:.3f} by means", flush=True)
    write_table(args, markdown(args, rows), {"paper": PAPER, "runs": rows})
    return rows


if __name__ == "__main__":
    main()
