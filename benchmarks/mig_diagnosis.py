"""Why β-TCVAE does not beat β-VAE in MIG on ``shapes``: what each run's code is, measured exactly.

For run directories written by ``mig_shapes.py`` (dlgm with the diag guide),
over the N training sprites and their encodings q(z|x_n) = N(μ_n, diag σ_n²):

**The decomposition, exact and as trained.** The average KL splits into
index-code MI I(x; z), total correlation TC and dimension-wise KL
(``objectives.total_correlation``). Here each is exact in q(z): the mixture of
all N encodings, scored at one draw of each of ``--draws`` sprites. Beside it,
the stratified minibatch estimate that the ``tc`` term trains with, at each of
``--batch-sizes`` (means over minibatches that cover ``--estimate-points``
sprites). Its log q̂(z) is biased low when a minibatch of B points rarely holds
a neighbour of a draw (B well below e^{I(x; z)}), so its TC is biased low and
its MI high.

**Rotations.** An orthogonal rotation Q of the active code (the dimensions whose
means vary, Var_n μ_n > 0.01) changes neither what the decoder can reconstruct
(it can absorb Q), nor I(x; z), nor KL(q(z) ‖ N(0, I)) = TC + dimension-wise KL.
So where the posteriors are isotropic, the ELBO and β-VAE's objective
E[log p(x|z)] − β·(I + TC + dim-KL) do not change under Q, and β-TCVAE's
E[log p(x|z)] − I − β·TC − dim-KL changes by −(β − 1)·ΔTC: only β-TCVAE prefers
the least-TC orientation. The script finds the rotation that minimizes the
code's TC (Adam on Q = exp(S − Sᵀ), from the identity and from
``--restarts`` − 1 random starts; ΔTC = the change of Σ_j H(z'_j), H(z') being
unchanged, exact over N). It then scores Chen et al.'s MIG
(``evaluation.encoder_mutual_information_gap``) of the code as learned and
rotated, with q(z'_j|x) = N((Qμ)_j, Σ_i Q_ji² σ_i²), exactly each rotated
latent's marginal. A code whose MIG rises at the TC-minimizing rotation is
entangled by a rotation that TC can see. A code already at its TC minimum is
either disentangled or entangled in a way no rotation undoes.

Usage::

    python benchmarks/mig_shapes.py --only elbo,beta-vae,beta-tcvae --seeds 0,6,8 --out runs/mig_diag
    python benchmarks/mig_diagnosis.py runs/mig_diag/*-seed*
"""

import argparse
import dataclasses
import math
import sys
from pathlib import Path

import pyro
import pyro.distributions as dist
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pyro_deepvi  # noqa: E402
from _common import load_average  # noqa: E402
from pyro_deepvi.data.shapes import FACTOR_SIZES  # noqa: E402
from pyro_deepvi.evaluation import encoder_mutual_information_gap  # noqa: E402
from pyro_deepvi.evaluation.batches import seeded_batches  # noqa: E402
from pyro_deepvi.evaluation.surgery import _guide_distributions  # noqa: E402
from pyro_deepvi.objectives.total_correlation import decompose  # noqa: E402


@torch.no_grad()
def encodings(run_dir, batch_size=500):
    """The training split and its encodings: (data, μ [N, D], σ [N, D]) in float64."""
    config, components = pyro_deepvi.restore(run_dir, "cpu")
    guide = components.eval().guide
    data = config.load_data("train")
    locs, scales = [], []
    for batch in seeded_batches(data, batch_size, seed=0):
        size = len(batch["x"])
        (fn,) = _guide_distributions(guide, batch, size).values()
        locs.append(fn.base_dist.loc.reshape(size, -1))
        scales.append(fn.base_dist.scale.reshape(size, -1))
    return data, torch.cat(locs).double(), torch.cat(scales).double()


def draw(loc, scale, rows, generator):
    """One draw z_i ~ q(z|x_i) for each sprite in ``rows``."""
    return loc[rows] + scale[rows] * torch.randn(len(rows), loc.shape[1], generator=generator, dtype=loc.dtype)


def component_log_probs(z, loc, scale, chunk=25):
    """log q(z_{i,d} | x_n) of the draws z [M, D] against all N encodings, ``chunk`` draws at a time: [c, N, D]."""
    base = dist.Normal(loc, scale)
    for start in range(0, len(z), chunk):
        yield base.log_prob(z[start : start + chunk, None, :])


def exact_decomposition(loc, scale, rows, generator):
    """Exact (MI, TC, dimension-wise KL) in nats, the expectations over one draw of each sprite in ``rows``."""
    z = draw(loc, scale, rows, generator)
    joint, dims = [], []
    for lp in component_log_probs(z, loc, scale):
        joint.append(torch.logsumexp(lp.sum(-1), 1))
        dims.append(torch.logsumexp(lp, 1).sum(-1))
    log_n = math.log(len(loc))
    log_q, log_q_dims = torch.cat(joint) - log_n, torch.cat(dims) - log_n * loc.shape[1]
    log_q_x = dist.Normal(loc[rows], scale[rows]).log_prob(z).sum(-1)
    log_p = dist.Normal(0.0, 1.0).log_prob(z).sum(-1)
    return tuple(float(v.mean()) for v in (log_q_x - log_q, log_q - log_q_dims, log_q_dims - log_p))


def minibatch_decomposition(loc, scale, batch_size, points, generator):
    """The ``tc`` term's stratified estimate (MI, TC, dimension-wise KL), averaged over minibatches."""
    parts = []
    for _ in range(max(1, points // batch_size)):
        rows = torch.randperm(len(loc), generator=generator)[:batch_size]
        z = draw(loc, scale, rows, generator)
        fn = dist.Normal(loc[rows], scale[rows]).to_event(1)
        parts.append(decompose(fn, z, dist.Normal(0.0, 1.0).log_prob(z).sum(-1), len(loc)))
    return tuple(sum(float(p[i]) for p in parts) / len(parts) for i in range(3))


def rotated(rotation, loc, scale):
    """Each rotated latent's marginal q(z'_j|x) = N((Qμ)_j, Σ_i Q_ji² σ_i²)."""
    return loc @ rotation.T, (scale**2 @ (rotation.T**2)).sqrt()


def marginal_entropy(rotation, draws, loc, scale):
    """Σ_j H(z'_j) of the rotated code, exact mixtures over all N encodings scored at ``draws`` [M, k]."""
    loc, scale = rotated(rotation, loc, scale)
    log_q_dims = sum(torch.logsumexp(lp, 1).sum() for lp in component_log_probs(draws @ rotation.T, loc, scale))
    return math.log(len(loc)) * loc.shape[1] - log_q_dims / len(draws)


def least_tc_rotation(loc, scale, rows, restarts, steps, generator):
    """The rotation Q of the code (loc, scale) [N, k] that minimizes its TC, and ΔTC = TC(Q) − TC(I)."""
    k = loc.shape[1]
    draws = draw(loc, scale, rows, generator)
    eye = torch.eye(k, dtype=loc.dtype)
    with torch.no_grad():
        start = float(marginal_entropy(eye, draws, loc, scale))
    best = (0.0, eye)
    for restart in range(restarts):
        skew = torch.randn(k, k, generator=generator, dtype=loc.dtype) if restart else torch.zeros_like(eye)
        skew.requires_grad_(True)
        optimizer = torch.optim.Adam([skew], lr=0.05)
        for _ in range(steps):
            loss = marginal_entropy(torch.linalg.matrix_exp(skew - skew.T), draws, loc, scale)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            rotation = torch.linalg.matrix_exp(skew - skew.T)
            change = float(marginal_entropy(rotation, draws, loc, scale)) - start
        if change < best[0]:
            best = (change, rotation)
    return best


def mig_of_code(data, loc, scale, num_samples):
    """Chen et al.'s MIG of a diagonal-Gaussian code, through the library's estimator."""
    codes = dataclasses.replace(data, x=torch.cat([loc, scale], 1).float(), support="real", binarize="none")
    width = loc.shape[1]

    def guide(x, **_):
        with pyro.plate("data", len(x)):
            pyro.sample("z", dist.Normal(x[:, :width], x[:, width:]).to_event(1))

    result = encoder_mutual_information_gap(guide, codes, FACTOR_SIZES, num_samples=num_samples)
    return float(result["mig"]), [float(g) for g in result["gaps"]]


def diagnose(run_dir, args):
    generator = torch.Generator().manual_seed(args.seed)
    data, loc, scale = encodings(run_dir)
    rows = torch.randperm(len(loc), generator=generator)[: args.draws]
    row = {"run": Path(run_dir).name, "exact": exact_decomposition(loc, scale, rows, generator)}
    row["minibatch"] = {
        b: minibatch_decomposition(loc, scale, b, args.estimate_points, generator) for b in args.batch_sizes
    }
    active = (loc.var(0) > 0.01).nonzero().flatten()
    row["active"] = active.tolist()
    code = loc[:, active], scale[:, active]
    row["mig"], row["gaps"] = mig_of_code(data, *code, args.mig_samples)
    change, rotation = least_tc_rotation(*code, rows[: args.rotation_draws], args.restarts, args.steps, generator)
    row["tc_change"] = change
    row["rotated_mig"], row["rotated_gaps"] = mig_of_code(data, *rotated(rotation, *code), args.mig_samples)
    return row


def markdown(rows, batch_sizes):
    head = " | ".join(f"MI / TC, B = {b}" for b in batch_sizes)
    lines = [
        f"| run | active | MI / TC / dim-KL, exact | {head} | ΔTC at the least-TC rotation | MIG as learned "
        "| MIG rotated | gaps as learned (shape, scale, orientation, pos_x, pos_y) | gaps rotated |",
        "|---|---:|---:|" + "---:|" * len(batch_sizes) + "---:|---:|---:|---|---|",
    ]
    for r in rows:
        estimates = " | ".join(f"{r['minibatch'][b][0]:.2f} / {r['minibatch'][b][1]:.2f}" for b in batch_sizes)
        lines.append(
            f"| {r['run']} | {len(r['active'])} | {' / '.join(f'{v:.2f}' for v in r['exact'])} | {estimates} "
            f"| {r['tc_change']:+.3f} | {r['mig']:.3f} | {r['rotated_mig']:.3f} "
            f"| {', '.join(f'{g:.2f}' for g in r['gaps'])} | {', '.join(f'{g:.2f}' for g in r['rotated_gaps'])} |"
        )
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", help="run directories of mig_shapes.py")
    p.add_argument("--batch-sizes", type=lambda s: tuple(int(v) for v in s.split(",")), default=(500, 2000),
                   help="minibatches of the trained TC estimate to evaluate (default 500,2000)")
    p.add_argument("--draws", type=int, default=2000, help="sprites whose draws average the exact decomposition")
    p.add_argument("--estimate-points", type=int, default=8000, help="sprites the minibatch estimates cover")
    p.add_argument("--rotation-draws", type=int, default=300, help="draws whose marginal entropies the rotation fits")
    p.add_argument("--restarts", type=int, default=3, help="starts of the rotation search (the first the identity)")
    p.add_argument("--steps", type=int, default=100, help="Adam steps per start of the rotation search")
    p.add_argument("--mig-samples", type=int, default=1000, help="draws of Chen et al.'s MIG estimate")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, load average {load_average()}", flush=True)
    rows = []
    for run in args.runs:
        rows.append(diagnose(run, args))
        print(f"{rows[-1]['run']}: done (load average {load_average()})", flush=True)
    print(markdown(rows, args.batch_sizes))
    return rows


if __name__ == "__main__":
    main()
