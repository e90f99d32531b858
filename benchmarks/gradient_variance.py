"""Gradient variance of the score-function estimators for discrete latents, on one model and minibatch.

For each objective at k particles

- ``elbo``: Trace_ELBO's plain score function (per data point, no baseline);
- ``tracegraph_elbo``: TraceGraph_ELBO's Rao-Blackwellized score function (with the
  baselines the guide declares, if any);
- ``darn_taylor``: DARN's first-order Taylor baseline (Gregor et al. 2014; biased);
- ``iwae``: VIMCO's leave-one-out baselines (Mnih & Rezende 2016; the gradient of L_k),

the gradient of the loss per data point (loss / N) is drawn ``--repeats`` times on
the same minibatch with seeds 0, 1, ..., and the table gives the total variance
Σ_θ Var[ĝ_θ] of the guide's gradient and of the model's, their ratios to ``elbo``'s,
and an unbiased estimate of the squared norm of the guide's expected gradient,
‖mean‖² − Σ_θ Var / R (what the noise is around; darn_taylor and iwae estimate other
gradients than elbo's, so it differs). ``--train-steps`` first
trains the model and guide for a while (Adam on ``--train-objective``), since
variances at initialization say little about training.

``--model`` is any registered model with binary latents (default ``sbn`` when it is
registered) with its default guide, sized by ``--latent-dims`` and ``--hidden-dims``;
``--model test_sbn`` is the two-layer sigmoid belief network of
``tests/objectives/conftest.py`` (layer-wise Bernoulli guide, float64).

Usage::

    python benchmarks/gradient_variance.py                                   # sbn on mnist5k
    python benchmarks/gradient_variance.py --model darn --train-steps 500
    python benchmarks/gradient_variance.py --model test_sbn --latent-dims 20,10 --repeats 100
"""

import argparse
import importlib.util
from pathlib import Path

import pyro
import torch

import pyro_deepvi
from pyro_deepvi import GUIDES, MODELS, OBJECTIVES

OBJECTIVE_NAMES = ("elbo", "tracegraph_elbo", "darn_taylor", "iwae")
CONFTEST = Path(__file__).resolve().parents[1] / "tests" / "objectives" / "conftest.py"


def conftest_sbn(data, latent_dims, seed):
    """The tests' sigmoid belief network and guide over ``data``'s pixels (float64)."""
    spec = importlib.util.spec_from_file_location("objectives_conftest", CONFTEST)
    conftest = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conftest)
    if len(latent_dims) != 2:
        raise ValueError(f"test_sbn has two latent layers, got --latent-dims {','.join(map(str, latent_dims))}")
    return conftest.make_sbn(data.x[0].numel(), latent_dims, num_data=len(data), seed=seed)


def build(name, data, latent_dims, hidden_dims, seed):
    """``(model, guide)``: a registered model with its default guide, or the tests' SBN."""
    if name == "test_sbn":
        return conftest_sbn(data, latent_dims, seed)
    torch.manual_seed(seed)
    model = MODELS.get(name).from_data(data, latent_dims=latent_dims, hidden_dims=hidden_dims)
    return model, GUIDES.get(model.default_guide)(model, hidden_dims=hidden_dims)


def train(model, guide, data, objective_name, steps, batch_size, particles, lr=1e-3):
    objective = OBJECTIVES.get(objective_name)(particles=particles)
    optimizer = torch.optim.Adam(list(model.parameters()) + list(guide.parameters()), lr=lr)
    for _ in range(steps):
        batch = data.batch(torch.randint(len(data), (batch_size,), device=data.x.device))
        loss = objective(model.model, guide, **batch) / model.num_data
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def gradient_draws(objective_name, model, guide, batch, particles, repeats):
    """``(guide, model)`` gradients per data point, each [repeats, number of parameters]."""
    guide_params, model_params = list(guide.parameters()), list(model.parameters())
    objective = OBJECTIVES.get(objective_name)(particles=particles)
    objective(model.model, guide, **batch)  # the first call guesses the plate nesting
    guide_draws, model_draws = [], []
    for seed in range(repeats):
        pyro.set_rng_seed(seed)
        loss = objective(model.model, guide, **batch) / model.num_data
        grads = torch.autograd.grad(loss, guide_params + model_params, allow_unused=True)
        flat = [torch.zeros_like(p) if g is None else g for g, p in zip(grads, guide_params + model_params)]
        guide_draws.append(torch.cat([g.flatten() for g in flat[: len(guide_params)]]))
        model_draws.append(torch.cat([g.flatten() for g in flat[len(guide_params) :]]))
    return torch.stack(guide_draws), torch.stack(model_draws)


def main(argv=None):
    default_model = "sbn" if "sbn" in MODELS else "test_sbn"
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=default_model, help=f"a registered model or test_sbn (default {default_model})")
    parser.add_argument("--data", default="mnist5k", help="a binary data set (default mnist5k)")
    parser.add_argument("--latent-dims", default="200", help="comma-separated widths (default 200; test_sbn: two)")
    parser.add_argument("--hidden-dims", default="200", help="comma-separated widths of the model's and guide's MLPs")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--particles", type=int, default=5, help="k of every objective (default 5)")
    parser.add_argument("--repeats", type=int, default=50, help="gradient draws per objective (default 50)")
    parser.add_argument("--train-steps", type=int, default=300, help="Adam steps before measuring (default 300)")
    parser.add_argument("--train-objective", default="tracegraph_elbo")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    latent_dims = tuple(int(d) for d in args.latent_dims.split(","))
    hidden_dims = tuple(int(d) for d in args.hidden_dims.split(",") if d)

    data = pyro_deepvi.load(args.data, "train")
    model, guide = build(args.model, data, latent_dims, hidden_dims, args.seed)
    data = data.to(args.device)
    model.to(device=args.device, dtype=data.x.dtype)
    guide.to(device=args.device, dtype=data.x.dtype)
    torch.manual_seed(args.seed)
    train(model, guide, data, args.train_objective, args.train_steps, args.batch_size, args.particles)
    batch = data.batch(torch.arange(args.batch_size, device=data.x.device))

    rows = {name: gradient_draws(name, model, guide, batch, args.particles, args.repeats) for name in OBJECTIVE_NAMES}
    base_guide, base_model = (draws.var(0).sum().item() for draws in rows["elbo"])
    print(
        f"{args.model} on {args.data} (latent {args.latent_dims}, hidden {args.hidden_dims}), batch {args.batch_size}, "
        f"k = {args.particles}, {args.repeats} draws, after {args.train_steps} training steps ({args.train_objective})\n"
    )
    print("| objective | guide Σ Var | × elbo | model Σ Var | × elbo | ‖E guide gradient‖² |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, (guide_draws, model_draws) in rows.items():
        guide_var, model_var = guide_draws.var(0).sum().item(), model_draws.var(0).sum().item()
        # ‖mean‖² − Σ Var / R is unbiased for ‖E ĝ‖²
        signal = guide_draws.mean(0).pow(2).sum().item() - guide_var / args.repeats
        print(
            f"| {name} | {guide_var:.4g} | {guide_var / base_guide:.3g} | {model_var:.4g} | {model_var / base_model:.3g} "
            f"| {signal:.4g} |"
        )


if __name__ == "__main__":
    main()
