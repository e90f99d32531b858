"""
Two-view MNIST ("noisy MNIST") of Wang, Arora, Livescu & Bilmes (2015), used by VCCA.

``two_view_mnist`` is built from the digits of ``mnist5k`` and its split
(3,500 train / 500 valid / 1,000 test). For each digit of a split:

- view 1, ``x``: the digit rotated about its centre by an angle drawn
  uniformly from [−π/4, π/4] (bilinear interpolation, black outside);
- view 2, ``x2``: a *different* digit of the same class, drawn uniformly from
  the same split, with noise drawn uniformly from [0, 1] added to every pixel
  and the sum clipped to [0, 1];
- ``y``: the class, shared by both views.

The views share only the class: the rotation is private to view 1 and the
noise to view 2, which is what CCA-like models must see through. Values are
grey levels with support ``"unit_interval"`` (both views; the noise makes
binarizing view 2 lose most of the digit), for Gaussian likelihoods. All draws
come from a generator seeded ``TWO_VIEW_SEEDS[split]``, so every load is the
same; :func:`two_views` builds views from any digits and generator.
"""

import math

import torch
import torch.nn.functional as F

from ..registry import DATASETS
from .dataset import Dataset, split_index
from .mnist import MNIST5K_SIZES, _mnist5k_arrays

#: Seeds of the rotations, partners and noise of each split.
TWO_VIEW_SEEDS = {"train": 10, "valid": 11, "test": 12}
#: The largest rotation of view 1, in radians.
MAX_ANGLE = math.pi / 4


def rotate(images, angles):
    """Images ``[N, side²]`` rotated about their centres by ``angles`` ``[N]`` (radians, bilinear)."""
    side = math.isqrt(images.shape[1])
    cos, sin, zero = angles.cos(), angles.sin(), torch.zeros_like(angles)
    theta = torch.stack([torch.stack([cos, -sin, zero], -1), torch.stack([sin, cos, zero], -1)], -2)
    grid = F.affine_grid(theta, (len(images), 1, side, side), align_corners=False)
    rotated = F.grid_sample(images.reshape(-1, 1, side, side), grid, align_corners=False)
    return rotated.reshape(images.shape).clamp(0, 1)


def two_views(x, y, generator):
    """
    The two views of digits ``x`` ``[N, 784]`` in [0, 1] with labels ``y`` ``[N]``.

    Returns ``(view1, view2, angles, partners)``: ``view1[n]`` is ``x[n]``
    rotated by ``angles[n]`` ~ U[−π/4, π/4]; ``view2[n]`` is
    ``clip(x[partners[n]] + u, 0, 1)``, u ~ U[0, 1]⁷⁸⁴, with ``partners[n] ≠ n``
    a uniform draw among the other digits of class ``y[n]``.
    """
    n = len(x)
    angles = (torch.rand(n, generator=generator) * 2 - 1) * MAX_ANGLE
    partners = torch.empty(n, dtype=torch.int64)
    for label in y.unique():
        members = (y == label).nonzero().squeeze(1)
        if len(members) < 2:
            raise ValueError(f"two_views: class {int(label)} has {len(members)} digit(s); each class needs two")
        # An offset in [1, m) from each member's own position picks another member of its class.
        offsets = torch.randint(1, len(members), (len(members),), generator=generator)
        partners[members] = members[(torch.arange(len(members)) + offsets) % len(members)]
    noise = torch.rand(x.shape, generator=generator, dtype=x.dtype)
    return rotate(x, angles.to(x.dtype)), (x[partners] + noise).clamp(0, 1), angles, partners


@DATASETS.register("two_view_mnist", "mnist5k as two views (Wang et al. 2015): rotated digit / noisy digit of the same class")
def load_two_view_mnist(split, *, root=None, download=False):
    """Loads a split of ``two_view_mnist``; ``root`` and ``download`` are unused."""
    x, y = _mnist5k_arrays()
    index = split_index(MNIST5K_SIZES, split)
    x, y = x[index], y[index]
    view1, view2, _, _ = two_views(x, y, torch.Generator().manual_seed(TWO_VIEW_SEEDS[split]))
    return Dataset("two_view_mnist", split, view1, y, "unit_interval", num_classes=10, views={"x2": view2})
