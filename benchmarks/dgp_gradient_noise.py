"""Gradient noise of five unbiased estimators of the same deep GP bound, on one full batch.

The doubly-stochastic bound, Σ_n E_q[log N(y_n; f_{H,n}, σ²)] − Σ_l KL(q(V_l) ‖ N(0, I)),
estimated

==============================  ==============================================================
``shared V``                    one draw of every V_l for the whole batch, f_l | V_l drawn per
                                point in every layer, KL by log q(V) − log p(V) at that draw
                                (the plain ELBO of the program with V as a latent)
``shared V, KL analytic``       the same with the closed-form KL
``marginal, f_H sampled``       V integrated out per point (the paper's q(f_l), eq. 7), f_H
                                drawn, KL sampled
``marginal (elbo)``             V integrated out, E log N in closed form, KL sampled: ``dgp``
                                under the ``elbo`` objective
``marginal (elbo_analytic_kl)`` the paper's estimator: ``dgp``'s default
==============================  ==============================================================

After ``--warm`` steps of Adam (lr 0.01) on the default objective, each estimator's loss
and gradient (all parameters of model and q(V)) are drawn ``--draws`` times; the table gives
the loss's mean and standard deviation and the gradient's relative variance
E‖ĝ − ḡ‖² / ‖ḡ‖² (ḡ the mean over draws).

Usage::

    python benchmarks/dgp_gradient_noise.py --threads 1                 # DGP-2 on boston:0
    python benchmarks/dgp_gradient_noise.py --widths '' --threads 1     # the SVGP
"""

import argparse

import pyro
import pyro.distributions as dist
import torch
from torch.distributions import kl_divergence

from pyro_deepvi import load
from pyro_deepvi.guides.inducing import InducingGuide
from pyro_deepvi.models.deep_gp import DeepGP
from pyro_deepvi.objectives import elbo, elbo_analytic_kl


def _prior(v):
    eye = torch.eye(v.shape[-1], dtype=v.dtype)
    return dist.MultivariateNormal(torch.zeros_like(v), scale_tril=eye).to_event(1)


def shared_v_loss(model, x, y, analytic_kl, marginal=False):
    """−(log-likelihood at one draw of the f's + log p(V) − log q(V) or −KL); V drawn once unless ``marginal``."""
    h = (x - model.x_mean) / model.x_std
    posteriors = list(model.posteriors.values())
    values = [posterior().rsample() for posterior in posteriors]
    use = posteriors if marginal else values
    for layer, v in zip(model.layers[:-1], use[:-1]):
        h = layer.sample(h, v)
    f = model.layers[-1].sample(h, use[-1]).squeeze(-1)
    log_lik = dist.Normal(model.y_mean + model.y_std * f, model.y_std * model.noise.sqrt()).log_prob(y).sum()
    if analytic_kl:
        kl = sum(kl_divergence(posterior(), _prior(v)) for posterior, v in zip(posteriors, values))
    else:
        kl = sum(posterior().log_prob(v) - _prior(v).log_prob(v) for posterior, v in zip(posteriors, values))
    return -(log_lik - kl)


def estimators(model, guide, x, y):
    return {
        "shared V": lambda: shared_v_loss(model, x, y, analytic_kl=False),
        "shared V, KL analytic": lambda: shared_v_loss(model, x, y, analytic_kl=True),
        "marginal, f_H sampled": lambda: shared_v_loss(model, x, y, analytic_kl=False, marginal=True),
        "marginal (elbo)": lambda: elbo(1)(model.model, guide, x=x, y=y),
        "marginal (elbo_analytic_kl)": lambda: elbo_analytic_kl(1)(model.model, guide, x=x, y=y),
    }


def noise(loss_fn, params, draws):
    losses, grads = [], []
    for _ in range(draws):
        loss = loss_fn()
        grad = torch.autograd.grad(loss, params, allow_unused=True)
        grads.append(torch.cat([(torch.zeros_like(p) if g is None else g).flatten() for g, p in zip(grad, params)]))
        losses.append(float(loss.detach()))
    grads, losses = torch.stack(grads), torch.tensor(losses)
    mean = grads.mean(0)
    return float(losses.mean()), float(losses.std()), float((grads - mean).pow(2).sum(1).mean() / mean.pow(2).sum())


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=__doc__.split("Usage::")[-1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="boston:0")
    p.add_argument("--widths", default="13", help="inner layers' widths, comma-separated ('' for the SVGP)")
    p.add_argument("--warm", type=int, default=300, help="Adam steps (default objective) before measuring")
    p.add_argument("--draws", type=int, default=40)
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    pyro.settings.set(module_local_params=True)
    pyro.set_rng_seed(0)
    train = load(args.data, "train")
    x, y = train.x, train.y
    model = DeepGP(x, y, len(x), widths=[int(w) for w in args.widths.split(",") if w])
    guide = InducingGuide(model)
    params = list(dict.fromkeys(list(model.parameters()) + list(guide.parameters())))
    optimizer = torch.optim.Adam(params, lr=0.01)
    objective = elbo_analytic_kl(1)
    for _ in range(args.warm):
        optimizer.zero_grad()
        objective(model.model, guide, x=x, y=y).backward()
        optimizer.step()
    print(f"`python benchmarks/dgp_gradient_noise.py --data {args.data} --widths '{args.widths}' --warm {args.warm} "
          f"--draws {args.draws}`\n")
    print("| estimator | loss | loss s.d. | E‖ĝ − ḡ‖² / ‖ḡ‖² |\n|---|---:|---:|---:|")
    for name, loss_fn in estimators(model, guide, x, y).items():
        mean, std, relative = noise(loss_fn, params, args.draws)
        print(f"| {name} | {mean:.1f} | {std:.1f} | {relative:.3f} |", flush=True)


if __name__ == "__main__":
    main()
