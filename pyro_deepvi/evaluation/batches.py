"""Seeded passes over a data set in minibatches, the way every evaluation makes them."""

import pyro
import torch


def seeded_batches(data, batch_size, seed):
    """Yield the model's keyword arguments (``x``, and ``y`` where there is one) of each minibatch in order.

    The global random state is forked and seeded with ``seed`` for the whole pass,
    so evaluation draws (binarization, particles) are reproducible and leave the
    training run's random stream untouched. Consume the generator to the end.
    """
    with torch.random.fork_rng(devices=[data.x.device] if data.x.is_cuda else []):
        pyro.set_rng_seed(seed)
        for start in range(0, len(data), batch_size):
            batch = data.batch(torch.arange(start, min(start + batch_size, len(data)), device=data.x.device))
            batch.pop("index")
            yield batch
