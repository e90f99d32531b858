"""Hierarchical variational models (Ranganath, Tran & Blei, 2016).

A mean-field likelihood q_MF(z | λ) = Π_i q(z_i | λ_i) whose parameters λ are drawn
from a variational prior q(λ; θ), here a normalizing flow (Pyro's affine
autoregressive transforms of a diagonal Gaussian). The marginal q(z) = ∫ q(z | λ) q(λ) dλ
can carry correlations no mean field has, but has no density; the hierarchical ELBO
replaces −log q(z) by a bound that needs an auxiliary r(λ | z; φ)::

    L = E_{q(z, λ)} [log p(x, z) + log r(λ | z) − log q(λ) − log q(z | λ)]
      = E_q [log p(x, z) − log q(z)] − E_{q(z)} KL(q(λ | z) ‖ r(λ | z))  ≤  the marginal ELBO.

Construction. L is the ELBO of the augmented model p(x, z) r(λ | z), whose marginal is
p(x), against the guide q(λ) q(z | λ) over the pair (z, λ). The guide writes all of it:

- ``{site}_lambda``: λ ~ q(λ) (given x where the guide is amortized), a guide site marked
  ``infer={"is_auxiliary": True}`` (Pyro's mark for a guide variable the model lacks);
- ``{site}``: z ~ q_MF(z | λ), the model's latent site;
- ``{site}_r``: ``pyro.factor(−log r(λ | z))``.

Every estimator here (``Trace_ELBO``, ``TraceGraph_ELBO``, the IWAE bound, the evaluation's
log weights) takes Σ log p over the model's sites minus Σ log q over the guide's, so a
guide factor −log r(λ | z) is the model site +log r(λ | z) of the augmented model: the ELBO
is L, the importance-weighted bound is the IWAE bound of the augmented pair (still a lower
bound on log p(x)), and no model, objective or engine code changes. The factor is
``has_rsample=True``: it is a cost, differentiated along λ's reparameterized path and
through r; when z is not reparameterized, ``TraceGraph_ELBO``'s provenance tracking puts
the factor in z's downstream cost, which is the hierarchical ELBO's Rao-Blackwellized score
function. ``Trace_ELBO`` weighs a score by the model's sites only, leaving the factor out, so
the ``elbo`` objective refuses a guide site the model lacks next to a non-reparameterized one
(``hvm_local`` over Poisson or Bernoulli layers, or with ``reparameterize=False``). What reads a site's distribution as q(z | x) cannot use these guides: ELBO surgery
and the total-correlation and anchor terms refuse them (by λ's ``is_auxiliary`` mark; they
would score q(z | λ) instead of q(z | x)). Active units and posterior means average draws of
z (the site's ``mean``, that of q(z | λ) for one draw of λ, is withheld).

- ``hvm`` (:class:`HierarchicalGuide`): amortized, for any continuous-latent model; per site,
  λ = (μ, softplus⁻¹ σ) of q_MF(z | λ) = N(μ, diag σ²), q(λ | x) a Gaussian from the encoder
  (scale ``init_spread`` = 0.1 for every x at the start) followed by conditional affine autoregressive
  transforms of the encoder's features, and r(λ | z, x) a diagonal Gaussian with the parameters
  of q(λ | x)'s Gaussian plus an MLP of (z, features) that starts at zero.
- ``hvm_local`` (:class:`HierarchicalLocalGuide`): over the non-amortized local guide of deep
  exponential families; a document's λ gathers its local factors' unconstrained parameters over
  every local layer (a gamma's shape and mean, a Poisson's rate, a Bernoulli's logit),
  q(λ_n): λ_n = loc_n + spread_n ⊙ f(ε), ε ~ N(0, I), with per-document
  loc and spread and affine autoregressive transforms f shared by all documents (acting in
  standardized units, so that one Adam step on the shared weights moves every document's λ
  by at most about its spread), q(z_n | λ_n) each layer's mean-field family at its slice of λ_n,
  and r(λ_n | z_n) a diagonal Gaussian with the parameters of the document's Gaussian plus an
  MLP that starts at zero of a feature of each layer's z_n (log(z + 10⁻⁴) of gamma units,
  log(1 + z) of Poisson counts, z itself of Bernoulli units).
  The global latents keep their mean-field factors.

Both flows start at the identity and, in ``hvm_local``, the per-document Gaussians at the
mean-field guide's initial factors, so training starts from a (noisy) mean-field guide. Then
r equals q(λ), so the auxiliary terms cancel and the bound starts at the mean-field ELBO
averaged over q(λ) (an r learned from scratch cost 5 nats per digit at the
start of a DLGM on MNIST and left ``hvm`` 12 nats behind ``diag`` after 10 epochs).
"""

import pyro
import pyro.distributions as dist
import torch
from pyro.distributions.transforms import AffineTransform, affine_autoregressive, conditional_affine_autoregressive
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.functional import softplus

from ..models.base import data_plate
from ..models.exponential_families import make_plates
from ..nn import MLP
from ..registry import GUIDES
from .amortized import AmortizedGuide
from .local import LocalGuide, _Layout, _softplus_inverse


class MeanFieldGivenLambda(dist.Independent):
    """q_MF(z | λ), a site's distribution given one draw of λ: its ``mean`` is E[z | λ],
    not the guide's E_q[z | x], so it is withheld and evaluation averages draws of z."""

    @property
    def mean(self):
        raise NotImplementedError("E_q[z | x] of a hierarchical guide integrates over λ; average draws of z")


def _zero_output(layer):
    """Zero a network's output layer: an affine flow's loc 0 and log-scale 0 (the identity), a correction 0."""
    nn.init.zeros_(layer.weight)
    nn.init.zeros_(layer.bias)


class _Scaled(nn.Module):
    """A parameter stored divided by ``factor``: Adam's steps on it become ``factor`` times smaller."""

    def __init__(self, factor):
        super().__init__()
        self.factor = factor

    def forward(self, stored):
        return self.factor * stored

    def right_inverse(self, value):
        return value / self.factor


def _scale_steps(module, factor):
    """Store every weight and bias of ``module``'s layers divided by ``factor`` (``torch.nn.utils.parametrize``)."""
    for layer in module.modules():
        if isinstance(layer, nn.Linear):
            for name in ("weight", "bias"):
                parametrize.register_parametrization(layer, name, _Scaled(factor))


def _finite_gradient(grad):
    """The gradient with non-finite entries zeroed (see :meth:`HierarchicalLocalGuide.forward`)."""
    return torch.nan_to_num(grad, nan=0.0, posinf=0.0, neginf=0.0)


def _diagonal_normal(params):
    """N(loc, softplus(·)²) over the last dim, from [..., 2·d] parameters."""
    loc, scale = params.chunk(2, -1)
    return dist.Normal(loc, softplus(scale) + 1e-5).to_event(1)


def hierarchical_sample(name, variational_prior, likelihood, auxiliary):
    """Sample λ and z = ``name`` and add −log r(λ | z): the three sites of the construction above.

    :param variational_prior: q(λ), batch shape that of the current plates.
    :param likelihood: λ -> q_MF(z | λ).
    :param auxiliary: z -> r(λ | z), of λ's batch and event shapes.
    :returns: z.
    """
    lam = pyro.sample(f"{name}_lambda", variational_prior, infer={"is_auxiliary": True})
    z = pyro.sample(name, likelihood(lam))
    pyro.factor(f"{name}_r", -auxiliary(z).log_prob(lam), has_rsample=True)
    return z


class HierarchicalGuide(AmortizedGuide):
    """``hvm``: per latent site, q(λ | x) a flow, q_MF(z | λ) diagonal Gaussian, r(λ | z, x).

    :param model: a model with ``latent_shapes``, ``data_shape`` and ``num_data``.
    :param hidden_dims: widths of the encoder's hidden layers.
    :param int num_flows: affine autoregressive transforms of q(λ | x).
    :param auxiliary_hidden_dims: hidden widths of r's MLP (default: one layer of 4·dim z).
    :param float init_spread: the initial scale of the Gaussian under q(λ | x), for every x.
    """

    def __init__(self, model, hidden_dims=(200, 200), num_flows=2, auxiliary_hidden_dims=None, init_spread=0.1):
        super().__init__(model, hidden_dims)
        c = self.encoder.out_dim
        self.heads, self.flows, self.auxiliaries = nn.ModuleDict(), nn.ModuleDict(), nn.ModuleDict()
        for name, shape in self.latent_shapes.items():
            k = shape[0]
            self.heads[name] = nn.Linear(c, 4 * k)
            with torch.no_grad():  # q(λ|x)'s scale starts at init_spread whatever x
                self.heads[name].weight[2 * k :] = 0.0
                self.heads[name].bias[2 * k :] = _softplus_inverse(torch.tensor(float(init_spread)))
            self.flows[name] = nn.ModuleList(conditional_affine_autoregressive(2 * k, c, [4 * k]) for _ in range(num_flows))
            for flow in self.flows[name]:
                _zero_output(flow.nn.layers[-1])
            hidden = (4 * k,) if auxiliary_hidden_dims is None else tuple(auxiliary_hidden_dims)
            self.auxiliaries[name] = MLP(k + c, hidden, 4 * k)
            _zero_output(self.auxiliaries[name][-1])

    def variational_prior(self, name, features):
        """q(λ | x): a diagonal Gaussian of the features, then the conditional flows."""
        base = _diagonal_normal(self.heads[name](features))
        return dist.TransformedDistribution(base, [flow.condition(features) for flow in self.flows[name]])

    @staticmethod
    def likelihood(lam):
        """q_MF(z | λ) = N(μ, diag softplus(ρ)²), λ = (μ, ρ)."""
        loc, scale = lam.chunk(2, -1)
        return MeanFieldGivenLambda(dist.Normal(loc, softplus(scale) + 1e-5), 1)

    def auxiliary(self, name, z, features):
        """r(λ | z, x), a diagonal Gaussian whose parameters are those of the Gaussian under q(λ | x)
        plus an MLP of (z, features) that starts at zero: with the flows at the identity, r = q(λ | x)
        and log r(λ | z) − log q(λ | x) = 0, the bound E_q(λ|x)[mean-field ELBO of λ]."""
        features = features.expand(z.shape[:-1] + features.shape[-1:])
        return _diagonal_normal(self.heads[name](features) + self.auxiliaries[name](torch.cat([z, features], -1)))

    def forward(self, x, y=None, index=None):
        features = self.encoder(x)
        with data_plate(self.num_data, x, index):
            for name in self.latent_shapes:
                hierarchical_sample(
                    name,
                    self.variational_prior(name, features),
                    self.likelihood,
                    lambda z, name=name: self.auxiliary(name, z, features),
                )


class HierarchicalLocalGuide(LocalGuide):
    """``hvm_local``: the local guide of a DEF with each document's local factors' parameters λ_n
    drawn from a flow, and r(λ_n | z_n) (see the module's docstring).

    The local factors' tables hold the per-document Gaussians' means (each family's unconstrained
    parameters: a gamma's shape and mean, a Poisson's rate, a Bernoulli's logit); ``spread``
    their scales (softplus), all starting at ``init_spread``.

    :param model: a DEF (``latent_sites``) with local layers of any families (gamma, Poisson,
        Bernoulli). Poisson and Bernoulli z have no reparameterized gradient; their score
        function needs the ``tracegraph_elbo`` objective (see the module's docstring).
    :param int num_flows: affine autoregressive transforms shared by the documents.
    :param float init_spread: the per-document Gaussians' initial scale.
    :param float shared_step: the shared networks' (flows, r) step size relative to the
        per-document parameters' (the DEF's learning rate, 0.05, suits a table of independent
        factors but throws a shared network of hundreds of units far off in one step).
    :param options: of :class:`~pyro_deepvi.guides.local.LocalGuide` (``reparameterize``, ...).
    """

    def __init__(self, model, num_flows=2, init_spread=0.1, shared_step=0.05, local_only=False, **options):
        super().__init__(model, local_only=local_only, **options)
        self.local_names = [name for name, site in self.sites.items() if site.local]
        if not self.local_names:
            raise ValueError(f"hvm_local draws the parameters of local factors, but {type(model).__name__} has no local site")
        self.units = [self.sites[name].plates[0][1] for name in self.local_names]
        dim = sum(len(factor.tables()) * units for factor, units in zip(self._local_factors(), self.units))
        self.hierarchy_options = dict(num_flows=num_flows, init_spread=init_spread, shared_step=shared_step)
        self.unconstrained_spread = nn.Parameter(_softplus_inverse(torch.full((self.num_data, dim), float(init_spread))))
        self.flows = nn.ModuleList(affine_autoregressive(dim, [dim]) for _ in range(num_flows))
        for flow in self.flows:
            _zero_output(flow.arn.layers[-1])
        self.auxiliary_net = MLP(sum(self.units), (dim,), 2 * dim)
        _zero_output(self.auxiliary_net[-1])
        _scale_steps(self.flows, shared_step)
        _scale_steps(self.auxiliary_net, shared_step)

    def _document_gaussians(self, index=None):
        """(loc, unconstrained spread) of the batch's documents' Gaussians, each [B, D], D = Σ_l (tables × K_l)."""
        rows = (lambda table: table) if index is None else (lambda table: table[index])
        loc = torch.cat([torch.cat([rows(t) for t in f.tables()], -1) for f in self._local_factors()], -1)
        return loc, rows(self.unconstrained_spread)

    def variational_prior(self, index=None):
        """q(λ_n) of the batch's documents, batch shape [B] and event [D]: ε ~ N(0, I),
        the shared flows in these standardized units, then λ_n = loc_n + spread_n ⊙ flow(ε)."""
        loc, spread = self._document_gaussians(index)
        base = dist.Normal(torch.zeros_like(loc), torch.ones_like(loc)).to_event(1)
        per_document = AffineTransform(loc, softplus(spread), event_dim=1, cache_size=1)
        return dist.TransformedDistribution(base, [*self.flows, per_document])

    def _local_factors(self):
        return [self.factors[name] for name in self.local_names]

    def _split(self, lam):
        """λ [..., B, D] -> per local site, its unconstrained parameters (one per table), each [..., K, B]
        (the units plate's 1 in λ's batch shape, where there is one, dropped)."""
        parts, start = [], 0
        for factor, units in zip(self._local_factors(), self.units):
            values = []
            for _ in factor.tables():
                part = lam[..., start : start + units].transpose(-1, -2)
                values.append(part.squeeze(-3) if part.dim() > 2 else part)
                start += units
            parts.append(values)
        return parts

    def auxiliary(self, z, like, index=None):
        """r(λ_n | z_n): the per-document Gaussian of q(λ_n) (rows ``index``) plus an MLP that starts at
        zero of every local layer's feature of z_n (:meth:`~pyro_deepvi.guides.local.Factor.feature`),
        shaped like λ (``like``)."""
        features = torch.cat([f.feature(value).transpose(-1, -2) for f, value in zip(self._local_factors(), z)], -1)
        correction = self.auxiliary_net(features.reshape(like.shape[:-1] + features.shape[-1:]))
        return _diagonal_normal(torch.cat(self._document_gaussians(index), -1) + correction)

    def forward(self, x, y=None, index=None):
        self._check_rows(x, index)
        plates = make_plates(self.sites, self.num_data, x, index)
        for name, site in self.sites.items():
            if not site.local:
                with site.plate_stack(plates):
                    pyro.sample(name, self.factors[name]())
        with plates["data"]:
            lam = pyro.sample("lambda", self.variational_prior(index), infer={"is_auxiliary": True})
        if lam.requires_grad:
            # A sparse gamma draw far in its tail can have a non-finite reparameterized gradient
            # (2 entries in 3·10⁶ while completing reuters' test documents); the mean-field guide
            # never met one, but through the shared flows one entry would poison every document.
            lam.register_hook(_finite_gradient)
        z = []
        for name, factor, values in zip(self.local_names, self._local_factors(), self._split(lam)):
            with self.sites[name].plate_stack(plates):
                z.append(pyro.sample(name, factor.distribution(*values)))
        with plates["data"]:
            pyro.factor("lambda_r", -self.auxiliary(z, lam, index).log_prob(lam), has_rsample=True)

    @torch.no_grad()
    def local_means(self, num_samples=100):
        """E_q[z] = E_{q(λ)} [mean of q(z | λ)] of each local site by ``num_samples`` draws of λ."""
        lam = self.variational_prior().sample((num_samples,))
        return {
            name: factor.mean_of(*values).mean(0).transpose(-1, -2)
            for name, factor, values in zip(self.local_names, self._local_factors(), self._split(lam))
        }

    def local_guide(self, num_data):
        """A guide of local sites only for ``num_data`` new documents: rows start at this guide's
        average row; the flows and r are copies of this guide's, held fixed (``requires_grad``
        off), so that a fit to new documents moves only their own λ's Gaussians. The shared
        networks learn from every training document's score function; refitted to a few held-out
        documents they drift, and the fit with them (benchmarks/README.md: a 5,000-step fit of 10
        reuters documents reached −5,098 nats per document, −622 with the copies fixed)."""
        like = next(self.parameters())
        guide = HierarchicalLocalGuide(
            _Layout(self.sites, num_data), local_only=True, **self.hierarchy_options, **self.options
        ).to(like)
        for name, factor in guide.factors.items():
            factor.start_like(self.factors[name])
        with torch.no_grad():
            guide.unconstrained_spread.copy_(self.unconstrained_spread.mean(0).expand_as(guide.unconstrained_spread))
        guide.flows.load_state_dict(self.flows.state_dict())
        guide.auxiliary_net.load_state_dict(self.auxiliary_net.state_dict())
        guide.flows.requires_grad_(False)
        guide.auxiliary_net.requires_grad_(False)
        return guide


@GUIDES.register("hvm", "hierarchical variational model: flow prior q(λ|x) over a diagonal Gaussian's λ, auxiliary r(λ|z)")
def hvm(model, hidden_dims=(200, 200)):
    return HierarchicalGuide(model, hidden_dims)


@GUIDES.register("hvm_local", "hierarchical variational model over a DEF's local guide: a flow over each document's factors")
def hvm_local(model, hidden_dims=None, num_flows=2, init_spread=0.1, shared_step=0.05):
    """:class:`HierarchicalLocalGuide` with reparameterized gamma factors (Poisson and Bernoulli ones
    take the score function) and its options (e.g. ``--guide-arg shared_step=0.005``); ``hidden_dims``
    is unused."""
    return HierarchicalLocalGuide(model, num_flows=num_flows, init_spread=init_spread, shared_step=shared_step)
