"""The ladder guide (Sønderby et al., 2016): a bottom-up pass, then a top-down precision-weighted merge.

1. Deterministic upward pass, from d̂_{q,0} = x::

       d̂_{q,i} = MLP(d̂_{q,i−1}),  μ̂_{q,i} = Linear(d̂_{q,i}),  σ̂²_{q,i} = Softplus(Linear(d̂_{q,i}))

2. Stochastic downward pass: q(z_L | x) = N(μ̂_{q,L}, σ̂²_{q,L}), and for i = L−1, ..., 1
   the precision-weighted merge of the upward estimate with a top-down
   N(μ_{p,i}, σ²_{p,i}) at the guide's draw of z_{i+1}::

       σ²_{q,i} = 1 / (σ̂⁻²_{q,i} + σ⁻²_{p,i}),   μ_{q,i} = (μ̂_{q,i} σ̂⁻²_{q,i} + μ_{p,i} σ⁻²_{p,i}) σ²_{q,i}

   q(z_i | z_{i+1}, x) = N(μ_{q,i}, σ²_{q,i}). This is the paper's equation (18);
   the survey's summary writes σ²_{q,i} as the square of 1 / (σ̂⁻² + σ_p⁻²), once too
   often (the product of two Gaussian densities has the precisions added, not squared).

**Its own top-down networks (the default).** The top-down N(μ_{p,i}, σ²_{p,i})
is the guide's own MLP of z_{i+1} (the guide's hidden widths, leaky rectifiers,
the model's batch norm), so the generative model is trained by the bound's log p
terms alone. This is the default of the paper's code (``-ladder_share_params
False``, github.com/casperkaae/LVAE) and of its published commands, and the
setting under which the paper's gain shows here: on mnist5k, 3 layers and 100
epochs, +0.61 ± 0.12 and +0.71 ± 0.13 nats of test log p(x) over the bottom-up
``chain`` guide (paired, two seeds; ``benchmarks/README.md``).

**Or the model's own p(z_i | z_{i+1})** (``share_top_down=True``, ``--guide-arg
share_top_down=true``), as the paper's equations read. Then the guide's half of
the bound also trains the model's top-down networks, and the model learns to
shrink p(z_i | z_{i+1}) to a near point mass on some units, which the merge
copies at no KL: more top-layer KL and a better ELBO, but a lower log p(x)
(+0.10 and +0.04 nats over ``chain`` in the same runs; −0.7 at 2 layers and 30
epochs). **How the guide gets the model's top-down networks** then: it is built from
the model (``GUIDES.get("ladder")(model, hidden_dims)``) and keeps the model's
method ``conditional(name, upper)``, which returns p(z_name | z_upper) as a
diagonal Gaussian (``Normal(loc, scale).to_event(1)``), the same method the model
samples from. It keeps the method, not the model as a submodule, so the
top-down networks have one owner (the model), are trained by both the model's
and the guide's terms of the bound, and are saved once. A user's model gets a
ladder guide by having ``latent_shapes`` (top-down sampling order, vector
sites) and such a ``conditional`` for every site but the top one. The upward
MLPs are batch-normalized when the model's ``batch_norm`` is set.

A run trained before the default changed (December 2026) shared the model's networks:
restore it with ``"guide_args": {"share_top_down": true}`` in its ``config.json``.
"""

import pyro
import pyro.distributions as dist
from pyro.nn import PyroModule
from torch import nn

from ..models.base import data_plate, flat_dim
from ..nn import MLP, BatchNorm, loc_and_variance
from ..registry import GUIDES
from .amortized import latent_shapes_of


def precision_weighted_merge(loc_hat, var_hat, loc_p, var_p):
    """(μ_q, σ²_q) of N(μ̂, σ̂²) · N(μ_p, σ²_p), normalized: precisions add, means are precision-weighted."""
    precision_hat, precision_p = var_hat.reciprocal(), var_p.reciprocal()
    var = (precision_hat + precision_p).reciprocal()
    return (loc_hat * precision_hat + loc_p * precision_p) * var, var


def _upward_block(in_dim, hidden_dims, batch_norm):
    """d̂_{q,i} = MLP(d̂_{q,i−1}) with every layer followed by [batch norm and] a leaky rectifier."""
    if not hidden_dims:
        return nn.Identity()
    norm = [BatchNorm(hidden_dims[-1])] if batch_norm else []
    return nn.Sequential(
        MLP(in_dim, hidden_dims[:-1], hidden_dims[-1], nn.LeakyReLU, batch_norm), *norm, nn.LeakyReLU()
    )


class LadderGuide(PyroModule):
    """q(z | x) = q(z_L | x) Π_i q(z_i | z_{i+1}, x) by the upward pass and the precision-weighted merge.

    :param model: a model with vector ``latent_shapes`` (top-down order), ``data_shape``, ``num_data``, and
        with ``share_top_down``, ``conditional(name, upper)`` (p(z_name | z_upper), a diagonal Gaussian).
    :param hidden_dims: hidden widths of each upward MLP (and of each own top-down MLP).
    :param bool share_top_down: merge with the guide's own top-down networks (``False``, the default, as the
        paper's code) or with the model's p(z_i | z_{i+1}) (``True``, as the paper's equations).
    """

    #: q(z_i | ·) depends on the draw of z_{i+1}.
    dependent_sites = True

    def __init__(self, model, hidden_dims=(200, 200), share_top_down=False):
        super().__init__()
        if not isinstance(share_top_down, bool):
            raise ValueError(f"share_top_down must be true or false, got {share_top_down!r}")
        shapes = latent_shapes_of(model)
        if share_top_down and not callable(getattr(model, "conditional", None)):
            raise ValueError(
                f"the ladder guide merges with the model's top-down p(z_i | z_(i+1)), but {type(model).__name__} "
                "has no method conditional(name, upper); see pyro_deepvi.guides.ladder (or share_top_down=False)"
            )
        self.num_data = model.num_data
        self.sites = list(shapes)
        batch_norm = getattr(model, "batch_norm", False)
        self.share_top_down = share_top_down
        if self.share_top_down:
            self.conditional = model.conditional
        else:
            self.top_down = nn.ModuleDict(
                (lower, MLP(shapes[upper][0], tuple(hidden_dims), 2 * shapes[lower][0], nn.LeakyReLU, batch_norm))
                for upper, lower in zip(self.sites[:-1], self.sites[1:])
            )
        widths = [flat_dim(model.data_shape)]
        for name in reversed(self.sites):
            widths.append(hidden_dims[-1] if hidden_dims else widths[-1])
        self.upward = nn.ModuleList(
            _upward_block(d_in, tuple(hidden_dims), batch_norm) for d_in in widths[:-1]
        )
        self.heads = nn.ModuleList(
            nn.Linear(width, 2 * shapes[name][0]) for width, name in zip(widths[1:], reversed(self.sites))
        )

    def upward_pass(self, x):
        """(μ̂_{q,i}, σ̂²_{q,i}) of every site, from d̂_{q,0} = x."""
        d, estimates = x.reshape(x.shape[0], -1), {}
        for name, block, head in zip(reversed(self.sites), self.upward, self.heads):
            d = block(d)
            estimates[name] = loc_and_variance(head(d))
        return estimates

    def top_down_estimate(self, name, upper):
        """(μ, σ²) the upward estimate of ``name`` is merged with: the model's p(z_name | upper), or the guide's own."""
        if self.share_top_down:
            prior = self.conditional(name, upper)
            return prior.mean, prior.variance
        return loc_and_variance(self.top_down[name](upper))

    def forward(self, x, y=None, index=None):
        estimates = self.upward_pass(x)
        with data_plate(self.num_data, x, index):
            z = None
            for name in self.sites:
                loc, var = estimates[name]
                if z is not None:
                    loc, var = precision_weighted_merge(loc, var, *self.top_down_estimate(name, z))
                z = pyro.sample(name, dist.Normal(loc, var.sqrt()).to_event(1))


@GUIDES.register("ladder", "ladder VAE's guide: upward pass, precision-weighted merge with a top-down N(z_i | z_(i+1)) (its own, or the model's)")
def ladder(model, hidden_dims=(200, 200), share_top_down=False):
    return LadderGuide(model, hidden_dims, share_top_down)
