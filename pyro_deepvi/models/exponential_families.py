"""Deep exponential families (Ranganath, Tang, Charlin & Blei, 2015).

A DEF over rows of counts x_n (documents over V words), with L layers of
K_1, ..., K_L units (``layer_sizes``, bottom to top), in the seed's notation::

    W_l ~ p(W_l)                                   l = 0, ..., L-1   (global, entrywise)
    z_{L,k} ~ EXPFAM_L(η)                          top layer, fixed hyperparameter η
    z_{l,k} ~ EXPFAM_l(g_l(z_{l+1}ᵀ w_{l,k}))      l = L-1, ..., 1
    x_i ~ Poisson(z_1ᵀ w_{0,i})                    i = 1, ..., V,    W_0 ~ Gamma(α_w, β_w)

Each layer's family (``families``, bottom to top) fixes its link and its weights' prior:

- ``"gamma"`` (sparse gamma): z_{l,k} ~ Gamma(α_l, α_l / z_{l+1}ᵀ w_{l,k}), so that
  E z_{l,k} = z_{l+1}ᵀ w_{l,k}, with a fixed shape α_l < 1 (``gamma_shape``);
  W_l ~ Gamma(α_w, β_w) (``weight_gamma_shape``, ``weight_gamma_rate``). Top layer:
  Gamma(α_L, ``top_gamma_rate``).
- ``"bernoulli"`` (sigmoid belief network): z_{l,k} ~ Bernoulli(σ(z_{l+1}ᵀ w_{l,k}));
  W_l ~ N(0, σ_w²) (``weight_normal_scale``). Top layer: Bernoulli(``top_bernoulli_prob``).
- ``"poisson"``: with ``poisson_link="identity"`` (the default, the paper's Poisson DEF) the
  natural parameter is η = log(z_{l+1}ᵀ w_{l,k}), so z_{l,k} ~ Poisson(z_{l+1}ᵀ w_{l,k}) and
  E z_{l,k} = z_{l+1}ᵀ w_{l,k}, with W_l ~ Gamma(α_w, β_w) to keep the rate positive; with
  ``poisson_link="log"``, η = z_{l+1}ᵀ w_{l,k}: z_{l,k} ~ Poisson(exp(z_{l+1}ᵀ w_{l,k})) and
  W_l ~ N(0, σ_w²). Top layer: Poisson(``top_poisson_rate``).

The defaults are the paper's sparse gamma DEF for text: α_l = 0.1, z_L ~ Gamma(0.1, 0.1),
W ~ Gamma(0.1, 0.3). A gamma mean or Poisson rate of exactly zero (all parents of a unit
off) is floored at the smallest positive float, which keeps every log-density finite.

The double DEF (:class:`DoubleDEF`) models pairwise counts x_ij (rows i, e.g. users, in
the data plate; columns j, e.g. items) with a DEF over rows, z^c (local), and one over
columns, z^r (global), whose bottom layers meet in the rate::

    x_ij ~ Poisson(z^cᵀ_{i,1} z^r_{j,1})

that is, W_0 of a DEF becomes the bottom layer of a second DEF.

Layout. No latent coordinate lives in an event dimension: every one sits in plates, so
``TraceGraph_ELBO``'s Rao-Blackwellization (each non-reparameterized site's score times
the costs that depend on it, summed down to that site's plates) scores each z_{n,l,k}
and each weight against its Markov blanket, as in the paper's black-box estimator. The
data plate is at dim -1::

    site     value shape       plates (dim -2, dim -1)
    W0       [V, K_1]          columns, W0_inputs          (DEF only)
    W{l}     [K_l, K_{l+1}]    z{l}_units, W{l}_inputs     (l = 1, ..., L-1)
    zr{l}    [J, K_l]          columns, zr{l}_units        (double DEF, l = 1, ..., M)
    Wr{l}    [K_{l+1}, K_l]    Wr{l}_inputs, zr{l}_units   (double DEF, l = 1, ..., M-1)
    z{l}     [K_l, B]          z{l}_units, data            (local: in ``data_plate``)
    x        [V, B]            columns, data               (observed: the batch's xᵀ)

The global sites are sampled first (W0, or the column DEF top-down: zr{M}, Wr{M-1}, zr{M-1},
..., zr1; then W{L-1}, ..., W1), then z{L}, ..., z1, then x. ``latent_sites`` lists them in
that order with each one's family, plates and locality; ``latent_shapes`` gives the local
ones' units per data point, (K_l,), although a batch's value is [K_l, B].

Evaluation is the paper's document completion (:mod:`pyro_deepvi.evaluation.perplexity`):
the guide's factors are per data point (``amortized = False``), so held-out rows get
local factors fitted to half of their counts with the global latents fixed.
"""

import contextlib
from collections import OrderedDict
from typing import NamedTuple

import pyro
import pyro.distributions as dist
import torch
from pyro.nn import PyroModule, pyro_method

from ..evaluation.perplexity import COMPLETION_LR, COMPLETION_STEPS, document_completion
from ..registry import MODELS
from .base import check_batch, data_plate

FAMILIES = ("gamma", "bernoulli", "poisson")
POISSON_LINKS = ("identity", "log")


class LatentSite(NamedTuple):
    """A latent site's mean-field family, its plates ``((name, size, dim), ...)`` besides the
    data plate, and whether it is local (inside the data plate, at dim -1)."""

    family: str
    plates: tuple
    local: bool

    @contextlib.contextmanager
    def plate_stack(self, plates):
        """Enter the site's plates, and the data plate if it is local, from ``plates``
        (:func:`make_plates`)."""
        with contextlib.ExitStack() as stack:
            for name, _, _ in self.plates:
                stack.enter_context(plates[name])
            if self.local:
                stack.enter_context(plates["data"])
            yield


def make_plates(latent_sites, num_data, x, index=None):
    """{name: plate} for every plate of ``latent_sites`` and the data plate of the batch
    ``x`` (rows ``index``): Pyro records a plate where it is made, so a run makes each
    one once and enters it at every site."""
    plates = {"data": data_plate(num_data, x, index)}
    for site in latent_sites.values():
        for name, size, dim in site.plates:
            if name not in plates:
                plates[name] = pyro.plate(name, size, dim=dim)
    return plates


def _positive(value):
    """``value`` floored at the smallest positive float, for rates that may be exactly zero."""
    return value.clamp(min=torch.finfo(value.dtype).tiny)


def _check_layers(what, sizes, families):
    sizes = tuple(sizes)
    if not sizes or any(isinstance(k, bool) or not isinstance(k, int) or k < 1 for k in sizes):
        raise ValueError(f"{what} must be a non-empty sequence of positive integers, e.g. (100, 30, 15), got {sizes!r}")
    families = ("gamma",) * len(sizes) if families is None else tuple(families)
    if len(families) != len(sizes):
        raise ValueError(f"{what} has {len(sizes)} layers but families has {len(families)}: {families!r}")
    unknown = [f for f in families if f not in FAMILIES]
    if unknown:
        raise ValueError(f"unknown layer family {unknown[0]!r}; choose from {', '.join(FAMILIES)}")
    return sizes, families


class _DeepExponentialFamilyBase(PyroModule):
    """The row DEF (local layers z{L}, ..., z1 and their weights W{L-1}, ..., W1) shared by
    :class:`DeepExponentialFamily` and :class:`DoubleDEF`; subclasses add what sets the
    rate of x from z1."""

    support = "count"
    max_plate_nesting = 2
    default_guide = "local"
    amortized = False

    def __init__(
        self,
        num_columns,
        num_data,
        layer_sizes,
        families,
        gamma_shape=0.1,
        top_gamma_rate=0.1,
        top_bernoulli_prob=0.1,
        top_poisson_rate=1.0,
        weight_gamma_shape=0.1,
        weight_gamma_rate=0.3,
        weight_normal_scale=1.0,
        poisson_link="identity",
        held_out=0.5,
        completion_steps=COMPLETION_STEPS,
        completion_lr=COMPLETION_LR,
        completion_particles=1,
    ):
        super().__init__()
        self.layer_sizes, self.families = _check_layers("layer_sizes", layer_sizes, families)
        if poisson_link not in POISSON_LINKS:
            raise ValueError(
                f"poisson_link must be 'identity' (rate z_{{l+1}}ᵀ w, gamma weights: the paper's Poisson DEF) "
                f"or 'log' (rate exp(z_{{l+1}}ᵀ w), normal weights), got {poisson_link!r}"
            )
        self.poisson_link = poisson_link
        positive = dict(
            gamma_shape=gamma_shape,
            top_gamma_rate=top_gamma_rate,
            top_poisson_rate=top_poisson_rate,
            weight_gamma_shape=weight_gamma_shape,
            weight_gamma_rate=weight_gamma_rate,
            weight_normal_scale=weight_normal_scale,
        )
        for name, value in positive.items():
            if not value > 0:
                raise ValueError(f"{name} must be positive, got {value!r}")
        if not 0 < top_bernoulli_prob < 1:
            raise ValueError(f"top_bernoulli_prob must be in (0, 1), got {top_bernoulli_prob!r}")
        self.hyperparameters = dict(positive, top_bernoulli_prob=top_bernoulli_prob)
        if not 0 < held_out < 1:
            raise ValueError(f"held_out is the fraction of a document's tokens to score, in (0, 1), got {held_out!r}")
        if isinstance(completion_steps, bool) or not isinstance(completion_steps, int) or completion_steps < 1:
            raise ValueError(f"completion_steps must be a positive integer, got {completion_steps!r}")
        if isinstance(completion_particles, bool) or not isinstance(completion_particles, int) or completion_particles < 1:
            raise ValueError(f"completion_particles must be a positive integer, got {completion_particles!r}")
        if not completion_lr > 0:
            raise ValueError(f"completion_lr must be positive, got {completion_lr!r}")
        self.held_out, self.completion_steps = held_out, completion_steps
        self.completion_lr, self.completion_particles = completion_lr, completion_particles
        self.data_shape = torch.Size([int(num_columns)])
        self.num_data = int(num_data)
        self.latent_support = "positive" if set(self.families) == {"gamma"} else "mixed"
        self.latent_sites = OrderedDict()

    def _add_row_sites(self):
        """Describe W{L-1}, ..., W1 (global) then z{L}, ..., z1 (local), in sampling order."""
        sizes, L = self.layer_sizes, len(self.layer_sizes)
        for l in range(L - 1, 0, -1):
            plates = ((f"z{l}_units", sizes[l - 1], -2), (f"W{l}_inputs", sizes[l], -1))
            self.latent_sites[f"W{l}"] = LatentSite(self.weight_family(self.families[l - 1]), plates, False)
        for l in range(L, 0, -1):
            self.latent_sites[f"z{l}"] = LatentSite(self.families[l - 1], ((f"z{l}_units", sizes[l - 1], -2),), True)
        self.latent_shapes = OrderedDict(
            (name, torch.Size([site.plates[0][1]])) for name, site in self.latent_sites.items() if site.local
        )

    def weight_family(self, family):
        """The prior family of the weights into a ``family`` layer: gamma weights keep a gamma
        mean or an identity-link Poisson rate positive; logits and log-rates take normal ones."""
        positive = family == "gamma" or (family == "poisson" and self.poisson_link == "identity")
        return "gamma" if positive else "normal"

    def _sample(self, name, fn, plates):
        with self.latent_sites[name].plate_stack(plates):
            return pyro.sample(name, fn)

    def _hyper(self, name, like):
        return like.new_tensor(self.hyperparameters[name])

    def weight_prior(self, family, like):
        """p(W) entrywise: Gamma(α_w, β_w) or N(0, σ_w²)."""
        if family == "gamma":
            return dist.Gamma(self._hyper("weight_gamma_shape", like), self._hyper("weight_gamma_rate", like))
        return dist.Normal(like.new_zeros(()), self._hyper("weight_normal_scale", like))

    def top_prior(self, family, like):
        """EXPFAM_L(η): the top layer's fixed prior."""
        if family == "gamma":
            return dist.Gamma(self._hyper("gamma_shape", like), self._hyper("top_gamma_rate", like))
        if family == "bernoulli":
            return dist.Bernoulli(self._hyper("top_bernoulli_prob", like))
        return dist.Poisson(self._hyper("top_poisson_rate", like))

    def layer(self, family, predictor):
        """EXPFAM_l(g_l(a)) given the linear predictor a = z_{l+1}ᵀ w_{l,k}."""
        if family == "gamma":
            shape = self._hyper("gamma_shape", predictor)
            return dist.Gamma(shape, shape / _positive(predictor))
        if family == "bernoulli":
            return dist.Bernoulli(logits=predictor)
        return dist.Poisson(_positive(predictor) if self.poisson_link == "identity" else predictor.exp())

    def _sample_rows(self, x, plates):
        """W{L-1}, ..., W1, then z{L}, ..., z1 top-down; returns z1, [K_1, B]."""
        L = len(self.layer_sizes)
        weights = {}
        for l in range(L - 1, 0, -1):
            weights[l] = self._sample(f"W{l}", self.weight_prior(self.latent_sites[f"W{l}"].family, x), plates)
        z = self._sample(f"z{L}", self.top_prior(self.families[-1], x), plates)
        for l in range(L - 1, 0, -1):
            z = self._sample(f"z{l}", self.layer(self.families[l - 1], weights[l] @ z), plates)
        return z

    def _plates(self, x, index):
        return make_plates(self.latent_sites, self.num_data, x, index)

    def _observe(self, column_factors, z1, x, plates):
        """x_{n,i} ~ Poisson(z_{n,1}ᵀ f_i) with f_i the i-th row of ``column_factors`` [V, K_1]
        (``is_sparse``: the log-factorials of zero counts are skipped)."""
        with plates["columns"], plates["data"]:
            pyro.sample("x", dist.Poisson(_positive(column_factors @ z1), is_sparse=True), obs=x.T)

    def column_factors(self, values):
        """The [V, K_1] matrix whose rows meet z1 in the rate of x, from the global ``values``."""
        raise NotImplementedError

    def word_probabilities(self, global_values, local_means):
        """p(i | n) = λ_{n,i} / Σ_j λ_{n,j}, λ_n = F E_q[z_{n,1}]: the rates of row n normalized,
        with F = :meth:`column_factors` of ``global_values`` and ``local_means["z1"]`` [N, K_1]."""
        rate = _positive(local_means["z1"] @ self.column_factors(global_values).T)
        return rate / rate.sum(-1, keepdim=True)

    def evaluate(self, guide, data, seed=0):
        """Document-completion perplexity of ``data``'s rows, ``held_out`` of each row's tokens
        scored after ``completion_steps`` Adam steps of size ``completion_lr``, each from
        ``completion_particles`` draws, fitting its local factors to the rest (the model's
        ``eval.json`` record; see :func:`~pyro_deepvi.evaluation.perplexity.document_completion`)."""
        return document_completion(
            self, guide, data.x, self.held_out, self.completion_steps, self.completion_lr, seed=seed,
            particles=self.completion_particles,
        )


@MODELS.register(
    "def", "deep exponential family (Ranganath et al. 2015): sparse gamma, sigmoid or Poisson layers over counts"
)
class DeepExponentialFamily(_DeepExponentialFamilyBase):
    """A deep exponential family over rows of counts.

    :param int num_columns: V, the number of count columns (words).
    :param int num_data: N, the number of rows (documents) of the training set.
    :param layer_sizes: K_1, ..., K_L, bottom to top.
    :param families: each layer's family, bottom to top: ``"gamma"``, ``"bernoulli"``
        or ``"poisson"`` (all ``"gamma"`` when ``None``).
    :param float gamma_shape: α_l of gamma layers (and of a gamma top layer).
    :param float top_gamma_rate: the rate of a gamma top layer.
    :param float top_bernoulli_prob: the probability of a Bernoulli top layer.
    :param float top_poisson_rate: the rate of a Poisson top layer.
    :param float weight_gamma_shape: α_w of gamma weights (W0 and gamma layers' W_l).
    :param float weight_gamma_rate: β_w of gamma weights.
    :param float weight_normal_scale: σ_w of normal weights (Bernoulli and log-link Poisson layers).
    :param str poisson_link: the link of Poisson layers below the top: ``"identity"`` (rate
        z_{l+1}ᵀ w_{l,k}, gamma weights; the paper's Poisson DEF) or ``"log"`` (rate
        exp(z_{l+1}ᵀ w_{l,k}), normal weights).
    :param float held_out: the fraction of each held-out document's tokens that
        :meth:`evaluate` scores.
    :param int completion_steps: Adam steps of :meth:`evaluate`'s fit of a held-out
        document's local factors.
    :param float completion_lr: their step size.
    :param int completion_particles: draws per step (score-function factors, Poisson or
        Bernoulli, need several: with one, a Poisson DEF 100-30's completion perplexity on
        reuters was 2,600–2,740, with four 2,040).
    """

    #: `pyro-deepvi train def`: the sparse gamma DEF 100-30-15 on the Reuters counts, full-batch Adam at 0.05
    #: (the perplexity table's settings, with 500 steps rather than its 1,500).
    train_defaults = {"data": "reuters", "latent_dims": (100, 30, 15), "batch_size": 315, "lr": 0.05, "epochs": 500, "eval_every": 100}

    def __init__(self, num_columns, num_data, layer_sizes=(100, 30, 15), families=None, **hyperparameters):
        super().__init__(num_columns, num_data, layer_sizes, families, **hyperparameters)
        plates = (("columns", self.data_shape[0], -2), ("W0_inputs", self.layer_sizes[0], -1))
        self.latent_sites["W0"] = LatentSite("gamma", plates, False)
        self._add_row_sites()

    @pyro_method  # a plain Pyro SVI loop over `model.model` then sees (and trains) the module's parameters
    def model(self, x, y=None, index=None):
        check_batch(x, self.data_shape, "def")
        plates = self._plates(x, index)
        column_factors = self._sample("W0", self.weight_prior("gamma", x), plates)
        self._observe(column_factors, self._sample_rows(x, plates), x, plates)

    def column_factors(self, values):
        return values["W0"]

    @classmethod
    def from_data(cls, data, latent_dims=(100, 30, 15), hidden_dims=None, **options):
        """A DEF sized for ``data``: ``latent_dims`` are the layer sizes; ``hidden_dims`` is
        unused (the links are the exponential families' own, with no networks)."""
        return cls(data.event_shape[0], len(data), latent_dims, **options)


@MODELS.register(
    "double_def", "double DEF (Ranganath et al. 2015): a DEF over rows and one over columns of a count matrix"
)
class DoubleDEF(_DeepExponentialFamilyBase):
    """A double DEF for pairwise counts x_ij ~ Poisson(z^cᵀ_{i,1} z^r_{j,1}).

    :param int num_columns: J, the number of columns.
    :param int num_data: N, the number of rows of the training set.
    :param layer_sizes: the row DEF's K_1, ..., K_L (sites z1, ..., W1, ...).
    :param families: the row DEF's families, bottom to top.
    :param column_layer_sizes: the column DEF's widths (sites zr1, ..., Wr1, ...); their
        bottom width must equal ``layer_sizes[0]``. Defaults to ``layer_sizes``.
    :param column_families: the column DEF's families (all ``"gamma"`` when ``None``).

    Other keywords are the hyperparameters of :class:`DeepExponentialFamily`, shared by both DEFs.
    """

    #: `pyro-deepvi train double_def`: rows and columns of the Reuters counts, full-batch Adam at 0.05.
    train_defaults = {"data": "reuters", "latent_dims": (20, 10), "batch_size": 315, "lr": 0.05, "epochs": 500, "eval_every": 100}

    def __init__(
        self, num_columns, num_data, layer_sizes=(20, 10), families=None, column_layer_sizes=None,
        column_families=None, **hyperparameters
    ):
        super().__init__(num_columns, num_data, layer_sizes, families, **hyperparameters)
        column_layer_sizes = self.layer_sizes if column_layer_sizes is None else column_layer_sizes
        self.column_layer_sizes, self.column_families = _check_layers(
            "column_layer_sizes", column_layer_sizes, column_families
        )
        if self.column_layer_sizes[0] != self.layer_sizes[0]:
            raise ValueError(
                f"the bottom layers meet in the rate, so column_layer_sizes[0] must equal layer_sizes[0] "
                f"({self.layer_sizes[0]}), got {self.column_layer_sizes[0]}"
            )
        if set(self.column_families) != {"gamma"}:
            self.latent_support = "mixed"
        sizes, M = self.column_layer_sizes, len(self.column_layer_sizes)
        for l in range(M, 0, -1):
            if l < M:
                plates = ((f"Wr{l}_inputs", sizes[l], -2), (f"zr{l}_units", sizes[l - 1], -1))
                self.latent_sites[f"Wr{l}"] = LatentSite(self.weight_family(self.column_families[l - 1]), plates, False)
            plates = (("columns", self.data_shape[0], -2), (f"zr{l}_units", sizes[l - 1], -1))
            self.latent_sites[f"zr{l}"] = LatentSite(self.column_families[l - 1], plates, False)
        self._add_row_sites()

    def _sample_columns(self, x, plates):
        """zr{M}, Wr{M-1}, zr{M-1}, ..., zr1 (the column DEF, top-down); returns zr1, [J, K_1]."""
        M = len(self.column_layer_sizes)
        zr = self._sample(f"zr{M}", self.top_prior(self.column_families[-1], x), plates)
        for l in range(M - 1, 0, -1):
            weights = self._sample(f"Wr{l}", self.weight_prior(self.latent_sites[f"Wr{l}"].family, x), plates)
            zr = self._sample(f"zr{l}", self.layer(self.column_families[l - 1], zr @ weights), plates)
        return zr

    @pyro_method  # a plain Pyro SVI loop over `model.model` then sees (and trains) the module's parameters
    def model(self, x, y=None, index=None):
        check_batch(x, self.data_shape, "double_def")
        plates = self._plates(x, index)
        column_factors = self._sample_columns(x, plates)
        self._observe(column_factors, self._sample_rows(x, plates), x, plates)

    def column_factors(self, values):
        return values["zr1"]

    @classmethod
    def from_data(cls, data, latent_dims=(20, 10), hidden_dims=None, **options):
        """A double DEF sized for ``data``: ``latent_dims`` are the row DEF's layer sizes
        (``column_layer_sizes`` defaults to them); ``hidden_dims`` is unused."""
        return cls(data.event_shape[0], len(data), latent_dims, **options)
