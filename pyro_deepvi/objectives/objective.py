"""One objective: a base estimator plus weighted plug-in terms.

``objective(model, guide, *args, **kwargs)`` runs the guide and the model once,
and returns::

    loss = −bound + N · Σ_t [weight_t · term_t(model_trace, guide_trace, log_weights) + auxiliary_t]

A term is a :class:`Term` (an ``nn.Module``, so a term with parameters of its
own, such as an auxiliary network, is trained and checkpointed with the run).
It sees the traces of that same run and returns a per-data-point scalar (an
average over the minibatch), so the objective multiplies it by the data set's
size N to match the bound's units. After each call ``objective.parts``
holds detached per-data-point parts for logging: ``elbo``, ``rate``
(E_q[log q(h|x) − log p(h)]), ``distortion`` (−E_q[log p(x|h)]), ``bound``
(the estimator's own bound) and each term.
"""

import pyro
import torch
from pyro.ops.provenance import detach_provenance
from torch import nn

from ..importance import guess_max_plate_nesting, log_weights, non_reparameterized_sites, total
from .estimators import IWAE
from .schedules import parse_weight


class NonFiniteLossError(FloatingPointError):
    """The loss was NaN or infinite; the message names the first offending site."""


def _first_nonfinite_site(*traces):
    for trace in traces:
        for name, site in trace.nodes.items():
            if site["type"] != "sample":
                continue
            for what in ("value", "log_prob"):
                value = site.get(what)
                if torch.is_tensor(value) and value.is_floating_point() and not torch.isfinite(value).all():
                    return f"site {name!r} has a non-finite {what.replace('_', ' ')}"
    return "no site has a non-finite value or log-density (a term or a parameter is to blame)"


class Term(nn.Module):
    """A plug-in loss term: ``forward(model_trace, guide_trace, log_weights)`` -> per-data-point scalar.

    ``log_weights`` is the run's :data:`~pyro_deepvi.importance.LogWeights`.
    A term with an auxiliary network that must learn whatever the term's weight
    (even 0, as at the start of a warm-up schedule) sets ``auxiliary_loss`` in
    ``forward``: a per-data-point scalar the objective adds with weight 1.

    A term is differentiated pathwise, which gives no gradient through a
    non-reparameterized (discrete) guide site. A term whose gradient also holds
    for such sites (a score-function path, as :func:`~pyro_deepvi.objectives.rate.rate`)
    sets ``score_function = True``; the objective refuses the others with such guides.

    A term whose negative weights mean something only against the ELBO (the ``rate``: the
    ELBO's loss is D + R, so weight w gives D + (1 + w)·R) sets ``negative_weight_needs_elbo``;
    the objective refuses such a weight with the importance-weighted bound.
    """

    auxiliary_loss = None
    score_function = False
    negative_weight_needs_elbo = False

    def forward(self, model_trace, guide_trace, log_weights):
        raise NotImplementedError


class Objective(nn.Module):
    """A base estimator (``ELBO``, ``TraceGraphELBO``, ``IWAE``) plus weighted terms.

    :param estimator: an estimator from :mod:`pyro_deepvi.objectives.estimators`.
    :param dict terms: name -> ``(term, weight)`` with ``term`` a :class:`Term` and
        ``weight`` a number or a schedule string such as ``"linear:-1:0:10"``.
    """

    def __init__(self, estimator, terms=None):
        super().__init__()
        self.estimator = estimator
        self.terms = nn.ModuleDict()
        self.schedules = {}
        self.weights = {}
        self.epoch = 0.0
        self.parts = {}
        self._max_plate_nesting = None
        for name, (term, weight) in (terms or {}).items():
            self.add_term(name, term, weight)

    def add_term(self, name, term, weight):
        """Add ``weight · term`` to the loss; the term's value is logged as ``parts[name]``.

        ``weight`` is a number or a schedule (see :mod:`~pyro_deepvi.objectives.schedules`).
        """
        if name in self.terms:
            raise ValueError(f"the objective already has a term named {name!r}")
        if not isinstance(term, Term):
            raise TypeError(f"term {name!r} must be a pyro_deepvi.objectives.Term, got {type(term).__name__}")
        schedule = parse_weight(weight)
        iwae = isinstance(self.estimator, IWAE) and self.estimator.num_particles > 1
        if term.negative_weight_needs_elbo and schedule.least < 0 and iwae:
            raise ValueError(
                f"the term {name!r} with weight {weight!r} (down to {schedule.least:g}) has no meaning under the "
                f"'iwae' objective (k = {self.estimator.num_particles}): the IWAE bound L_k is not D + R, and "
                "−L_k + w·R with w < 0 rewards the gap L_k − ELBO, which grows without bound as q(z|x) widens "
                "(a rate warm-up there diverges); use --objective elbo for a negative rate weight, or a weight >= 0"
            )
        self.terms[name] = term
        self.schedules[name] = schedule
        self.weights[name] = self.schedules[name](self.epoch)

    def set_epoch(self, epoch):
        """Evaluate every term's weight schedule at the training progress ``epoch`` (a float)."""
        self.epoch = epoch
        self.weights = {name: schedule(epoch) for name, schedule in self.schedules.items()}

    @property
    def num_particles(self):
        return self.estimator.num_particles

    def _traces(self, model, guide, args, kwargs):
        if self._max_plate_nesting is None:
            self._max_plate_nesting = guess_max_plate_nesting(model, guide, args, kwargs)
        return self.estimator.traces(model, guide, self._max_plate_nesting, args, kwargs)

    def _check_terms_fit(self, guide_trace):
        pathwise = [name for name, term in self.terms.items() if not term.score_function]
        discrete = non_reparameterized_sites(guide_trace) if pathwise else None
        if discrete:
            raise ValueError(
                f"the term(s) {', '.join(map(repr, pathwise))} are differentiated pathwise only, which gives the "
                f"guide's non-reparameterized site(s) {', '.join(map(repr, discrete))} no gradient; "
                "the 'rate' and 'rate_target' terms have a score-function path for such guides"
            )

    def forward(self, model, guide, *args, **kwargs):
        loss, parts, traces = self.loss_and_parts(model, guide, self.weights, args, kwargs)
        if not torch.isfinite(loss):
            raise NonFiniteLossError(f"loss is {loss.item()}: {_first_nonfinite_site(*traces)}")
        # TraceGraph_ELBO's provenance tracking wraps tensors of non-reparameterized sites; logs want plain ones.
        self.parts = {name: detach_provenance(value) for name, value in parts.items()}
        return loss

    def loss_and_parts(self, model, guide, weights, args, kwargs):
        """The loss, its detached parts and the ``(model_trace, guide_trace)`` of one run, with the
        terms' ``weights`` given (numbers, or tensors for a compiled step: :mod:`pyro_deepvi.compile`)."""
        try:
            model_trace, guide_trace = self._traces(model, guide, args, kwargs)
        except ValueError as e:
            if "invalid values" not in str(e):
                raise
            # A distribution refused NaN parameters; trace once more unvalidated to name the site.
            with pyro.validation_enabled(False):
                traces = self._traces(model, guide, args, kwargs)
            raise NonFiniteLossError(f"{_first_nonfinite_site(*traces)} ({str(e).splitlines()[0]})") from e
        nesting = self._max_plate_nesting
        log_ws = log_weights(model_trace, guide_trace, nesting)
        loss = self.estimator.loss(model_trace, guide_trace, log_ws)
        log_w = total(log_ws).detach()
        parts = {
            "elbo": log_w.mean(),
            "bound": self.estimator.bound(log_w).mean(),
            "rate": (log_ws.log_q - log_ws.log_p_latent).detach().mean(),
            "distortion": -log_ws.log_p_obs.detach().mean(),
        }
        num_data = log_ws.scale * log_w.shape[1]
        self._check_terms_fit(guide_trace)
        for name, term in self.terms.items():
            value = term(model_trace, guide_trace, log_ws)
            loss = loss + weights[name] * (num_data * value)  # a tensor weight rounds as a number would
            if term.auxiliary_loss is not None:
                loss = loss + num_data * term.auxiliary_loss
            parts[name] = value.detach()
        return loss, parts, (model_trace, guide_trace)
