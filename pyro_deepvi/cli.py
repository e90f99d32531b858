"""The ``pyro-deepvi`` command: ``list``, ``train``, ``eval``, ``compare``.

Examples::

    pyro-deepvi list
    pyro-deepvi train                                   # dlgm on mnist5k, prints test log p(x)
    pyro-deepvi train dlgm --guide rank_one --objective iwae --particles 5 --out runs/iwae5
    pyro-deepvi eval runs/iwae5 --particles 5000
    pyro-deepvi compare dlgm --guides diag,rank_one --objectives elbo,iwae --epochs 50
    pyro-deepvi rd runs/beta-* --out rd.png
"""

import argparse
import itertools
import json
import sys
from pathlib import Path

from matplotlib.figure import Figure

from . import DATASETS, GUIDES, MODELS, OBJECTIVES, TERMS, TrainConfig, evaluate, train
from .callbacks import tensorboard_writer
from .engine import DEFAULTS
from .evaluation import plot_rate_distortion, rate_distortion_points
from .plugins import import_plugins
from .run_dir import EVAL, write_json_atomic


def _comma_separated(kind, what, example):
    """An argparse type: ``text`` as a tuple of ``kind`` (empty parts skipped), or an error naming ``what`` it wants."""

    def parse(text):
        try:
            return tuple(kind(d) for d in text.split(",") if d.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected comma-separated {what} such as {example}, got {text!r}") from None

    return parse


_dims = _comma_separated(int, "integers", "200,200")
_floats = _comma_separated(float, "numbers", "0.9,0.999")


def _names(text):
    return [name.strip() for name in text.split(",") if name.strip()]


def _key_value(text):
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def _default(name):
    value = DEFAULTS[name]
    shown = ",".join(map(str, value)) if isinstance(value, tuple) else value
    return f"default {shown}*"


#: The epilog of ``train`` and ``compare``, for the defaults marked with *.
_DEFAULTS_NOTE = "* a model's own train_defaults, shown by `pyro-deepvi list`, replace the defaults marked *"


def _add_imports(parser):
    parser.add_argument(
        "--import", dest="imports", action="append", default=[], metavar="MODULE",
        help="a plug-in module (name or .py path) that registers models, guides, terms or data sets (repeatable)",
    )


def _add_run_options(parser):
    parser.add_argument("--data", default=None, help=f"a data set (see `pyro-deepvi list`) or a .npz file of arrays x, y, x_test, ...; {_default('data')}")
    parser.add_argument("--data-root", default=None, help="folder of file-based data sets such as binarized_mnist")
    parser.add_argument("--download", action="store_true", help="fetch a missing data file (checksum-verified)")
    parser.add_argument("--epochs", type=int, default=None, help=_default("epochs"))
    parser.add_argument("--batch-size", type=int, default=None, help=_default("batch_size"))
    parser.add_argument("--lr", type=float, default=None, help=f"Adam's step size; {_default('lr')}")
    parser.add_argument("--adam-betas", type=_floats, default=None, help=f"Adam's beta1,beta2; {_default('adam_betas')}")
    parser.add_argument("--particles", type=int, default=None, help="particles per data point (IWAE's k); default 1, or 5 for iwae")
    parser.add_argument("--latent-dims", type=_dims, default=None, help=f"e.g. 50 or 100,50 (bottom to top); {_default('latent_dims')}")
    parser.add_argument("--hidden-dims", type=_dims, default=None, help=f"e.g. 200,200 (empty string: linear); {_default('hidden_dims')}")
    parser.add_argument("--guide-hidden-dims", type=_dims, default=None, help="the encoder's widths (default: --hidden-dims)")
    parser.add_argument(
        "--model-arg", type=_key_value, action="append", default=None, metavar="KEY=VALUE",
        help="a model option, e.g. likelihood=\"gaussian\" or kappa=100 (repeatable)",
    )
    parser.add_argument(
        "--guide-arg", type=_key_value, action="append", default=None, metavar="KEY=VALUE",
        help="a guide option, e.g. activation=\"relu\" for the encoder of the Gaussian guides (repeatable)",
    )
    parser.add_argument(
        "--term", type=_key_value, action="append", default=None, metavar="NAME=WEIGHT",
        help="add WEIGHT x a plug-in term to the loss, e.g. rate=3 for a beta-VAE with beta 4 (repeatable)",
    )
    parser.add_argument(
        "--term-arg", type=_key_value, action="append", default=None, metavar="NAME.OPTION=VALUE",
        help="an option of a term, e.g. mmd.kernel=\"imq\" or anchor.dims=[0,1] (repeatable)",
    )
    parser.add_argument("--seed", type=int, default=0, help="default 0")
    parser.add_argument("--device", default="auto", help="auto (cuda when present, the default), cpu, cuda, cuda:1")
    parser.add_argument(
        "--compile", action="store_true",
        help="trace the training loss once per batch shape (faster steps; eager, with a warning, where it cannot be)",
    )
    parser.add_argument("--eval-every", type=int, default=None, help=f"epochs between validation passes (0: none); {_default('eval_every')}")
    parser.add_argument("--test-particles", type=int, default=None, help=f"k of the final IWAE-k log-likelihood; {_default('test_particles')}")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars or per-epoch lines")
    parser.add_argument(
        "--overwrite", action="store_true",
        help="start over in --out even if it holds another run, or files that are not a run's",
    )
    parser.add_argument("--tensorboard", action="store_true", help="also write the per-epoch metrics to RUN_DIR/tensorboard (needs the tensorboard package)")
    _add_imports(parser)


def _once(pairs, option):
    """``dict(pairs)``, with a key given twice named as an error instead of the last one winning."""
    options = {}
    for key, value in pairs:
        if key in options:
            raise ValueError(f"{option} {key} is given twice ({options[key]!r} and {value!r}); give it once")
        options[key] = value
    return options


def _term_args(pairs):
    options = {}
    for key, value in pairs:
        term, dot, option = key.partition(".")
        if not dot or not term or not option:
            raise ValueError(f"--term-arg takes NAME.OPTION=VALUE, got {key!r}")
        if option in options.get(term, {}):
            raise ValueError(f"--term-arg {key} is given twice; give it once")
        options.setdefault(term, {})[option] = value
    return options


def _config(args, model, guide, objective, out):
    return TrainConfig(
        model=model, data=args.data, guide=guide, objective=objective, particles=args.particles,
        terms=None if args.term is None else _once(args.term, "--term"),
        term_args=None if args.term_arg is None else _term_args(args.term_arg),
        epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, adam_betas=args.adam_betas, latent_dims=args.latent_dims,
        hidden_dims=args.hidden_dims, guide_hidden_dims=args.guide_hidden_dims,
        model_args=None if args.model_arg is None else _once(args.model_arg, "--model-arg"),
        guide_args=None if args.guide_arg is None else _once(args.guide_arg, "--guide-arg"), seed=args.seed, device=args.device,
        out=out, eval_every=args.eval_every, test_particles=args.test_particles, progress=not args.no_progress,
        data_root=args.data_root, download=args.download, imports=args.imports,
        compile=args.compile,
    )


def _callbacks(args, config):
    return [tensorboard_writer(Path(config.out) / "tensorboard")] if args.tensorboard else []


#: eval.json keys printed with a label of their own; any other number is printed by its key.
_LABELS = (
    ("test_description_length_bits", "description length", "{:.2f} bits"),
    ("linear_probe_accuracy", "linear probe, E[z|x]", "{:.4f}"),
    ("mig", "MIG", "{:.4f}"),
    ("test_error", "test error", "{:.4f}"),
)
_SHOWN = {"data", "split", "num_data", "num_particles", "test_elbo", "test_log_likelihood",
          "test_log_likelihood_stderr", "active_units", "elbo_surgery", "test_rate", "test_distortion"}


def _print_result(result):
    if "test_elbo" in result:
        print(f"test ELBO            {result['test_elbo']:.2f} nats")
        print(
            f"test log-likelihood  {result['test_log_likelihood']:.2f} ± {result['test_log_likelihood_stderr']:.2f} nats "
            f"(IWAE, k = {result['num_particles']})"
        )
        units = ", ".join(f"{k} {v}" for k, v in result["active_units"].items())
        print(f"active units         {units}")
    for key, label, fmt in _LABELS:
        if key in result:
            print(f"{label:<21}{fmt.format(result[key])}")
    labelled = _SHOWN | {key for key, _, _ in _LABELS}
    for key, value in result.items():
        if key not in labelled and isinstance(value, (int, float)):
            print(f"{key:<21}{value:.4f}")
    if "elbo_surgery" not in result:
        return
    s = result["elbo_surgery"]
    if "skipped" in s:
        print(f"ELBO surgery         skipped: {s['skipped']}")
        return
    print(
        f"ELBO surgery (train) average KL {s['average_kl']:.2f} = I[n;z] {s['index_code_mi']:.2f} "
        f"(log N = {s['log_n']:.2f}) + KL(q(z)||p(z)) {s['marginal_kl']:.2f} nats"
    )


def cmd_list(args):
    import_plugins(args.imports)
    registries = (("models", MODELS), ("guides", GUIDES), ("objectives", OBJECTIVES), ("terms", TERMS), ("data sets", DATASETS))
    for title, registry in registries:
        print(f"{title}:")
        for name in registry:
            print(f"  {name:<18} {registry.summary(name)}")
            defaults = getattr(registry.get(name), "train_defaults", None) if registry is MODELS else None
            if defaults:
                print(f"  {'':<18}   defaults: " + ", ".join(f"{k}={v}" for k, v in defaults.items()))


def cmd_train(args):
    config = _config(args, args.model, args.guide, args.objective, args.out)
    result = train(config, overwrite=args.overwrite, callbacks=_callbacks(args, config))
    if result is None:  # a rank other than 0 under torchrun: rank 0 reports
        return
    print(f"run directory        {config.out}")
    _print_result(result)


def cmd_eval(args):
    import_plugins(args.imports)
    result = evaluate(args.run_dir, num_particles=args.particles, device=args.device, progress=not args.no_progress)
    print(f"wrote {Path(args.run_dir) / EVAL}")
    _print_result(result)


def cmd_compare(args):
    out = Path(args.out or f"runs/compare-{args.model}")
    rows = []
    for guide, objective in itertools.product(args.guides, args.objectives):
        config = _config(args, args.model, guide, objective, str(out / f"{guide}-{objective}"))
        print(f"== {guide} / {objective} (k = {config.particles})", flush=True)
        result = train(config, overwrite=args.overwrite, callbacks=_callbacks(args, config))
        if result is not None:  # None on a rank other than 0 under torchrun: rank 0 reports
            rows.append({"guide": guide, "objective": objective, "particles": config.particles, **result})
    if not rows:
        return
    print()
    print(f"{'guide':<10} {'objective':<16} {'k':>3} {'test ELBO':>10} {'test log p(x)':>14} {'active':>7}")
    for r in rows:
        print(
            f"{r['guide']:<10} {r['objective']:<16} {r['particles']:>3} {r['test_elbo']:>10.2f} "
            f"{r['test_log_likelihood']:>14.2f} {r['active_units']['total']:>7}"
        )
    write_json_atomic(rows, out / "compare.json")
    _plot_comparison(rows, out / "compare.png")
    print(f"wrote {out / 'compare.json'} and {out / 'compare.png'}")


def cmd_rd(args):
    points = rate_distortion_points(args.run_dirs)
    _, entropy, estimated = plot_rate_distortion(points, args.out, entropy=args.entropy)
    print(f"{'run':<30} {'rate R':>8} {'distortion D':>13} {'from':>6}")
    for point in points:
        print(f"{point['label']:<30} {point['rate']:>8.2f} {point['distortion']:>13.2f} {point['source']:>6}")
    if entropy is not None:
        print(f"line D = H − R with H = {entropy:.2f} nats" + (" (an upper estimate: best test −log p(x))" if estimated else ""))
    print(f"wrote {args.out}")


def _plot_comparison(rows, path):
    labels = [f"{r['guide']}\n{r['objective']}" for r in rows]
    fig = Figure(figsize=(1.6 * len(rows) + 2, 4))
    ax = fig.subplots()
    positions = range(len(rows))
    ax.bar([p - 0.2 for p in positions], [r["test_elbo"] for r in rows], 0.4, label="test ELBO")
    ax.bar([p + 0.2 for p in positions], [r["test_log_likelihood"] for r in rows], 0.4, label="test log p(x)")
    low = min(r["test_elbo"] for r in rows)
    high = max(r["test_log_likelihood"] for r in rows)
    ax.set_ylim(low - 0.2 * (high - low) - 1, high + 0.2 * (high - low) + 1)
    ax.set_xticks(list(positions), labels)
    ax.set_ylabel("nats per data point")
    ax.legend()
    fig.savefig(path, dpi=100, bbox_inches="tight")


def make_parser():
    parser = argparse.ArgumentParser(prog="pyro-deepvi", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("list", help="models (with their training defaults), guides, objectives and data sets")
    _add_imports(p)
    p.set_defaults(run=cmd_list)

    p = sub.add_parser("train", help="train a model; prints its test log-likelihood", epilog=_DEFAULTS_NOTE)
    p.add_argument("model", nargs="?", default="dlgm", help="a registered model (default dlgm)")
    p.add_argument("--guide", default=None, help="default: the model's own")
    p.add_argument("--objective", default=None, help=_default("objective"))
    p.add_argument("--out", default=None, help="run directory (default runs/MODEL-GUIDE-OBJECTIVE); an existing one is resumed")
    _add_run_options(p)
    p.set_defaults(run=cmd_train)

    p = sub.add_parser("eval", help="evaluate a run directory; writes RUN_DIR/eval.json")
    p.add_argument("run_dir")
    p.add_argument("--particles", type=int, default=None, help="k of IWAE-k (default: the run's test_particles)")
    p.add_argument("--device", default="auto", help="auto (the run's device), cpu, cuda, cuda:1")
    p.add_argument("--no-progress", action="store_true", help="no line before it starts, no progress bar")
    _add_imports(p)
    p.set_defaults(run=cmd_eval)

    p = sub.add_parser(
        "compare", help="train every guide x objective pair with one data set, seed and budget", epilog=_DEFAULTS_NOTE
    )
    p.add_argument("model", nargs="?", default="dlgm", help="a registered model (default dlgm)")
    p.add_argument("--guides", type=_names, default=["diag", "rank_one"])
    p.add_argument("--objectives", type=_names, default=["elbo", "iwae"])
    p.add_argument("--out", default=None, help="directory of the runs (default runs/compare-MODEL)")
    _add_run_options(p)
    p.set_defaults(run=cmd_compare)

    p = sub.add_parser("rd", help="place runs on the rate-distortion plane, with the bound D >= H - R")
    p.add_argument("run_dirs", nargs="+")
    p.add_argument("--out", default="rd.png")
    p.add_argument("--entropy", type=float, default=None, help="data entropy H (default: best test -log p(x), an upper estimate)")
    p.set_defaults(run=cmd_rd)
    return parser


def main(argv=None):
    args = make_parser().parse_args(argv)
    try:
        args.run(args)
    except (ValueError, KeyError, OSError, ImportError, FloatingPointError) as e:
        message = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"pyro-deepvi: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("pyro-deepvi: interrupted; the last checkpoint is intact, rerun the command to resume", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
