"""Pictures of a run: model samples, reconstructions and training curves (matplotlib PNGs).

Figures are drawn on :class:`matplotlib.figure.Figure` objects, never through
pyplot, so the library leaves the user's backend (a notebook's inline one) alone.
"""

import math
from pathlib import Path

import torch
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
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


#: The panels of curves.png: a unit, and how to tell which record keys are in it.
CURVE_PANELS = (
    ("nats per data point", lambda key: key in ("train_elbo", "train_bound") or key in ("valid_elbo",) or key.startswith("valid_iwae")),
    ("accuracy or error rate", lambda key: "accuracy" in key or "error" in key),
    ("perplexity", lambda key: "perplexity" in key),
)


def curve_lines(records):
    """``{panel unit: {label: [(epoch, value), ...]}}`` of the metrics records, a line per distinct curve.

    Keys with identical points (``train_bound`` is ``train_elbo`` under the ELBO) share one line,
    labelled with both names; a panel with no key is left out.
    """
    panels = {}
    keys = sorted({k for r in records for k, v in r.items() if isinstance(v, (int, float))})
    for unit, belongs in CURVE_PANELS:
        lines = {}
        for key in (k for k in keys if belongs(k)):
            points = [(r["epoch"], r[key]) for r in records if key in r]
            same = next((label for label, other in lines.items() if other == points), None)
            if same is None:
                lines[key] = points
            else:
                lines[f"{same} = {key}"] = lines.pop(same)
        if lines:
            panels[unit] = lines
    return panels


def save_curves(records, path, title=None):
    """Training curves from ``metrics.jsonl`` records: one panel per unit (nats, accuracy, perplexity).

    :param str title: the figure's title (default: the run directory's name).
    """
    path = Path(path)
    panels = curve_lines(records)
    if not panels:
        return False
    fig = Figure(figsize=(6, 3.2 * len(panels)), layout="constrained")
    axes = fig.subplots(len(panels), 1, squeeze=False, sharex=True)[:, 0]
    for ax, (unit, lines) in zip(axes, panels.items()):
        for label, points in lines.items():
            ax.plot(*zip(*points), marker="." if label.startswith("valid_") else None, label=label)
        ax.set_ylabel(unit)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend()
    axes[-1].set_xlabel("epoch")
    fig.suptitle(title or f"training curves: {path.parent.name}")
    fig.savefig(path, dpi=100, bbox_inches="tight")
    return True
