"""Non-amortized mean-field guides for deep exponential families (Ranganath et al. 2015).

    q(z, W) = Π_l q(W_l; ξ_l) Π_n Π_l Π_k q(z_{n,l,k}; λ_{n,l,k})

one factor per latent coordinate, in the family of its prior: gamma factors for gamma
units and gamma weights (those into gamma and identity-link Poisson layers, and W_0),
Bernoulli (logits) and Poisson (rate) factors for those units, normal factors for normal
weights. A local site's parameters form a table of num_data × units
rows gathered by the batch's ``index`` (the whole table when ``index`` is None), so a
data point's factors move only when it is in the batch; the sites and their plates come
from the model's ``latent_sites`` (see :mod:`pyro_deepvi.models.exponential_families`).

A gamma factor is parameterized by its shape and mean, each through a softplus, as
Gamma(a, a / m): the mean sits on the scale of the model's E z = z_{l+1}ᵀ w_{l,k} and
the shape sets how spread it is, so Adam's steps on the two are well scaled. Torch
samples gammas with implicitly reparameterized gradients, so the ``elbo`` objective
differentiates through gamma draws and uses the score function only for Bernoulli and
Poisson factors; ``tracegraph_elbo`` Rao-Blackwellizes those. With
``reparameterize=False`` (the ``local_score_function`` guide) every gamma factor is
marked ``has_rsample_(False)``, Pyro's switch for a single distribution, so that
``tracegraph_elbo`` runs the paper's pure Rao-Blackwellized score-function estimator.

Initialization: a local gamma factor's mean starts at 1 and a global one's at 1 / (the
size of its plate at dim -1), which for W_0 and W_l is the number of units they sum over,
so that with inputs of mean 1 every layer's mean, and each rate of x, starts near 1;
means are jittered log-uniformly by a factor within [1/2, 2] to break the symmetry
between units, and every gamma factor starts at shape ``init_shape``. Rows for new data
(:meth:`LocalGuide.local_guide`, to complete held-out documents) start at the fitted
rows' average instead.
"""

import math
from collections import OrderedDict, namedtuple

import pyro
import pyro.distributions as dist
import torch
from pyro.nn import PyroModule
from torch import nn
from torch.nn.functional import softplus

from ..models.exponential_families import _positive, make_plates
from ..registry import GUIDES


def _softplus_inverse(value):
    return value + torch.log(-torch.expm1(-value))


def _jittered(shape, mean):
    """``mean`` times exp(U(−log 2, log 2)) entrywise."""
    return mean * torch.empty(shape).uniform_(-math.log(2), math.log(2)).exp()


#: What the guide reads from a model: its latent sites and the number of rows.
_Layout = namedtuple("_Layout", ["latent_sites", "num_data"])


class Factor(nn.Module):
    """The factors of one site: parameters of the site's value shape (a global site) or a
    table [num_data, units] whose rows ``index`` give a batch's [units, B] (a local site).

    A family holds unconstrained parameter tables (:meth:`tables`) and builds q and its mean
    from unconstrained values of their shape (:meth:`distribution`, :meth:`mean_of`), gathered
    rows here or a hierarchical guide's draws of them (``hvm_local``), which also takes each
    local family's :meth:`feature` of z as the input of its r(λ | z)."""

    def __init__(self, local):
        super().__init__()
        self.local = local

    def gather(self, table, index):
        if not self.local:
            return table
        return (table if index is None else table[index]).transpose(-1, -2)

    def tables(self):
        """The unconstrained parameter tables, in the order :meth:`distribution` takes them."""
        raise NotImplementedError

    def distribution(self, *unconstrained):
        """q at unconstrained parameter values, one tensor per table."""
        raise NotImplementedError

    def mean_of(self, *unconstrained):
        """E_q at unconstrained parameter values, one tensor per table."""
        raise NotImplementedError

    def feature(self, value):
        """What a hierarchical guide's r(λ | z) reads of draws ``value`` of this factor."""
        raise NotImplementedError(f"{type(self).__name__} gives no feature of z for a hierarchical guide's r(λ | z)")

    def forward(self, index=None):
        """The distribution q of the batch ``index`` (all rows when None)."""
        return self.distribution(*(self.gather(table, index) for table in self.tables()))

    def mean(self):
        """E_q, of the table's shape."""
        return self.mean_of(*self.tables())

    @torch.no_grad()
    def start_like(self, other):
        """Start every row of this local factor at ``other``'s average row (per unit, of the
        unconstrained parameters): new data points start where fitted ones sit on average."""
        for mine, theirs in zip(self.parameters(), other.parameters()):
            mine.copy_(theirs.mean(0).expand_as(mine))


class GammaFactor(Factor):
    """Gamma(a, a / m) with a = softplus(·) + ``min_shape`` and m = softplus(·)."""

    def __init__(self, table_shape, local, init_mean, init_shape, min_shape, reparameterize=True):
        super().__init__(local)
        self.min_shape = min_shape
        self.reparameterize = reparameterize
        shape = torch.full(table_shape, float(init_shape - min_shape))
        self.unconstrained_shape = nn.Parameter(_softplus_inverse(shape))
        self.unconstrained_mean = nn.Parameter(_softplus_inverse(_jittered(table_shape, init_mean)))

    def tables(self):
        return self.unconstrained_shape, self.unconstrained_mean

    def distribution(self, unconstrained_shape, unconstrained_mean):
        """Gamma(a, a / m), its scale m / a floored at the dtype's smallest normal number: below it
        (m ≈ e^(−88) in float32) the rate a / m overflows to inf and log q = a log(inf) − inf·z is NaN;
        torch floors the draws there too."""
        shape = softplus(unconstrained_shape) + self.min_shape
        return dist.Gamma(shape, 1 / _positive(softplus(unconstrained_mean) / shape)).has_rsample_(self.reparameterize)

    def mean_of(self, unconstrained_shape, unconstrained_mean):
        return softplus(unconstrained_mean)

    def feature(self, value):
        """log(z + 10⁻⁴): the offset bounds the gradient of log z, which at the sparse gamma's tiny draws
        would overflow."""
        return (value + 1e-4).log()


class BernoulliFactor(Factor):
    """Bernoulli(σ(logits)), logits starting at zero (probability 1/2)."""

    def __init__(self, table_shape, local):
        super().__init__(local)
        self.logits = nn.Parameter(torch.zeros(table_shape))

    def tables(self):
        return (self.logits,)

    def distribution(self, logits):
        return dist.Bernoulli(logits=logits)

    def mean_of(self, logits):
        return torch.sigmoid(logits)

    def feature(self, value):
        """z itself, 0 or 1."""
        return value


class PoissonFactor(Factor):
    """Poisson(softplus(·)), rates starting at 1."""

    def __init__(self, table_shape, local):
        super().__init__(local)
        self.unconstrained_rate = nn.Parameter(_softplus_inverse(_jittered(table_shape, 1.0)))

    def tables(self):
        return (self.unconstrained_rate,)

    def distribution(self, unconstrained_rate):
        return dist.Poisson(softplus(unconstrained_rate))

    def mean_of(self, unconstrained_rate):
        return softplus(unconstrained_rate)

    def feature(self, value):
        """log(1 + z): counts on the scale of their rate's logarithm."""
        return value.log1p()


class NormalFactor(Factor):
    """N(loc, softplus(·)²), loc starting at N(0, 0.1²) draws and the scale at 0.1."""

    def __init__(self, table_shape, local):
        super().__init__(local)
        self.loc = nn.Parameter(0.1 * torch.randn(table_shape))
        self.unconstrained_scale = nn.Parameter(_softplus_inverse(torch.full(table_shape, 0.1)))

    def tables(self):
        return self.loc, self.unconstrained_scale

    def distribution(self, loc, unconstrained_scale):
        return dist.Normal(loc, softplus(unconstrained_scale))

    def mean_of(self, loc, unconstrained_scale):
        return loc


class LocalGuide(PyroModule):
    """Mean-field q over a DEF's latent sites, one factor per coordinate and data point.

    :param model: a model with ``latent_sites`` (family, plates, local) and ``num_data``.
    :param bool reparameterize: whether gamma factors give reparameterized gradients.
    :param float init_shape: the gamma factors' initial shape.
    :param float min_shape: the gamma factors' smallest shape (samples of much smaller
        shapes underflow to zero in float32).
    :param int num_data: rows of the local tables (``model.num_data`` by default).
    :param bool local_only: factors for the local sites only (to fit held-out rows with
        the global latents fixed).
    """

    def __init__(self, model, reparameterize=True, init_shape=1.0, min_shape=0.05, num_data=None, local_only=False):
        super().__init__()
        if not 0 < min_shape < init_shape:
            raise ValueError(f"need 0 < min_shape < init_shape, got min_shape={min_shape!r}, init_shape={init_shape!r}")
        sites = getattr(model, "latent_sites", None)
        if not sites:
            raise ValueError(
                f"{type(model).__name__} does not describe its latent sites (``latent_sites``), "
                "so the local guide cannot be built for it"
            )
        self.num_data = model.num_data if num_data is None else int(num_data)
        self.options = dict(reparameterize=reparameterize, init_shape=init_shape, min_shape=min_shape)
        self.sites = OrderedDict((name, site) for name, site in sites.items() if site.local or not local_only)
        self.factors = nn.ModuleDict((name, self._factor(site)) for name, site in self.sites.items())

    def _factor(self, site):
        sizes = tuple(size for _, size, _ in site.plates)
        table_shape = (self.num_data,) + sizes if site.local else sizes
        if site.family == "gamma":
            init_mean = 1.0 if site.local else 1.0 / sizes[-1]
            return GammaFactor(table_shape, site.local, init_mean, **self.options)
        factor = {"bernoulli": BernoulliFactor, "poisson": PoissonFactor, "normal": NormalFactor}[site.family]
        return factor(table_shape, site.local)

    def _check_rows(self, x, index):
        if index is None and x.shape[0] != self.num_data:
            raise ValueError(
                f"the local guide holds factors for {self.num_data} data points but got a batch of "
                f"{x.shape[0]} with no index; pass the batch's index"
            )

    def forward(self, x, y=None, index=None):
        self._check_rows(x, index)
        plates = make_plates(self.sites, self.num_data, x, index)
        for name, site in self.sites.items():
            with site.plate_stack(plates):
                pyro.sample(name, self.factors[name](index if site.local else None))

    def global_means(self):
        """E_q of each global site: {name: tensor of the site's value shape}."""
        return {name: self.factors[name].mean() for name, site in self.sites.items() if not site.local}

    def local_means(self):
        """E_q of each local site: {name: table [num_data, units]}."""
        return {name: self.factors[name].mean() for name, site in self.sites.items() if site.local}

    def local_guide(self, num_data):
        """A guide with local factors only, for ``num_data`` new rows (same options, device
        and dtype), each row starting at this guide's average row."""
        like = next(self.parameters())
        guide = LocalGuide(_Layout(self.sites, num_data), local_only=True, **self.options).to(like)
        for name, factor in guide.factors.items():
            factor.start_like(self.factors[name])
        return guide


@GUIDES.register("local", "non-amortized mean-field, one factor per unit and data point in the prior's family (DEFs)")
def local(model, hidden_dims=None):
    """:class:`LocalGuide` with reparameterized gamma factors; ``hidden_dims`` is unused (no encoder)."""
    return LocalGuide(model)


@GUIDES.register(
    "local_score_function", "the local guide with gamma factors marked non-reparameterized (score function only)"
)
def local_score_function(model, hidden_dims=None):
    """:class:`LocalGuide` with ``reparameterize=False``; ``hidden_dims`` is unused."""
    return LocalGuide(model, reparameterize=False)
