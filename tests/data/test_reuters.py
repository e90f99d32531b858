import sys

import pytest
import torch

from pyro_deepvi.data import load, reuters
from pyro_deepvi.data.dataset import split_index
from pyro_deepvi.registry import DATASETS


def test_reuters_splits_are_disjoint_count_documents():
    assert "reuters" in DATASETS
    splits = {s: load("reuters", s) for s in ("train", "valid", "test")}
    assert {s: len(d) for s, d in splits.items()} == {"train": 315, "valid": 40, "test": 40}
    for d in splits.values():
        assert d.support == "count" and d.event_shape == (4258,) and d.y is None
        assert (d.x == d.x.round()).all() and (d.x >= 0).all()
        assert (d.x.sum(1) > 0).all()
    every = torch.cat([d.x for d in splits.values()])
    assert every.sum() == 84010  # every token of the corpus, each in one split
    index = torch.cat([split_index(reuters.REUTERS_SIZES, s) for s in splits])
    assert index.unique().numel() == 395
    assert torch.equal(load("reuters", "test").x, splits["test"].x)  # the same split every load
    assert len(reuters.reuters_vocabulary()) == 4258


def test_reuters_needs_lda(monkeypatch):
    monkeypatch.setitem(sys.modules, "lda.datasets", None)
    reuters._reuters_counts.cache_clear()
    try:
        with pytest.raises(ImportError, match=r"pyro-deepvi\[data\]"):
            load("reuters")
    finally:
        reuters._reuters_counts.cache_clear()
