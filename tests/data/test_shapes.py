"""The generated ``shapes`` sprites: sizes, determinism, factors, images that follow their factors."""

import pytest
import torch

from pyro_deepvi.data import load
from pyro_deepvi.data import shapes as S
from pyro_deepvi.registry import DATASETS

SPLITS = ("train", "valid", "test")


@pytest.fixture(scope="module")
def small():
    return {s: load("shapes_small", s) for s in SPLITS}


def test_constants():
    assert S.FACTOR_NAMES == ("shape", "scale", "orientation", "pos_x", "pos_y")
    assert S.FACTOR_SIZES == (3, 6, 40, 32, 32)
    assert S.NUM_COMBINATIONS == 737280
    assert torch.allclose(S.SCALES, torch.linspace(0.5, 1, 6, dtype=torch.float64))
    assert S.ORIENTATIONS[0] == 0 and S.ORIENTATIONS[-1] < 2 * torch.pi
    full = S.factors_of(torch.tensor([0, 1, 32, S.NUM_COMBINATIONS - 1]))
    assert full.tolist() == [[0, 0, 0, 0, 0], [0, 0, 0, 0, 1], [0, 0, 0, 1, 0], [2, 5, 39, 31, 31]]


@pytest.mark.parametrize("name", ["shapes", "shapes_small"])
def test_registered(name):
    assert name in DATASETS and DATASETS.summary(name)


def test_small_splits(small):
    assert S.SHAPES_SMALL_SIZES == {"train": 2400, "valid": 300, "test": 300}
    assert {s: len(d) for s, d in small.items()} == S.SHAPES_SMALL_SIZES
    for d in small.values():
        assert d.event_shape == (1024,) and d.x.dtype == torch.float32
        assert d.support == "binary" and d.binarize == "none" and d.num_classes is None
        assert ((d.x == 0) | (d.x == 1)).all()
        assert d.y.dtype == torch.int64 and d.y.shape == (len(d), 5)
        assert (d.y >= 0).all() and (d.y < torch.tensor(S.FACTOR_SIZES)).all()
        batch = d.batch(torch.arange(5))
        assert torch.equal(batch["x"], d.x[:5]) and torch.equal(batch["y"], d.y[:5])
    # Sampled without replacement: every row a different point of the factor grid.
    y = torch.cat([d.y for d in small.values()])
    assert torch.unique(y, dim=0).shape[0] == 3000
    # Every value of every factor occurs, and the images are the renders of their factors.
    for k, size in enumerate(S.FACTOR_SIZES):
        assert torch.equal(small["train"].y[:, k].unique(), torch.arange(size))
    assert torch.equal(S.render(small["test"].y), small["test"].x)


def test_full_set_determinism_and_nesting(small):
    # Generation time is measured by benchmarks, not asserted here: a busy CI machine fails it.
    S._shapes_arrays.cache_clear()
    train = load("shapes", "train")
    sizes = {s: len(load("shapes", s)) for s in SPLITS}
    assert sizes == S.SHAPES_SIZES == {"train": 16000, "valid": 2000, "test": 2000}
    assert train.event_shape == (1024,) and train.y.shape == (16000, 5)
    again = load("shapes", "train")  # from the cache: equal, and a copy
    assert torch.equal(again.x, train.x) and torch.equal(again.y, train.y)
    assert again.x.data_ptr() != train.x.data_ptr()
    # shapes_small draws the first 3,000 grid points of the same permutation as shapes.
    all_y = torch.cat([load("shapes", s).y for s in SPLITS])
    small_y = torch.cat([d.y for d in small.values()])
    strides = torch.tensor([737280 // 3, 737280 // 18, 1024, 32, 1])  # back to grid positions
    assert torch.isin((small_y * strides).sum(1), (all_y * strides).sum(1)).all()
    # Regenerated from scratch: the same tensors.
    S._shapes_arrays.cache_clear()
    fresh = load("shapes_small", "valid")
    assert torch.equal(fresh.x, small["valid"].x) and torch.equal(fresh.y, small["valid"].y)
    assert torch.unique((all_y * strides).sum(1)).numel() == 20000


def test_images_follow_their_factors(small):
    x, y = small["train"].x.reshape(-1, 32, 32), small["train"].y
    count = x.sum((1, 2))
    # More pixels at larger scales, and about the same for every shape at one scale.
    by_scale = torch.stack([count[y[:, 1] == s].mean() for s in range(6)])
    assert (by_scale.diff() > 5).all() and 15 < by_scale[0] < 25 and 70 < by_scale[-1] < 90
    for shape in range(3):
        mean = count[(y[:, 0] == shape) & (y[:, 1] == 5)].mean()
        assert abs(mean - by_scale[-1]) < 5
    # The centroid sits at the position factor (column = pos_x, row = pos_y, downwards).
    pixels = torch.arange(32.0)
    cx = (x.sum(1) * pixels).sum(1) / count
    cy = (x.sum(2) * pixels).sum(1) / count
    centre_x = S.POSITIONS[y[:, 3]].float() * 32 - 0.5
    centre_y = S.POSITIONS[y[:, 4]].float() * 32 - 0.5
    assert (cx - centre_x).abs().max() < 1.5 and (cy - centre_y).abs().max() < 1.5
    assert (cx - centre_x).abs().mean() < 0.5 and (cy - centre_y).abs().mean() < 0.5
    # Shapes never reach the border pixels.
    assert x[:, [0, -1]].sum() == 0 and x[:, :, [0, -1]].sum() == 0


def test_heart_is_upright():
    def top_and_bottom(orientation, pos):
        image = S.render(torch.tensor([[2, 5, orientation, pos, pos]])).reshape(32, 32)
        widths = image.sum(1)[image.sum(1) > 0]
        half = len(widths) // 2
        return widths[:half].sum(), widths[-half:].sum()

    for pos in (5, 15, 16, 26):
        top, bottom = top_and_bottom(0, pos)
        assert top > 1.3 * bottom  # wide lobes above, the point below
        top, bottom = top_and_bottom(20, pos)  # turned half way round: upside down
        assert bottom > 1.3 * top


def test_different_factors_give_different_images(small):
    y = small["train"].y
    x = S.render(y)

    def identical(k, step):
        moved = y.clone()
        moved[:, k] = (moved[:, k] + step) % S.FACTOR_SIZES[k]
        return (S.render(moved) == x).all(1).float().mean().item()

    assert identical(0, 1) == 0 and identical(0, 2) == 0  # another shape
    assert identical(1, 2) == 0 and identical(3, 2) == 0 and identical(4, 2) == 0
    for k in range(1, 5):  # one sub-pixel step, now and then, renders alike
        assert identical(k, 1) < 0.03
    # The symmetries of the square (a quarter turn) and the ellipse (a half turn), none for the heart.
    f = torch.tensor([[0, 3, 7, 10, 20], [1, 3, 7, 10, 20], [2, 3, 7, 10, 20]])
    quarter, half = f.clone(), f.clone()
    quarter[:, 2] += 10
    half[:, 2] += 20
    same_quarter = (S.render(quarter) == S.render(f)).all(1).tolist()
    same_half = (S.render(half) == S.render(f)).all(1).tolist()
    assert same_quarter == [True, False, False] and same_half == [True, True, False]


def test_render_rejects_bad_factors():
    with pytest.raises(ValueError, match="factor indices"):
        S.render(torch.tensor([[3, 0, 0, 0, 0]]))
    with pytest.raises(ValueError, match="factor indices"):
        S.render(torch.tensor([[0, 0, 40, 0, 0]]))
