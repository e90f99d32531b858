"""Runs on the rate–distortion plane (Alemi et al., 2018, "Fixing a broken ELBO").

Per data point, the rate R = E_q[log q(z|x) − log r(z)] (r the model's prior
or learned marginal) and the distortion D = −E_q[log p(x|z)] bound the mutual
information of the encoder::

    H − D ≤ I_q(x, z) ≤ R,    so    D ≥ H − R,  R ≥ 0,  D ≥ 0

with H the data entropy; −ELBO = D + R. A β sweep (loss D + βR) or a target
rate sweep (loss D + |σ − R|) traces the frontier the models reach above the
line D = H − R.

Where the points come from (:func:`rate_distortion_points`), per run:

1. ``eval.json``'s ``test_rate`` and ``test_distortion`` when it has both (the
   test split's R and D; ``source`` is ``"test"``);
2. otherwise the last ``metrics.jsonl`` record's ``train_rate`` and
   ``train_distortion`` (``source`` is ``"train"``): the averages over the last
   epoch's minibatches, with one particle each, while the model was still
   being updated; close to, not equal to, the final model's training R and D.

:func:`~pyro_deepvi.evaluation.evaluate_run` writes ``test_rate`` and
``test_distortion`` (from :func:`rate_and_distortion`) into every ``eval.json``.

H is unknown for real data. Any model's cross-entropy −E log p_θ(x) is at
least H, and an IWAE-k estimate of log p_θ(x) is below it on average, so
−(best test log-likelihood among the runs) is an upper estimate of H (for the
test distribution): :func:`plot_rate_distortion` uses it when not given
``entropy`` and labels the line as an estimate. Since it is an upper estimate
the true line D = H − R lies on or below the drawn one; a point (train R and D)
may fall below an estimated line without contradicting the bound.
"""

import json
from pathlib import Path

import torch
from matplotlib.figure import Figure

from ..importance import _data_frame, _reduce, guess_max_plate_nesting, importance_traces, log_weights
from ..run_dir import EVAL, METRICS, read_metrics
from .batches import seeded_batches


@torch.no_grad()
def rate_and_distortion(model, guide, data, num_particles=10, batch_size=100, seed=0):
    """R = E_q[log q(z|x) − log p(z)] and D = −E_q[log p(x|z)] per data point, averaged over ``data``."""
    rate = distortion = 0.0
    nesting = None
    for batch in seeded_batches(data, batch_size, seed):
        if nesting is None:
            nesting = guess_max_plate_nesting(model, guide, (), batch)
        weights = log_weights(*importance_traces(model, guide, num_particles, nesting, kwargs=batch), nesting)
        rate += float((weights.log_q - weights.log_p_latent).mean(0).sum())
        distortion += float(-weights.log_p_obs.mean(0).sum())
    return {"test_rate": rate / len(data), "test_distortion": distortion / len(data)}


@torch.no_grad()
def rate_by_site(model, guide, data, num_particles=10, batch_size=100, seed=0):
    """The rate split by latent site, per data point: ``{site: E_q[log q(z_site | ·) − log p(z_site | ·)]}``.

    Each site's term conditions on the draws the guide and the model condition it on
    (for a hierarchy, KL(q(z_i | z_{i+1}, x) ‖ p(z_i | z_{i+1})) averaged over q), so
    the terms sum to the rate R; a layer whose term is near zero is collapsed onto its prior.
    """
    totals, nesting = {}, None
    for batch in seeded_batches(data, batch_size, seed):
        if nesting is None:
            nesting = guess_max_plate_nesting(model, guide, (), batch)
        model_trace, guide_trace = importance_traces(model, guide, num_particles, nesting, kwargs=batch)
        for name, site in guide_trace.nodes.items():
            if site["type"] != "sample" or site["is_observed"] or name not in model_trace.nodes:
                continue
            frame = _data_frame(site)
            if frame is None:  # a global latent: no share of any one data point's rate
                continue
            log_q = _reduce(site["unscaled_log_prob"], -(nesting + 1), frame.dim)
            log_p = _reduce(model_trace.nodes[name]["unscaled_log_prob"], -(nesting + 1), frame.dim)
            totals[name] = totals.get(name, 0.0) + float((log_q - log_p).mean(0).sum())
    return {name: total / len(data) for name, total in totals.items()}


def _read_eval(run_dir):
    path = Path(run_dir) / EVAL
    return json.loads(path.read_text()) if path.exists() else {}


def rate_distortion_point(run_dir):
    """R and D of one run, as a dict.

    Keys: ``run`` (the directory), ``label`` (its name), ``rate``, ``distortion``,
    ``source`` (``"test"`` from ``eval.json``, ``"train"`` from the last metrics
    record), ``epoch`` (of that record, ``None`` for test points) and
    ``test_log_likelihood`` (``eval.json``'s, ``None`` without one).

    :raises ValueError: when the run has neither.
    """
    run_dir = Path(run_dir)
    report = _read_eval(run_dir)
    point = {
        "run": str(run_dir),
        "label": run_dir.name,
        "test_log_likelihood": report.get("test_log_likelihood"),
    }
    if "test_rate" in report and "test_distortion" in report:
        return {**point, "rate": float(report["test_rate"]), "distortion": float(report["test_distortion"]),
                "source": "test", "epoch": None}
    records = [r for r in read_metrics(run_dir) if "train_rate" in r and "train_distortion" in r]
    if not records:
        raise ValueError(
            f"{run_dir}: no rate and distortion to read (neither test_rate/test_distortion in {EVAL} "
            f"nor train_rate/train_distortion in {METRICS})"
        )
    last = records[-1]
    return {**point, "rate": float(last["train_rate"]), "distortion": float(last["train_distortion"]),
            "source": "train", "epoch": last.get("epoch")}


def rate_distortion_points(run_dirs):
    """:func:`rate_distortion_point` of every run directory, in order."""
    return [rate_distortion_point(run_dir) for run_dir in run_dirs]


def estimate_entropy(points):
    """−(the best test log-likelihood among ``points``): an upper estimate of H; ``None`` without any."""
    values = [p["test_log_likelihood"] for p in points if p.get("test_log_likelihood") is not None]
    return -max(values) if values else None


def plot_rate_distortion(points, path, entropy=None, title="rate–distortion plane"):
    """Draw the runs on the RD plane (R on x, D on y, nats) with the bounds D ≥ H − R, R ≥ 0, D ≥ 0.

    :param points: dicts with ``rate``, ``distortion`` and ``label`` (as from
        :func:`rate_distortion_points`).
    :param path: where the PNG goes.
    :param float entropy: the data entropy H in nats. When ``None`` it is
        estimated by :func:`estimate_entropy` (−the best test log p(x), an upper
        estimate, labelled so); without any test log-likelihood no H line is drawn.
    :returns: ``(figure, entropy, estimated)``: the matplotlib
        :class:`~matplotlib.figure.Figure`, the H drawn (``None`` for none) and
        whether it was estimated.
    """
    if not points:
        raise ValueError("no points to plot")
    estimated = entropy is None
    if estimated:
        entropy = estimate_entropy(points)
    fig = Figure(figsize=(6, 5))
    ax = fig.subplots()
    rates = [p["rate"] for p in points]
    distortions = [p["distortion"] for p in points]
    top = max([*rates, *distortions, entropy or 0.0, 1.0]) * 1.1
    if entropy is not None:
        label = f"D = H − R, H ≈ {entropy:.2f} (upper estimate: −best test log p(x))" if estimated else (
            f"D = H − R, H = {entropy:.2f}"
        )
        ax.plot([0.0, entropy], [entropy, 0.0], color="black", linestyle="--", label=label)
        shade = "D < Ĥ − R (infeasible only where D < H − R)" if estimated else "infeasible: D < H − R"
        ax.fill_between([0.0, entropy], [entropy, 0.0], 0.0, color="gray", alpha=0.2, label=shade)
    ax.axhline(0.0, color="gray", linewidth=0.8)  # D ≥ 0
    ax.axvline(0.0, color="gray", linewidth=0.8)  # R ≥ 0
    ax.scatter(rates, distortions, color="C0", zorder=3, label="runs")
    for point in points:
        ax.annotate(point.get("label", ""), (point["rate"], point["distortion"]), textcoords="offset points",
                    xytext=(4, 4), fontsize=8)
    ax.set_xlim(-0.02 * top, top)
    ax.set_ylim(-0.02 * top, top)
    ax.set_xlabel("rate R (nats)")
    ax.set_ylabel("distortion D (nats)")
    ax.set_title(title)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.12))  # below the plane, off the points
    fig.savefig(path, dpi=100, bbox_inches="tight")
    return fig, entropy, estimated
