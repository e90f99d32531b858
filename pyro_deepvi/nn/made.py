"""Masked autoregressive networks (MADE, Germain et al. 2015) and the binary distribution they define.

A :class:`MADE` maps h = (h_1, ..., h_n) and an optional context c to n logits
f_j(h_{1:j-1}, c): weight masks cut every path from h_k to f_j with k ≥ j, so
one pass gives every conditional of

    p(h | c) = Π_j p(h_j | h_{1:j-1}, c),   p(H_j = 1 | h_{1:j-1}, c) = σ(f_j(h_{1:j-1}, c)).

With no masked hidden layers it is DARN's own form (Gregor et al. 2014, the
seed's notation, c = h^{l+1})::

    f_j = W_j · (h_{1:j-1}, tanh(U c)) + b_j

a strictly lower-triangular masked layer over h plus a dense term from the
context (``context_hidden_dims`` gives the tanh layers U; none: linear in c).
Masked hidden layers (``hidden_dims``) add MADE's deeper path, with the masks
of Pyro's :func:`~pyro.nn.auto_reg_nn.create_mask` in the natural order and
the context feeding the first of them.

:class:`AutoregressiveBernoulli` is p(h | c) as a distribution: ``log_prob`` is
one masked pass; ``sample`` draws h_1, ..., h_n in turn, computing only the
logit each draw needs.
"""

from collections import namedtuple

import torch
from pyro.distributions import TorchDistribution
from pyro.distributions.util import broadcast_shape
from pyro.nn.auto_reg_nn import MaskedLinear, create_mask
from torch import nn
from torch.distributions import constraints
from torch.nn.functional import logsigmoid

from .mlp import MLP

#: The context's share of a :class:`MADE`'s pre-activations: of the logits [..., n] and of
#: the first masked hidden layer [..., H_1] (``None`` without one or without a context).
Conditioning = namedtuple("Conditioning", ["logits", "hidden"])


class MADE(nn.Module):
    """(h, c) -> n logits, logit j a function of h_{1:j-1} and c only.

    :param int input_dim: n, the number of autoregressive units.
    :param int context_dim: width of the context c (0: no context).
    :param context_hidden_dims: widths of the tanh layers U applied to c (empty: linear in c).
    :param hidden_dims: widths of masked hidden layers over h (empty: DARN's single masked layer).
    """

    def __init__(self, input_dim, context_dim=0, context_hidden_dims=(), hidden_dims=()):
        super().__init__()
        if input_dim < 1:
            raise ValueError(f"MADE needs at least one unit, got input_dim={input_dim}")
        self.input_dim = input_dim
        self.context_dim = context_dim
        self.bias = nn.Parameter(torch.zeros(input_dim))
        self.direct = MaskedLinear(input_dim, input_dim, torch.ones(input_dim, input_dim).tril(-1), bias=False)
        self.context = MLP(context_dim, context_hidden_dims, input_dim) if context_dim else None
        self.hidden = nn.ModuleList()
        self.context_to_hidden = None
        if hidden_dims:
            masks, _ = create_mask(input_dim, 0, list(hidden_dims), torch.arange(input_dim), 1)
            dims = [input_dim, *hidden_dims, input_dim]
            for i, mask in enumerate(masks):
                # The output layer's bias would repeat b.
                self.hidden.append(MaskedLinear(dims[i], dims[i + 1], mask, bias=i < len(masks) - 1))
            if context_dim:
                self.context_to_hidden = nn.Linear(context_dim, hidden_dims[0], bias=False)

    def condition(self, context=None):
        """The context's terms, computed once for any number of passes over h."""
        if (context is None) != (self.context is None):
            expected = f"a context of width {self.context_dim}" if self.context is not None else "no context"
            raise ValueError(f"this MADE takes {expected}, got {'none' if context is None else 'one'}")
        if context is None:
            return Conditioning(self.bias, None)
        hidden = None if self.context_to_hidden is None else self.context_to_hidden(context)
        return Conditioning(self.bias + self.context(context), hidden)

    def _hidden_features(self, h, conditioning):
        """The last masked hidden layer's activations (``None`` without masked hidden layers)."""
        if not self.hidden:
            return None
        a = self.hidden[0](h)
        if conditioning.hidden is not None:
            a = a + conditioning.hidden
        for layer in self.hidden[1:-1]:
            a = layer(torch.tanh(a))
        return torch.tanh(a)

    def logits(self, h, conditioning):
        """All n logits f_j(h_{1:j-1}, c) in one pass."""
        logits = conditioning.logits + self.direct(h)
        features = self._hidden_features(h, conditioning)
        return logits if features is None else logits + self.hidden[-1](features)

    def logit(self, h, conditioning, j):
        """Logit j alone, from one row of each output layer: what drawing h_j needs."""
        logit = conditioning.logits[..., j] + h @ (self.direct.weight[j] * self.direct.mask[j])
        features = self._hidden_features(h, conditioning)
        if features is None:
            return logit
        out = self.hidden[-1]
        return logit + features @ (out.weight[j] * out.mask[j])

    def forward(self, h, context=None):
        return self.logits(h, self.condition(context))


class AutoregressiveBernoulli(TorchDistribution):
    """p(h | c) = Π_j Bernoulli(h_j; σ(f_j(h_{1:j-1}, c))) for a :class:`MADE` f, event shape [n].

    :param MADE made: the network f.
    :param context: c, of shape [..., context_dim], or ``None`` for a MADE without context.
    :param batch_shape: broadcast with the context's batch shape (needed without a context).
    """

    arg_constraints = {}
    support = constraints.independent(constraints.boolean, 1)
    has_rsample = False

    def __init__(self, made, context=None, batch_shape=(), validate_args=None):
        self.made = made
        self.conditioning = made.condition(context)
        batch_shape = broadcast_shape(self.conditioning.logits.shape[:-1], tuple(batch_shape))
        super().__init__(torch.Size(batch_shape), torch.Size([made.input_dim]), validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(AutoregressiveBernoulli, _instance)
        new.made, new.conditioning = self.made, self.conditioning
        super(AutoregressiveBernoulli, new).__init__(torch.Size(batch_shape), self.event_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        # log σ(f_j) for h_j = 1 and log σ(−f_j) for h_j = 0.
        log_p = logsigmoid(self.made.logits(value, self.conditioning) * (2 * value - 1)).sum(-1)
        return log_p.expand(broadcast_shape(log_p.shape, self.batch_shape))

    def sample(self, sample_shape=torch.Size()):
        shape = self._extended_shape(sample_shape)
        with torch.no_grad():
            h = self.conditioning.logits.new_zeros(shape)
            for j in range(shape[-1]):
                h[..., j] = torch.bernoulli(torch.sigmoid(self.made.logit(h, self.conditioning, j)))
        return h
