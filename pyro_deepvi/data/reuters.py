"""
Reuters news stories as word counts.

``reuters`` holds the 395 Reuters stories that the ``lda`` package ships
(:func:`lda.datasets.load_reuters`, no download): one row per document, one
column per word of a 4,258-word vocabulary, each entry the number of times the
word occurs in the document (84,010 tokens in all; documents have 36 to 541
tokens). A permutation drawn from ``torch.Generator().manual_seed(0)`` splits
the documents into 315 train, 40 valid and 40 test (see
:func:`~pyro_deepvi.data.dataset.split_index`): held-out documents are
evaluated by document completion (:mod:`pyro_deepvi.evaluation.perplexity`),
which splits each one's tokens again.
"""

import functools

import torch

from ..registry import DATASETS
from .dataset import Dataset, split_index

REUTERS_SIZES = {"train": 315, "valid": 40, "test": 40}


def _lda_datasets():
    try:
        import lda.datasets
    except ImportError as e:
        raise ImportError("reuters needs the [data] extra (the lda package): pip install 'pyro-deepvi[data]'") from e
    return lda.datasets


@functools.lru_cache(maxsize=1)
def _reuters_counts():
    return torch.tensor(_lda_datasets().load_reuters(), dtype=torch.float32)


def reuters_vocabulary():
    """The 4,258 words of ``reuters``, in column order."""
    return list(_lda_datasets().load_reuters_vocab())


@DATASETS.register("reuters", "395 Reuters stories (lda) as counts of 4,258 words, 315/40/40 documents")
def load_reuters(split, *, root=None, download=False):
    """Loads a split of ``reuters``; ``root`` and ``download`` are unused."""
    counts = _reuters_counts()
    if len(counts) != sum(REUTERS_SIZES.values()):
        raise ValueError(f"reuters: expected {sum(REUTERS_SIZES.values())} documents, found {len(counts)}")
    return Dataset("reuters", split, counts[split_index(REUTERS_SIZES, split)], support="count")
