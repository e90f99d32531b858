"""VCCA on two_view_mnist: test error of a linear classifier on E[z | view 1], beside linear CCA and raw pixels.

The protocol of Wang, Yan, Lee & Livescu (2016) on the embedded ``two_view_mnist``
(``pyro_deepvi.data.two_view``: view 1 the mnist5k digit rotated by U[−π/4, π/4],
view 2 another digit of its class plus U[0, 1] noise, clipped): each
representation of view 1 is fit on the 3,500 training pairs, a linear classifier
(``pyro_deepvi.evaluation.linear_probe``: multinomial logistic regression on the
standardized features, its L2 penalty chosen on the 500 validation digits as the
paper tunes its SVM's C) is fit to the training digits' representations and
labels, and its error is measured on the 1,000 test digits. Rows:

- ``raw pixels``: view 1's 784 pixels;
- ``linear CCA``: the projection of view 1 on its first ``--dim`` canonical
  directions (``pyro_deepvi.models.vcca.linear_cca``; the ridge chosen by the
  error on the validation split);
- ``vcca``, ``vcca_private``: E[z | view 1] of a run of ``pyro_deepvi.train``
  with the model's ``train_defaults`` (``--epochs`` overrides), its test error
  the ``test_error_z`` of its ``eval.json``.

The models' defaults are the paper's networks (three ReLU layers of 1024 units,
z of 30, dropout 0.2); the paper's figures are on the full noisy MNIST (50,000
training pairs, a linear SVM); ours has 14x fewer pairs, so expect larger errors.
Pictures in ``--out``: ``view2_from_view1.png`` (view 1, view 2, and view 2
predicted from view 1 alone, per model) and ``private_swap.png`` (VCCA-private:
z from the digits of the first column, h_x from those of the first row).

Usage::

    python benchmarks/vcca_table.py --threads 1            # ~12 min at load 2 on 2 CPU cores
    python benchmarks/vcca_table.py --smoke
"""

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import load_average, parser, start, train_once, write_table  # noqa: E402
from pyro_deepvi import MODELS, TrainConfig, load  # noqa: E402
from pyro_deepvi.engine import restore  # noqa: E402
from pyro_deepvi.evaluation.plots import save_image_grid  # noqa: E402
from pyro_deepvi.models.vcca import linear_cca_error, raw_pixel_error  # noqa: E402

PAPER = "Wang et al. 2016, noisy MNIST (50,000 training pairs), linear SVM on E[z | view 1]"
PAPER_ERROR = {"vcca": 0.030, "vcca_private": 0.024}
RIDGES = (1e-3, 1e-2, 1e-1, 1.0)


def cca_row(train, valid, test, dim):
    """Linear CCA's test error, its ridge chosen on the validation split."""
    views = lambda data: (data.x, data.views["x2"])  # noqa: E731
    valid_errors = {r: linear_cca_error(views(train), train.y, views(valid), valid.y, 10, dim, r) for r in RIDGES}
    ridge = min(valid_errors, key=valid_errors.get)
    return linear_cca_error(views(train), train.y, views(test), test.y, 10, dim, ridge, (views(valid), valid.y)), ridge


def pictures(run_dirs, test, out):
    x, x2 = test.x[:10], test.views["x2"][:10]
    rows = [x, x2]
    for name, run_dir in run_dirs.items():
        _, components = restore(run_dir, "cpu")
        components.eval()
        model, guide = components.model, components.guide
        with torch.no_grad():
            rows.append(model.view2_from_view1(guide, x))
            if name == "vcca_private":
                # The first row and column are the digits whose h_x (row) and z (column) are used.
                styles, classes = test.x[10:19], test.x[20:29]
                swapped = model.swap_private(guide, classes, styles)
                grid = torch.cat([torch.cat([torch.zeros(1, x.shape[1]), styles])[None].expand(1, -1, -1),
                                  torch.cat([classes[:, None], swapped], 1)], 0)
                save_image_grid(grid.reshape(-1, x.shape[1]), test.event_shape, out / "private_swap.png",
                                "VCCA-private: z from the first column, h_x from the first row", columns=10)
    title = "view 1 | view 2 | view 2 from view 1: " + ", ".join(run_dirs)
    save_image_grid(torch.cat(rows), test.event_shape, out / "view2_from_view1.png", title)


def main():
    p = parser(__doc__, "vcca_table", epochs=None, test_particles=100)
    p.add_argument("--dim", type=int, default=None, help="dimensions of z and of the CCA projection (default: the models')")
    args = start(p.parse_args())
    args.dim = args.dim or MODELS.get("vcca").train_defaults["latent_dims"][0]
    train, valid, test = (load("two_view_mnist", s) for s in ("train", "valid", "test"))
    errors, run_dirs = {"raw pixels": raw_pixel_error(train, test, valid)}, {}
    errors["linear CCA"], ridge = cca_row(train, valid, test, args.dim)
    print(f"baselines done (load {load_average()}): {errors}", flush=True)
    for name in ("vcca", "vcca_private"):
        options = dict(MODELS.get(name).train_defaults, latent_dims=(args.dim,), test_particles=args.test_particles)
        if args.epochs:
            options["epochs"] = args.epochs
        config = TrainConfig(model=name, out=str(args.out / name), eval_every=0, progress=False, device=args.device, **options)
        errors[name] = train_once(config, args.overwrite)["test_error_z"]
        run_dirs[name] = config.out
    pictures(run_dirs, test, args.out)
    table = "| representation of view 1 | test error (ours, two_view_mnist) | paper (noisy MNIST) |\n|---|---|---|\n"
    table += "\n".join(f"| {name} | {100 * e:.1f} % | {PAPER_ERROR[name] * 100:.1f} % |" if name in PAPER_ERROR
                       else f"| {name} | {100 * e:.1f} % | — |" for name, e in errors.items())
    table += f"\n\nPaper: {PAPER}. Linear CCA: {args.dim} dimensions, ridge {ridge:g} (chosen on the validation split)."
    write_table(args, table, {"test_error": errors, "cca_ridge": ridge})


if __name__ == "__main__":
    main()
