"""A trained run, loaded from its directory: ``run = pyro_deepvi.load_run("runs/dlgm-diag-elbo")``.

The model, guide and config come from ``config.json`` and ``checkpoint.pt``
alone (the checkpoint records the shape of the training data, so the data are
not loaded), on the run's device or the one asked for. The operations a user
reaches for, each on a batch ``x`` of shape ``[B, *event_shape]``::

    run.encode(x)                  # q(h | x) per latent site: {"z1": Normal(loc, scale), ...}
    run.decode(z)                  # E[x | h] for latent values h (a dict by site, or one tensor)
    run.sample(n)                  # x ~ p(x), n draws (mean=True: E[x | h] with h ~ p(h))
    run.reconstruct(x)             # E[x | h], h ~ q(h | x)
    run.log_likelihood(x, particles=5000)   # IWAE-k estimate of log p(x), per point
    run.elbo(x)                    # the ELBO, per point

Everything runs under Pyro's ``module_local_params`` (``pyro_deepvi.settings``),
as training did, and without gradients.
"""

from pathlib import Path

import torch
from pyro import poutine
from pyro.poutine.util import prune_subsample_sites

from .data import Dataset
from .engine import restore
from .evaluation.log_likelihood import bounds
from .evaluation.plots import observation_site
from .settings import module_local_params


class Run:
    """A run's :attr:`model`, :attr:`guide` and :attr:`config`, with the operations above."""

    def __init__(self, run_dir, config, components):
        self.run_dir = Path(run_dir)
        self.config = config
        self.components = components.eval()
        self.device = next(components.parameters()).device
        self.data_spec = components.data_spec  # the training data's shape, N, support and classes
        self.event_shape = torch.Size(self.data_spec["event_shape"])

    @classmethod
    def load(cls, run_dir, device=None):
        """Load ``run_dir`` on ``device`` (default: the run's own, ``config.device``)."""
        config, components = restore(run_dir, "auto" if device is None else str(device))
        return cls(run_dir, config, components)

    @property
    def model(self):
        return self.components.model

    @property
    def guide(self):
        return self.components.guide

    def __repr__(self):
        c = self.config
        return f"Run({str(self.run_dir)!r}: {c.model} / {c.guide} / {c.objective} on {c.data}, {self.device})"

    def _x(self, x):
        x = torch.as_tensor(x, device=self.device, dtype=torch.get_default_dtype())
        if x.dim() < 1 or x.shape[1:] != self.event_shape:
            shape = ", ".join(map(str, self.event_shape))
            raise ValueError(f"{self.config.model} expects x of shape [batch, {shape}], got {tuple(x.shape)}")
        return x

    def _amortized(self, what):
        if not getattr(self.model, "amortized", True):
            raise ValueError(
                f"{self.config.model}'s guide has per-data-point parameters (amortized = False): it has no "
                f"{what} for new points; its own evaluate (e.g. document completion) scores held-out data"
            )

    def _data(self, x, y):
        x = self._x(x)
        y = None if y is None else torch.as_tensor(y, device=self.device)
        return Dataset("input", "test", x, y, self.data_spec["support"], num_classes=self.data_spec["num_classes"])

    @module_local_params()
    @torch.no_grad()
    def encode(self, x, y=None):
        """q(h | x) of every latent site, as distributions (``.mean``, ``.stddev``, ``.sample()``).

        A site that depends on another (a hierarchical guide) is given one draw of the sites before it.
        """
        self._amortized("encoder")
        data = self._data(x, y)
        kwargs = {"x": data.x} if data.y is None else {"x": data.x, "y": data.y}
        trace = prune_subsample_sites(poutine.trace(self.guide).get_trace(**kwargs))
        return {name: site["fn"] for name, site in trace.nodes.items() if site["type"] == "sample" and not site["is_observed"]}

    @module_local_params()
    @torch.no_grad()
    def decode(self, z):
        """E[x | h] for latent values ``z``: a dict by site name (``run.encode(x)`` names them), or a tensor
        for a model with one latent site. Sites not given are drawn from the prior."""
        if not isinstance(z, dict):
            names = list(getattr(self.model, "latent_shapes", {}))
            if len(names) != 1:
                raise ValueError(f"{self.config.model} has latent sites {names}: give decode a dict of them")
            z = {names[0]: z}
        z = {name: torch.as_tensor(value, device=self.device) for name, value in z.items()}
        batch_size = next(iter(z.values())).shape[0]
        return self._observation(poutine.condition(self.model.model, data=z), batch_size)

    def _observation(self, model, batch_size, guide=None, x=None, mean=True):
        """E[x | h] (or a draw x ~ p(x | h) with ``mean=False``), shaped [batch, *event_shape]."""
        x = torch.zeros(batch_size, *self.event_shape, device=self.device) if x is None else x
        site = observation_site(model, {"x": x}, guide)
        if site is None:
            raise ValueError(f"{self.config.model} observes no site named x (a classifier such as vib predicts y instead)")
        value = site["value"]
        if mean:
            try:
                value = site["fn"].mean
            except NotImplementedError:  # no closed form (DARN's autoregressive pixels): a draw
                pass
        # The data plate is the rightmost batch dimension; a model may lay other plates before it.
        return value.movedim(value.dim() - site["fn"].event_dim - 1, 0)

    @module_local_params()
    @torch.no_grad()
    def sample(self, n, mean=False):
        """``n`` draws x ~ p(x); with ``mean=True``, E[x | h] of ``n`` draws h ~ p(h)."""
        return self._observation(self.model.model, n, mean=mean)

    @module_local_params()
    @torch.no_grad()
    def reconstruct(self, x):
        """E[x | h] with h ~ q(h | x): one draw of the posterior per point."""
        self._amortized("encoder")
        return self._observation(self.model.model, None, self.guide, self._x(x))

    @module_local_params()
    def log_likelihood(self, x, y=None, particles=5000, seed=0):
        """The IWAE-k estimate of log p(x) per point (k = ``particles``; a lower bound, tight as k grows)."""
        self._amortized("encoder")
        return bounds(self.model.model, self.guide, self._data(x, y), particles, seed=seed)[1]

    @module_local_params()
    def elbo(self, x, y=None, particles=1, seed=0):
        """The ELBO per point, E_q[log p(x, h) − log q(h | x)], averaged over ``particles`` draws."""
        self._amortized("encoder")
        return bounds(self.model.model, self.guide, self._data(x, y), particles, seed=seed)[0]


def load_run(run_dir, device=None):
    """A trained run from its directory alone: :class:`Run` with model, guide, config, ``encode``, ``decode``,
    ``sample``, ``reconstruct``, ``log_likelihood`` and ``elbo``. ``device``: the run's own when ``None``."""
    return Run.load(run_dir, device)
