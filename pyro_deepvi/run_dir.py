"""The files of a run directory, written atomically (temporary file, then rename)."""

import json
import os
from pathlib import Path

import torch

CONFIG, METRICS, CHECKPOINT, EVAL = "config.json", "metrics.jsonl", "checkpoint.pt", "eval.json"


def _replace(path, write):
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    write(tmp)
    os.replace(tmp, path)


def save_atomic(obj, path):
    """``torch.save`` to a temporary file beside ``path``, then rename over it."""
    _replace(path, lambda tmp: torch.save(obj, tmp))


def write_json_atomic(obj, path):
    _replace(path, lambda tmp: tmp.write_text(json.dumps(obj, indent=2) + "\n"))


def load_checkpoint(path, map_location=None):
    """Load a checkpoint with ``weights_only=True``: tensors and plain containers only."""
    return torch.load(path, map_location=map_location, weights_only=True)


def read_metrics(run_dir):
    path = Path(run_dir) / METRICS
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []
