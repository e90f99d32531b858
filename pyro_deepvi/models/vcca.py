"""Variational canonical correlation analysis (Wang, Yan, Lee & Livescu, 2016).

Two views x and y of the same data points share a latent source z. In the
seed's notation, VCCA is::

    p(x, y, z) = p(z) p(x|z) p(y|z),        z ~ N(0, I)

    log p(x, y) ≥ E_{q(z|x)}[log p(x|z) + log p(y|z)] − KL(q(z|x) ‖ p(z))

with the paper's guide q(z|x) from the first view alone, so that at test time
z is inferred without the second view (any guide whose site ``z`` matches also
fits, the seed's q(z|x, y) included). VCCA-private adds a private latent per
view, for what one view has and the other lacks (view 1's rotation, view 2's
noise)::

    p(x, y, z, h_x, h_y) = p(z) p(h_x) p(h_y) p(x|z, h_x) p(y|z, h_y)

    log p(x, y) ≥ E_{q(z|x) q(h_x|x)}[log p(x|z, h_x)] + E_{q(z|x) q(h_y|y)}[log p(y|z, h_y)]
                  − KL(q(z|x) ‖ p(z)) − KL(q(h_x|x) ‖ p(h_x)) − KL(q(h_y|y) ‖ p(h_y))

Every prior is N(0, I); each likelihood is an isotropic Gaussian with a learned
σ per view (``likelihood="gaussian"``), a continuous Bernoulli (grey values) or
a Bernoulli (binary views), its mean an MLP of [z, h]. With linear decoders the model is linear
Gaussian and :meth:`VCCA.exact_log_likelihood` gives log p(x, y) exactly.
:class:`~pyro_deepvi.guides.multiview.MultiViewGuide` (``"multiview"``, the
default) infers each site from the view in ``latent_sources``, with the
paper's dropout on its encoders as an option (``dropout``).

Views as data: the second view y is the batch keyword ``x2``
(``Dataset.views``, see ``two_view_mnist``); ``y`` stays the class label, which
the model does not score. The paper's measure of z is the error of a linear
classifier of the class from E[z | x] (:meth:`VCCA.evaluate`).

Sites: ``z``; ``hx``, ``hx2`` (the seed's h_x, h_y; ``vcca_private`` only);
``x``, ``x2`` (observed).
"""

from collections import OrderedDict

import pyro
import pyro.distributions as dist
import torch
from pyro import poutine
from pyro.poutine.util import prune_subsample_sites
from pyro.nn import PyroModule, pyro_method
from torch import nn

from ..data import load
from ..evaluation.active_units import posterior_means_by_site
from ..evaluation.linear_probe import linear_probe_accuracy
from ..nn import MLP, activation_class
from ..registry import MODELS
from .base import check_batch, data_plate, flat_dim, make_likelihood


@MODELS.register("vcca", "variational CCA (Wang et al. 2016): shared z from view 1 decodes both views")
class VCCA(PyroModule):
    """VCCA: z ~ N(0, I), x ~ p(x | z), x2 ~ p(x2 | z); with ``private_dim`` > 0, VCCA-private.

    :param data_shape: event shape of one view-1 point x.
    :param view_shape: event shape of one view-2 point x2.
    :param int num_data: size N of the training set (the data plate's size).
    :param latent_dims: ``(K,)``, the width of the shared z.
    :param hidden_dims: hidden widths of each view's decoder (empty: linear).
    :param int private_dim: width of each private latent h_x, h_y (0: none, plain VCCA).
    :param str likelihood: for both views: ``"gaussian"`` (the default, any values),
        ``"continuous_bernoulli"`` (grey values in [0, 1]) or ``"bernoulli"`` (binary views).
    :param float dropout: dropout probability on the guide's encoders (the paper's option).
    :param str activation: the decoders' nonlinearity, a key of :data:`~pyro_deepvi.nn.ACTIVATIONS`
        (the paper's ``"relu"`` by default); the multiview guide's encoders use the same unless given their own.
    :param float obs_scale: the initial σ of each Gaussian view. σ is learned, but Adam moves
        log σ by about the learning rate a step: started at 1, far above the pixels' spread,
        it leaves the reconstructions so little weight that z stays nearly unused for epochs.
    """

    max_plate_nesting = 1
    default_guide = "multiview"
    # The paper's networks: three ReLU layers (``activation``) of 1024 units in every encoder and decoder, z of 30,
    # dropout 0.2 (private latents of 30 in VCCA-private); 60 epochs on the 3,500 pairs (benchmarks/README.md, VCCA).
    train_defaults = {
        "data": "two_view_mnist",
        "epochs": 60,
        "latent_dims": (30,),
        "hidden_dims": (1024, 1024, 1024),
        "model_args": {"dropout": 0.2},
        "test_particles": 100,
    }

    def __init__(
        self,
        data_shape,
        view_shape,
        num_data,
        latent_dims=(20,),
        hidden_dims=(256, 256),
        private_dim=0,
        likelihood="gaussian",
        dropout=0.0,
        obs_scale=0.1,
        activation="relu",
    ):
        super().__init__()
        latent_dims = tuple(int(d) for d in latent_dims)
        if len(latent_dims) != 1:
            raise ValueError(f"{self._name()} has one shared latent z: latent_dims must be (K,), got {latent_dims}")
        if isinstance(private_dim, bool) or not isinstance(private_dim, int) or private_dim < 0:
            raise ValueError(f"private_dim must be a non-negative integer, got {private_dim!r}")
        if not obs_scale > 0:
            raise ValueError(f"obs_scale is a standard deviation and must be positive, got {obs_scale!r}")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be a probability in [0, 1), got {dropout!r}")
        act = activation_class(activation, "decoder")
        self.data_shape = torch.Size(data_shape)
        self.view_shape = torch.Size(view_shape)
        self.num_data = int(num_data)
        self.latent_dims = latent_dims
        self.private_dim = private_dim
        self.dropout = float(dropout)
        self.encoder_activation = activation  # the multiview guide's encoders use the same unless given their own
        self.likelihood = make_likelihood(likelihood)
        self.support = self.likelihood.support
        self.view_shapes = {"x": self.data_shape, "x2": self.view_shape}
        self.latent_shapes = OrderedDict(z=torch.Size(latent_dims))
        self.latent_sources = {"z": "x"}  # the view each site is inferred from: q(z|x) q(h_x|x) q(h_y|y)
        if private_dim:
            self.latent_shapes.update(hx=torch.Size([private_dim]), hx2=torch.Size([private_dim]))
            self.latent_sources.update(hx="x", hx2="x2")
        code_dim = latent_dims[0] + private_dim
        self.decoder = MLP(code_dim, hidden_dims, flat_dim(self.data_shape), activation=act)
        self.decoder2 = MLP(code_dim, hidden_dims, flat_dim(self.view_shape), activation=act)
        # log σ of each view's Gaussian likelihood; a Bernoulli one has no extra parameter.
        gaussian = self.support == "real"
        log_scale = torch.tensor(float(obs_scale)).log()
        self.obs_log_scale = nn.Parameter(log_scale.clone()) if gaussian else None
        self.obs_log_scale2 = nn.Parameter(log_scale.clone()) if gaussian else None

    def _name(self):
        return "vcca_private" if isinstance(self, VCCAPrivate) else "vcca"

    def _standard_normal(self, like, dim):
        return dist.Normal(like.new_zeros(dim), like.new_ones(dim)).to_event(1)

    @pyro_method
    def model(self, x, x2=None, y=None, index=None):
        check_batch(x, self.data_shape, self._name())
        if x2 is None:
            raise ValueError(f"{self._name()} models two views and needs the second view x2 (a two-view data set)")
        check_batch(x2, self.view_shape, f"{self._name()} (view x2)")
        if x2.shape[0] != x.shape[0]:
            raise ValueError(f"the views x and x2 must have as many rows, got {x.shape[0]} and {x2.shape[0]}")
        x, x2 = x.reshape(x.shape[0], -1), x2.reshape(x2.shape[0], -1)
        with data_plate(self.num_data, x, index):
            z = pyro.sample("z", self._standard_normal(x, self.latent_dims[0]))
            code, code2 = z, z
            if self.private_dim:
                hx = pyro.sample("hx", self._standard_normal(x, self.private_dim))
                hx2 = pyro.sample("hx2", self._standard_normal(x, self.private_dim))
                code, code2 = torch.cat([z, hx], -1), torch.cat([z, hx2], -1)
            pyro.sample("x", self.likelihood(self.decoder(code), self.obs_log_scale), obs=x)
            pyro.sample("x2", self.likelihood(self.decoder2(code2), self.obs_log_scale2), obs=x2)

    def decode(self, z, h=None, view="x"):
        """E[view | z, h]: the mean of view ``"x"`` or ``"x2"`` (h, the view's private latent, only for VCCA-private)."""
        if view not in ("x", "x2"):
            raise ValueError(f"view must be 'x' or 'x2', got {view!r}")
        if self.private_dim:
            if h is None:
                raise ValueError("vcca_private decodes from z and the view's private latent h")
            z = torch.cat([z, h], -1)
        decoder, log_scale = (self.decoder, self.obs_log_scale) if view == "x" else (self.decoder2, self.obs_log_scale2)
        return self.likelihood(decoder(z), log_scale).mean

    def encode(self, guide, x, x2):
        """Posterior means E_q[site | views] of every latent site of ``guide``: ``{site: [B, dim]}``."""
        trace = prune_subsample_sites(poutine.trace(guide).get_trace(x=x, x2=x2))
        return {
            name: site["fn"].mean
            for name, site in trace.nodes.items()
            if site["type"] == "sample" and not site["is_observed"]
        }

    def view2_from_view1(self, guide, x):
        """E[x2 | z, h_y = 0] with z = E_q[z | x]: the second view predicted from the first alone (h_y at its prior mean)."""
        z = self.encode(guide, x, x.new_zeros((x.shape[0],) + self.view_shape))["z"]
        h = z.new_zeros(z.shape[:-1] + (self.private_dim,)) if self.private_dim else None
        return self.decode(z, h, view="x2")

    def swap_private(self, guide, x_shared, x_private):
        """E[x | z, h_x] with z = E_q[z | x_shared[i]] and h_x = E_q[h_x | x_private[j]]: ``[i, j, D]`` (VCCA-private).

        What z keeps (the class) stays along a row; what h_x keeps (view 1's style, the rotation) along a column.
        """
        if not self.private_dim:
            raise ValueError("swap_private needs the private latent h_x of vcca_private")
        blank = x_shared.new_zeros((1,) + self.view_shape)
        z = self.encode(guide, x_shared, blank.expand((len(x_shared),) + self.view_shape))["z"]
        h = self.encode(guide, x_private, blank.expand((len(x_private),) + self.view_shape))["hx"]
        return self.decode(z[:, None].expand(-1, len(h), -1), h[None].expand(len(z), -1, -1))

    def linear_probe_error(self, guide, train_data, test_data, seed=0, valid_data=None):
        """Test error of a linear classifier of the class fit to E[z | x] of ``train_data`` (the paper's metric).

        With ``valid_data`` the classifier's L2 penalty is chosen on it, as the paper tunes its SVM's C.
        """
        splits = [d for d in (train_data, valid_data, test_data) if d is not None]
        for data in splits:
            if data.y is None or data.num_classes is None:
                raise ValueError(f"{data.name}/{data.split} has no class labels: the linear-probe error needs them")
        train_z, *valid_z, test_z = [posterior_means_by_site(guide, data, seed=seed)["z"] for data in splits]
        valid = (valid_z[0], valid_data.y) if valid_data is not None else None
        return 1.0 - linear_probe_accuracy(train_z, train_data.y, test_z, test_data.y, test_data.num_classes, valid=valid)

    def evaluate(self, guide, test_data, seed=0):
        """``test_error_z``: the linear-probe error of E[z | x], the classifier fit on the training split, its penalty on the validation one."""
        train_data, valid_data = (load(test_data.name, split).to(test_data.x.device) for split in ("train", "valid"))
        with torch.no_grad():
            return {"test_error_z": self.linear_probe_error(guide, train_data, test_data, seed, valid_data)}

    def _linear_gaussian(self):
        """(Λ, b, ψ) of the linear case: [x; x2] = Λ [z; h_x; h_y] + b + ε, ε ~ N(0, diag ψ)."""
        if len(self.decoder) != 1 or self.support != "real":
            raise ValueError("the exact likelihood needs linear decoders (hidden_dims=()) and a Gaussian likelihood")
        (A, b), (A2, b2) = [(d[0].weight, d[0].bias) for d in (self.decoder, self.decoder2)]
        K, P = self.latent_dims[0], self.private_dim
        private1 = A.new_zeros(A.shape[0], 2 * P)
        private1[:, :P] = A[:, K:]
        private2 = A2.new_zeros(A2.shape[0], 2 * P)
        private2[:, P:] = A2[:, K:]
        loadings = torch.cat([torch.cat([A[:, :K], private1], 1), torch.cat([A2[:, :K], private2], 1)], 0)
        psi = torch.cat([self.obs_log_scale.exp().pow(2).expand(len(b)), self.obs_log_scale2.exp().pow(2).expand(len(b2))])
        return loadings, torch.cat([b, b2]), psi

    def exact_log_likelihood(self, x, x2):
        """log p(x, x2) = log N([x; x2]; b, ΛΛᵀ + diag ψ) of the linear-Gaussian case."""
        loadings, b, psi = self._linear_gaussian()
        cov = loadings @ loadings.T + torch.diag(psi)
        return dist.MultivariateNormal(b, covariance_matrix=cov).log_prob(self._stack(x, x2))

    def exact_posterior(self, x, x2):
        """p([z; h_x; h_y] | x, x2) = N(M⁻¹Λᵀψ⁻¹(v − b), M⁻¹), M = I + Λᵀ diag(ψ)⁻¹ Λ: the linear case's posterior."""
        loadings, b, psi = self._linear_gaussian()
        scaled = loadings.T / psi
        cov = torch.linalg.inv(torch.eye(loadings.shape[1], dtype=b.dtype, device=b.device) + scaled @ loadings)
        loc = (self._stack(x, x2) - b) @ (cov @ scaled).T
        return dist.MultivariateNormal(loc, covariance_matrix=cov)

    @staticmethod
    def _stack(x, x2):
        return torch.cat([x.reshape(x.shape[0], -1), x2.reshape(x2.shape[0], -1)], -1)

    @classmethod
    def from_data(cls, data, latent_dims=(20,), hidden_dims=(256, 256), **options):
        if "x2" not in data.views:
            raise ValueError(
                f"{cls.__name__.lower()} needs a two-view data set whose second view is named x2 "
                f"(e.g. two_view_mnist); {data.name} has views {sorted(data.views) or 'none'} besides x"
            )
        return cls(data.event_shape, data.views["x2"].shape[1:], len(data), latent_dims, hidden_dims, **options)


@MODELS.register("vcca_private", "VCCA-private (Wang et al. 2016): shared z plus a private latent per view")
class VCCAPrivate(VCCA):
    """VCCA-private: :class:`VCCA` with private latents h_x, h_y of width ``private_dim`` (default 20)."""

    train_defaults = {**VCCA.train_defaults, "model_args": {**VCCA.train_defaults["model_args"], "private_dim": 30}}

    def __init__(self, data_shape, view_shape, num_data, latent_dims=(20,), hidden_dims=(256, 256), private_dim=20, **options):
        if isinstance(private_dim, int) and private_dim < 1:
            raise ValueError(f"vcca_private needs private latents: private_dim must be positive, got {private_dim}")
        super().__init__(data_shape, view_shape, num_data, latent_dims, hidden_dims, private_dim, **options)


def raw_pixel_error(train, test, valid=None):
    """Test error of the linear classifier on the raw first view ``x`` (the paper's "baseline" row), its penalty chosen on ``valid``."""
    valid = (valid.x, valid.y) if valid is not None else None
    return 1.0 - linear_probe_accuracy(train.x, train.y, test.x, test.y, test.num_classes, valid=valid)


def linear_cca(x, y, dim, reg=0.0):
    """Linear CCA of paired views ``x`` [N, Dx] and ``y`` [N, Dy] (Hotelling 1936), with ridge ``reg``.

    With C_xx = Cov(x) + reg·I, C_yy = Cov(y) + reg·I and the SVD
    C_xx^{-1/2} C_xy C_yy^{-1/2} = U S Vᵀ, the canonical directions of x are
    C_xx^{-1/2} U and the canonical correlations S. Returns
    ``(project, correlations)``: ``project(x')`` gives the ``dim``-dimensional
    projection (x' − mean x) C_xx^{-1/2} U_{:dim}; ``correlations`` the first ``dim`` of S.
    """
    x, y = x.reshape(len(x), -1).double(), y.reshape(len(y), -1).double()
    mean_x, mean_y = x.mean(0), y.mean(0)

    def inverse_sqrt(c):
        values, vectors = torch.linalg.eigh(c + reg * torch.eye(len(c), dtype=c.dtype, device=c.device))
        return vectors @ torch.diag(values.clamp_min(1e-12).rsqrt()) @ vectors.T

    xc, yc = x - mean_x, y - mean_y
    wx, wy = inverse_sqrt(xc.T @ xc / (len(x) - 1)), inverse_sqrt(yc.T @ yc / (len(y) - 1))
    u, s, _ = torch.linalg.svd(wx @ (xc.T @ yc / (len(x) - 1)) @ wy)
    directions = wx @ u[:, :dim]

    def project(view):
        return ((view.reshape(len(view), -1).double() - mean_x) @ directions).to(view.dtype)

    return project, s[:dim]


def linear_cca_error(train_views, train_labels, test_views, test_labels, num_classes, dim=20, reg=1e-2, valid=None):
    """Test error of the linear classifier on linear CCA's ``dim``-dimensional projection of the first view.

    CCA (:func:`linear_cca`) is fit on the training pairs ``train_views = (x, y)``; like E[z | x], the
    projection reads the first view only, so train and test points are projected from ``x``. With
    ``valid = (views, labels)`` the classifier's penalty is chosen on that split.
    """
    project, _ = linear_cca(*train_views, dim, reg)
    train_z, test_z = project(train_views[0]), project(test_views[0])
    valid = (project(valid[0][0]), valid[1]) if valid is not None else None
    return 1.0 - linear_probe_accuracy(train_z, train_labels, test_z, test_labels, num_classes, valid=valid)
