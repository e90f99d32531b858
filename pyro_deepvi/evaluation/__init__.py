"""Evaluation: IWAE-k log-likelihood, active units, pictures, the ``eval.json`` report."""

from . import log_likelihood
from .active_units import active_units
from .log_likelihood import bounds
from .report import evaluate_run

__all__ = ["active_units", "bounds", "evaluate_run", "log_likelihood"]
