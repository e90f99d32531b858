"""The rate R = E_q[log q(h|x) − log p(h)] as a plug-in term (Alemi et al., 2018).

The negative ELBO is D + R (distortion plus rate), so adding the term with
weight w gives D + (1 + w) R: the β-VAE of Higgins et al. (2017) with β = 1 + w,
the KL weight (1 − α) of InfoVAE with w = −α, and a warm-up with w from −1 to 0.
"""

from ..registry import TERMS
from .objective import Term


@TERMS.register("rate", "R = E_q[log q(h|x) − log p(h)]; weight w makes the loss D + (1 + w)·R (β-VAE)")
class Rate(Term):
    """The rate per data point, from the run's log weights."""

    def forward(self, model_trace, guide_trace, log_weights):
        return (log_weights.log_q - log_weights.log_p_latent).mean()

    @classmethod
    def from_model(cls, model):
        return cls()
