"""The VampPrior (Tomczak & Welling, 2018): a mixture of the guide's posteriors at learned pseudo-inputs.

    p_λ(h_L) = (1/K) Σ_k q(h_L | u_k),    k = 1, ..., K

The pseudo-inputs u_k (``pseudo_inputs`` [K, *data_shape], started uniform
on [0, 1] or at given points, e.g. random training images as the paper's
option) are parameters of the model, trained with it by every objective;
the components are the guide's own posterior of the top layer at them, so the
prior approaches the aggregate posterior (1/N) Σ_n q(h_L | x_n) that is the
optimal prior for a given encoder, and prior and encoder are trained together.

**How the prior gets the encoder.** The model owns a :class:`VampPrior`; the
guide, built from the model as every guide is (``GUIDES.get(name)(model, ...)``),
hands it its closed-form q(h_L | x) through :meth:`VampPrior.bind`. The prior
keeps that method, not the guide as a submodule, so every parameter has one
owner (the model the pseudo-inputs, the guide the encoder) and a checkpoint
holds each once. The amortized Gaussian guides (``diag``, ``rank_one``,
``full``; ``chain`` with one layer) bind themselves; a guide without a
closed-form top posterior (a flow; a chain of several layers, whose q(h_L | x)
is an integral) does not, and the model then fails on its first call with an
error that says so. A user's guide binds with ``model.vamp.bind(q_top)`` where
``q_top(x)`` returns q(h_L | x) with batch shape [len(x)].

**Why the encoder is ReLU.** KL(q(h_L | x) || p_λ) is 0 for *every* encoder that
ignores x, whatever the constant it outputs (each component is then q(h_L | x)
itself), and it does not change when all codes are moved or rescaled together.
A N(0, I) prior is 0 only at μ = 0, σ = 1, which the heads' biases reach; the
VampPrior has no such anchor, so nothing holds the scale of the codes while the
reconstruction term asks for smaller σ. A tanh encoder gets there by saturating
its hidden units for every input: measured on mnist5k (784-200-200-50 dlgm, Adam
1e-3), 70 % of its last hidden units sit at |tanh| > 0.99 after 40 steps (0 % with
the N(0, I) prior), its output is then constant, the rate 0 and the decoder stays
on the "mean image" while saturated units pass no gradient to recover. A ReLU
encoder cannot saturate that way: it keeps every unit active and the model
leaves that plateau (``benchmarks/README.md``, "The VampPrior row"). Tomczak &
Welling's gated units (a linear path times a sigmoid gate) are likewise
unbounded. So a model with this prior sets ``encoder_activation = "relu"``,
which the amortized guides use unless given another.

The mixture (``MixtureSameFamily``) has ``log_prob`` and ``sample``, no ``rsample``.
"""

import pyro.distributions as dist
import torch
from torch import nn


class VampPrior(nn.Module):
    """p(h_L) = (1/K) Σ_k q(h_L | u_k) over ``num_components`` learned pseudo-inputs of shape ``data_shape``,
    started at ``init`` [K, *data_shape] (uniform on [0, 1] when None)."""

    def __init__(self, data_shape, num_components, init=None):
        super().__init__()
        shape = (num_components, *data_shape)
        if init is None:
            init = torch.rand(shape)
        elif not isinstance(init, torch.Tensor) or init.shape != shape:
            got = f"shape {list(init.shape)}" if isinstance(init, torch.Tensor) else repr(init)
            raise ValueError(f"the initial pseudo-inputs must be a tensor of shape {list(shape)}, got {got}")
        self.pseudo_inputs = nn.Parameter(init.detach().clone())
        self.posterior = None

    def bind(self, posterior):
        """Use ``posterior(x)`` = q(h_L | x), a distribution of batch shape [len(x)], as the components."""
        self.posterior = posterior

    def forward(self):
        """The mixture, as a distribution over h_L."""
        if self.posterior is None:
            raise RuntimeError(
                "the VampPrior has no q(h_L | x) to mix: build the guide with this model "
                "(diag, rank_one, full bind themselves) or call model.vamp.bind(q_top)"
            )
        components = self.posterior(self.pseudo_inputs)
        logits = self.pseudo_inputs.new_zeros(self.pseudo_inputs.shape[0])
        return dist.MixtureSameFamily(dist.Categorical(logits=logits), components)
