"""
Generated sprites like dSprites (Matthey et al., 2017), with known factors of variation.

Each image is a white shape on black, 32x32 pixels (the image side is 32),
flattened row-major to 1,024 pixels with values exactly 0 or 1. Five
independent factors, each on an evenly spaced grid, generate it; ``y`` holds
their integer indices as an int64 tensor ``[N, 5]`` whose columns are, in the
order of :data:`FACTOR_NAMES`:

=============  ====  ===================================================
``shape``         3  0 square, 1 ellipse, 2 heart
``scale``         6  0.5 to 1 linearly (:data:`SCALES`)
``orientation``  40  2πk/40 radians, k = 0..39, over [0, 2π) (:data:`ORIENTATIONS`)
``pos_x``        32  the centre's column, 0.24 to 0.76 of the width (:data:`POSITIONS`)
``pos_y``        32  the centre's row, 0.24 to 0.76 of the height, downwards
=============  ====  ===================================================

The full product is 737,280 images, too many to hold, so two registered sets
each take a seeded random sample of the factor grid, without replacement, from
one permutation drawn from ``torch.Generator().manual_seed(SHAPES_SEED)``:

* ``shapes``: its first 20,000 draws, split 16,000 train / 2,000 valid /
  2,000 test;
* ``shapes_small``: its first 3,000 draws (a subset of ``shapes``), split
  2,400 / 300 / 300, for tests and quick runs.

The rows of a split are chosen by :func:`~pyro_deepvi.data.dataset.split_index`.
The images are rendered in memory on first use (about a second on one core),
cached for the process, and nothing is written to disk. They are binary
already, so no split is binarized again: ``support="binary"``,
``binarize="none"``, ``num_classes=None``.

A pixel is on when its centre falls inside the shape: with the centre ``c``,
scale ``s`` and orientation ``θ``, the pixel centre ``p`` (in units of the
image side) maps to shape coordinates ``u = R(-θ)(p - c) / (s L)`` with
``L = 0.28``, and the shape is the set

* square: ``max(|u_1|, |u_2|) <= 1/2``, side ``s L``;
* ellipse: ``(u_1/0.8)^2 + (u_2/0.4)^2 <= 1``, twice as long as wide;
* heart, upright at ``θ = 0``: a square of side 1 turned 45°,
  ``|a| + |b| <= 1/√2``, with a disc of radius 1/2 on each of its upper
  sides, centred at ``(±1/√8, 1/√8)``, where
  ``(a, b) = (u_1, -u_2) / 0.74 + (0, 1/4 - 1/√32)`` (``b`` points up the
  image; the offset centres the heart vertically).

All three have area about ``(s L)^2``, so the number of pixels on follows the
scale, not the shape (about 20 pixels at scale 0.5, 80 at scale 1). Each fits
in a disc of radius 0.224 at scale 1, so it never reaches the border pixels. As in dSprites, symmetric
shapes look the same at some different orientations (the square every quarter
turn, the ellipse every half turn), and at sub-pixel steps a few neighbouring
factor values render alike (about 1% of single-step changes; none of the
shape changes, nor of two-step changes of position or scale).
"""

import functools
import math

import torch

from ..registry import DATASETS
from .dataset import Dataset, split_index

#: The side of the square images, in pixels.
IMAGE_SIDE = 32
#: The columns of ``y``.
FACTOR_NAMES = ("shape", "scale", "orientation", "pos_x", "pos_y")
#: The number of values of each factor, in the order of :data:`FACTOR_NAMES`.
FACTOR_SIZES = (3, 6, 40, 32, 32)
#: The names of the values of the ``shape`` factor.
SHAPE_NAMES = ("square", "ellipse", "heart")
#: The values of the ``scale`` factor.
SCALES = torch.linspace(0.5, 1.0, FACTOR_SIZES[1], dtype=torch.float64)
#: The values of the ``orientation`` factor, in radians.
ORIENTATIONS = torch.arange(FACTOR_SIZES[2], dtype=torch.float64) * (2 * math.pi / FACTOR_SIZES[2])
#: The values of ``pos_x`` and ``pos_y``, in units of the image side.
POSITIONS = torch.linspace(0.24, 0.76, FACTOR_SIZES[3], dtype=torch.float64)
#: The number of images in the full factor grid.
NUM_COMBINATIONS = math.prod(FACTOR_SIZES)

#: Seed of the permutation of the factor grid that the sets sample from.
SHAPES_SEED = 0
SHAPES_SIZES = {"train": 16000, "valid": 2000, "test": 2000}
SHAPES_SMALL_SIZES = {"train": 2400, "valid": 300, "test": 300}

_UNIT = 0.28  # the side of the square at scale 1, in units of the image side
_ELLIPSE_AXES = (0.8, 0.4)
_HEART_SIZE = 0.74
_HEART_OFFSET = 0.25 - 1 / math.sqrt(32)
_CHUNK = 4096


def factors_of(index):
    """
    Returns the factor indices ``[N, 5]`` (int64) of the grid positions
    ``index`` (``[N]``, in ``[0, NUM_COMBINATIONS)``), the last factor varying
    fastest, like :func:`numpy.unravel_index`.
    """
    index = torch.as_tensor(index, dtype=torch.int64)
    columns = []
    for size in reversed(FACTOR_SIZES):
        columns.append(index % size)
        index = index // size
    return torch.stack(columns[::-1], -1)


def _inside(shape, u1, u2):
    square = torch.maximum(u1.abs(), u2.abs()) <= 0.5
    ellipse = (u1 / _ELLIPSE_AXES[0]) ** 2 + (u2 / _ELLIPSE_AXES[1]) ** 2 <= 1
    a, b = u1 / _HEART_SIZE, -u2 / _HEART_SIZE + _HEART_OFFSET  # b points up the image
    r = 1 / math.sqrt(8)
    lobes = torch.minimum((a - r) ** 2, (a + r) ** 2) + (b - r) ** 2 <= 0.25
    heart = (a.abs() + b.abs() <= 1 / math.sqrt(2)) | lobes
    return torch.where(shape == 0, square, torch.where(shape == 1, ellipse, heart))


def _render_chunk(factors):
    factors = factors.unsqueeze(-1)  # [N, 5, 1] against pixels [P]
    shape = factors[:, 0]
    scale = SCALES[factors[:, 1]] * _UNIT
    angle = ORIENTATIONS[factors[:, 2]]
    cx, cy = POSITIONS[factors[:, 3]], POSITIONS[factors[:, 4]]
    centres = (torch.arange(IMAGE_SIDE, dtype=torch.float64) + 0.5) / IMAGE_SIDE
    py, px = (g.reshape(-1) for g in torch.meshgrid(centres, centres, indexing="ij"))
    dx, dy = px - cx, py - cy
    cos, sin = torch.cos(angle), torch.sin(angle)
    # R(-θ) (p - c) / (s L); in image coordinates (y down) a positive θ turns the shape clockwise.
    u1 = (cos * dx + sin * dy) / scale
    u2 = (-sin * dx + cos * dy) / scale
    return _inside(shape, u1, u2)


def render(factors):
    """
    Renders the images of the factor indices ``factors`` (int ``[N, 5]``, columns
    as :data:`FACTOR_NAMES`): a float32 tensor ``[N, 1024]`` of 0s and 1s, each
    row a 32x32 image flattened row-major (row = y, downwards; column = x).
    """
    factors = torch.as_tensor(factors, dtype=torch.int64).reshape(-1, len(FACTOR_SIZES))
    sizes = torch.tensor(FACTOR_SIZES)
    if len(factors) and ((factors < 0) | (factors >= sizes)).any():
        raise ValueError(f"factor indices must lie in [0, size) for sizes {FACTOR_SIZES}")
    x = torch.empty(len(factors), IMAGE_SIDE * IMAGE_SIDE, dtype=torch.float32)
    for start in range(0, len(factors), _CHUNK):
        x[start : start + _CHUNK] = _render_chunk(factors[start : start + _CHUNK])
    return x


@functools.lru_cache(maxsize=2)
def _shapes_arrays(num):
    """The first ``num`` draws of the seeded permutation of the grid: images and factors."""
    perm = torch.randperm(NUM_COMBINATIONS, generator=torch.Generator().manual_seed(SHAPES_SEED))
    y = factors_of(perm[:num])
    return render(y), y


def _load(name, split, sizes):
    x, y = _shapes_arrays(sum(sizes.values()))
    index = split_index(sizes, split)
    return Dataset(name, split, x[index], y[index], support="binary", binarize="none")


@DATASETS.register("shapes", "20,000 generated 32x32 dSprites-like sprites with 5 known factors")
def load_shapes(split, *, root=None, download=False):
    """Loads a split of ``shapes``; ``root`` and ``download`` are unused."""
    return _load("shapes", split, SHAPES_SIZES)


@DATASETS.register("shapes_small", "3,000 generated 32x32 sprites with 5 known factors (tests)")
def load_shapes_small(split, *, root=None, download=False):
    """Loads a split of ``shapes_small``; ``root`` and ``download`` are unused."""
    return _load("shapes_small", split, SHAPES_SMALL_SIZES)
