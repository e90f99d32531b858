"""Hierarchies on mnist5k or full MNIST: one generative model, factorized, bottom-up and ladder guides; IWAE; the LVAE.

Each row is a spec in ``ROWS`` (a label, the ``TrainConfig`` fields it sets over
``BASE``, the paper's figure and where it comes from); a row for another model
or guide is one more entry. The rows here:

=================  ===========================================================================
``diag``           the 2-layer ladder-VAE generative model, factorized guide q(z1|x) q(z2|x), ELBO
``chain``          the same model, bottom-up guide q(z1|x) q(z2|z1) (the hierarchical VAE), ELBO
``ladder``         the same model, ladder guide merging with the model's top-down nets (``share_top_down=True``), ELBO
``ladder-own``     the same, the ladder guide with top-down networks of its own (its default, as the paper's code)
``iwae2-chain``    the same model and bottom-up guide, IWAE k = 5 (Burda et al.'s two-layer IWAE)
``lvae``           ``pyro-deepvi train lvae``'s model (3 layers), ladder guide sharing its top-down nets, ELBO
``lvae-chain``     the same 3-layer model with the bottom-up guide
``lvae-own``       ``pyro-deepvi train lvae``'s defaults: the same model, the ladder guide with its own top-down networks
``lvae5``, ``lvae5-chain``, ``lvae5-own``
                   the paper's depth, 5 layers 64-32-16-8-4 (hidden 256-256), with the three guides
``hvm``            the 2-layer model, hierarchical variational guide (``hvm``: flow prior over each layer's
                   mean-field parameters, auxiliary r), ELBO
``vlae``           the variational ladder autoencoder (Zhao et al. 2017) with codes of the same widths,
                   its own guide, ELBO (no batch norm: the VLAE has none)
=================  ===========================================================================

All with batch normalization, the KL warm-up ``rate=linear:-1:0:W`` (β from 0
to 1 over the first W = ``--warmup`` epochs, default a fifth of ``--epochs``;
not for IWAE, trained without one as by Burda et al.: the warm-up term turns
the ELBO's D + R into D + βR, but added to the IWAE bound at β < 1 it rewards
rate that the bound hardly charges for, since one good particle of k carries
the bound; our run with it diverged, the rate growing to 10⁹ nats),
batch 100, Adam 1e-3, seed ``--seed`` (0), on the 3,500 dynamically binarized training
digits; evaluated on the 1,000 test digits (fixed binarization). ``--data mnist
--data-root DIR`` trains on full MNIST's 50,000 and evaluates on its 10,000 test
digits instead (the files as for ``paper_protocols.py``). Columns: test ELBO,
log p(x) by IWAE with k = ``--test-particles`` (± the standard error over test
digits), its paired difference from the bottom-up guide's model of the same depth
(mean over the same test digits of the per-digit difference, ± its standard error), the KL of each layer (``eval.json``'s ``test_rate_by_site``:
E_q[log q(z_i | ·) − log p(z_i | z_{i+1})]) and its active units (Cov_x E_q[z_i | x] > 0.01),
and seconds per training epoch (loop only; comparable between rows only while
the machine's load stayed the same). The paper column holds the papers'
figures on the full binarized MNIST (50,000 training digits, thousands of
epochs, larger networks): a reference, not a target.

Usage::

    python benchmarks/hierarchies_table.py --threads 1                       # 100 epochs, k = 5000
    python benchmarks/hierarchies_table.py --threads 1 --epochs 30 --test-particles 1000
    python benchmarks/hierarchies_table.py --smoke                           # 1 epoch, k = 10
    python benchmarks/hierarchies_table.py --data mnist --data-root DIR --only lvae-chain,lvae-own --epochs 20
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
from _common import fmt, parser, start, train_once, train_seconds, write_table  # noqa: E402
from pyro_deepvi import TrainConfig  # noqa: E402
from pyro_deepvi.evaluation import paired_difference  # noqa: E402
from pyro_deepvi.run_dir import TEST_BOUNDS  # noqa: E402
from pyro_deepvi.models.lvae import LVAE  # noqa: E402

#: What every row shares (the generative model: latent 32-16, MLPs of one hidden layer of 256).
BASE = dict(model="lvae", latent_dims=(32, 16), hidden_dims=(256,), batch_size=100, lr=1e-3)

#: The paper's depth and latent widths (its MLPs are 512-256-128-64-32, two hidden layers each; ours share one width).
DEPTH5 = dict(latent_dims=(64, 32, 16, 8, 4), hidden_dims=(256, 256))

ROWS = [
    dict(name="diag", label="2 layers, factorized guide, ELBO", config=dict(guide="diag"),
         paper=None, source=""),
    dict(name="chain", label="2 layers, bottom-up guide (VAE), ELBO", config=dict(guide="chain"),
         paper=-85.33, source="Burda et al. 2016, VAE, 2 layers"),
    dict(name="ladder", label="2 layers, ladder guide sharing the model's top-down nets, ELBO",
         config=dict(guide="ladder", guide_args={"share_top_down": True}),
         paper=None, source=""),
    dict(name="ladder-own", label="2 layers, ladder guide with its own top-down nets, ELBO",
         config=dict(guide="ladder", guide_args={"share_top_down": False}), paper=None, source=""),
    dict(name="iwae2-chain", label="2 layers, bottom-up guide, IWAE k = 5",
         config=dict(guide="chain", objective="iwae", particles=5), warmup=False, paper=-82.90, source="Burda et al. 2016, IWAE, 2 layers, k = 50"),
    dict(name="lvae", label="LVAE's model (3 layers), ladder guide sharing the model's top-down nets, ELBO",
         config=dict(guide="ladder", guide_args={"share_top_down": True}, latent_dims=LVAE.train_defaults["latent_dims"],
                     hidden_dims=LVAE.train_defaults["hidden_dims"]),
         paper=-81.74, source="Sønderby et al. 2016, LVAE 5 layers (VAE −82.x), IW k = 10 training"),
    dict(name="lvae-chain", label="LVAE defaults (3 layers), bottom-up guide, ELBO",
         config=dict(guide="chain", latent_dims=LVAE.train_defaults["latent_dims"],
                     hidden_dims=LVAE.train_defaults["hidden_dims"]),
         paper=None, source=""),
    dict(name="lvae-own", label="LVAE defaults (3 layers), ladder guide with its own top-down nets, ELBO",
         config=dict(guide="ladder", guide_args={"share_top_down": False}, latent_dims=LVAE.train_defaults["latent_dims"],
                     hidden_dims=LVAE.train_defaults["hidden_dims"]),
         paper=None, source=""),
    dict(name="lvae5", label="5 layers 64-32-16-8-4, ladder guide sharing the model's top-down nets, ELBO",
         config=dict(guide="ladder", guide_args={"share_top_down": True}, latent_dims=DEPTH5["latent_dims"], hidden_dims=DEPTH5["hidden_dims"]),
         paper=None, source=""),
    dict(name="lvae5-chain", label="5 layers 64-32-16-8-4, bottom-up guide, ELBO",
         config=dict(guide="chain", latent_dims=DEPTH5["latent_dims"], hidden_dims=DEPTH5["hidden_dims"]),
         paper=None, source=""),
    dict(name="lvae5-own", label="5 layers 64-32-16-8-4, ladder guide with its own top-down nets, ELBO",
         config=dict(guide="ladder", guide_args={"share_top_down": False}, latent_dims=DEPTH5["latent_dims"],
                     hidden_dims=DEPTH5["hidden_dims"]),
         paper=None, source=""),
    dict(name="hvm", label="2 layers, hierarchical variational guide (HVM), ELBO", config=dict(guide="hvm"),
         paper=None, source=""),
    dict(name="vlae", label="VLAE, 2 levels of the same widths, its guide, ELBO", config=dict(model="vlae", guide="vlae"),
         paper=None, source=""),
]


#: The bottom-up guide's row of each depth, the reference of the paired differences in log p(x).
BASELINES = {2: "chain", 3: "lvae-chain", 5: "lvae5-chain"}


def paired_cell(out, name, depth):
    """Δ log p(x) of run ``name`` against the bottom-up row of its depth, if both were evaluated on the same digits."""
    baseline = BASELINES.get(depth)
    paths = [out / n / TEST_BOUNDS for n in (name, baseline)] if baseline not in (None, name) else []
    if not paths or not all(p.exists() for p in paths):
        return "—", None
    a, b = (torch.load(p, weights_only=True) for p in paths)
    if a["num_particles"] != b["num_particles"] or a["log_likelihood"].shape != b["log_likelihood"].shape:
        return "—", None
    mean, stderr = paired_difference(a["log_likelihood"], b["log_likelihood"])
    return f"{mean:+.2f} ± {stderr:.2f}", (mean, stderr)


def per_site(values, sites):
    return " / ".join(f"{values[s]:.1f}" if isinstance(values[s], float) else str(values[s]) for s in sites)


def main(argv=None):
    p = parser(__doc__, "hierarchies_table", epochs=100, test_particles=5000)
    p.add_argument("--warmup", type=int, default=None, help="epochs of KL warm-up (default: a fifth of --epochs)")
    p.add_argument("--seed", type=int, default=0, help="seed of every run (default 0)")
    p.add_argument("--no-batch-norm", action="store_true", help="train every model without batch normalization")
    p.add_argument("--only", default=None, help=f"comma-separated subset of: {', '.join(r['name'] for r in ROWS)}")
    p.add_argument("--data", default="mnist5k", choices=("mnist5k", "mnist"), help="mnist5k (default) or full MNIST")
    p.add_argument("--data-root", default=None,
                   help="with --data mnist: folder with mnist.pkl.gz or MNIST/raw/*-ubyte(.gz) (default: $PYRO_DEEPVI_DATA, else ~/.cache/pyro_deepvi)")
    args = start(p.parse_args(argv))
    warmup = args.warmup if args.warmup is not None else max(1, args.epochs // 5)
    rows = ROWS if args.only is None else [r for r in ROWS if r["name"] in args.only.split(",")]
    lines = [
        f"{args.data}, {args.epochs} epochs (warm-up {warmup}), batch 100, Adam 1e-3, "
        f"{'no batch norm' if args.no_batch_norm else 'batch norm'}, seed {args.seed}; "
        f"log p(x) by IWAE k = {args.test_particles}. Per layer: bottom (z1) to top.",
        "",
        "| run | test ELBO | test log p(x) | Δ log p(x) vs bottom-up, paired | KL per layer (nats) | active units per layer "
        "| s / epoch | paper (full MNIST) |",
        "|---|---:|---:|---:|---|---|---:|---:|",
    ]
    record = {}
    for row in rows:
        terms = {"rate": f"linear:-1:0:{warmup}"} if row.get("warmup", True) else {}
        model = row["config"].get("model", BASE["model"])
        model_args = {"batch_norm": False} if args.no_batch_norm and model == "lvae" else {}
        config = TrainConfig(**{**BASE, **row["config"]}, data=args.data, data_root=args.data_root, terms=terms, model_args=model_args, epochs=args.epochs,
                             test_particles=args.test_particles, eval_every=0, progress=False, device=args.device, seed=args.seed,
                             out=str(args.out / row["name"]))
        result = train_once(config, args.overwrite)
        sites = [f"z{i}" for i in range(1, len(config.latent_dims) + 1)]
        seconds = train_seconds(args.out / row["name"]) / args.epochs
        record[row["name"]] = {**result, "seconds_per_epoch": seconds, "sites": sites, "row": row}
    for row in rows:  # after all, so that a row's bottom-up reference is there whatever the order
        result = record[row["name"]]
        sites = result["sites"]
        paired, record[row["name"]]["paired_log_likelihood_difference"] = paired_cell(args.out, row["name"], len(sites))
        paper = f"{fmt(row['paper'])} ({row['source']})" if row["paper"] is not None else "—"
        lines.append(
            f"| {row['label']} | {fmt(result['test_elbo'])} | {fmt(result['test_log_likelihood'])} ± "
            f"{fmt(result['test_log_likelihood_stderr'])} | {paired} | {per_site(result['test_rate_by_site'], sites)} "
            f"| {per_site(result['active_units'], sites)} | {result['seconds_per_epoch']:.1f} | {paper} |"
        )
    write_table(args, "\n".join(lines), {"warmup": warmup, "runs": record})


if __name__ == "__main__":
    main()
