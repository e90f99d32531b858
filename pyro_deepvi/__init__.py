"""pyro-deepvi: deep latent-variable models as Pyro programs, with swappable guides and objectives.

The public API is small: the registries (``MODELS``, ``GUIDES``, ``OBJECTIVES``,
``TERMS``, ``DATASETS``), ``load`` for data, ``train`` and ``TrainConfig`` for runs, and
``evaluate`` for a trained run directory.
"""

import pyro

# Parameters of PyroModules live in their modules, not in Pyro's global param
# store: two models in one process (a comparison, a test) never share a name.
pyro.settings.set(module_local_params=True)

from . import guides, models, objectives  # noqa: E402, F401  (registers the built-in components)
from .data import load  # noqa: E402
from .engine import TrainConfig, restore, train  # noqa: E402
from .evaluation import evaluate_run  # noqa: E402
from .lock import run_lock  # noqa: E402
from .registry import DATASETS, GUIDES, MODELS, OBJECTIVES, TERMS  # noqa: E402


def evaluate(run_dir, num_particles=None, device="auto", progress=False):
    """Evaluate a run directory from its ``config.json`` and ``checkpoint.pt`` alone.

    The directory is locked while it runs; an ``eval.json`` of another k is kept as ``eval-k<k>.json``.
    """
    if num_particles is not None and (isinstance(num_particles, bool) or not isinstance(num_particles, int) or num_particles < 1):
        raise ValueError(f"num_particles must be a positive integer, got {num_particles!r}")
    with run_lock(run_dir, create=False):
        config, components = restore(run_dir, device)
        return evaluate_run(run_dir, components, config, num_particles, progress=progress)


__all__ = [
    "DATASETS",
    "GUIDES",
    "MODELS",
    "OBJECTIVES",
    "TERMS",
    "TrainConfig",
    "evaluate",
    "load",
    "restore",
    "train",
]
