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
from .registry import DATASETS, GUIDES, MODELS, OBJECTIVES, TERMS
from .run import Run, load_run
from .settings import module_local_params


@module_local_params()
def evaluate(run_dir, num_particles=None, device="auto"):
    """Evaluate a run directory from its ``config.json`` and ``checkpoint.pt`` alone."""
    config, components = restore(run_dir, device)
    return evaluate_run(run_dir, components, config, num_particles)


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
