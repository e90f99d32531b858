"""
Data sets as tensors: ``load(name, split)`` returns a :class:`Dataset`.

Embedded data sets come from packages of the ``[data]`` extra; full-size ones
load from a local folder, or download (checksum verified) only when asked to.
Nothing is cached on disk.
"""

from ..registry import DATASETS
from . import digits, mnist, reuters, shapes, two_view  # noqa: F401 (registers the data sets)
from .checks import SUPPORTS, check_compatible, check_values
from .dataset import SPLITS, Dataset


def load(name, split="train", *, root=None, download=False):
    """
    Loads one split of the registered data set ``name``.

    :param str name: a name registered in ``DATASETS``.
    :param str split: ``"train"``, ``"valid"`` or ``"test"``.
    :param root: the folder holding files of full-size data sets; defaults to
        ``$PYRO_DEEPVI_DATA``, else ``~/.cache/pyro_deepvi``.
    :param bool download: whether a missing file may be downloaded.
    :rtype: Dataset
    """
    builder = DATASETS.get(name)
    if split not in SPLITS:
        raise ValueError(f"{name}: unknown split {split!r}; choose one of: {', '.join(SPLITS)}")
    return builder(split, root=root, download=download)


__all__ = ["SPLITS", "SUPPORTS", "Dataset", "check_compatible", "check_values", "load"]
