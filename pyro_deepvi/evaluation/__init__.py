"""Evaluation: IWAE-k log-likelihood, active units, ELBO surgery, MIG, perplexity, pictures, the ``eval.json`` report."""

from . import log_likelihood
from .active_units import active_units
from .disentanglement import encoder_mutual_information_gap, mutual_information_gap, posterior_means
from .log_likelihood import bounds, paired_difference
from .perplexity import document_completion, held_out_bound, lda_perplexity, perplexity
from .rate_distortion import plot_rate_distortion, rate_and_distortion, rate_by_site, rate_distortion_points
from .report import evaluate_run
from .surgery import elbo_surgery

__all__ = [
    "active_units",
    "bounds",
    "document_completion",
    "elbo_surgery",
    "encoder_mutual_information_gap",
    "evaluate_run",
    "held_out_bound",
    "lda_perplexity",
    "log_likelihood",
    "mutual_information_gap",
    "paired_difference",
    "perplexity",
    "plot_rate_distortion",
    "posterior_means",
    "rate_and_distortion",
    "rate_by_site",
    "rate_distortion_points",
]
