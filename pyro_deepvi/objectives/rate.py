"""The rate R = E_q[log q(h|x) − log p(h)] as a plug-in term (Alemi et al., 2018).

The negative ELBO is D + R (distortion plus rate), so adding the term with
weight w gives D + (1 + w) R: the β-VAE of Higgins et al. (2017) with β = 1 + w,
the KL weight (1 − α) of InfoVAE with w = −α, and a warm-up with w from −1 to 0.
"""

from ..importance import non_reparameterized_sites
from ..registry import TERMS
from .objective import Term
from .vimco import score_log_q


def rate(log_weights, guide_trace):
    """R per data point: the mean over particles and the batch of f = log q(h|x) − log p(h).

    Its gradient is pathwise for reparameterized sites; for non-reparameterized
    (discrete) ones it adds the score function, ∇E_q[f] = E_q[∇f + (f − b) ∇log q_d(h|x)],
    where q_d is their density and the baseline b of each draw is the mean of f
    over every other particle and data point (independent of that draw: unbiased).
    """
    f = log_weights.log_q - log_weights.log_p_latent
    value = f.mean()
    discrete = non_reparameterized_sites(guide_trace)
    if not discrete:
        return value
    log_q = score_log_q(guide_trace, discrete)
    others = max(f.numel() - 1, 1)
    baseline = (f.sum() - f) / others
    return value + ((f - baseline).detach() * (log_q - log_q.detach())).mean()


@TERMS.register("rate", "R = E_q[log q(h|x) − log p(h)]; weight w makes the loss D + (1 + w)·R (β-VAE)")
class Rate(Term):
    """The rate per data point, from the run's log weights (any guide: see :func:`rate`)."""

    score_function = True
    negative_weight_needs_elbo = True

    def forward(self, model_trace, guide_trace, log_weights):
        return rate(log_weights, guide_trace)

    @classmethod
    def from_model(cls, model):
        return cls()


@TERMS.register(
    "rate_target",
    "|σ − R| for a target rate σ (Alemi et al. 2018); with --term rate=-1 the loss is D + w·|σ − R|; "
    "option target=σ (nats, required)",
)
class RateTarget(Term):
    """|σ − R|, per data point, for a target rate σ in nats (Alemi et al., 2018, "Fixing a broken ELBO").

    R is the minibatch's rate, the mean over particles and data points of
    log q(h|x) − log p(h) (the same R as the ``rate`` term and ``parts["rate"]``).
    Added with weight w the objective's loss per data point is::

        D + R + w·|σ − R|

    (the ELBO's D + R is always there). This is *not* the paper's objective
    min D + |σ − R|: at a fixed D, R + w·|σ − R| is least at R = σ only when
    w > 1 (for w < 1 the ELBO's R wins and pulls R below σ; at w = 1 it is flat
    in R below σ). To get the paper's objective exactly, cancel the
    ELBO's R with the ``rate`` term at weight −1::

        pyro-deepvi train dlgm --term rate=-1 --term rate_target=1 --term-arg rate_target.target=σ

    whose loss is D + |σ − R|; ``rate_target=w`` then gives D + w·|σ − R|
    (larger w holds R closer to σ against D's pull). Keeping the ELBO's R with a
    large w, the loss D + R + w·|σ − R| differs from D + w·|σ − R| by R, which
    near the optimum (R ≈ σ) is roughly the constant σ; it moves the optimum
    only while w ≤ 1.

    The gradient of |σ − R| is sign(R − σ)·∇R: a rate above the target is
    pushed down, one below it pushed up (at R = σ exactly, torch's subgradient 0).

    :param float target: the target rate σ ≥ 0, in nats per data point.
    """

    score_function = True

    def __init__(self, target):
        super().__init__()
        try:
            target = float(target)
        except (TypeError, ValueError):
            raise ValueError(f"rate_target: target must be a number of nats, got {target!r}") from None
        if not target >= 0:
            raise ValueError(f"rate_target: the target rate σ must be a non-negative number of nats, got {target!r}")
        self.target = target

    def extra_repr(self):
        return f"target={self.target!r}"

    def forward(self, model_trace, guide_trace, log_weights):
        return (self.target - rate(log_weights, guide_trace)).abs()

    @classmethod
    def from_model(cls, model, target=None):
        if target is None:
            raise ValueError(
                "the rate_target term needs a target rate σ in nats: "
                "--term-arg rate_target.target=σ (term_args={'rate_target': {'target': σ}})"
            )
        return cls(target)
