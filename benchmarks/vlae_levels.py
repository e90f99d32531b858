"""Variational ladder autoencoder against a hierarchical VAE of the same size: the levels each model uses.

Zhao, Song & Ermon (2017) argue that in a hierarchical VAE p(x|z_1) Π p(z_l|z_{l+1}) p(z_L) the
bottom layer alone can model the data, so the upper layers collapse, while a VLAE, whose independent
codes reach x through decoders of growing depth, keeps every level in use, and each level controls a
different kind of feature. Two measurements, side by side:

1. ``mnist5k``: ``vlae`` (its ``vlae`` guide) and ``dlgm`` (the ``diag`` guide) with the same number of
   levels and latent widths (``--latent``, default 2,2,2 as the paper's MNIST network), hidden width
   ``--hidden``, and the same epochs, KL warm-up (``--warmup``, the VLAE's default: β from 0 to 1 over
   10 epochs), batch 100, Adam 1e-3, seed 0. Test ELBO, test log p(x) (IWAE, k = ``--test-particles``),
   and per level the rate R_l = E_q[log q(z_l|·) − log p(z_l|·)] (the KL of that level,
   ``pyro_deepvi.evaluation.rate_by_site``, 10 particles) and the active units (Burda et al.).
2. ``shapes`` (generated sprites with 5 known factors): the same two models trained ``--shapes-epochs``;
   for every level and factor v_k, max_j I(z_j; v_k) / H(v_k) over the level's dimensions j (posterior
   means binned as for the MIG; ``pyro_deepvi.evaluation.disentanglement.factor_information_by_site``),
   on the 2,000 test sprites.

The VLAE's pictures go to ``<out>/<run>/level<l>.png``: each row fixes the other levels at one prior
draw, each column sets level l's code to one prior draw (the paper's Figure 3 with samples).

Usage::

    python benchmarks/vlae_levels.py --threads 1           # ~7 min on 2 shared CPU cores
    python benchmarks/vlae_levels.py --smoke
"""

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pyro_deepvi  # noqa: E402
from _common import fmt, parser, start, train_once, train_seconds, write_table  # noqa: E402
from pyro_deepvi import TrainConfig  # noqa: E402
from pyro_deepvi.data.shapes import FACTOR_NAMES, FACTOR_SIZES  # noqa: E402
from pyro_deepvi.evaluation import rate_by_site  # noqa: E402
from pyro_deepvi.evaluation.disentanglement import factor_information_by_site  # noqa: E402
from pyro_deepvi.evaluation.plots import save_image_grid  # noqa: E402

#: name -> (model, guide); the sites of level l are z<l> (vlae) and h<l> (dlgm).
RUNS = {"vlae": ("vlae", "vlae"), "dlgm": ("dlgm", "diag")}
SITE = {"vlae": "z", "dlgm": "h"}
#: The shapes runs are there for the factors their codes carry; their log p(x) is not reported.
SHAPES_TEST_PARTICLES = 10


def dims(text):
    return tuple(int(v) for v in text.split(",") if v.strip())


def config(args, name, data, epochs, test_particles):
    model, guide = RUNS[name]
    return TrainConfig(
        model=model, guide=guide, data=data, latent_dims=args.latent, hidden_dims=args.hidden, epochs=epochs,
        terms={"rate": args.warmup}, eval_every=0, test_particles=test_particles, device=args.device, progress=False,
        out=str(args.out / f"{name}-{data}"),
    )


def save_level_pictures(run_dir, components, data, seed=0):
    generator = torch.Generator().manual_seed(seed)
    for level in range(1, len(components.model.latent_dims) + 1):
        grid = components.model.vary_level(level, rows=8, columns=10, generator=generator)
        save_image_grid(grid.reshape(80, -1), data.event_shape, Path(run_dir) / f"level{level}.png",
                        f"level {level} varies along a row; the other levels are fixed along it")


def levels_table(args, results):
    levels = range(1, len(args.latent) + 1)
    head = ["model", "test ELBO", f"test log p(x), k = {args.test_particles}"]
    head += [f"KL z{l}" for l in levels] + [f"AU z{l}" for l in levels] + ["train s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, r in results.items():
        site = SITE[name]
        cells = [name, fmt(r["test_elbo"]), f"{r['test_log_likelihood']:.2f} ± {r['test_log_likelihood_stderr']:.2f}"]
        cells += [fmt(r["rates"][f"{site}{l}"]) for l in levels]
        cells += [f"{r['active_units'][f'{site}{l}']}/{args.latent[l - 1]}" for l in levels]
        cells += [f"{r['seconds']:.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def factors_table(information):
    head = ["model", "level"] + list(FACTOR_NAMES)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, by_site in information.items():
        for site in sorted(by_site):
            lines.append("| " + " | ".join([name, site] + [f"{float(v):.2f}" for v in by_site[site]]) + " |")
    return "\n".join(lines)


def main():
    p = parser(__doc__, "vlae_levels", epochs=40, test_particles=500)
    p.add_argument("--latent", type=dims, default=(2, 2, 2), help="latent widths per level (default 2,2,2)")
    p.add_argument("--hidden", type=dims, default=(256,), help="hidden width(s) (default 256)")
    p.add_argument("--warmup", default="linear:-1:0:10",
                   help="weight of the rate term for both models (default linear:-1:0:10, β from 0 to 1; 0: plain ELBO)")
    p.add_argument("--shapes-epochs", type=int, default=5, help="epochs on shapes (default 5)")
    p.add_argument("--parts", default="mnist5k,shapes", help="which measurements (default mnist5k,shapes)")
    args = start(p.parse_args())
    if args.smoke:
        args.shapes_epochs = 1
    parts = args.parts.split(",")
    results, information = {}, {}
    for name in RUNS if "mnist5k" in parts else ():
        cfg = config(args, name, "mnist5k", args.epochs, args.test_particles)
        result = train_once(cfg, args.overwrite)
        _, components = pyro_deepvi.restore(cfg.out, args.device)
        test = cfg.load_data("test")
        with torch.no_grad():
            result["rates"] = rate_by_site(components.model.model, components.eval().guide, test)
        result["seconds"] = train_seconds(cfg.out)
        results[name] = result
        if name == "vlae":
            save_level_pictures(cfg.out, components, test)
    for name in RUNS if "shapes" in parts else ():
        cfg = config(args, name, "shapes", args.shapes_epochs, SHAPES_TEST_PARTICLES)
        train_once(cfg, args.overwrite)
        _, components = pyro_deepvi.restore(cfg.out, args.device)
        test = cfg.load_data("test")
        information[name] = factor_information_by_site(components.eval().guide, test, FACTOR_SIZES)
        if name == "vlae":
            save_level_pictures(cfg.out, components, test)
    table = "" if not results else (
        f"mnist5k, latent widths {args.latent}, hidden {args.hidden}, {args.epochs} epochs, rate weight {args.warmup} "
        f"(KL per level in nats, "
        f"AU = active units / width)\n\n{levels_table(args, results)}\n\n"
    )
    table += "" if not information else (
        f"shapes, {args.shapes_epochs} epochs: max_j I(z_j; v_k) / H(v_k) per level and factor (test split)\n\n"
        f"{factors_table(information)}"
    )
    record = {"mnist5k": results, "shapes": {n: {s: v.tolist() for s, v in d.items()} for n, d in information.items()}}
    write_table(args, table, record)


if __name__ == "__main__":
    main()
