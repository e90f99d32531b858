"""The files of a run directory, written atomically (temporary file, then rename)."""

import json
import os
import warnings
from pathlib import Path

import torch

CONFIG, METRICS, CHECKPOINT, EVAL = "config.json", "metrics.jsonl", "checkpoint.pt", "eval.json"
#: Per test point ELBO and IWAE-k log p(x) of the last evaluation, for paired comparisons of runs.
TEST_BOUNDS = "test_bounds.pt"


def _replace(path, write):
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        write(tmp)
    except BaseException:
        tmp.unlink(missing_ok=True)  # a full disk leaves neither half a file nor a changed one
        raise
    os.replace(tmp, path)


def save_atomic(obj, path):
    """``torch.save`` to a temporary file beside ``path``, then rename over it."""
    _replace(path, lambda tmp: torch.save(obj, tmp))


def write_json_atomic(obj, path):
    _replace(path, lambda tmp: tmp.write_text(json.dumps(obj, indent=2) + "\n"))


def load_checkpoint(path, map_location=None, keys=("components",)):
    """Load a checkpoint with ``weights_only=True``: tensors and plain containers only.

    A file that cannot be read, or lacks one of ``keys``, is a ValueError naming it.
    """
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # noqa: BLE001  (any failure to unpickle means the same: not a usable checkpoint)
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise ValueError(f"{path} cannot be read as a checkpoint ({reason}); {_DAMAGED}") from e
    missing = [k for k in keys if k not in checkpoint] if isinstance(checkpoint, dict) else list(keys)
    if missing:
        raise ValueError(f"{path} is not a pyro-deepvi checkpoint (it has no {', '.join(missing)}); {_DAMAGED}")
    return checkpoint


_DAMAGED = "it is damaged or not from this library: move it away, or train with --overwrite to start the run over"


def check_fresh_start(run_dir):
    """Refuse to start a run in ``run_dir`` over files that are not ours, or a history a restart would wipe."""
    config, metrics = Path(run_dir) / CONFIG, Path(run_dir) / METRICS
    advice = "choose another --out, or pass --overwrite to replace it"
    if config.exists():
        try:
            previous = json.loads(config.read_text())
        except (ValueError, UnicodeDecodeError):
            previous = None
        if not (isinstance(previous, dict) and {"model", "objective"} <= set(previous)):
            raise ValueError(f"{config} exists and is not the config of a pyro-deepvi run; {advice}")
    elif metrics.exists():
        raise ValueError(f"{metrics} exists without a {CONFIG}, so it is not from a pyro-deepvi run; {advice}")
    if metrics.exists() and metrics.stat().st_size:
        raise ValueError(
            f"{run_dir} holds a run whose {CHECKPOINT} is missing: starting over would wipe the history in "
            f"{metrics}; {advice}"
        )


def recover_metrics(path, metrics_bytes, epoch):
    """Keep the complete records of epochs up to ``epoch`` in the first ``metrics_bytes`` bytes of ``path``.

    Records written after the checkpoint belong to an epoch that will be rerun;
    a record cut short by a crash, or bytes that are not records, are dropped.
    The file is rewritten atomically, and only if anything was dropped.
    """
    path = Path(path)
    data = path.read_bytes() if path.exists() else b""
    kept = b"".join(line + b"\n" for line in data[:metrics_bytes].split(b"\n") if _record_epoch(line) <= epoch)
    if kept != data:
        _replace(path, lambda tmp: tmp.write_bytes(kept))


def _record_epoch(line):
    """The epoch of a metrics line, or infinity if it is not a complete record."""
    try:
        record = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        return float("inf")
    return record.get("epoch", float("inf")) if isinstance(record, dict) else float("inf")


def keep_earlier_eval(run_dir, num_particles):
    """Move an ``eval.json`` of another particle count aside, to ``eval-k<k>.json``, and say so."""
    path = Path(run_dir) / EVAL
    try:
        previous = json.loads(path.read_text()).get("num_particles")
    except (OSError, ValueError, AttributeError):
        return
    if previous is not None and previous != num_particles:
        kept = path.with_name(f"eval-k{previous}.json")
        os.replace(path, kept)
        print(f"kept the earlier evaluation (k = {previous}) as {kept}", flush=True)


def read_metrics(run_dir):
    """The records of ``metrics.jsonl``; a line that is not one is skipped with a warning naming it."""
    path = Path(run_dir) / METRICS
    records = []
    for number, line in enumerate(path.read_text(errors="replace").splitlines() if path.exists() else [], 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except ValueError:
            warnings.warn(f"{path}, line {number}: not a JSON record; skipped (resuming the run repairs the file)")
    return records
