"""Pictures of a run: model samples, reconstructions and training curves (matplotlib PNGs).

Figures are drawn on :class:`matplotlib.figure.Figure` objects, never through
pyplot, so the library leaves the user's backend (a notebook's inline one) alone.
"""

import math

import torch
from matplotlib.figure import Figure
from pyro import poutine


def image_shape(event_shape):
    """(height, width) of a flattened square image, or ``None`` when it is not one."""
    size = int(torch.Size(event_shape).numel())
    side = math.isqrt(size)
    return (side, side) if side * side == size else None


def observation_mean(model, batch, guide=None):
    """E[x | h] of the model's ``x`` site: h from the prior, or from the guide to reconstruct.

    ``batch`` holds the model's keyword arguments (``x``, and ``y`` where there is one);
    returns ``None`` when the model observes no site named ``x``. A likelihood with
    no closed-form mean (DARN's autoregressive pixels) gives a draw x ~ p(x | h) instead.
    """
    site = observation_site(model, batch, guide)
    if site is None:
        return None
    try:
        return site["fn"].mean
    except NotImplementedError:
        return site["value"]


def observation_site(model, batch, guide=None):
    """The trace site ``x`` of the model run unconditioned (h from the prior, or from the guide); ``None`` if absent."""
    model_fn = poutine.uncondition(model)
    if guide is not None:
        guide_trace = poutine.trace(guide).get_trace(**batch)
        model_fn = poutine.replay(model_fn, trace=guide_trace)
    return poutine.trace(model_fn).get_trace(**batch).nodes.get("x")


def save_image_grid(images, event_shape, path, title, columns=10):
    shape = image_shape(event_shape)
    if shape is None:
        return False
    images = images.detach().cpu().reshape(-1, *shape)
    rows = math.ceil(len(images) / columns)
    fig = Figure(figsize=(columns, rows + 0.4))
    axes = fig.subplots(rows, columns, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, image in zip(axes.flat, images):
        ax.imshow(image.numpy(), cmap="gray", vmin=0, vmax=1)
    fig.suptitle(title)
    fig.savefig(path, dpi=80, bbox_inches="tight")
    return True


def save_curves(records, path):
    """Train and validation bounds per epoch, from ``metrics.jsonl`` records."""
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    keys = sorted({k for r in records for k in r if k.startswith("valid_") or k in ("train_elbo", "train_bound")})
    for key in keys:
        points = [(r["epoch"], r[key]) for r in records if key in r]
        ax.plot(*zip(*points), marker="." if key.startswith("valid_") else None, label=key)
    ax.set_xlabel("epoch")
    ax.set_ylabel("nats per data point")
    ax.legend()
    fig.savefig(path, dpi=100, bbox_inches="tight")
