"""The tool behind benchmarks/README's account of β-TCVAE's MIG: ``benchmarks/mig_diagnosis.py``.

A code that carries the two positions of ``shapes_small`` along axes rotated by 45° has a MIG near 0
although it holds everything about them. Its total correlation is that of a uniform square turned into
a diamond, 1 − log 2 ≈ 0.307 nats (the two triangular marginals' entropies minus the square's); the
least-TC rotation must find that and undo it. The same code without the rotation must stay where it is.
"""

import math
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import mig_diagnosis  # noqa: E402
from pyro_deepvi.data import load  # noqa: E402


@pytest.fixture(scope="module")
def positions():
    data = load("shapes_small", "train")
    xy = (data.y[:, 3:5].double() - 15.5) / 9.2  # the positions, ~unit variance
    return data, xy


def rotation(degrees):
    t = math.radians(degrees)
    return torch.tensor([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]], dtype=torch.float64)


@pytest.mark.parametrize("degrees", [45, 0])
def test_least_tc_rotation_undoes_a_rotated_code_and_leaves_an_aligned_one(positions, degrees):
    data, xy = positions
    loc, scale = xy @ rotation(degrees).T, torch.full_like(xy, 0.05)
    g = torch.Generator().manual_seed(0)
    rows = torch.randperm(len(loc), generator=g)[:200]
    mig, _ = mig_diagnosis.mig_of_code(data, loc, scale, num_samples=500)
    change, found = mig_diagnosis.least_tc_rotation(loc, scale, rows, restarts=2, steps=60, generator=g)
    rotated_mig, gaps = mig_diagnosis.mig_of_code(data, *mig_diagnosis.rotated(found, loc, scale), num_samples=500)
    if degrees == 45:
        assert mig < 0.02
        assert change == pytest.approx(-(1 - math.log(2)), abs=0.05)
        assert min(gaps[3:]) > 0.6 and rotated_mig > 0.25
    else:
        assert mig > 0.25 and change > -0.01
        assert rotated_mig == pytest.approx(mig, abs=0.02)


def test_exact_decomposition_sums_to_the_average_kl(positions):
    """MI + TC + dimension-wise KL = E_n KL(q(z|x_n) ‖ N(0, I)), which has a closed form."""
    _, xy = positions
    loc, scale = xy, torch.full_like(xy, 0.3)
    g = torch.Generator().manual_seed(1)
    rows = torch.randperm(len(loc), generator=g)[:1000]
    parts = mig_diagnosis.exact_decomposition(loc, scale, rows, g)
    kl = (0.5 * (loc[rows] ** 2 + scale[rows] ** 2 - 1) - scale[rows].log()).sum(-1).mean()
    assert sum(parts) == pytest.approx(float(kl), abs=0.05)
    assert all(p > -0.02 for p in parts)
