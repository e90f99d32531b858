"""The guide of sparse and deep GPs: whitened full-covariance q(V) per layer, and per-point Gaussians.

    q(V_l) = Π_d N(v_{l,d}; μ_{l,d}, S_{l,d}),   S_{l,d} = R_{l,d} R_{l,d}ᵀ (R lower triangular)

for every inducing site of the model (``inducing_shapes``: name -> (D, M), outside the
data plate), R starting at ``inducing_init_scales[name]``·I and μ at zero, as in
Salimbeni & Deisenroth (2017); and, for a latent-variable model with ``local_shapes``
(name -> Q), a non-amortized q(h_n) = N(m_n, diag s_n²) per data point, a table of
num_data rows gathered by the batch's ``index`` and started at the model's ``init_<name>``
(its PCA coordinates).
"""

from collections import OrderedDict

import pyro
import pyro.distributions as dist
import torch
from pyro.nn import PyroModule, PyroParam
from torch import nn
from torch.distributions import constraints

from ..models.base import data_plate
from ..models.deep_gp import inducing_posteriors
from ..registry import GUIDES

#: The per-point Gaussians' initial standard deviation.
LOCAL_INIT_SCALE = 0.1


class LocalGaussian(PyroModule):
    """N(m_n, diag s_n²) for each of num_data rows, gathered by ``index``."""

    def __init__(self, init_loc):
        super().__init__()
        self.loc = nn.Parameter(init_loc.clone())
        self.scale = PyroParam(torch.full_like(init_loc, LOCAL_INIT_SCALE), constraint=constraints.positive)

    def forward(self, index=None):
        loc, scale = (self.loc, self.scale) if index is None else (self.loc[index], self.scale[index])
        return dist.Normal(loc, scale).to_event(1)


class InducingGuide(PyroModule):
    """q(V) for every inducing site of ``model`` and, if it has ``local_shapes``, q(h_n) per point.
    A model whose likelihood integrates q(V) (``dgp``) holds it as ``posteriors``; the guide then
    draws from those same modules.

    :param model: a model with ``inducing_shapes`` and ``inducing_init_scales``, and
        optionally ``local_shapes``, ``num_data`` and ``init_<site>`` tables.
    :param bool local_only: only the per-point factors (to fit new rows with q(V) fixed).
    :param int num_data: rows of the per-point tables (``model.num_data`` by default).
    """

    def __init__(self, model, local_only=False, num_data=None):
        super().__init__()
        if not hasattr(model, "inducing_shapes"):
            raise ValueError(f"{type(model).__name__} has no inducing sites (``inducing_shapes``) for the inducing guide")
        if local_only:
            self.inducing = nn.ModuleDict()
        elif hasattr(model, "posteriors"):
            self.inducing = model.posteriors  # a model that integrates q(V) holds it (dgp)
        else:
            self.inducing = inducing_posteriors(model.inducing_shapes, model.inducing_init_scales)
        self.num_data = model.num_data if num_data is None else int(num_data)
        local_shapes = getattr(model, "local_shapes", OrderedDict())
        self.locals = nn.ModuleDict()
        for name, dim in local_shapes.items():
            init = getattr(model, f"init_{name}") if num_data is None else torch.zeros(self.num_data, dim)
            self.locals[name] = LocalGaussian(init)
        self._model_layout = (model.inducing_shapes, model.inducing_init_scales, local_shapes)

    def forward(self, x, y=None, index=None):
        for name, posterior in self.inducing.items():
            pyro.sample(name, posterior())
        if not self.locals:
            return
        if index is None and x.shape[0] != self.num_data:
            raise ValueError(
                f"the inducing guide holds per-point factors for {self.num_data} rows but got a batch of "
                f"{x.shape[0]} with no index; pass the batch's index"
            )
        with data_plate(self.num_data, x, index):
            for name, table in self.locals.items():
                pyro.sample(name, table(index))

    def global_means(self):
        """E_q[V] of every inducing site: {name: [D, M]}."""
        return {name: posterior.loc for name, posterior in self.inducing.items()}

    def local_means(self):
        """E_q of every per-point site: {name: [num_data, Q]}."""
        return {name: table.loc for name, table in self.locals.items()}

    def local_guide(self, num_data):
        """A guide of per-point factors only, for ``num_data`` new rows (same device and dtype),
        started at the prior's mean."""
        like = next(self.parameters())
        layout = _Layout(*self._model_layout, num_data)
        return InducingGuide(layout, local_only=True, num_data=num_data).to(like)


class _Layout:
    """What :class:`InducingGuide` reads from a model, for :meth:`InducingGuide.local_guide`."""

    def __init__(self, inducing_shapes, inducing_init_scales, local_shapes, num_data):
        self.inducing_shapes, self.inducing_init_scales = inducing_shapes, inducing_init_scales
        self.local_shapes, self.num_data = local_shapes, num_data


@GUIDES.register("inducing", "whitened full-covariance q(U) per GP layer, per-point Gaussians for GP-LVMs (deep GPs)")
def inducing(model, hidden_dims=None):
    """:class:`InducingGuide`; ``hidden_dims`` is unused (no encoder)."""
    return InducingGuide(model)
