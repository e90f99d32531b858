"""
scikit-learn's 8x8 digits.

``digits`` holds the 1,797 images of :func:`sklearn.datasets.load_digits`
(bundled with scikit-learn, no download), flattened to 64 pixels and divided
by 16 into ``[0, 1]``, with labels 0-9. A permutation drawn from
``torch.Generator().manual_seed(0)`` splits them into 1,197 train, 200 valid
and 400 test rows. The train split is binarized afresh in every minibatch;
valid and test are binarized once by ``torch.bernoulli`` with a generator
seeded 1 (valid) or 2 (test).
"""

import torch

from ..registry import DATASETS
from .dataset import seeded_split

DIGITS_SIZES = {"train": 1197, "valid": 200, "test": 400}


@DATASETS.register("digits", "scikit-learn's 1,797 8x8 digits, binarized, with labels")
def load_digits(split, *, root=None, download=False):
    """Loads a split of ``digits``; ``root`` and ``download`` are unused."""
    try:
        from sklearn.datasets import load_digits as sklearn_load_digits
    except ImportError as e:
        raise ImportError("digits needs the [data] extra: pip install 'pyro-deepvi[data]'") from e
    digits = sklearn_load_digits()
    x = torch.tensor(digits.data / 16.0, dtype=torch.float32)
    y = torch.tensor(digits.target, dtype=torch.int64)
    return seeded_split("digits", split, x, y, DIGITS_SIZES, num_classes=10)
