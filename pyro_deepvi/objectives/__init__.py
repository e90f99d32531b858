"""Objectives: a base Pyro ELBO (``OBJECTIVES``) plus weighted plug-in terms (``TERMS``)."""

from ..registry import OBJECTIVES
from . import mmd, mutual_info, rate, total_correlation
from .analytic_kl import AnalyticKLELBO
from .darn_taylor import TaylorBaselineELBO
from .estimators import ELBO, IWAE, TraceGraphELBO
from .objective import NonFiniteLossError, Objective, Term


@OBJECTIVES.register("elbo", "evidence lower bound, Trace_ELBO gradients (reparameterized or score function)")
def elbo(particles=1):
    return Objective(ELBO(particles))


@OBJECTIVES.register(
    "elbo_analytic_kl", "evidence lower bound with closed-form KL(q || p) where exact (TraceMeanField_ELBO, order-checked)"
)
def elbo_analytic_kl(particles=1):
    return Objective(AnalyticKLELBO(particles))


@OBJECTIVES.register(
    "tracegraph_elbo",
    "evidence lower bound, TraceGraph_ELBO (Rao-Blackwellized score function; leave-one-out baselines with >= 2 particles)",
)
def tracegraph_elbo(particles=1):
    return Objective(TraceGraphELBO(particles))


@OBJECTIVES.register(
    "iwae", "importance-weighted bound L_k (Burda et al. 2016), k = --particles; VIMCO gradients for discrete latents"
)
def iwae(particles=5):
    return Objective(IWAE(particles))


@OBJECTIVES.register(
    "darn_taylor", "evidence lower bound, DARN's Taylor-baseline score function (Gregor et al. 2014): Bernoulli guides, biased"
)
def darn_taylor(particles=1):
    return Objective(TaylorBaselineELBO(particles))


__all__ = [
    "AnalyticKLELBO",
    "ELBO",
    "IWAE",
    "NonFiniteLossError",
    "Objective",
    "TaylorBaselineELBO",
    "Term",
    "TraceGraphELBO",
    "darn_taylor",
    "elbo",
    "elbo_analytic_kl",
    "iwae",
    "mmd",
    "mutual_info",
    "rate",
    "total_correlation",
    "tracegraph_elbo",
]
