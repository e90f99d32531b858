"""Test log-likelihood and RMSE of sparse, deep and exact GPs under the UCI protocol.

For each data set (``boston``, ``diabetes``, ``step``) and each of ``--splits`` random 90/10
splits (``NAME:K``, :mod:`pyro_deepvi.data.regression`; the paper uses 20), four models:

==========  ==============================================================================
``sgp``     ``dgp`` with no inner layer: the sparse variational GP (M inducing points)
``dgp2``    ``dgp``, one inner layer of width min(30, D) (identity or PCA mean)
``dgp3``    ``dgp``, two inner layers
``exact``   Pyro's ``GPRegression`` (ARD RBF), hyperparameters by Adam on log p(y)
==========  ==============================================================================

Every model sees inputs and targets standardized on the training split and is scored in
y's original units: the mean log predictive density of the test points (for the DGPs by
Monte Carlo over 100 draws, log-mean-exp) and the RMSE of the predictive mean. Cells are
the mean ± standard error over splits. The DGPs are trained by ``pyro_deepvi.train`` with
full batches (Adam, lr 0.01, ``--steps`` steps; the paper: 20,000 steps, batch 10,000,
M = 100) and ``dgp``'s defaults, which follow the paper's code: its estimator (q(V) integrated
out per point, analytic KL), inner q(V) started at 1e-5·I, ARD RBF kernels; run directories go
to ``--out``/NAME-K/MODEL and are reused when finished.

Paper (Salimbeni & Deisenroth 2017, Boston, 20 splits, their figure of test log-likelihoods):
about −2.6 for the SGP and −2.4 for the DGPs; the table prints these beside ours.

Usage::

    python benchmarks/uci_table.py --splits 20 --steps 20000          # the paper's protocol (hours)
    python benchmarks/uci_table.py --splits 3 --steps 1000 --threads 1  # on a shared CPU
"""

import argparse
import json
import math
import time
from pathlib import Path

import pyro
import torch
from pyro.contrib.gp.kernels import RBF
from pyro.contrib.gp.models import GPRegression

from _common import train_once
from pyro_deepvi import TrainConfig, load
from pyro_deepvi.models.deep_gp import standardization

MODELS = ("sgp", "dgp2", "dgp3", "exact")
#: The paper's Boston test log-likelihood (Salimbeni & Deisenroth 2017, Figure 2, read off).
PAPER = {("boston", "sgp"): -2.6, ("boston", "dgp2"): -2.4, ("boston", "dgp3"): -2.4}


def exact_gp(data, split, steps, lr=0.05):
    """GPRegression on standardized data; test log density and RMSE in y's units."""
    train, test = load(f"{data}:{split}", "train"), load(f"{data}:{split}", "test")
    x_mean, x_std = standardization(train.x, f"{data}: x")
    y_mean, y_std = train.y.mean(), train.y.std()
    x, y = (train.x - x_mean) / x_std, (train.y - y_mean) / y_std
    pyro.set_rng_seed(split)
    dims = x.shape[1]
    gpr = GPRegression(x, y, RBF(dims, lengthscale=torch.full((dims,), dims**0.5)), noise=torch.tensor(0.1))
    optimizer = torch.optim.Adam(gpr.parameters(), lr=lr)
    loss_fn = pyro.infer.Trace_ELBO().differentiable_loss
    for _ in range(steps):
        optimizer.zero_grad()
        loss = loss_fn(gpr.model, gpr.guide)
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        loc, var = gpr((test.x - x_mean) / x_std, full_cov=False, noiseless=False)
        loc, scale = y_mean + y_std * loc, y_std * var.sqrt()
        log_density = torch.distributions.Normal(loc, scale).log_prob(test.y)
    return {"test_log_predictive": float(log_density.mean()), "test_rmse": float((loc - test.y).pow(2).mean().sqrt())}


def deep_gp(data, split, model, args):
    width = min(30, load(f"{data}:{split}", "train").x.shape[1])
    config = TrainConfig(
        model="dgp", data=f"{data}:{split}", latent_dims=(width,) * (int(model[-1]) - 1 if model != "sgp" else 0),
        epochs=args.steps, batch_size=10000, lr=0.01, eval_every=0, progress=False, seed=split,
        model_args={"num_inducing": args.inducing}, out=str(Path(args.out) / f"{data}-{split}" / model),
    )
    return train_once(config)


def mean_se(values):
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, float("nan")
    var = sum((v - mean) ** 2 for v in values) / (len(values) - 1)
    return mean, math.sqrt(var / len(values))


def cell(mean_and_se, digits):
    mean, se = mean_and_se
    return f"{mean:.{digits}f}" if math.isnan(se) else f"{mean:.{digits}f} ± {se:.{digits}f}"


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=__doc__.split("Usage::")[-1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="boston,diabetes,step", help="comma-separated regression data sets")
    p.add_argument("--splits", type=int, default=20, help="splits 0..N-1 (the paper: 20)")
    p.add_argument("--models", default=",".join(MODELS), help=f"comma-separated, from {', '.join(MODELS)}")
    p.add_argument("--steps", type=int, default=20000, help="Adam steps of the DGPs (the paper: 20,000)")
    p.add_argument("--exact-steps", type=int, default=500, help="Adam steps of the exact GP's hyperparameters")
    p.add_argument("--inducing", type=int, default=100, help="M per layer (the paper: 100)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", default="runs/uci")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    models = [m for m in args.models.split(",") if m]
    unknown = set(models) - set(MODELS)
    if unknown:
        p.error(f"unknown models {sorted(unknown)}; choose from {', '.join(MODELS)}")
    results = {}
    started = time.time()
    for data in [d for d in args.data.split(",") if d]:
        for split in range(args.splits):
            for model in models:
                result = exact_gp(data, split, args.exact_steps) if model == "exact" else deep_gp(data, split, model, args)
                results.setdefault((data, model), []).append(result)
                print(f"{data}:{split} {model}: log p {result['test_log_predictive']:.3f}, "
                      f"RMSE {result['test_rmse']:.3f}", flush=True)
    lines = [
        f"`python benchmarks/uci_table.py --data {args.data} --splits {args.splits} --steps {args.steps} "
        f"--inducing {args.inducing} --exact-steps {args.exact_steps}` ({time.time() - started:.0f} s)",
        "",
        "| data | model | test log-likelihood | test RMSE | paper log-likelihood |",
        "|---|---|---:|---:|---:|",
    ]
    for (data, model), rows in results.items():
        ll = mean_se([r["test_log_predictive"] for r in rows])
        rmse = mean_se([r["test_rmse"] for r in rows])
        paper = PAPER.get((data, model))
        lines.append(f"| {data} | {model} | {cell(ll, 2)} | {cell(rmse, 3)} | "
                     f"{'—' if paper is None else f'≈ {paper}'} |")
    table = "\n".join(lines)
    print("\n" + table)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "uci_table.md").write_text(table + "\n")
    (out / "uci_table.json").write_text(json.dumps({f"{d}/{m}": r for (d, m), r in results.items()}, indent=2) + "\n")


if __name__ == "__main__":
    main()
