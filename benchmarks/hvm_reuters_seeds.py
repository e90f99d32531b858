"""HVM against mean field on reuters: gamma DEF 100-30-15, several training seeds, completion settings.

Trains ``local`` and ``hvm_local`` (full batch, Adam 0.05) for each training seed and completes the
test documents of each trained model with (steps, Adam step) = (300, 0.1), (1000, 0.03), (3000, 0.01),
completion seeds 0 and 1. Writes ``runs/hvm_reuters_seeds/<guide>-s<seed>-<steps>/completion.json``.

Usage::

    python benchmarks/hvm_reuters_seeds.py 0,1,2          # 1,500 steps
    python benchmarks/hvm_reuters_seeds.py 0 500          # seed 0, 500 steps
"""
import json
import sys
import time
from pathlib import Path
import torch
from pyro_deepvi import TrainConfig, train, load
from pyro_deepvi.run import Run
from pyro_deepvi.evaluation.perplexity import document_completion

torch.set_num_threads(1)
OUT = Path("runs/hvm_reuters_seeds")
seeds = [int(s) for s in sys.argv[1].split(",")]
steps = int(sys.argv[2]) if len(sys.argv) > 2 else 1500
test = load("reuters", "test")
SETTINGS = [(300, 0.1), (1000, 0.03), (3000, 0.01)]
for seed in seeds:
    for g in ("local", "hvm_local"):
        out = OUT / f"{g}-s{seed}-{steps}"
        rec = out / "completion.json"
        if rec.exists():
            continue
        t = time.time()
        r = train(TrainConfig(model="def", data="reuters", guide=g, latent_dims=(100, 30, 15), batch_size=315,
                              lr=0.05, epochs=steps, eval_every=0, progress=False, seed=seed, out=str(out)))
        tt = time.time() - t
        run = Run.load(out)
        res = {"train_seconds": tt, "eval_perplexity": r["perplexity"]}
        for s, lr in SETTINGS:
            res[f"{s}x{lr}"] = [document_completion(run.model, run.guide, test.x, steps=s, lr=lr, seed=c)["perplexity"]
                                for c in (0, 1)]
        rec.write_text(json.dumps(res, indent=1))
        print(g, seed, json.dumps(res), flush=True)
