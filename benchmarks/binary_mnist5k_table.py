"""Test NLL on binarized mnist5k of binary-latent models (SBN, DARN) beside a DLGM, in nats and bits.

Trains, with the same epochs, batch size 100, lr 1e-3 and seed, on the 3,500
dynamically binarized training digits of ``mnist5k``:

=====================  =========================================================================
``sbn-tracegraph``     sigmoid belief network, factorized Bernoulli guide, ``tracegraph_elbo``
                       (score function with the guide's NVIL-style baselines)
``sbn-vimco5``         the same model, ``iwae`` with k = 5 (VIMCO gradients for the binary sites)
``darn-tracegraph``    DARN (autoregressive prior, encoder and pixel decoder), ``tracegraph_elbo``
``darn-taylor``        DARN with DARN's own Taylor-baseline estimator (``darn_taylor``)
``dlgm-elbo``          a DLGM with Gaussian latents and the diag guide, ``elbo`` (reference)
=====================  =========================================================================

all with one stochastic layer of 200 units (50 Gaussian units for the DLGM, as in
benchmarks/mnist5k_table.py) and 500 tanh units, then evaluates on the 1,000 test
digits (fixed binarization): the test ELBO, −log p(x) by the IWAE-k estimate (k =
``--test-particles``) and the description length L(x) = −ELBO / ln 2 in bits
(DARN's minimum-description-length reading of the ELBO). The paper column holds
DARN's figure on the full binarized MNIST (Gregor et al. 2014: ≈ 84.13 nats for
a 1-layer DARN with 500 units, 60,000 training digits): a reference point, not a
target — mnist5k has 17x fewer training digits and these runs are short.

Usage::

    python benchmarks/binary_mnist5k_table.py --threads 1            # ~40 min on one CPU core
    python benchmarks/binary_mnist5k_table.py --smoke                # 1 epoch, k = 10
"""

import math

import _common

from pyro_deepvi import TrainConfig

RUNS = {
    "sbn-tracegraph": dict(model="sbn", objective="tracegraph_elbo", latent_dims=(200,)),
    "sbn-vimco5": dict(model="sbn", objective="iwae", particles=5, latent_dims=(200,)),
    "darn-tracegraph": dict(model="darn", objective="tracegraph_elbo", latent_dims=(200,)),
    "darn-taylor": dict(model="darn", objective="darn_taylor", latent_dims=(200,)),
    "dlgm-elbo": dict(model="dlgm", objective="elbo", latent_dims=(50,)),
}


def main():
    p = _common.parser(__doc__, "binary_mnist5k_table", epochs=50, test_particles=1000)
    p.add_argument("--only", default=None, help="comma-separated run names (default: all)")
    args = _common.start(p.parse_args())
    names = args.only.split(",") if args.only else list(RUNS)
    unknown = set(names) - set(RUNS)
    if unknown:
        p.error(f"unknown run(s) {sorted(unknown)}; choose from {', '.join(RUNS)}")
    rows = {}
    for name in names:
        config = TrainConfig(
            data="mnist5k", hidden_dims=(500,), epochs=args.epochs, test_particles=args.test_particles,
            eval_every=0, device=args.device, progress=False, out=str(args.out / name), seed=0, **RUNS[name],
        )
        result = _common.train_once(config, args.overwrite)
        rows[name] = {**result, "train_seconds": _common.train_seconds(config.out)}
    table = (
        f"| run | test ELBO | test −log p(x), IWAE k = {args.test_particles} | L(x), bits | train s | "
        "paper (full binarized MNIST) |\n|---|---:|---:|---:|---:|---:|\n"
    )
    for name, r in rows.items():
        paper = "DARN ≈ 84.13 nats" if name.startswith("darn") else ""
        table += (
            f"| {name} | {_common.fmt(r['test_elbo'])} | {_common.fmt(-r['test_log_likelihood'])} ± "
            f"{_common.fmt(r['test_log_likelihood_stderr'])} | {_common.fmt(-r['test_elbo'] / math.log(2), 1)} | "
            f"{r['train_seconds']:.0f} | {paper} |\n"
        )
    _common.write_table(args, table.rstrip("\n"), {"runs": rows})


if __name__ == "__main__":
    main()
