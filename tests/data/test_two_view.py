"""two_view_mnist (Wang et al. 2015) and the Dataset contract for further views."""

import math

import pytest
import torch

from pyro_deepvi import GUIDES, TrainConfig
from pyro_deepvi.data import Dataset, load
from pyro_deepvi.data.two_view import MAX_ANGLE, rotate, two_views
from pyro_deepvi.engine import build


@pytest.fixture(scope="module")
def test_split():
    return load("two_view_mnist", "test")


@pytest.fixture(scope="module")
def digits():
    """The grey digits and labels of mnist5k's test split, the source of two_view_mnist's."""
    data = load("mnist5k_grey", "test")
    return data.x, data.y


def test_splits_follow_mnist5k(test_split, digits):
    for split, size in (("train", 3500), ("valid", 500), ("test", 1000)):
        assert len(load("two_view_mnist", split)) == size
    assert torch.equal(test_split.y, digits[1])
    assert test_split.num_classes == 10 and test_split.support == "unit_interval"
    assert set(test_split.views) == {"x2"} and test_split.views["x2"].shape == test_split.x.shape


def test_loads_are_deterministic(test_split):
    again = load("two_view_mnist", "test")
    assert torch.equal(again.x, test_split.x) and torch.equal(again.views["x2"], test_split.views["x2"])


def test_views_share_the_class_but_not_the_digit(digits):
    x, y = digits
    view1, view2, angles, partners = two_views(x, y, torch.Generator().manual_seed(0))
    assert torch.equal(y[partners], y)  # same class across views
    assert (partners != torch.arange(len(x))).all()  # a different image
    assert len(partners.unique()) > 0.5 * len(x)  # partners spread over the class, not one per class
    assert view1.shape == view2.shape == x.shape


def test_view1_is_the_digit_rotated_within_the_angle_range(digits):
    x, y = digits
    view1, _, angles, _ = two_views(x, y, torch.Generator().manual_seed(0))
    assert angles.abs().max() <= MAX_ANGLE == pytest.approx(math.pi / 4)
    assert angles.min() < -0.9 * MAX_ANGLE and angles.max() > 0.9 * MAX_ANGLE  # the whole range is used
    assert torch.allclose(view1, rotate(x, angles))
    assert torch.allclose(view1.sum(1), x.sum(1), rtol=0.1)  # a rotation keeps the ink, near the centre


def test_rotation_is_a_rotation():
    image = torch.rand(3, 28 * 28)
    assert torch.allclose(rotate(image, torch.zeros(3)), image, atol=1e-5)
    quarter = rotate(image, torch.full((3,), math.pi / 2)).reshape(3, 28, 28)
    # With pixel centres symmetric about the centre, a quarter turn maps pixels to pixels exactly.
    assert torch.allclose(quarter, image.reshape(3, 28, 28).rot90(1, (1, 2)), atol=1e-5)


def test_view2_is_the_partner_plus_clipped_uniform_noise(digits):
    x, y = digits
    _, view2, _, partners = two_views(x, y, torch.Generator().manual_seed(0))
    noise = view2 - x[partners]
    assert view2.min() >= 0 and view2.max() <= 1
    assert (noise >= 0).all() and (noise <= 1).all()
    background = x[partners] == 0
    # On the background the noise is U[0, 1] itself: mean 1/2, variance 1/12.
    assert noise[background].mean() == pytest.approx(0.5, abs=0.01)
    assert noise[background].var() == pytest.approx(1 / 12, abs=0.005)
    # On the ink (values near 1) nearly every sum passes 1 and is clipped to it.
    assert (view2[x[partners] > 0.95] == 1).float().mean() > 0.9


def test_other_seeds_give_other_views(digits):
    x, y = digits
    a = two_views(x, y, torch.Generator().manual_seed(0))
    b = two_views(x, y, torch.Generator().manual_seed(1))
    assert not torch.equal(a[0], b[0]) and not torch.equal(a[3], b[3])


def test_batch_hands_every_view_by_keyword(test_split):
    index = torch.tensor([3, 1, 4])
    batch = test_split.batch(index)
    assert set(batch) == {"x", "x2", "y", "index"}
    assert torch.equal(batch["x2"], test_split.views["x2"][index])
    rows = test_split.rows(index)
    assert torch.equal(rows.views["x2"], batch["x2"]) and torch.equal(rows.y, test_split.y[index])
    assert test_split.to("cpu").views["x2"] is not None


def test_dynamic_binarization_binarizes_the_views_too():
    data = Dataset("toy", "train", torch.full((4, 3), 0.5), support="binary", binarize="dynamic", views={"v": torch.full((4, 2), 0.5)})
    batch = data.batch(torch.arange(4))
    assert set(batch["v"].unique().tolist()) <= {0.0, 1.0}


@pytest.mark.parametrize(
    "views, message",
    [
        ({"y": torch.zeros(4, 2)}, "identifier other than x, y, index"),
        ({"v": torch.zeros(3, 2)}, r"shape \[4, ...\]"),
        ({"v": torch.zeros(4, 2, dtype=torch.int64)}, "floating-point"),
        ({"v": torch.full((4, 2), 2.0)}, "view 'v' values must be in \\[0, 1\\]"),
    ],
)
def test_bad_views_are_refused_by_name(views, message):
    with pytest.raises(ValueError, match=message):
        Dataset("toy", "train", torch.zeros(4, 3), support="unit_interval", views=views)


def test_generic_guides_see_only_x(test_split):
    from pyro_deepvi.models.dlgm import DLGM

    model = DLGM(test_split.event_shape, len(test_split), latent_dims=(3,), hidden_dims=(8,), likelihood="gaussian")
    guide = GUIDES.get("diag")(model, hidden_dims=(8,))
    batch = test_split.batch(torch.arange(5))
    guide(**batch)  # the further view x2 is accepted and not encoded


def test_a_single_view_model_refuses_multi_view_data(test_split):
    config = TrainConfig(model="dlgm", data="two_view_mnist", model_args={"likelihood": "gaussian"}, latent_dims=(3,), hidden_dims=(8,))
    with pytest.raises(ValueError, match="further view.*x2.*'dlgm' does not take"):
        build(config, test_split)
