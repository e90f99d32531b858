"""Document-completion perplexity: the split, the formula by hand, and the LDA baseline on a toy corpus;
the held-out bound against an enumerated log-likelihood."""

import itertools
import math

import pyro
import pytest
import torch
from pyro import poutine

from pyro_deepvi import GUIDES
from pyro_deepvi.evaluation.perplexity import held_out_bound, lda_perplexity, perplexity, split_tokens
from pyro_deepvi.models.exponential_families import DeepExponentialFamily


def two_topic_corpus(num_docs, seed, tokens=40):
    """Documents of 40 tokens drawn uniformly from words 0-4 (topic A) or 5-9 (topic B), alternately."""
    g = torch.Generator().manual_seed(seed)
    counts = torch.zeros(num_docs, 10)
    for d in range(num_docs):
        words = torch.randint(0, 5, (tokens,), generator=g) + 5 * (d % 2)
        counts[d] = torch.bincount(words, minlength=10).float()
    return counts


def test_split_tokens_halves_each_document_reproducibly():
    counts = torch.tensor([[3.0, 0.0, 2.0, 1.0], [0.0, 7.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]])
    observed, held = split_tokens(counts, seed=3)
    assert torch.equal(observed + held, counts)
    assert (observed >= 0).all() and (held >= 0).all()
    assert held.sum(1).tolist() == [3.0, 3.0, 2.0]  # floor(n_d / 2) tokens held out per document
    again_observed, again_held = split_tokens(counts, seed=3)
    assert torch.equal(held, again_held) and torch.equal(observed, again_observed)
    # Another seed splits differently (the first document's 6 tokens have 10 possible held-out multisets).
    assert any(not torch.equal(split_tokens(counts, seed=s)[1], held) for s in range(4, 10))


def test_split_tokens_refuses_a_document_too_short():
    with pytest.raises(ValueError, match="document 1 has 1 tokens"):
        split_tokens(torch.tensor([[2.0, 2.0], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="held_out"):
        split_tokens(torch.ones(2, 3), held_out=1.0)


def test_perplexity_by_hand():
    probs = torch.tensor([[0.5, 0.25, 0.25], [0.1, 0.6, 0.3]])
    counts = torch.tensor([[2.0, 0.0, 1.0], [0.0, 1.0, 1.0]])
    # exp(−Σ counts · log p / Σ counts) = (Π over held-out tokens of p)^(−1/5)
    by_hand = (0.5 * 0.5 * 0.25 * 0.6 * 0.3) ** (-1 / 5)
    assert perplexity(probs, counts) == pytest.approx(by_hand, rel=1e-6)
    assert by_hand == pytest.approx(2.4534, abs=1e-4)
    # A uniform prediction over V words has perplexity V whatever the counts.
    assert perplexity(torch.full((2, 3), 1 / 3), counts) == pytest.approx(3.0)
    # A word given probability zero makes the perplexity infinite only where it occurs.
    assert perplexity(torch.tensor([[1.0, 0.0, 0.0]]), torch.tensor([[4.0, 0.0, 0.0]])) == pytest.approx(1.0)
    assert math.isinf(perplexity(torch.tensor([[1.0, 0.0, 0.0]]), torch.tensor([[4.0, 1.0, 0.0]])))


def test_perplexity_checks_its_inputs():
    with pytest.raises(ValueError, match="same shape"):
        perplexity(torch.ones(2, 3) / 3, torch.ones(3, 2))
    with pytest.raises(ValueError, match="no tokens"):
        perplexity(torch.ones(2, 3) / 3, torch.zeros(2, 3))


def test_lda_completes_documents_of_two_topics():
    # Knowing a document's topic from its first half, each held-out word is one of 5
    # equally likely words: perplexity 5, against 10 for a uniform prediction.
    train, test = two_topic_corpus(60, seed=0), two_topic_corpus(20, seed=1)
    value = lda_perplexity(train, test, num_topics=2, seed=0, iterations=200)
    assert 4.5 < value < 5.5


def _one_bernoulli_layer():
    """One Bernoulli layer of 2 units over 6 words, 3 documents of a data set of 10 (the data plate's
    N / B = 10/3 must not enter a per-document bound), W0 fixed; and log p(x_d, z) at z's 4 values [4, 3]."""
    model = DeepExponentialFamily(6, 10, layer_sizes=(2,), families=["bernoulli"])
    topics = torch.tensor([[1.0, 0.8, 0.6, 0.1, 0.1, 0.1], [0.1, 0.1, 0.1, 0.6, 0.8, 1.0]])
    counts = torch.tensor([[2.0, 1.0, 1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0, 1.0, 2.0], [1.0, 1.0, 0.0, 1.0, 0.0, 1.0]])
    global_values = {"W0": topics.T}  # [V, K]
    joint = []
    for state in itertools.product([0.0, 1.0], repeat=2):
        z1 = torch.tensor(state).unsqueeze(-1).expand(2, 3)  # [K, B]
        trace = poutine.trace(poutine.condition(model.model, data={**global_values, "z1": z1})).get_trace(x=counts)
        trace.compute_log_prob()
        joint.append(sum(trace.nodes[name]["unscaled_log_prob"].sum(-2) for name in ("z1", "x")))
    return model, counts, global_values, torch.stack(joint)


def test_held_out_bound_of_an_unfitted_mean_field_matches_enumeration():
    """With no fitting step each document's factors sit at the guide's average row q: the bound is
    Σ_z q(z) log p(x_d, z) + H(q) over z's 4 values."""
    model, counts, global_values, joint = _one_bernoulli_layer()
    guide = GUIDES.get("local")(model)
    logits = torch.tensor([6.0, -0.5])
    with torch.no_grad():
        guide.factors["z1"].logits.copy_(logits.expand_as(guide.factors["z1"].logits))
    p = torch.sigmoid(logits)
    q = torch.stack([(1 - p[0]) * (1 - p[1]), (1 - p[0]) * p[1], p[0] * (1 - p[1]), p[0] * p[1]])
    entropy = torch.distributions.Bernoulli(logits=logits).entropy().sum()
    exact = (q[:, None] * joint).sum(0) + entropy
    bound = held_out_bound(model, guide, counts, steps=0, draws=20000, global_values=global_values)
    assert bound.shape == (3,)
    assert torch.allclose(bound, exact, atol=0.3)
    assert (bound < joint.logsumexp(0)).all()


@pytest.mark.parametrize("guide_name", ["local", "hvm_local"])
def test_fitted_held_out_bound_improves_and_stays_below_the_enumerated_log_likelihood(guide_name):
    """log p(x_d | W0) = log Σ_z p(x_d, z) over z's 4 values bounds the fitted bound (mean field; the
    auxiliary bound of hvm_local), and fitting raises it above the bound of the unfitted start."""
    pyro.set_rng_seed(0)
    model, counts, global_values, joint = _one_bernoulli_layer()
    guide = GUIDES.get(guide_name)(model)
    start = held_out_bound(model, guide, counts, steps=0, draws=4000, global_values=global_values)
    fitted = held_out_bound(model, guide, counts, steps=200, lr=0.1, particles=4, draws=4000, global_values=global_values)
    assert (fitted < joint.logsumexp(0) + 0.05).all()
    assert (fitted > start + 1.0).all()
