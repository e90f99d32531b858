"""Regression data sets under the UCI protocol: 90/10 splits chosen by the name's suffix."""

import pytest
import torch

from pyro_deepvi.data import load
from pyro_deepvi.data.regression import NUM_SPLITS, uci_split


@pytest.mark.parametrize("name, rows, dims", [("boston", 506, 13), ("diabetes", 442, 10), ("step", 300, 1)])
def test_splits_are_90_10_disjoint_and_cover_the_data(name, rows, dims):
    train, test = load(name, "train"), load(name, "test")
    assert train.x.shape == (int(0.9 * rows), dims) and len(test) == rows - len(train)
    assert train.y.dtype == torch.float32 and train.y.shape == (len(train),) and train.support == "real"
    every = torch.cat([train.x, test.x])
    assert torch.unique(torch.cat([every, torch.cat([train.y, test.y])[:, None]], 1), dim=0).shape[0] == rows


def test_the_suffix_picks_a_split_deterministically_and_valid_is_train():
    first, again, other = load("boston:3", "test"), load("boston:3", "test"), load("boston:4", "test")
    assert torch.equal(first.x, again.x) and not torch.equal(first.x, other.x)
    assert torch.equal(load("boston", "train").x, load("boston:0", "train").x)
    valid, train = load("diabetes:5", "valid"), load("diabetes:5", "train")
    assert torch.equal(valid.x, train.x) and torch.equal(valid.y, train.y)
    assert first.name == "boston:3"


def test_bad_names_and_split_numbers_are_named():
    with pytest.raises(ValueError, match=f"split number must be in 0..{NUM_SPLITS - 1}, got 20"):
        load("boston:20")
    with pytest.raises(ValueError, match="suffix is a split number, as in step:3, got 'x'"):
        load("step:x")
    with pytest.raises(ValueError, match="'digits' has no variants"):
        load("digits:1")


def test_non_finite_targets_are_refused():
    x, y = torch.randn(20, 2), torch.randn(20)
    y[4] = float("nan")
    with pytest.raises(ValueError, match="y has 1 NaN values"):
        uci_split("toy", "train", x, y, 4)  # split 4 puts row 4 in train
    y[4] = float("inf")
    with pytest.raises(ValueError, match="infinite"):
        for split in ("train", "test"):
            uci_split("toy", split, x, y, 0)
