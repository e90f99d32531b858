"""A plain PyTorch (no Pyro) VAE / IWAE: the reference for pyro-deepvi's ``dlgm`` + ``diag`` guide.

The network is exactly that of ``pyro_deepvi`` with one stochastic layer
(``TrainConfig(model="dlgm", guide="diag", latent_dims=(50,), hidden_dims=(200, 200))``)::

    encoder   f(x)   = tanh(W2 tanh(W1 x + b1) + b2)              784-200-200, tanh
    q(z | x)         = N(z; μ(x), diag σ(x)²),  [μ, s] = W3 f(x) + b3,  σ = softplus(s) + 1e-5
    p(z)             = N(z; 0, I)                                 z ∈ R^50
    p(x | z)         = Π_d Bernoulli(x_d; sigmoid(g(z)_d))        g: 50-200-200-784, tanh

with torch's default ``nn.Linear`` initialisation, the parameters created in
the same order as pyro-deepvi creates them (decoder, then encoder, then the
head), so the same seed gives the same initial weights.

For k particles z_i = μ(x) + σ(x) ⊙ ε_i, ε_i ~ N(0, I) (reparameterized), the
log weights are log w_i = log p(x | z_i) + log p(z_i) − log q(z_i | x) and the
losses, in pyro-deepvi's units (a minibatch B of a data set of size N is
scaled by N / B, like Pyro's subsampled data plate), are::

    ELBO:    loss = −(N / B) Σ_{n ∈ B} (1/k) Σ_i log w_i(x_n)
    IWAE-k:  loss = −(N / B) Σ_{n ∈ B} log (1/k) Σ_i w_i(x_n)          (Burda et al., 2016)

``train`` follows ``pyro_deepvi.train``'s conventions (seed, shuffling with
``torch.Generator().manual_seed(seed)``, dynamic binarization through
``Dataset.batch``, Adam), so with the same seed a run starts from the same
weights and sees the same minibatches and the same random draws.
"""

import json
import math
import random
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn.functional import binary_cross_entropy_with_logits, softplus

HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def _mlp(in_dim, hidden_dims, out_dim):
    """Linear -> tanh -> ... -> Linear, like ``pyro_deepvi.nn.MLP``."""
    dims = [in_dim, *hidden_dims]
    layers = []
    for d_in, d_out in zip(dims[:-1], dims[1:]):
        layers += [nn.Linear(d_in, d_out), nn.Tanh()]
    layers.append(nn.Linear(dims[-1], out_dim))
    return nn.Sequential(*layers)


class PlainVAE(nn.Module):
    """Encoder, Gaussian head and Bernoulli decoder of a one-layer VAE.

    :param int x_dim: pixels per image (784).
    :param int z_dim: latent width (50).
    :param hidden_dims: hidden widths of the encoder and the decoder.
    :param int num_data: N, the training set size (the loss is scaled by N / B).
    """

    def __init__(self, x_dim=784, z_dim=50, hidden_dims=(200, 200), num_data=1):
        super().__init__()
        self.z_dim = z_dim
        self.num_data = num_data
        # Same creation order as pyro_deepvi (the model's decoder, then the guide): same init per seed.
        self.decoder = _mlp(z_dim, hidden_dims, x_dim)
        self.encoder = nn.Sequential(_mlp(x_dim, hidden_dims[:-1], hidden_dims[-1]), nn.Tanh())
        self.head = nn.Linear(hidden_dims[-1], 2 * z_dim)

    def posterior(self, x):
        """μ(x), σ(x) = softplus(s(x)) + 1e-5 of q(z | x)."""
        params = self.head(self.encoder(x.reshape(x.shape[0], -1)))
        return params[..., : self.z_dim], softplus(params[..., self.z_dim :]) + 1e-5

    def log_weights(self, x, k=1):
        """log w_i(x_n) = log p(x_n | z_i) + log p(z_i) − log q(z_i | x_n), shape [k, B]."""
        x = x.reshape(x.shape[0], -1)
        loc, scale = self.posterior(x)
        eps = torch.randn((k,) + loc.shape, dtype=loc.dtype, device=loc.device)
        z = loc + scale * eps
        # log N(z; μ, σ) with (z − μ)/σ = ε, and log N(z; 0, I).
        log_q = (-0.5 * eps.pow(2) - scale.log() - HALF_LOG_2PI).sum(-1)
        log_p_z = (-0.5 * z.pow(2) - HALF_LOG_2PI).sum(-1)
        logits = self.decoder(z)
        log_p_x = -binary_cross_entropy_with_logits(logits, x.expand_as(logits), reduction="none").sum(-1)
        return log_p_x + log_p_z - log_q

    def loss(self, x, objective="elbo", k=1):
        """The negative bound, summed over the batch and scaled by N / B (pyro-deepvi's units).

        Returns ``(loss, log_w)``, ``log_w`` detached, [k, B].
        """
        log_w = self.log_weights(x, k)
        if objective == "elbo":
            per_datum = log_w.mean(0)
        elif objective == "iwae":
            per_datum = torch.logsumexp(log_w, 0) - math.log(k)
        else:
            raise ValueError(f"objective must be 'elbo' or 'iwae', got {objective!r}")
        return -(self.num_data / x.shape[0]) * per_datum.sum(), log_w.detach()

    @torch.no_grad()
    def load_from_components(self, components):
        """Copy the weights of a pyro-deepvi ``Components`` (dlgm + diag guide, one layer)."""
        guide = components.guide
        (name,) = guide.latent_shapes
        pairs = [
            (self.decoder, components.model.decoder),
            (self.encoder, guide.encoder.net),
            (self.head, guide.heads[name]),
        ]
        for mine, theirs in pairs:
            mine.load_state_dict(theirs.state_dict())
        return self


def _seed(seed):
    """What ``pyro.set_rng_seed`` does, without Pyro."""
    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed)


@torch.no_grad()
def bounds(vae, data, num_particles=5000, chunk_size=500, batch_size=100, seed=0):
    """Per-data-point ELBO and IWAE-k log p(x) estimates, k = ``num_particles``.

    log p(x) ≈ log (1/k) Σ_{i=1}^k w_i, drawn in chunks of ``chunk_size`` particles
    combined by a streaming log-sum-exp (memory bounded whatever k is); the ELBO is
    (1/k) Σ_i log w_i from the same draws.
    """
    was_training = vae.training
    vae.eval()
    elbos, log_liks = [], []
    devices = [data.x.device] if data.x.is_cuda else []
    with torch.random.fork_rng(devices=devices):
        _seed(seed)
        for start in range(0, len(data), batch_size):
            x = data.x[start : start + batch_size]
            log_sum, mean = None, 0.0
            for done in range(0, num_particles, chunk_size):
                log_w = vae.log_weights(x, min(chunk_size, num_particles - done))
                chunk = torch.logsumexp(log_w, 0)
                log_sum = chunk if log_sum is None else torch.logaddexp(log_sum, chunk)
                mean = mean + log_w.sum(0) / num_particles
            elbos.append(mean)
            log_liks.append(log_sum - math.log(num_particles))
    vae.train(was_training)
    return torch.cat(elbos), torch.cat(log_liks)


@torch.no_grad()
def active_units(vae, data, threshold=0.01, batch_size=500, num_samples=None, seed=0):
    """A_u = Cov_x(E_{q(z|x)}[z_u]) > threshold (Burda et al., 2016).

    With ``num_samples=None`` E_q[z] = μ(x) exactly, as ``pyro_deepvi.evaluation.active_units``
    does for Gaussian guides; with a number, E_q[z] is estimated by the mean of that many
    draws of q, as it does for guides without a ``mean`` (the sampling noise adds about
    E_x[σ²] / num_samples to every unit's variance).
    """
    means = []
    with torch.random.fork_rng(devices=[data.x.device] if data.x.is_cuda else []):
        _seed(seed)
        for start in range(0, len(data), batch_size):
            loc, scale = vae.posterior(data.x[start : start + batch_size])
            if num_samples is not None:
                eps = torch.randn((num_samples,) + loc.shape, dtype=loc.dtype, device=loc.device)
                loc = (loc + scale * eps).mean(0)
            means.append(loc)
    return int((torch.cat(means).var(0) > threshold).sum())


def train(
    data="mnist5k",
    objective="elbo",
    particles=1,
    epochs=100,
    batch_size=100,
    lr=1e-3,
    latent_dim=50,
    hidden_dims=(200, 200),
    seed=0,
    device="cpu",
    test_particles=5000,
    out=None,
    log=print,
):
    """Train a :class:`PlainVAE` the way ``pyro_deepvi.train`` does, then evaluate it on the test split.

    Same conventions: seed everything with ``seed``; the epoch order is
    ``torch.randperm(N, generator=torch.Generator().manual_seed(seed))``; each
    minibatch is ``train_data.batch(index)`` (dynamic binarization); Adam with
    ``lr``. Returns a dict like pyro-deepvi's ``eval.json`` plus ``train_seconds``
    (the epochs' loop time, without evaluation), and writes ``metrics.jsonl`` and
    ``eval.json`` into ``out`` when given.
    """
    from pyro_deepvi.data import load  # data only: the tensors and Dataset.batch

    device = torch.device(device)
    _seed(seed)
    train_data = load(data, "train").to(device)
    vae = PlainVAE(train_data.x[0].numel(), latent_dim, hidden_dims, num_data=len(train_data)).to(device)
    optimizer = torch.optim.Adam(vae.parameters(), lr=lr)
    shuffle = torch.Generator().manual_seed(seed)
    num_batches = (len(train_data) + batch_size - 1) // batch_size
    records, train_seconds = [], 0.0
    for epoch in range(epochs):
        started = time.perf_counter()
        order = torch.randperm(len(train_data), generator=shuffle).to(device)
        elbo_sum = torch.zeros((), device=device)
        bound_sum = torch.zeros((), device=device)
        for b in range(num_batches):
            x = train_data.batch(order[b * batch_size : (b + 1) * batch_size])["x"]
            loss, log_w = vae.loss(x, objective, particles)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            elbo_sum += log_w.mean()
            bound_sum += loss.detach() / (-len(train_data))
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds = time.perf_counter() - started
        train_seconds += seconds
        record = {
            "epoch": epoch + 1,
            "seconds": seconds,
            "train_elbo": float(elbo_sum) / num_batches,
            "train_bound": float(bound_sum) / num_batches,
        }
        records.append(record)
        if not math.isfinite(record["train_bound"]):
            raise FloatingPointError(f"plain {objective}: non-finite loss in epoch {epoch + 1}")
        if log is not None and ((epoch + 1) % 10 == 0 or epoch + 1 == epochs):
            log(f"  plain {objective} k={particles}: epoch {epoch + 1} train_elbo {record['train_elbo']:.2f}")
    test = load(data, "test").to(device)
    elbo, log_lik = bounds(vae, test, test_particles, seed=0)
    units = active_units(vae, test)  # exact, from μ(x), like pyro-deepvi for the diag guide
    result = {
        "data": data,
        "split": "test",
        "num_data": len(test),
        "test_elbo": float(elbo.mean()),
        "test_log_likelihood": float(log_lik.mean()),
        "test_log_likelihood_stderr": float(log_lik.std() / len(test) ** 0.5),
        "num_particles": test_particles,
        "active_units": {"z": units, "total": units},
        "train_seconds": train_seconds,
    }
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
        (out / "eval.json").write_text(json.dumps(result, indent=2) + "\n")
        torch.save(vae.state_dict(), out / "plain_vae.pt")
    return result


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objective", choices=("elbo", "iwae"), default="elbo")
    parser.add_argument("--particles", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--test-particles", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    print(json.dumps(train(
        objective=args.objective, particles=args.particles, epochs=args.epochs,
        test_particles=args.test_particles, seed=args.seed, device=args.device,
    ), indent=2))
