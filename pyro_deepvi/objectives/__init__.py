"""Objectives: a base Pyro ELBO (``OBJECTIVES``) plus weighted plug-in terms (``TERMS``)."""

from ..registry import OBJECTIVES
from . import mmd, mutual_info, rate, total_correlation
from .estimators import ELBO, IWAE, TraceGraphELBO
from .objective import NonFiniteLossError, Objective, Term


@OBJECTIVES.register("elbo", "evidence lower bound, Trace_ELBO gradients (reparameterized or score function)")
def elbo(particles=1):
    return Objective(ELBO(particles))


@OBJECTIVES.register("tracegraph_elbo", "evidence lower bound, TraceGraph_ELBO (Rao-Blackwellized score function)")
def tracegraph_elbo(particles=1):
    return Objective(TraceGraphELBO(particles))


@OBJECTIVES.register("iwae", "importance-weighted bound L_k (Burda et al. 2016), k = --particles")
def iwae(particles=5):
    return Objective(IWAE(particles))


__all__ = ["ELBO", "IWAE", "NonFiniteLossError", "Objective", "Term", "TraceGraphELBO", "elbo", "iwae", "mmd", "mutual_info", "rate", "total_correlation", "tracegraph_elbo"]
