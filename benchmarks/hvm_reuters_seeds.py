"""HVM against mean field on reuters over training seeds, each trained model completed several ways.

Trains a DEF on reuters' 315 training documents (full batch, Adam 0.05) with the ``local`` (mean-field)
and ``hvm_local`` guides for each training seed, then completes the 40 test documents of each trained
model (``pyro_deepvi.evaluation.document_completion``) with each (steps, Adam step) of
``--completion``, completion seeds 0 and 1. Gamma-only DEFs train with ``elbo``; a DEF with Poisson or
Bernoulli layers with ``tracegraph_elbo``, whose sites get the leave-one-out baseline when
``--particles`` ≥ 2. Writes ``<out>/<tag>/<guide>-s<seed>/completion.json`` (reused when present) and
prints a markdown table: the training bound per document (mean of the last 20 steps; the auxiliary
bound for ``hvm_local``) and the perplexity per completion setting (completion seeds 0 / 1).

Usage::

    python benchmarks/hvm_reuters_seeds.py --seeds 0,1,2           # gamma DEF 100-30-15, 1,500 steps (~50 min)
    python benchmarks/hvm_reuters_seeds.py --families poisson,poisson --latent-dims 100,30 --steps 1000 \\
        --particles 4 --completion-particles 4 --seeds 0,1,2          # the HVM paper's discrete DEF
"""

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from pyro_deepvi import TrainConfig, load, train
from pyro_deepvi.evaluation.perplexity import document_completion
from pyro_deepvi.run import Run


def _integers(text):
    return [int(v) for v in text.split(",") if v.strip()]


def _settings(text):
    """"300x0.1,1000x0.03" -> [(300, 0.1), (1000, 0.03)]."""
    pairs = [item.split("x") for item in text.split(",") if item.strip()]
    return [(int(steps), float(lr)) for steps, lr in pairs]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=_integers, default=[0, 1, 2], help="training seeds (default 0,1,2)")
    p.add_argument("--steps", type=int, default=1500, help="full-batch training steps (default 1500)")
    p.add_argument("--latent-dims", type=_integers, default=[100, 30, 15])
    p.add_argument("--families", default="gamma", help="comma-separated layer families, bottom up (default: all gamma)")
    p.add_argument("--particles", type=int, default=1, help="particles per training step (default 1)")
    p.add_argument("--guides", default="local,hvm_local")
    p.add_argument("--completion", type=_settings, default=_settings("300x0.1,1000x0.03,3000x0.01"),
                   help="completion settings, steps x Adam step (default 300x0.1,1000x0.03,3000x0.01)")
    p.add_argument("--completion-particles", type=int, default=1, help="particles per completion step (default 1)")
    p.add_argument("--out", default="runs/hvm_reuters_seeds")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    families = args.families.split(",")
    families = families * len(args.latent_dims) if len(families) == 1 else families
    objective = "elbo" if set(families) == {"gamma"} else "tracegraph_elbo"
    tag = f"{'-'.join(map(str, args.latent_dims))}-{'-'.join(families)}-{args.steps}-p{args.particles}"
    test = load("reuters", "test")
    rows = []
    for seed in args.seeds:
        for guide in args.guides.split(","):
            out = Path(args.out) / tag / f"{guide}-s{seed}"
            record = out / "completion.json"
            result = json.loads(record.read_text()) if record.exists() else {}
            if "train_seconds" not in result:
                started = time.perf_counter()
                train(TrainConfig(
                    model="def", data="reuters", guide=guide, objective=objective, latent_dims=tuple(args.latent_dims),
                    model_args={"families": families}, particles=args.particles, batch_size=315, lr=0.05,
                    epochs=args.steps, eval_every=0, progress=False, seed=seed, out=str(out), device="cpu",
                ))
                metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if line.strip()]
                result = {"train_seconds": time.perf_counter() - started,
                          "training_bound": statistics.mean(m["train_bound"] for m in metrics[-20:])}
            run = Run.load(out)
            for steps, lr in args.completion:
                key = f"{steps}x{lr}x{args.completion_particles}"
                if key not in result:
                    result[key] = [
                        document_completion(run.model, run.guide, test.x, steps=steps, lr=lr, seed=c,
                                            particles=args.completion_particles)["perplexity"]
                        for c in (0, 1)
                    ]
                    record.write_text(json.dumps(result, indent=1))
            record.write_text(json.dumps(result, indent=1))
            print(guide, seed, json.dumps(result), flush=True)
            rows.append((guide, seed, result))

    keys = [f"{steps}x{lr}x{args.completion_particles}" for steps, lr in args.completion]
    print(f"\nreuters, DEF {tag} ({objective}), completion with {args.completion_particles} particle(s)\n")
    print("| guide | seed | training bound | " + " | ".join(f"{k.rsplit('x', 1)[0].replace('x', ' × ')}" for k in keys)
          + " | train s |")
    print("|---|---:|---:|" + "---|" * len(keys) + "---:|")
    for guide, seed, result in rows:
        cells = " | ".join(" / ".join(f"{v:,.0f}" for v in result[k]) for k in keys)
        print(f"| {guide} | {seed} | {result['training_bound']:.1f} | {cells} | {result['train_seconds']:.0f} |")


if __name__ == "__main__":
    main()
