"""Shared fixtures: a synthetic probabilistic-PCA data set registered as ``ppca_toy``."""

import pyro
import pytest
import torch

from pyro_deepvi.data import Dataset
from pyro_deepvi.registry import DATASETS
from pyro_deepvi.settings import module_local_params

PPCA_DIM, PPCA_LATENT, PPCA_SIZES = 6, 2, {"train": 400, "valid": 100, "test": 100}


def _ppca_data(split):
    g = torch.Generator().manual_seed(123)
    W = torch.randn(PPCA_DIM, PPCA_LATENT, generator=g)
    b = torch.randn(PPCA_DIM, generator=g)
    offset = {"train": 0, "valid": 1, "test": 2}[split]
    g = torch.Generator().manual_seed(1000 + offset)
    n = PPCA_SIZES[split]
    h = torch.randn(n, PPCA_LATENT, generator=g)
    return h @ W.T + b + 0.5 * torch.randn(n, PPCA_DIM, generator=g)


@DATASETS.register("ppca_toy", "synthetic probabilistic-PCA data (tests only): 6 dims, 2 factors")
def load_ppca_toy(split, *, root=None, download=False):
    return Dataset("ppca_toy", split, _ppca_data(split), support="real")


@pytest.fixture
def ppca_data():
    return {split: load_ppca_toy(split) for split in PPCA_SIZES}


@pytest.fixture(autouse=True)
def library_param_mode():
    """Each test runs with Pyro's ``module_local_params`` on, as the library's engine does: models and
    guides a test builds itself keep their parameters to themselves, never in Pyro's global param store
    (where two tests' modules would share names). A test of Pyro's default mode turns it off inside."""
    with module_local_params():
        yield


@pytest.fixture(autouse=True)
def one_thread():
    """One intra-op thread per test: the networks here are tiny, and on a small shared
    machine several OpenMP threads slow them down several-fold."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def paired_losses():
    """``(loss, base)`` of two components on one batch and the same random draws, after a warm-up each."""

    def losses(components, without, batch, seed=7):
        components(batch)  # warm-up: guesses the plate nesting
        without(batch)
        pyro.set_rng_seed(seed)
        loss = components(batch)
        pyro.set_rng_seed(seed)
        return loss, without(batch)

    return losses


@pytest.fixture
def fit_digits(tmp_path):
    """``fit(terms)``: a small dlgm trained 3 epochs on digits with those plug-in terms; its components."""
    from pyro_deepvi import TrainConfig
    from pyro_deepvi.engine import Trainer

    def fit(terms):
        config = TrainConfig(
            data="digits", terms=terms, latent_dims=(4,), hidden_dims=(16,), epochs=3, batch_size=100, lr=3e-3,
            eval_every=0, progress=False, seed=0, device="cpu", out=str(tmp_path / "-".join(terms) or "plain"),
        )
        return Trainer(config).fit().components

    return fit
