"""What the quality benchmarks of the information-theoretic models share.

:func:`parser` gives their common options (``--epochs``, ``--test-particles``,
``--out``, ``--device``, ``--threads``, ``--smoke``, ``--overwrite``), :func:`start`
applies them, :func:`train_once` trains a run through ``pyro_deepvi.train``
unless its directory already holds that run finished (then it reads its
``eval.json``), and :func:`write_table` prints and saves the markdown table.
:func:`fresh_run_dirs` picks ``--only``'s runs for the tables whose runs must start afresh
(``mnist5k_table.py``, ``perplexity_table.py``).
"""

import argparse
import json
import os
import shutil
from pathlib import Path

import torch

import pyro_deepvi
from pyro_deepvi.run_dir import CHECKPOINT, CONFIG, EVAL, read_metrics

#: Options a finished run may differ in (they do not change what it trained).
FREE = ("progress", "device", "data_root", "download")


def parser(doc, name, epochs, test_particles):
    """The common options; ``--out`` defaults to ``runs/<name>`` (``runs/<name>_smoke`` with ``--smoke``)."""
    p = argparse.ArgumentParser(description=doc.splitlines()[0], epilog=doc.split("Usage::")[-1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=epochs, help=f"training epochs (default {epochs})")
    p.add_argument("--test-particles", type=int, default=test_particles,
                   help=f"k of the test log-likelihood estimate (default {test_particles})")
    p.add_argument("--out", default=None, help=f"runs directory (default runs/{name}, runs/{name}_smoke with --smoke)")
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    p.add_argument("--threads", type=int, default=None,
                   help="torch.set_num_threads (default: torch's); 1 is steadier on a machine shared with other jobs")
    p.add_argument("--smoke", action="store_true", help="1 epoch, k = 10: checks the script end to end in a minute or two")
    p.add_argument("--overwrite", action="store_true", help="delete the script's run directories first and train afresh")
    p.set_defaults(name=name)
    return p


def start(args):
    """Apply ``--smoke`` and ``--threads``, make ``args.out`` a ``Path``, print the set-up; returns ``args``."""
    if args.smoke:
        args.epochs, args.test_particles = 1, 10
    args.out = Path(args.out or f"runs/{args.name}{'_smoke' if args.smoke else ''}")
    if args.threads:
        torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    args.load_at_start = os.getloadavg()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, load average {load_average()}, runs in {args.out}",
          flush=True)
    return args


def fresh_run_dirs(parser, runs, only, out, overwrite):
    """The names ``only`` (comma-separated) picks from ``runs`` (all when ``None``), and ``Path(out)``.

    For tables whose every run must start afresh: an existing run directory is an error
    (pyro-deepvi would resume from its checkpoint) unless ``overwrite``, which deletes it.
    """
    names = list(runs) if only is None else [n.strip() for n in only.split(",") if n.strip()]
    unknown = [n for n in names if n not in runs]
    if unknown:
        parser.error(f"unknown runs {unknown}; choose from: {', '.join(runs)}")
    out_root = Path(out)
    existing = [out_root / n for n in names if (out_root / n).exists()]
    if existing and not overwrite:
        parser.error(
            f"{', '.join(map(str, existing))} exist(s): pyro-deepvi would resume from a checkpoint there; "
            "pass --overwrite to start over, or choose another --out"
        )
    for path in existing:
        shutil.rmtree(path)
    out_root.mkdir(parents=True, exist_ok=True)
    return names, out_root


def load_average():
    """The 1-, 5- and 15-minute load averages, as text."""
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


def finished(run_dir, config):
    """Whether ``run_dir`` holds the run ``config`` describes, trained all its epochs and evaluated with its k.

    :raises ValueError: when it holds that run trained for more epochs than ``config`` asks.
    """
    run_dir = Path(run_dir)
    if not (run_dir / CONFIG).exists():
        return False
    saved = json.loads((run_dir / CONFIG).read_text())
    wanted = json.loads(json.dumps(config.to_dict()))
    if any(saved.get(k) != v for k, v in wanted.items() if k not in FREE + ("epochs", "test_particles")):
        return False  # pyro_deepvi.train will refuse it, naming the difference
    records = read_metrics(run_dir)
    trained = records[-1]["epoch"] if records else 0
    if trained > config.epochs:
        raise ValueError(f"{run_dir} was trained {trained} epochs, more than the {config.epochs} asked for; "
                         "use --overwrite or another --out")
    eval_path = run_dir / EVAL
    if trained < config.epochs or not eval_path.exists():
        return False
    if eval_path.stat().st_mtime < (run_dir / CHECKPOINT).stat().st_mtime:
        return False  # evaluated before its last epoch
    return json.loads(eval_path.read_text()).get("num_particles") == config.test_particles


def train_once(config, overwrite=False, train=pyro_deepvi.train):
    """``eval.json`` of the run ``config`` describes: read when finished, otherwise trained (or resumed) and evaluated
    by ``train(config)`` (default :func:`pyro_deepvi.train`; it returns the ``eval.json`` record).

    Prints which it was and, when it trained, the time its epochs took.
    """
    run_dir = Path(config.out)
    if overwrite and run_dir.exists():
        shutil.rmtree(run_dir)
    if finished(run_dir, config):
        print(f"{run_dir.name}: finished before, read {run_dir / EVAL}", flush=True)
        return json.loads((run_dir / EVAL).read_text())
    print(f"{run_dir.name}: training {config.epochs} epochs (load {load_average()}) ...", flush=True)
    result = train(config)
    print(f"{run_dir.name}: done, {train_seconds(run_dir):.0f} s of training", flush=True)
    return result


def train_seconds(run_dir):
    """The run's training time: the sum of its epochs' loop times (no evaluation)."""
    return sum(r["seconds"] for r in read_metrics(run_dir))


def fmt(value, digits=2):
    """A table cell: ``—`` for ``None``."""
    return "—" if value is None else f"{value:.{digits}f}"


def write_table(args, table, record):
    """Print the markdown ``table`` and save it to ``<out>/<name>.md``, ``record`` to ``<out>/<name>.json``."""
    table += f"\n\nLoad average (1 / 5 / 15 min): {' / '.join(f'{x:.2f}' for x in args.load_at_start)} at the start, " \
             f"{load_average()} at the end."
    print()
    print(table)
    md, js = args.out / f"{args.name}.md", args.out / f"{args.name}.json"
    md.write_text(table + "\n")
    options = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    js.write_text(json.dumps({"options": options, **record}, indent=2, default=float) + "\n")
    print(f"\nwritten: {md}, {js}")
