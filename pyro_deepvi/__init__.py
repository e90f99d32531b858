"""pyro-deepvi: deep latent-variable models as Pyro programs, with swappable guides and objectives.

The public API is small: the registries (``MODELS``, ``GUIDES``, ``OBJECTIVES``,
``TERMS``, ``DATASETS``), ``load`` for data, ``train`` and ``TrainConfig`` for runs,
``evaluate`` for a trained run directory and ``load_run`` to use a trained model.
Importing the package changes no global setting of Pyro's (see ``pyro_deepvi.settings``).
"""

from . import guides, models, objectives  # noqa: F401  (registers the built-in components)
from .data import load
from .engine import TrainConfig, restore, train
from .evaluation import evaluate_run
from .lock import run_lock
from .registry import DATASETS, GUIDES, MODELS, OBJECTIVES, TERMS
from .run import Run, load_run
from .settings import module_local_params


@module_local_params()
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
    "Run",
    "TERMS",
    "TrainConfig",
    "evaluate",
    "load",
    "load_run",
    "module_local_params",
    "restore",
    "train",
]
