"""HVM against mean field on reuters over training seeds, the training length chosen on validation.

Trains a DEF on reuters' 315 training documents (full batch, Adam 0.05) with the ``local`` (mean-field)
and ``hvm_local`` guides for each training seed. At each of ``--stages`` (training steps) it completes
the 40 validation documents (completion seed 0) and the 40 test documents (``--test-seeds``, 0 and 1)
with each (steps, Adam step) of ``--completion`` (``pyro_deepvi.evaluation.document_completion``), and
reports the test perplexity at the stage whose validation perplexity is lowest: early stopping, the
same rule for both guides. It also refits the bound of whole documents under the learned globals
(``held_out_bound``, first completion setting, 100 draws) to the first 40 training documents and to the
validation documents, and prints their difference. Gamma-only DEFs train with ``elbo``; a DEF with
Poisson or Bernoulli layers with ``tracegraph_elbo``, whose sites get the leave-one-out baseline when
``--particles`` ≥ 2. ``--hvm-arg KEY=VALUE`` sets an option of ``hvm_local`` (for example
``shared_step=0.005``, the step of its shared flows and r relative to the per-document tables); its runs
are then kept apart under a directory that names the options.

Writes ``<out>/<tag>/<guide>-s<seed>/stages.json`` (reused: a finished stage is not recomputed; the
run directory beside it holds the last stage's checkpoint) and prints two markdown tables: every
stage (training bound per document, the mean of the 20 steps before the stage, the auxiliary bound for
``hvm_local``; the refitted bounds of training and validation documents; validation and test
perplexity), and each run's validation-selected stage.

Usage::

    python benchmarks/hvm_reuters_seeds.py --seeds 0,1,2 --stages 1500     # gamma DEF 100-30-15 (~50 min)
    python benchmarks/hvm_reuters_seeds.py --families poisson,poisson --latent-dims 100,30 --particles 4 \\
        --completion 1000x0.03 --completion-particles 4 --stages 500,1000,1500 --test-seeds 0 --seeds 0
    python benchmarks/hvm_reuters_seeds.py ... --guides hvm_local --hvm-arg shared_step=0.005
"""

import argparse
import json
import statistics
from pathlib import Path

import torch

from pyro_deepvi import TrainConfig, load
from pyro_deepvi.cli import _key_value
from pyro_deepvi.engine import Trainer
from pyro_deepvi.evaluation.perplexity import document_completion, held_out_bound
from pyro_deepvi.settings import module_local_params


def _integers(text):
    return [int(v) for v in text.split(",") if v.strip()]


def _settings(text):
    """"300x0.1,1000x0.03" -> [(300, 0.1), (1000, 0.03)]."""
    pairs = [item.split("x") for item in text.split(",") if item.strip()]
    return [(int(steps), float(lr)) for steps, lr in pairs]


def _train_and_complete(args, guide, seed, out, splits, bound_splits):
    """Train ``guide``'s run to each stage, complete ``splits`` and bound ``bound_splits`` there:
    {stage: record}, saved as it goes."""
    record_path = out / "stages.json"
    records = json.loads(record_path.read_text()) if record_path.exists() else {}
    config = TrainConfig(
        model="def", data="reuters", guide=guide, objective=args.objective, latent_dims=tuple(args.latent_dims),
        model_args={"families": args.families}, guide_args=args.hvm_args if guide == "hvm_local" else None,
        particles=args.particles, batch_size=315, lr=0.05,
        epochs=max(args.stages), eval_every=0, progress=False, seed=seed, out=str(out), device="cpu",
    )
    keys = [f"{steps}x{lr}x{args.completion_particles}" for steps, lr in args.completion]
    trainer = None
    for stage in args.stages:
        record = records.get(str(stage), {})
        if all(key in record for key in [*keys, "bound"]):
            continue
        if trainer is None:
            trainer = Trainer(config)  # resumes from the checkpoint of the last stage trained
        if trainer.epoch > stage:
            raise ValueError(f"{out} is trained past stage {stage} ({trainer.epoch} steps) but has no record of it")
        trainer.fit(until_epoch=stage)
        metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if line.strip()]
        record["training_bound"] = statistics.mean(m["train_bound"] for m in metrics[max(0, stage - 20) : stage])
        model, variational = trainer.components.model, trainer.components.guide
        with module_local_params():
            for (steps, lr), key in zip(args.completion, keys):
                record[key] = {
                    split: [
                        document_completion(model, variational, data.x, steps=steps, lr=lr, seed=c,
                                            particles=args.completion_particles)["perplexity"]
                        for c in completion_seeds
                    ]
                    for split, (data, completion_seeds) in splits.items()
                }
            steps, lr = args.completion[0]
            record["bound"] = {
                split: float(held_out_bound(model, variational, x, steps, lr, args.completion_particles).mean())
                for split, x in bound_splits.items()
            }
        records[str(stage)] = record
        record_path.write_text(json.dumps(records, indent=1))
        print(guide, seed, stage, json.dumps(record), flush=True)
    return {int(stage): record for stage, record in records.items() if int(stage) in args.stages}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=_integers, default=[0, 1, 2], help="training seeds (default 0,1,2)")
    p.add_argument("--stages", type=_integers, default=[1500],
                   help="training steps at which to complete the validation and test documents (default 1500)")
    p.add_argument("--latent-dims", type=_integers, default=[100, 30, 15])
    p.add_argument("--families", default="gamma", help="comma-separated layer families, bottom up (default: all gamma)")
    p.add_argument("--particles", type=int, default=1, help="particles per training step (default 1)")
    p.add_argument("--guides", default="local,hvm_local")
    p.add_argument("--hvm-arg", type=_key_value, action="append", default=[], metavar="KEY=VALUE",
                   help="an option of the hvm_local guide, e.g. shared_step=0.005 (repeatable)")
    p.add_argument("--completion", type=_settings, default=_settings("300x0.1,1000x0.03"),
                   help="completion settings, steps x Adam step (default 300x0.1,1000x0.03)")
    p.add_argument("--completion-particles", type=int, default=1, help="particles per completion step (default 1)")
    p.add_argument("--test-seeds", type=_integers, default=[0, 1], help="completion seeds of the test documents")
    p.add_argument("--out", default="runs/hvm_reuters_seeds")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    args.stages = sorted(set(args.stages))
    families = args.families.split(",")
    args.families = families * len(args.latent_dims) if len(families) == 1 else families
    args.objective = "elbo" if set(args.families) == {"gamma"} else "tracegraph_elbo"
    args.hvm_args = dict(args.hvm_arg) or None

    tag = f"{'-'.join(map(str, args.latent_dims))}-{'-'.join(args.families)}-p{args.particles}"
    splits = {"valid": (load("reuters", "valid"), (0,)), "test": (load("reuters", "test"), tuple(args.test_seeds))}
    bound_splits = {"train": load("reuters", "train").x[:40], "valid": splits["valid"][0].x}
    options = "".join(f"-{key}={value}" for key, value in args.hvm_arg)
    labels = {guide: guide + options if guide == "hvm_local" else guide for guide in args.guides.split(",")}
    runs = [
        (label, seed, _train_and_complete(args, guide, seed, Path(args.out) / tag / f"{label}-s{seed}", splits, bound_splits))
        for seed in args.seeds
        for guide, label in labels.items()
    ]

    keys = [f"{steps}x{lr}x{args.completion_particles}" for steps, lr in args.completion]
    names = [key.rsplit("x", 1)[0].replace("x", " × ") for key in keys]
    print(f"\nreuters, DEF {tag} ({args.objective}), completion with {args.completion_particles} particle(s); "
          "bounds in nats per document (refitted: whole documents, first completion setting); perplexity: "
          f"validation (completion seed 0) | test (completion seeds {' / '.join(map(str, args.test_seeds))})\n")
    print("| guide | seed | steps | training bound | refitted: train | valid | gap | "
          + " | ".join(f"{n}: valid | test" for n in names) + " |")
    print("|---|---:|---:|---:|---:|---:|---:|" + "---:|---|" * len(keys))
    for guide, seed, records in runs:
        for stage, record in sorted(records.items()):
            cells = " | ".join(
                f"{record[k]['valid'][0]:,.0f} | " + " / ".join(f"{v:,.0f}" for v in record[k]["test"]) for k in keys
            )
            bound = record["bound"]
            print(f"| {guide} | {seed} | {stage} | {record['training_bound']:.1f} | {bound['train']:.1f} | "
                  f"{bound['valid']:.1f} | {bound['train'] - bound['valid']:.1f} | {cells} |")
    print(f"\nthe stage of lowest validation perplexity ({names[0]}) and its test perplexity, mean of completion seeds\n")
    print("| guide | seed | steps | valid | test |")
    print("|---|---:|---:|---:|---:|")
    for guide, seed, records in runs:
        stage = min(records, key=lambda s: records[s][keys[0]]["valid"][0])
        chosen = records[stage][keys[0]]
        print(f"| {guide} | {seed} | {stage} | {chosen['valid'][0]:,.0f} | {statistics.mean(chosen['test']):,.0f} |")


if __name__ == "__main__":
    main()
