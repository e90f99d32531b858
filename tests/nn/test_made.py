"""MADE: logit j depends on h_{1:j-1} and the context only (checked by the Jacobian)."""

import pytest
import torch
from torch.autograd.functional import jacobian

from pyro_deepvi.nn import MADE

SHAPES = [
    pytest.param(0, (), (), id="darn-top"),  # DARN's top prior: one masked layer, no context
    pytest.param(3, (4,), (), id="darn-tanh-context"),  # σ(W_j · (h_{1:j-1}, tanh(U c)) + b_j)
    pytest.param(3, (), (7, 6), id="masked-hidden"),
    pytest.param(0, (), (9,), id="masked-hidden-no-context"),
]


def _made(context_dim, context_hidden_dims, hidden_dims, n=5):
    torch.manual_seed(0)
    return MADE(n, context_dim, context_hidden_dims, hidden_dims).double()


@pytest.mark.parametrize("context_dim, context_hidden_dims, hidden_dims", SHAPES)
def test_logit_j_depends_on_exactly_the_units_before_j(context_dim, context_hidden_dims, hidden_dims):
    made = _made(context_dim, context_hidden_dims, hidden_dims)
    context = torch.randn(context_dim, dtype=torch.float64) if context_dim else None
    h = torch.bernoulli(torch.full((5,), 0.5, dtype=torch.float64))
    jac = jacobian(lambda h: made(h, context), h)  # [j, k] = d logit_j / d h_k
    later = torch.ones(5, 5).triu().bool()  # k >= j
    assert (jac[later] == 0).all()
    assert (jac[~later] != 0).all()  # and every earlier unit does reach it


@pytest.mark.parametrize("context_dim, context_hidden_dims, hidden_dims", [s for s in SHAPES if s.values[0]])
def test_context_reaches_every_logit(context_dim, context_hidden_dims, hidden_dims):
    made = _made(context_dim, context_hidden_dims, hidden_dims)
    h = torch.bernoulli(torch.full((5,), 0.5, dtype=torch.float64))
    jac = jacobian(lambda c: made(h, c), torch.randn(context_dim, dtype=torch.float64))
    assert (jac.abs().sum(-1) > 0).all()


@pytest.mark.parametrize("context_dim, context_hidden_dims, hidden_dims", SHAPES)
def test_single_logit_equals_the_full_pass(context_dim, context_hidden_dims, hidden_dims):
    made = _made(context_dim, context_hidden_dims, hidden_dims)
    context = torch.randn(2, 3, context_dim, dtype=torch.float64) if context_dim else None
    h = torch.bernoulli(torch.full((4, 2, 3, 5), 0.5, dtype=torch.float64))  # broadcasts against the context
    conditioning = made.condition(context)
    logits = made.logits(h, conditioning)
    for j in range(5):
        assert torch.allclose(made.logit(h, conditioning, j), logits[..., j])


def test_context_must_match_the_network():
    with pytest.raises(ValueError, match="a context of width 3, got none"):
        MADE(4, context_dim=3)(torch.zeros(4))
    with pytest.raises(ValueError, match="no context, got one"):
        MADE(4)(torch.zeros(4), torch.zeros(3))
    with pytest.raises(ValueError, match="at least one unit"):
        MADE(0)
