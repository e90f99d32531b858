"""Importance traces with a particle plate, and per-data-point log weights.

Objectives and evaluation both need log w_k(x_n) = log p(x_n, h_k) − log q(h_k | x_n)
for k particles and each data point n of a batch. :func:`importance_traces`
runs the guide and the model once inside an outermost ``pyro.plate`` of
particles (always, also for one particle, so shapes never change), and
:func:`log_weights` splits every site's log-density by the ``"data"`` plate.
"""

from collections import namedtuple

import pyro
import torch
from pyro import poutine
from pyro.distributions.util import scale_and_mask
from pyro.infer.enum import get_importance_trace

#: Name of the outermost plate of particles.
PARTICLES = "particles"


def guess_max_plate_nesting(model, guide, args, kwargs):
    """How many plates deep the model and guide nest (blocked, so nothing is recorded)."""
    with poutine.block():
        guide_trace = poutine.trace(guide).get_trace(*args, **kwargs)
        model_trace = poutine.trace(poutine.replay(model, trace=guide_trace)).get_trace(*args, **kwargs)
    dims = [
        frame.dim
        for trace in (model_trace, guide_trace)
        for site in trace.nodes.values()
        if site["type"] == "sample"
        for frame in site["cond_indep_stack"]
        if frame.vectorized
    ]
    return -min(dims) if dims else 0


def importance_traces(model, guide, num_particles, max_plate_nesting, args=(), kwargs=None, graph_type="flat"):
    """Run ``guide`` then ``model`` replayed against it, inside a plate of ``num_particles``.

    Returns ``(model_trace, guide_trace)`` with log-densities computed; the
    particle plate sits at ``dim = -(max_plate_nesting + 1)``.
    """
    particles = pyro.plate(PARTICLES, num_particles, dim=-(max_plate_nesting + 1))
    return get_importance_trace(
        graph_type, max_plate_nesting + 1, particles(model), particles(guide), args, kwargs or {}
    )


#: Per-data-point parts [particles, batch] and the parts outside the data plate [particles].
LogWeights = namedtuple(
    "LogWeights", ["log_p_obs", "log_p_latent", "log_q", "log_p_global", "log_q_global", "global_latents", "scale"]
)
LogWeights.__doc__ = """log w = log_p_obs + log_p_latent − log_q per data point, plus log_p_global − log_q_global.

``global_latents`` names the guide's sites outside the data plate (global
latents, such as the weights of a deep exponential family): with any, log w no
longer splits into per-data-point weights. ``scale`` is the data plate's N / B
(1 when the batch is the whole data set)."""


def _data_frame(site):
    for frame in site["cond_indep_stack"]:
        if frame.name == "data":
            return frame
    return None


def _reduce(log_prob, particle_dim, data_dim):
    """Sum ``log_prob`` over every dim but the particle and data dims (kept, size 1 if absent)."""
    ndim = -particle_dim
    log_prob = log_prob.reshape((1,) * (ndim - log_prob.dim()) + log_prob.shape)
    keep = {particle_dim % ndim} | ({data_dim % ndim} if data_dim is not None else set())
    other = [d for d in range(ndim) if d not in keep]
    if other:
        log_prob = log_prob.sum(other, keepdim=True)
    shape = (log_prob.shape[particle_dim % ndim], log_prob.shape[data_dim % ndim] if data_dim is not None else 1)
    return log_prob.reshape(shape)


def log_weights(model_trace, guide_trace, max_plate_nesting):
    """Split log p(x, h) − log q(h | x) of particle-plated traces by the ``"data"`` plate.

    :returns: a :data:`LogWeights` whose per-data-point fields have shape
        [particles, batch] and whose ``log_p_global`` has shape [particles].
    :raises ValueError: when no site lies in a ``"data"`` plate.
    """
    particle_dim = -(max_plate_nesting + 1)
    parts = {"obs": 0.0, "latent": 0.0, "q": 0.0, "p_global": 0.0, "q_global": 0.0}
    global_latents = []
    scale = None
    for role, trace in (("model", model_trace), ("guide", guide_trace)):
        for name, site in trace.nodes.items():
            if site["type"] != "sample":
                continue
            frame = _data_frame(site)
            # Unscaled: the data plate's N / B goes into ``scale``, not into each weight.
            log_prob = scale_and_mask(site["unscaled_log_prob"], mask=site["mask"])
            log_prob = _reduce(log_prob, particle_dim, frame.dim if frame else None)
            if frame is None:
                if role == "guide":
                    global_latents.append(name)
                    parts["q_global"] = parts["q_global"] + log_prob.squeeze(-1)
                else:
                    parts["p_global"] = parts["p_global"] + log_prob.squeeze(-1)
                continue
            scale = site["scale"]
            if role == "guide":
                parts["q"] = parts["q"] + log_prob
            elif site["is_observed"]:
                parts["obs"] = parts["obs"] + log_prob
            else:
                parts["latent"] = parts["latent"] + log_prob
    if scale is None:
        raise ValueError("the model has no site inside a plate named 'data'; see pyro_deepvi.models.data_plate")
    shape = None
    for key in ("obs", "latent", "q"):
        if torch.is_tensor(parts[key]):
            shape = torch.broadcast_shapes(shape or parts[key].shape, parts[key].shape)
    zero = next(p for p in parts.values() if torch.is_tensor(p)).new_zeros(shape)
    return LogWeights(
        parts["obs"] + zero,
        parts["latent"] + zero,
        parts["q"] + zero,
        parts["p_global"] + zero[:, 0],
        parts["q_global"] + zero[:, 0],
        tuple(global_latents),
        scale,
    )


def auxiliary_sites(guide_trace):
    """Names of the guide's sites marked ``infer={"is_auxiliary": True}``: guide variables the model
    lacks (a hierarchical guide's λ), which its q(z | x) integrates out."""
    return [
        name
        for name, site in guide_trace.nodes.items()
        if site["type"] == "sample" and site["infer"].get("is_auxiliary")
    ]


def non_reparameterized_sites(guide_trace):
    """Names of the guide's latent sites without ``rsample`` (discrete ones): no pathwise gradient."""
    return [
        name
        for name, site in guide_trace.nodes.items()
        if site["type"] == "sample" and not site["is_observed"] and not site["fn"].has_rsample
    ]


def check_local(weights, what):
    """Refuse global latents where a bound must split into one weight per data point."""
    if weights.global_latents:
        raise ValueError(
            f"{what} needs one importance weight per data point, but the guide's site(s) "
            f"{', '.join(map(repr, weights.global_latents))} lie outside the 'data' plate (global latents); "
            "use the 'elbo' or 'tracegraph_elbo' objective"
        )


def total(weights):
    """log w per particle and data point, [particles, batch]."""
    return weights.log_p_obs + weights.log_p_latent - weights.log_q
