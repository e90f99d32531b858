"""Total correlation of the aggregate posterior (β-TCVAE) and anchored information (CorEx / AnchorVAE).

**β-TCVAE** (Chen, Li, Grosse & Duvenaud, 2018, "Isolating sources of
disentanglement in variational autoencoders"). With the empirical data
distribution p(n) = 1/N over the training set, q(z, n) = q(z|x_n) p(n) and the
aggregate posterior q(z) = (1/N) Σ_n q(z|x_n), the average KL of the ELBO
splits into three parts::

    E_{p(n)}[KL(q(z|x_n) ‖ p(z))]
        = E_{q(z,n)}[log q(z|x_n) − log q(z)]                 index-code MI  I_q[z; n]
        + E_{q(z)}[log q(z) − log Π_d q(z_d)]                 total correlation  TC(z) = KL(q(z) ‖ Π_d q(z_d))
        + E_{q(z)}[Σ_d log q(z_d) − log p(z)]                 dimension-wise KL  Σ_d KL(q(z_d) ‖ p(z_d))

(the last is Σ_d KL(q(z_d) ‖ p(z_d)) when the prior factorizes, as the
top-layer N(0, I) of a DLGM does). The ``tc`` term returns the TC estimate per
data point; the objective adds N · w · TC to the loss, so the loss per data
point becomes distortion + MI + (1 + w)·TC + dim-KL (for a one-layer model,
whose rate is the KL at this site): **β-TCVAE with β = 1 + w**
(``--term tc=5`` is β = 6). ``--term index_code_mi=α−1`` and
``--term dimension_kl=γ−1`` weight the other two parts, giving Chen et al.'s
α·MI + β·TC + γ·dim-KL.

**Estimate from a minibatch.** The terms work at one latent site z (by default
the model's top one, the first of ``model.latent_shapes``) of a *factorized*
guide, q(z|x) = Π_d q(z_d|x): the site's ``fn`` must be an ``Independent`` of a
univariate distribution (the ``diag`` guide's Normal), because log q(z_d|x_j)
of every dimension alone is needed; anything else (``full``, ``rank_one``,
``iaf``) is refused with a ``ValueError``. For the minibatch x_1, ..., x_B and
the draws z_i ~ q(z|x_i) of the run's traces (one set per particle, each scored
against the components of its own particle), the B × B × D matrix
log q(z_{i,d} | x_j) gives::

    log q̂(z_i)   = logsumexp_j [log w_ij + Σ_d log q(z_{i,d} | x_j)]
    log q̂(z_i,d) = logsumexp_j [log w_ij + log q(z_{i,d} | x_j)]

with N, the data set's size, read from the data plate (its full size; B is the
minibatch). Two choices of the weights w_ij (``estimator=``):

- ``"stratified"`` (default): w_ii = 1/N for the draw's own data point and
  w_ij = (N − 1) / (N (B − 1)) for the others. The own point is a stratum of
  weight 1/N known exactly, and the other B − 1 points of a shuffled minibatch
  are a uniform sample of the other N − 1, so q̂(z_i) is an unbiased estimate
  of q(z_i); its log is biased low (Jensen's inequality), the more so the
  narrower the encodings are next to the spacing of B points, so MI is then
  overestimated and the TC estimate can even come out negative. When
  the minibatch is the whole data set (B = N) every w_ij = 1/N and q̂ is the
  exact aggregate posterior of the data set. This is the idea of Chen et
  al.'s minibatch stratified sampling (MSS), with the simplest weights.
- ``"mws"``: w_ij = 1/(N·B) for all pairs, Chen et al.'s minibatch-weighted
  sampling as published (the paper's MWS estimator; the authors' code
  subtracts ``log(batch_size * dataset_size)`` after the log-sum-exp). Its q̂ is smaller
  than the stratified one by a factor between 1/N (components overlapping) and
  1/B (own component dominating); in particular for B = N it is exactly the
  exact q(z)/N, so log q̂ is offset by −log N, the TC by +(D − 1)·log N, the
  MI by +log N and the dimension-wise KL by −D·log N (their sum is
  unchanged). Kept to reproduce the paper; its values are not estimates of the
  TC itself.

Each part is the mean over draws and particles of its per-draw expression
(``log q(z_i|x_i)`` is the guide's own density of its draw, ``log p(z_i)`` the
model's density at the site). Since the per-draw expressions telescope,
MI + TC + dim-KL = mean[log q(z|x) − log p(z)], the average-KL (rate) estimate
of the same draws at that site, exactly (up to float error), for either
estimator. With the stratified weights MI ≤ log N for every draw. Cost per
step: O(particles · B² · D) time and memory; gradients flow through both the
draws (reparameterized) and the components.

**CorEx / AnchorVAE** (Gao, Brekelmans, Ver Steeg & Galstyan, 2019,
"Auto-encoding total correlation explanation"). In the seed's notation (there
p_θ(z|x) is the encoder and q_φ(x|z) the decoder), the CorEx objective

    TC_θ(x, z) − TC_θ(z) = Σ_{i=1}^d I(x_i; z) − Σ_{i=1}^m H_θ(z_i) + H_θ(z|x)
                         ≈ Σ_{i=1}^d I(x_i; z) − Σ_{i=1}^m I(z_i; x)

(the last step when the encoder factorizes, p_θ(z|x) = Π_i p_θ(z_i|x)) has,
under a factorized encoder and decoder, the variational lower bound

    L(x) = E_{p(x) p_θ(z|x)}[Σ_{i=1}^d log q_φ(x_i|z)] − E_{p(x)}[Σ_{i=1}^m KL(p_θ(z_i|x) ‖ r_ψ(z_i))]

which is the ELBO with a factorized prior r_ψ(z) = Π_i r_ψ(z_i): a one-layer
``dlgm`` (Bernoulli or isotropic Gaussian decoder, N(0, I) prior) with the
``diag`` guide already maximizes it, so there is no separate ``corex`` term.
(The stacked bound of the seed needs factorized conditionals between layers
too, which the DLGM's p(h_l | h_{l+1}) with a full G_l is not.) AnchorVAE
adds λ · I(z_k; x) for chosen anchor dimensions k, to concentrate the
explanatory power in them. The ``anchor`` term returns −Î(z_K; x) per data
point for the anchor dimensions K (``dims=``, by default the first), with

    Î(z_K; x) = mean_i [log q(z_{i,K} | x_i) − log q̂(z_{i,K})]

and log q̂(z_K) the minibatch estimate above restricted to the dimensions K
(their joint marginal, Σ_{d∈K} log q(z_{i,d}|x_j) inside the log-sum-exp). With
weight λ the loss adds −N·λ·Î, so a positive λ rewards information in the
anchors. This estimates the mutual information directly (the estimate is the
index-code MI of those dimensions, ≤ log N with the stratified weights). A
bound-only alternative, not implemented here, uses I(z_k; x) ≤ E KL(q(z_k|x) ‖
r(z_k)): for λ < 1 the objective with −(1 − λ)·KL on the anchors' dimensions
stays a lower bound, a per-dimension KL weight.
"""

import math
from collections import namedtuple

import torch
from torch.distributions import Independent

from ..importance import PARTICLES, _data_frame, auxiliary_sites
from ..registry import TERMS
from .objective import Term

ESTIMATORS = ("stratified", "mws")

Decomposition = namedtuple("Decomposition", ["index_code_mi", "total_correlation", "dimension_kl", "average_kl"])
Decomposition.__doc__ = """The average KL at one site and its three parts, each a per-data-point 0-dim tensor.

``index_code_mi + total_correlation + dimension_kl == average_kl`` up to float error."""


def _check_estimator(estimator):
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {', '.join(map(repr, ESTIMATORS))}, got {estimator!r}")


def _univariate_base(fn, site="z"):
    """``(base, event_dims)`` of a product of univariate distributions; a ``ValueError`` otherwise."""
    base = fn
    while isinstance(base, Independent):
        base = base.base_dist
    if base.event_shape != torch.Size():
        raise ValueError(
            f"the total-correlation terms need a factorized guide at site {site!r}: its q(z|x) must be an "
            f"Independent of a univariate distribution (e.g. the 'diag' guide's Normal), so that every "
            f"dimension has a density of its own; got {type(fn).__name__}"
            + (f" of {type(base).__name__}" if base is not fn else "")
            + " (use --guide diag)"
        )
    return base, len(fn.event_shape)


def pairwise_log_prob(fn, value, site="z"):
    """log q(z_{s,i,d} | x_{s,j}) of every draw i against every component j: [S, B, B, D].

    :param fn: q(z|x) of the minibatch, a factorized distribution whose last batch
        dim is the data plate's (B) and whose event is z (D = its number of elements).
    :param value: the draws, batch shape [..., B] (e.g. [particles, B]) plus the event.
    :returns: [S, B_i, B_j, D] with S the product of the batch dims before the data dim
        (particles); draws are scored against the components of their own particle.
    """
    base, event_dims = _univariate_base(fn, site)
    batch_dims = value.dim() - event_dims
    if batch_dims < 1:
        raise ValueError(f"site {site!r}: the draws have no batch dim (expected [..., batch, *event])")
    data = batch_dims - 1
    size = value.shape[data]
    # Move the draws' data dim to a new leftmost dim and leave 1 in its place: scoring
    # broadcasts every draw i against every component j.
    lp = base.log_prob(value.unsqueeze(0).transpose(0, data + 1))  # [B_i, ..., B_j, *event]
    lp = lp.movedim(0, data)  # [..., B_i, B_j, *event]
    return lp.reshape((-1, size, size, lp.shape[data + 2 :].numel()))


def log_importance_weights(batch_size, num_data, estimator="stratified", dtype=None, device=None):
    """log w_ij of the minibatch estimate q̂(z_i) = Σ_j w_ij q(z_i|x_j): a [B, B] matrix.

    ``"stratified"``: 1/N on the diagonal, (N − 1)/(N (B − 1)) elsewhere (1/N everywhere
    when B = N); ``"mws"``: 1/(N·B) everywhere (Chen et al.'s minibatch-weighted sampling).
    """
    _check_estimator(estimator)
    if num_data < batch_size:
        raise ValueError(f"the data set's size N = {num_data} is smaller than the minibatch B = {batch_size}")
    if estimator == "mws":
        return torch.full((batch_size, batch_size), -math.log(num_data * batch_size), dtype=dtype, device=device)
    if batch_size < 2:
        if num_data > 1:
            raise ValueError(
                "the stratified estimate of q(z) needs at least 2 data points in the minibatch "
                f"(the other points estimate the rest of the N = {num_data}), got 1"
            )
        return torch.zeros((1, 1), dtype=dtype, device=device)
    off = math.log(num_data - 1) - math.log(num_data) - math.log(batch_size - 1)
    weights = torch.full((batch_size, batch_size), off, dtype=dtype, device=device)
    return weights.fill_diagonal_(-math.log(num_data))


def decompose(fn, value, log_p, num_data, estimator="stratified", site="z"):
    """MI, TC, dimension-wise KL and average KL of one site from its guide ``fn``, draws and log p(z).

    :param fn: q(z|x) of the minibatch (factorized; last batch dim = data).
    :param value: the draws z_i ~ q(z|x_i), [..., B, *event].
    :param log_p: log p(z_i) of the draws under the model, broadcastable to [..., B].
    :param int num_data: the data set's size N.
    :returns: a :data:`Decomposition` of per-data-point means.
    """
    pairs = pairwise_log_prob(fn, value, site)
    num_samples, batch = pairs.shape[:2]
    log_w = log_importance_weights(batch, num_data, estimator, pairs.dtype, pairs.device)
    log_q_z = torch.logsumexp(pairs.sum(-1) + log_w, dim=-1)  # [S, B]
    log_q_dims = torch.logsumexp(pairs + log_w.unsqueeze(-1), dim=-2).sum(-1)  # Σ_d log q̂(z_d), [S, B]
    log_q_zx = pairs.diagonal(dim1=1, dim2=2).sum(-2)  # own component: log q(z_i|x_i), [S, B]
    log_p = torch.as_tensor(log_p, dtype=pairs.dtype, device=pairs.device)
    log_p = log_p.expand(value.shape[: value.dim() - len(fn.event_shape)]).reshape(num_samples, batch)
    return Decomposition(
        (log_q_zx - log_q_z).mean(),
        (log_q_z - log_q_dims).mean(),
        (log_q_dims - log_p).mean(),
        (log_q_zx - log_p).mean(),
    )


def mutual_information(fn, value, num_data, dims=(0,), estimator="stratified", site="z"):
    """Î(z_K; x) = mean_i [log q(z_{i,K}|x_i) − log q̂(z_{i,K})] for the dimensions K = ``dims``."""
    pairs = pairwise_log_prob(fn, value, site)
    dims = _check_dims(dims, pairs.shape[-1], site)
    log_w = log_importance_weights(pairs.shape[1], num_data, estimator, pairs.dtype, pairs.device)
    anchored = pairs[..., list(dims)].sum(-1)  # [S, B_i, B_j]
    log_q_z = torch.logsumexp(anchored + log_w, dim=-1)
    return (anchored.diagonal(dim1=1, dim2=2) - log_q_z).mean()


def _check_dims(dims, width, site):
    dims = tuple(int(d) for d in dims)
    if not dims or any(not -width <= d < width for d in dims) or len({d % width for d in dims}) != len(dims):
        raise ValueError(f"dims {dims} must be distinct dimensions of site {site!r}, which has {width}")
    return dims


def _site_and_size(model_trace, guide_trace, site, log_weights, name):
    """The guide's node at ``site`` and the data set's size N (the data plate's full size)."""
    auxiliary = auxiliary_sites(guide_trace)
    if auxiliary:
        raise ValueError(
            f"the {name} term needs q(z|x) at site {site!r}, but the guide draws its latents given the auxiliary "
            f"site(s) {', '.join(map(repr, auxiliary))} (a hierarchical guide such as 'hvm'): q(z|x) integrates "
            "them out and has no density per dimension, and a total correlation over λ is meaningless "
            "(use a factorized guide, e.g. --guide diag)"
        )
    for role, trace in (("guide", guide_trace), ("model", model_trace)):
        if site not in trace.nodes or trace.nodes[site]["type"] != "sample":
            raise ValueError(f"the {role} has no sample site {site!r} for the {name} term")
    node = guide_trace.nodes[site]
    frame = _data_frame(node)
    if frame is None:
        raise ValueError(f"guide site {site!r} is not in the 'data' plate: the {name} term needs a local latent")
    others = [(f.name, f.dim) for f in node["cond_indep_stack"] if f.name not in ("data", PARTICLES)]
    if frame.dim != -1 or others:
        raise ValueError(
            f"guide site {site!r} must lie in the data plate at dim -1 and in no other plate but the "
            f"particles' (one q(z|x_n) per data point); found plates "
            f"{[(f.name, f.dim) for f in node['cond_indep_stack']]}"
        )
    if frame.full_size is not None:
        num_data = frame.full_size
    elif log_weights is not None:
        num_data = round(float(log_weights.scale) * frame.size)
    else:
        num_data = frame.size
    return node, int(num_data)


def decomposition(model_trace, guide_trace, site, log_weights=None, estimator="stratified", num_data=None):
    """The :data:`Decomposition` at ``site`` of particle-plated traces (see the module's notes).

    N is the data plate's full size (or ``num_data``).
    """
    node, size = _site_and_size(model_trace, guide_trace, site, log_weights, "total-correlation")
    model_node = model_trace.nodes[site]
    log_p = model_node["fn"].log_prob(model_node["value"])
    return decompose(node["fn"], node["value"], log_p, num_data or size, estimator, site)


def _top_site(model, name):
    shapes = getattr(model, "latent_shapes", None)
    if not shapes:
        raise ValueError(
            f"{type(model).__name__} does not list its latent sites (``latent_shapes``); "
            f"build the {name} term with site=..."
        )
    return next(iter(shapes))


class _AggregatePosteriorTerm(Term):
    """A part of the average KL at one site, from the minibatch's aggregate posterior.

    After each call ``last`` holds the detached :data:`Decomposition`.
    """

    part = None
    label = None

    def __init__(self, site, estimator="stratified"):
        super().__init__()
        _check_estimator(estimator)
        self.site = site
        self.estimator = estimator
        self.last = None

    def extra_repr(self):
        return f"site={self.site!r}, estimator={self.estimator!r}"

    def decomposition(self, model_trace, guide_trace, log_weights=None):
        return decomposition(model_trace, guide_trace, self.site, log_weights, self.estimator)

    def forward(self, model_trace, guide_trace, log_weights):
        parts = self.decomposition(model_trace, guide_trace, log_weights)
        self.last = Decomposition(*(p.detach() for p in parts))
        return getattr(parts, self.part)

    @classmethod
    def from_model(cls, model, site=None, estimator="stratified"):
        return cls(site or _top_site(model, cls.label), estimator)


@TERMS.register("tc", "total correlation KL(q(z) ‖ Π_d q(z_d)) of the top latent; weight w is β-TCVAE with β = 1 + w")
class TotalCorrelation(_AggregatePosteriorTerm):
    """TC(z) = E_q(z)[log q(z) − log Π_d q(z_d)] per data point (β-TCVAE, Chen et al. 2018).

    :param str site: the latent site; :meth:`from_model` takes the model's top one.
    :param str estimator: ``"stratified"`` (default) or ``"mws"``; see the module's notes.
    """

    part, label = "total_correlation", "tc"


@TERMS.register("index_code_mi", "index-code MI I_q[z; n] of the top latent (β-TCVAE's α − 1)")
class IndexCodeMI(_AggregatePosteriorTerm):
    """I_q[z; n] = E[log q(z|x_n) − log q(z)] per data point; weight w scales it by α = 1 + w."""

    part, label = "index_code_mi", "index_code_mi"


@TERMS.register("dimension_kl", "dimension-wise KL Σ_d KL(q(z_d) ‖ p(z_d)) of the top latent (β-TCVAE's γ − 1)")
class DimensionKL(_AggregatePosteriorTerm):
    """E_q(z)[Σ_d log q(z_d) − log p(z)] per data point; weight w scales it by γ = 1 + w."""

    part, label = "dimension_kl", "dimension_kl"


@TERMS.register("anchor", "−Î(z_k; x) of anchor dimensions of the top latent (AnchorVAE); weight λ rewards I(z_k; x)")
class Anchor(Term):
    """−Î(z_K; x) per data point for anchor dimensions K of a site (AnchorVAE, Gao et al. 2019).

    :param str site: the latent site; :meth:`from_model` takes the model's top one.
    :param dims: the anchor dimensions K (default the first).
    :param str estimator: ``"stratified"`` (default) or ``"mws"``; see the module's notes.

    After each call ``last`` holds the detached Î(z_K; x).
    """

    def __init__(self, site, dims=(0,), estimator="stratified"):
        super().__init__()
        _check_estimator(estimator)
        if isinstance(dims, int):
            dims = (dims,)
        dims = tuple(int(d) for d in dims)
        if not dims or len(set(dims)) != len(dims):
            raise ValueError(f"dims must name distinct anchor dimensions, got {dims}")
        self.site = site
        self.dims = dims
        self.estimator = estimator
        self.last = None

    def extra_repr(self):
        return f"site={self.site!r}, dims={self.dims}, estimator={self.estimator!r}"

    def information(self, model_trace, guide_trace, log_weights=None):
        """Î(z_K; x) of the traces, per data point (a 0-dim tensor)."""
        node, size = _site_and_size(model_trace, guide_trace, self.site, log_weights, "anchor")
        return mutual_information(node["fn"], node["value"], size, self.dims, self.estimator, self.site)

    def forward(self, model_trace, guide_trace, log_weights):
        info = self.information(model_trace, guide_trace, log_weights)
        self.last = info.detach()
        return -info

    @classmethod
    def from_model(cls, model, site=None, dims=(0,), estimator="stratified"):
        site = site or _top_site(model, "anchor")
        shape = getattr(model, "latent_shapes", {}).get(site)
        if shape is not None:
            _check_dims((dims,) if isinstance(dims, int) else dims, torch.Size(shape).numel(), site)
        return cls(site, dims, estimator)
