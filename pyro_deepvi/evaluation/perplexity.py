"""Held-out perplexity by document completion (Ranganath et al. 2015).

Each held-out document's tokens are split at random (seeded) into an observed part
x^obs_d and a held-out part x^held_d (``held_out`` of its tokens, half by default).
A model infers the document's latent variables from x^obs_d alone, with everything
learned from the training documents fixed, and is scored on x^held_d::

    perplexity = exp(− Σ_d Σ_w x^held_{d,w} log p(w | x^obs_d) / Σ_d Σ_w x^held_{d,w})

For Poisson models of counts, p(w | x^obs_d) is the paper's p(w | # held out in d): given
their total, independent Poisson counts x_{d,w} ~ Poisson(λ_{d,w}) are multinomial with
probabilities λ_{d,w} / Σ_v λ_{d,v}, so the predictive rates are normalized over the
vocabulary. For a DEF, λ_d = E_q[W_0] E_q[z_{d,1}] (:meth:`word_probabilities` of the model):
the global latents are fixed at their variational means, and the document's local
mean-field factors are fitted to x^obs_d by :func:`fit_local_factors` (``steps`` of Adam
on its ELBO). For LDA (:func:`lda_perplexity`), p(w | x^obs_d) = Σ_k θ_{d,k} φ_{k,w} with
θ_d inferred from x^obs_d by the ``lda`` package.

:func:`held_out_bound` is the companion diagnostic: the ELBO of whole documents under the
learned globals, computed the same way for training and held-out documents.
"""

import numpy as np
import pyro
import torch
from pyro import poutine

from ..importance import guess_max_plate_nesting, importance_traces, log_weights, total
from ..objectives.estimators import TraceGraphELBO
from ..objectives.objective import Objective

#: Adam steps and step size of the held-out documents' local fit.
COMPLETION_STEPS = 300
COMPLETION_LR = 0.1


def split_tokens(counts, held_out=0.5, seed=0):
    """Split each row's tokens at random into ``(observed, held)`` count matrices.

    Row d's n_d tokens are permuted by ``torch.Generator().manual_seed(seed)`` and
    ``floor(held_out · n_d)`` of them are held out; ``observed + held == counts``.

    :param torch.Tensor counts: [D, V] non-negative integer counts.
    :raises ValueError: when a row would leave no token on either side.
    """
    if not 0 < held_out < 1:
        raise ValueError(f"held_out is the fraction of tokens to score and must be in (0, 1), got {held_out!r}")
    if counts.dim() != 2:
        raise ValueError(f"counts must be a [documents, words] matrix, got shape {tuple(counts.shape)}")
    generator = torch.Generator().manual_seed(seed)
    rows = counts.detach().cpu().long()
    held = torch.zeros_like(rows)
    words = torch.arange(rows.shape[1])
    for d, row in enumerate(rows):
        tokens = torch.repeat_interleave(words, row)
        num_held = int(held_out * len(tokens))
        if num_held < 1 or num_held == len(tokens):
            raise ValueError(f"document {d} has {len(tokens)} tokens: too few to hold out {held_out:g} of them")
        chosen = tokens[torch.randperm(len(tokens), generator=generator)[:num_held]]
        held[d] = torch.bincount(chosen, minlength=rows.shape[1])
    held = held.to(device=counts.device, dtype=counts.dtype)
    return counts - held, held


def perplexity(word_probs, counts):
    """exp(− Σ_{d,w} counts_{d,w} log word_probs_{d,w} / Σ counts) for [D, V] tensors."""
    if word_probs.shape != counts.shape:
        raise ValueError(
            f"word_probs {tuple(word_probs.shape)} and counts {tuple(counts.shape)} must have the same shape"
        )
    total = counts.sum()
    if not total > 0:
        raise ValueError("counts hold no tokens to score")
    return float(torch.exp(-torch.xlogy(counts, word_probs).sum() / total))


def fit_local_factors(
    model, local_guide, observed, global_values, steps=COMPLETION_STEPS, lr=COMPLETION_LR, particles=1
):
    """Fit ``local_guide`` (local factors only) to the rows ``observed`` with the model's
    global latents fixed at ``global_values`` (conditioned on), by Adam on the ELBO with
    ``TraceGraph_ELBO``'s gradients (reparameterized where the factors are) from ``particles``
    draws a step (with two or more, score-function factors get leave-one-out baselines).

    Globals that are Bernoulli or Poisson units held at their means are off their support,
    so Pyro's validation is off during the fit; they enter the ELBO as constants.
    """
    conditioned = poutine.condition(model.model, data=global_values)
    objective = Objective(TraceGraphELBO(particles))
    optimizer = torch.optim.Adam(local_guide.parameters(), lr=lr)
    with pyro.validation_enabled(False):
        for _ in range(steps):
            loss = objective(conditioned, local_guide, x=observed)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return local_guide


def _fit_with_globals_fixed(model, guide, rows, global_values, steps, lr, particles):
    """``(global_values, local_guide)``: the globals (the guide's means unless given) and the
    guide's local factors for ``rows``, fitted with those globals fixed."""
    with torch.no_grad():
        global_values = guide.global_means() if global_values is None else global_values
    local_guide = fit_local_factors(model, guide.local_guide(len(rows)), rows, global_values, steps, lr, particles)
    return global_values, local_guide


def document_completion(
    model, guide, counts, held_out=0.5, steps=COMPLETION_STEPS, lr=COMPLETION_LR, seed=0, global_values=None, particles=1
):
    """Document-completion perplexity of a model with a non-amortized guide.

    :param model: a model with ``model``, ``word_probabilities(global_values, local_means)``.
    :param guide: a guide with ``global_means()`` and ``local_guide(num_data)``
        (e.g. :class:`~pyro_deepvi.guides.local.LocalGuide`).
    :param torch.Tensor counts: [D, V] held-out documents.
    :param dict global_values: the global latents' values; the guide's means by default.
    :param int particles: draws per step of the local fit (:func:`fit_local_factors`).
    :returns: ``{"perplexity": ..., "held_out_words": ...}``.
    """
    device = counts.device
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        pyro.set_rng_seed(seed)
        observed, held = split_tokens(counts, held_out, seed)
        global_values, local_guide = _fit_with_globals_fixed(
            model, guide, observed, global_values, steps, lr, particles
        )
        with torch.no_grad():
            probs = model.word_probabilities(global_values, local_guide.local_means())
    return {"perplexity": perplexity(probs, held), "held_out_words": int(held.sum())}


def held_out_bound(
    model, guide, counts, steps=COMPLETION_STEPS, lr=COMPLETION_LR, particles=1, draws=100, seed=0, global_values=None
):
    """Per-document evidence lower bound of whole documents under the learned globals W̄::

        L(x_d) = E_{q(z_d)}[log p(x_d, z_d | W̄) − log q(z_d)] ≤ log p(x_d | W̄)

    with W̄ the global latents' variational means (or ``global_values``) and q(z_d) the guide's
    local factors (``guide.local_guide``: mean field, or the hierarchical guide's, whose λ_d and
    r(λ_d | z_d) enter as in training) fitted afresh to all of x_d by :func:`fit_local_factors`;
    the expectation by ``draws`` draws. Computed the same way for training documents and for
    held-out ones, the two means compare how well W̄ explains each (with the same fit, so a fit
    that falls short lowers both).

    :param torch.Tensor counts: [D, V] documents.
    :returns: a [D] tensor of bounds, nats per document.
    """
    device = counts.device
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        pyro.set_rng_seed(seed)
        global_values, local_guide = _fit_with_globals_fixed(model, guide, counts, global_values, steps, lr, particles)
        conditioned = poutine.condition(model.model, data=global_values)
        kwargs = {"x": counts}
        with torch.no_grad(), pyro.validation_enabled(False):
            nesting = guess_max_plate_nesting(conditioned, local_guide, (), kwargs)
            model_trace, guide_trace = importance_traces(conditioned, local_guide, draws, nesting, kwargs=kwargs)
            return total(log_weights(model_trace, guide_trace, nesting)).mean(0)


def lda_perplexity(train, test, num_topics, seed=0, held_out=0.5, iterations=500, alpha=0.1, eta=0.01):
    """Document-completion perplexity of latent Dirichlet allocation (the ``lda`` package's
    collapsed Gibbs sampler, ``iterations`` sweeps over ``train``; Dirichlet parameters
    ``alpha`` on θ and ``eta`` on φ). θ_d of a test document is inferred from its observed
    half by ``lda``'s ``transform`` (iterated pseudo-counts), with the same split as
    :func:`document_completion`.

    :param torch.Tensor train: [N, V] training counts.
    :param torch.Tensor test: [D, V] held-out documents.
    """
    try:
        import lda
    except ImportError as e:
        raise ImportError(
            "lda_perplexity needs the [data] extra (the lda package): pip install 'pyro-deepvi[data]'"
        ) from e
    topics = lda.LDA(
        n_topics=num_topics, n_iter=iterations, alpha=alpha, eta=eta, random_state=seed, refresh=iterations
    )
    topics.fit(np.asarray(train.cpu(), dtype=np.int64))
    observed, held = split_tokens(test.cpu(), held_out, seed)
    theta = topics.transform(np.asarray(observed, dtype=np.int64))
    probs = torch.as_tensor(theta @ topics.topic_word_, dtype=held.dtype)
    return perplexity(probs, held)
