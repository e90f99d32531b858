"""
Regression data sets under the UCI protocol of Salimbeni & Deisenroth (2017).

``boston`` (the 506 houses × 13 features that mlxtend ships), ``diabetes``
(scikit-learn's 442 patients × 10 features, bundled, no download) and ``step``
(generated: 300 inputs uniform on [−1, 1], y = 1[x > 0] + N(0, 0.05²), seed 0)
hold float inputs ``x`` [N, D] and float targets ``y`` [N], in their original
units. A model standardizes both with the training split's statistics and
reports its metrics in these units (see :mod:`pyro_deepvi.models.deep_gp`).

Split number. The protocol repeats every measurement over ``NUM_SPLITS`` = 20
random 90/10 train/test splits; the data set's name chooses one: ``boston`` is
split 0 and ``boston:7`` split 7 (``load("boston:7", "test")``,
``pyro-deepvi train dgp --data boston:7``). Split k is the permutation of
``torch.Generator().manual_seed(k)``: its first ⌊0.9 N⌋ rows are train, the
rest test.

``valid`` reuses the training rows: the protocol has no validation set (its
hyperparameters are fixed in advance), so carving one out would shrink the
training split below the paper's 90 %; validation during training reports the
fit to the training data, and the held-out figures come from ``test`` only.
"""

import math

import torch

from ..registry import DATASETS
from .dataset import Dataset

NUM_SPLITS = 20
TRAIN_FRACTION = 0.9


def uci_split(name, split, x, y, number):
    """
    Split ``number`` (0 to ``NUM_SPLITS`` − 1) of ``(x, y)`` under the UCI protocol
    (see the module docstring), as a :class:`~pyro_deepvi.data.Dataset` of float
    inputs and targets; ``valid`` is the training rows.
    """
    if not 0 <= number < NUM_SPLITS:
        raise ValueError(f"{name}: split number must be in 0..{NUM_SPLITS - 1}, got {number}")
    x, y = torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y, dtype=torch.float32)
    if y.dim() != 1 or len(y) != len(x):
        raise ValueError(f"{name}: y must be one target per row of x ({len(x)}), found shape {tuple(y.shape)}")
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(number))
    num_train = math.floor(TRAIN_FRACTION * len(x))
    index = perm[num_train:] if split == "test" else perm[:num_train]
    return Dataset(f"{name}:{number}", split, x[index], y[index], support="real")


def _number(variant, name):
    if not variant:
        return 0
    try:
        return int(variant)
    except ValueError:
        raise ValueError(f"{name}: the name's suffix is a split number, as in {name}:3, got {variant!r}") from None


def _regression(name, summary):
    def register(arrays):
        def load(split, *, root=None, download=False, variant=""):
            x, y = arrays()
            return uci_split(name, split, x, y, _number(variant, name))

        load.__doc__ = f"Loads a split of ``{name}`` (``{name}:K`` for split K); ``root`` and ``download`` are unused."
        load.takes_variant = True
        return DATASETS.register(name, summary)(load)

    return register


@_regression("boston", "Boston housing (mlxtend): 506 × 13, median value; boston:K is UCI split K of 20")
def boston_arrays():
    try:
        from mlxtend.data import boston_housing_data
    except ImportError as e:
        raise ImportError("boston needs the [data] extra: pip install 'pyro-deepvi[data]'") from e
    return boston_housing_data()


@_regression("diabetes", "scikit-learn's diabetes: 442 × 10, disease progression; diabetes:K is split K of 20")
def diabetes_arrays():
    try:
        from sklearn.datasets import load_diabetes
    except ImportError as e:
        raise ImportError("diabetes needs the [data] extra: pip install 'pyro-deepvi[data]'") from e
    data = load_diabetes()
    return data.data, data.target


STEP_SIZE, STEP_NOISE = 300, 0.05


@_regression("step", "a step function: 300 inputs on [-1, 1], y = 1[x > 0] + N(0, 0.05²); step:K is split K of 20")
def step_arrays():
    g = torch.Generator().manual_seed(0)
    x = 2 * torch.rand(STEP_SIZE, 1, generator=g) - 1
    y = (x[:, 0] > 0).float() + STEP_NOISE * torch.randn(STEP_SIZE, generator=g)
    return x, y
