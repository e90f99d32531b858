"""Evaluate a trained run and write ``eval.json`` and the pictures.

The bounds and active units are measured on the test split; ELBO surgery, like
Hoffman & Johnson's, on the training split the encoder was fit to (its first
``SURGERY_POINTS`` points, since it scores every pair).
"""

import math
from pathlib import Path

import torch

from ..run_dir import EVAL, TEST_BOUNDS, keep_earlier_eval, read_metrics, save_atomic, write_json_atomic
from .active_units import active_units, posterior_means_by_site
from .disentanglement import mutual_information_gap
from .linear_probe import linear_probe_accuracy
from .rate_distortion import rate_and_distortion, rate_by_site
from .log_likelihood import bounds
from .plots import observation_mean, save_curves, save_image_grid
from .surgery import elbo_surgery


#: ELBO surgery scores every pair of training points (O(N²)): it uses at most this many.
SURGERY_POINTS = 5000


def _first(data, n):
    """The first ``n`` points of a data set (all of them when it has fewer)."""
    if len(data) <= n:
        return data
    return data.rows(slice(0, n))


def evaluate_run(run_dir, components, config, num_particles=None, seed=0, progress=False):
    """Test ELBO, IWAE-k log-likelihood, rate (also per latent site), active units and ELBO surgery; writes ``eval.json``.

    With class labels it adds the accuracy of a linear probe on the posterior
    means; with ground-truth factors (an integer ``y`` of one column per factor)
    the mutual information gap.

    A model may add metrics of its own paper with a method
    ``evaluate(guide, test_data, seed) -> dict``, merged into the report. A
    model whose guide has per-data-point parameters (``amortized = False``, as
    in deep exponential families) has no posterior for a test point until one
    is fitted, so the generic per-data-point metrics are skipped and its
    ``evaluate`` (a held-out protocol of its own) is the report.

    :param run_dir: the run directory (pictures and ``eval.json`` go there).
    :param components: the run's :class:`~pyro_deepvi.engine.Components`.
    :param config: the run's :class:`~pyro_deepvi.engine.TrainConfig`.
    :param int num_particles: k of the IWAE-k estimate (``config.test_particles`` by default).
    :param bool progress: a line before it starts and a progress bar over the IWAE particle chunks.

    An ``eval.json`` of another k is kept as ``eval-k<k>.json``.
    """
    run_dir = Path(run_dir)
    num_particles = config.test_particles if num_particles is None else num_particles
    device = next(components.parameters()).device
    test = config.load_data("test").to(device)
    if progress:
        print(f"evaluating {run_dir} on {len(test)} test points (IWAE, k = {num_particles})", flush=True)
    model, guide = components.model.model, components.guide
    components.eval()
    if not getattr(components.model, "amortized", True):
        result = {"data": config.data, "split": "test", "num_data": len(test)}
        result.update(components.model.evaluate(guide, test, seed=seed))
        keep_earlier_eval(run_dir, None)
        write_json_atomic(result, run_dir / EVAL)
        save_curves(read_metrics(run_dir), run_dir / "curves.png")
        return result
    elbo, log_lik = bounds(model, guide, test, num_particles, seed=seed, progress=progress)
    train_subset = _first(config.load_data("train"), SURGERY_POINTS).to(device)
    result = {
        "data": config.data,
        "split": "test",
        "num_data": len(test),
        "test_elbo": float(elbo.mean()),
        "test_log_likelihood": float(log_lik.mean()),
        "test_log_likelihood_stderr": float(log_lik.std() / len(test) ** 0.5),
        "num_particles": num_particles,
        **rate_and_distortion(model, guide, test, seed=seed),
        "test_rate_by_site": rate_by_site(model, guide, test, seed=seed),
        **_description_length(float(elbo.mean())),
        "active_units": active_units(guide, test, seed=seed),
        "elbo_surgery": _surgery(model, guide, train_subset, seed),
    }
    result.update(_representation_metrics(guide, train_subset, test, seed))
    if hasattr(components.model, "evaluate"):
        result.update(components.model.evaluate(guide, test, seed=seed))
    keep_earlier_eval(run_dir, num_particles)
    write_json_atomic(result, run_dir / EVAL)
    save_atomic({"elbo": elbo.cpu(), "log_likelihood": log_lik.cpu(), "num_particles": num_particles}, run_dir / TEST_BOUNDS)
    _save_pictures(model, guide, test, run_dir, seed)
    save_curves(read_metrics(run_dir), run_dir / "curves.png")
    return result


def _description_length(elbo):
    """Bits-back description length L(x) = E_q[L(h) + L(x|h)] = −ELBO / ln 2 (Hinton & van Camp; DARN)."""
    return {"test_description_length_bits": -elbo / math.log(2)}


def _surgery(model, guide, train, seed):
    try:
        return elbo_surgery(model, guide, train, seed=seed)
    except ValueError as e:  # a guide it cannot score (a flow, dependent sites)
        return {"skipped": str(e)}


def _representation_metrics(guide, train, test, seed):
    """What the posterior means keep: a linear probe of class labels, or the MIG of known factors."""
    if test.y is None or test.y.is_floating_point():
        return {}
    test_means = torch.cat(list(posterior_means_by_site(guide, test, seed=seed).values()), -1)
    if test.y.dim() == 2:  # ground-truth factors, one column each
        return {"mig": mutual_information_gap(test_means, test.y)["mig"]}
    train_means = torch.cat(list(posterior_means_by_site(guide, train, seed=seed).values()), -1)
    accuracy = linear_probe_accuracy(train_means, train.y, test_means, test.y, test.num_classes)
    return {"linear_probe_accuracy": accuracy}


def _save_pictures(model, guide, test, run_dir, seed):
    """samples.png and reconstructions.png, for models whose observed site ``x`` is an image."""
    device = test.x.device
    with torch.no_grad(), torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        batch = test.batch(torch.arange(min(50, len(test)), device=device))
        batch.pop("index")
        samples = observation_mean(model, batch)
        if samples is None:
            return
        save_image_grid(samples, test.event_shape, run_dir / "samples.png", "samples, E[x | h] (a draw if no closed form), h ~ p(h)")
        few = {k: v[:25] for k, v in batch.items()}
        pairs = torch.stack([few["x"], observation_mean(model, few, guide)], 1).flatten(0, 1)
        save_image_grid(pairs, test.event_shape, run_dir / "reconstructions.png", "data | reconstruction")
