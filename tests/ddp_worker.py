"""Run by tests/test_ddp.py, under ``torchrun --nproc_per_node 2`` or as one process.

``python ddp_worker.py OUT`` trains two runs and saves each rank's parameters:
``gaussian_mean``, a model with no latent variable, whose loss and gradients
are deterministic (so data parallelism must reproduce one process exactly),
and ``dlgm`` on ``digits``, whose ranks draw different noise but must still
hold identical parameters.
"""

import os
import sys

import pyro
import pyro.distributions as dist
import torch
from pyro.nn import PyroModule
from torch import nn

from pyro_deepvi import DATASETS, GUIDES, MODELS, TrainConfig
from pyro_deepvi.data import Dataset
from pyro_deepvi.engine import Trainer
from pyro_deepvi.models import data_plate


@DATASETS.register("ddp_toy", "64 three-dimensional Gaussian points (tests only)")
def load_ddp_toy(split, *, root=None, download=False):
    x = torch.randn(64, 3, generator=torch.Generator().manual_seed(7)) * 2 + 1
    return Dataset("ddp_toy", split, x)


@MODELS.register("gaussian_mean", "x ~ N(μ, diag σ²): no latent variable (tests only)")
class GaussianMean(PyroModule):
    max_plate_nesting = 1
    default_guide = "empty"
    support = "real"

    def __init__(self, num_data, dim):
        super().__init__()
        self.num_data = num_data
        self.loc = nn.Parameter(torch.zeros(dim))
        self.log_scale = nn.Parameter(torch.zeros(dim))
        self.batch_sizes = []

    def model(self, x, y=None, index=None):
        self.batch_sizes.append(x.shape[0])
        with data_plate(self.num_data, x, index):
            pyro.sample("x", dist.Normal(self.loc, self.log_scale.exp()).to_event(1), obs=x)

    @classmethod
    def from_data(cls, data, latent_dims, hidden_dims):
        return cls(len(data), data.event_shape[0])


class EmptyGuide(PyroModule):
    def forward(self, x, y=None, index=None):
        pass


GUIDES.register("empty", "no latent sites (tests only)")(lambda model, hidden_dims=(): EmptyGuide())


def main(out):
    rank = int(os.environ.get("RANK", "0"))
    world = int(os.environ.get("WORLD_SIZE", "1"))
    tag = f"world{world}_rank{rank}"
    common = dict(eval_every=0, progress=False, device="cpu")
    runs = {
        "mean": TrainConfig(model="gaussian_mean", data="ddp_toy", epochs=3, batch_size=16, lr=0.05, out=f"{out}/mean_world{world}", **common),
        "dlgm": TrainConfig(model="dlgm", data="digits", epochs=1, batch_size=100, latent_dims=(4,), hidden_dims=(16,), out=f"{out}/dlgm_world{world}", **common),
    }
    for name, config in runs.items():
        trainer = Trainer(config).fit()
        state = trainer.components.state_dict()
        state["batch_sizes"] = torch.tensor(getattr(trainer.components.model, "batch_sizes", []))
        torch.save(state, f"{out}/{name}_{tag}.pt")


if __name__ == "__main__":
    main(sys.argv[1])
