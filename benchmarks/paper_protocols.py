"""The IWAE paper's Table 1 on full MNIST: one and two stochastic layers, ELBO and IWAE k = 5, 50, and the LVAE.

Burda, Grosse & Salakhutdinov (2016), Table 1, train on the 50,000 training
digits of the binarized MNIST (dynamically binarized) and report the test
log p(x) estimated with k = 5,000 on the 10,000 test digits. Each row is a spec in
``ROWS``, trained through ``pyro_deepvi.train`` on ``mnist`` (read from
``--data-root``; see ``pyro_deepvi/data/mnist_files.py`` for the files and the
offline route) with batch 100, Adam 1e-3 and no warm-up, except the LVAE's:

=================  ====================================================================
``vae-1``          one stochastic layer, 784-200-200-50 (tanh; ``dlgm``, diag guide), ELBO
``iwae5-1``        the same, IWAE k = 5
``iwae50-1``       the same, IWAE k = 50
``vae-2``          two stochastic layers, 784-100-100-100 and 100-100-50 (``lvae`` without
                   batch norm: p(h1 | h2) = N(μ(h2), σ²(h2)) as in the paper; bottom-up
                   ``chain`` guide q(h1 | x) q(h2 | h1)), ELBO
``iwae5-2``        the same, IWAE k = 5
``iwae50-2``       the same, IWAE k = 50
``lvae``           the ladder VAE's defaults (3 layers 32-16-8, MLPs 256-256, batch norm,
                   ladder guide) with its warm-up ``rate=linear:-1:0:W``, ELBO
=================  ====================================================================

Where ours differ from the paper's networks: the paper's two-layer model has
50-50 hidden units between h1 and h2 where ours uses 100-100 for every MLP (the
``lvae`` model shares one ``hidden_dims``), and LeakyReLU where the paper has tanh.
The paper trained 3,280 epochs (3^i passes at learning rate 1e-3 · 10^{-i/7},
i = 0..7); ``--epochs`` (default 50) is a budget a GPU runs in minutes and a CPU
in hours, so expect our figures below the paper's, by more for the larger k.
pythae's reproductions (Chadebec et al. 2022, their benchmark of the VAE and
IWAE on binarized MNIST with their own training budget) are given beside the
paper's for the one-layer VAE and IWAE-50.

Columns: test ELBO and log p(x) (± the standard error over test digits), active
units per layer (bottom to top), seconds per training epoch.

Usage::

    python benchmarks/paper_protocols.py --data-root /path/with/mnist.pkl.gz            # 50 epochs, k = 5000
    python benchmarks/paper_protocols.py --data-root DIR --only vae-1,iwae5-1 --epochs 10 --test-particles 1000
    python benchmarks/paper_protocols.py --data-root DIR --smoke                        # 1 epoch, k = 10
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import fmt, parser, start, train_once, train_seconds, write_table  # noqa: E402
from pyro_deepvi import TrainConfig  # noqa: E402
from pyro_deepvi.models.lvae import LVAE  # noqa: E402

PAPER = "Burda et al. 2016, Table 1 (binarized MNIST, 3,280 epochs); pythae: Chadebec et al. 2022"

ONE_LAYER = dict(model="dlgm", guide="diag", latent_dims=(50,), hidden_dims=(200, 200))
TWO_LAYERS = dict(model="lvae", guide="chain", latent_dims=(100, 50), hidden_dims=(100, 100),
                  model_args={"batch_norm": False})

#: name -> (label, TrainConfig fields, paper log p(x), pythae's reproduction)
ROWS = {
    "vae-1": ("1 layer, VAE (ELBO)", dict(ONE_LAYER), -86.76, -89.78),
    "iwae5-1": ("1 layer, IWAE k = 5", dict(ONE_LAYER, objective="iwae", particles=5), -85.54, None),
    "iwae50-1": ("1 layer, IWAE k = 50", dict(ONE_LAYER, objective="iwae", particles=50), -84.78, -86.82),
    "vae-2": ("2 layers, VAE (ELBO)", dict(TWO_LAYERS), -85.33, None),
    "iwae5-2": ("2 layers, IWAE k = 5", dict(TWO_LAYERS, objective="iwae", particles=5), -83.89, None),
    "iwae50-2": ("2 layers, IWAE k = 50", dict(TWO_LAYERS, objective="iwae", particles=50), -82.90, None),
    "lvae": ("LVAE defaults (3 layers), ladder guide, ELBO, warm-up",
             dict(model="lvae", guide="ladder", latent_dims=LVAE.train_defaults["latent_dims"],
                  hidden_dims=LVAE.train_defaults["hidden_dims"]), None, None),
}


def per_layer(values, count):
    return " / ".join(str(values[f"z{i}" if f"z{i}" in values else f"h{i}"]) for i in range(1, count + 1))


def main(argv=None):
    p = parser(__doc__, "paper_protocols", epochs=50, test_particles=5000)
    p.add_argument("--data-root", default=None,
                   help="folder with mnist.pkl.gz or MNIST/raw/*-ubyte(.gz) (default: $PYRO_DEEPVI_DATA, else ~/.cache/pyro_deepvi)")
    p.add_argument("--warmup", type=int, default=None, help="the LVAE's warm-up epochs (default: a fifth of --epochs)")
    p.add_argument("--seed", type=int, default=0, help="seed of every run (default 0)")
    p.add_argument("--only", default=None, help=f"comma-separated subset of: {', '.join(ROWS)}")
    args = start(p.parse_args(argv))
    names = list(ROWS) if args.only is None else [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in names if n not in ROWS]
    if unknown:
        p.error(f"unknown rows {unknown}; choose from: {', '.join(ROWS)}")
    warmup = args.warmup if args.warmup is not None else max(1, args.epochs // 5)
    lines = [
        f"mnist (50,000 train / 10,000 test digits), {args.epochs} epochs, batch 100, Adam 1e-3, seed {args.seed}; "
        f"log p(x) by IWAE k = {args.test_particles}; the LVAE's warm-up {warmup} epochs.",
        "",
        "| run | test ELBO | test log p(x) | active units per layer | s / epoch | paper | pythae |",
        "|---|---:|---:|---|---:|---:|---:|",
    ]
    record = {}
    for name in names:
        label, fields, paper, pythae = ROWS[name]
        terms = {"rate": f"linear:-1:0:{warmup}"} if name == "lvae" else {}
        config = TrainConfig(data="mnist", data_root=args.data_root, **fields, terms=terms, epochs=args.epochs,
                             batch_size=100, lr=1e-3, test_particles=args.test_particles, eval_every=0,
                             progress=False, device=args.device, seed=args.seed, out=str(args.out / name))
        result = train_once(config, args.overwrite)
        seconds = train_seconds(args.out / name) / args.epochs
        record[name] = {**result, "seconds_per_epoch": seconds, "paper": paper, "pythae": pythae}
        lines.append(
            f"| {label} | {fmt(result['test_elbo'])} | {fmt(result['test_log_likelihood'])} ± "
            f"{fmt(result['test_log_likelihood_stderr'])} | {per_layer(result['active_units'], len(config.latent_dims))} "
            f"| {seconds:.1f} | {fmt(paper)} | {fmt(pythae)} |"
        )
    lines += ["", f"{PAPER}. The papers' figures are a reference: they trained far longer."]
    write_table(args, "\n".join(lines), {"warmup": warmup, "runs": record})


if __name__ == "__main__":
    main()
