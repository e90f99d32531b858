"""
Data sets as tensors: ``load(name, split)`` returns a :class:`Dataset`.

Embedded data sets come from packages of the ``[data]`` extra; full-size ones
load from a local folder, or download (checksum verified) only when asked to.
Nothing is cached on disk.
"""

from ..registry import DATASETS
from . import digits, mnist, mnist_files, regression, reuters, shapes, two_view  # noqa: F401 (registers the data sets)
from .arrays import load_npz
from .checks import SUPPORTS, check_compatible, check_values
from .dataset import SPLITS, Dataset


def load(name, split="train", *, root=None, download=False):
    """
    Loads one split of the registered data set ``name``.

    :param str name: a name registered in ``DATASETS`` (``name:variant`` picks a
        variant of data sets that have them: ``boston:3``, split 3 of 20), or the
        path of a ``.npz`` file (layout in :mod:`pyro_deepvi.data.arrays`).
    :param str split: ``"train"``, ``"valid"`` or ``"test"``.
    :param root: the folder holding files of full-size data sets; defaults to
        ``$PYRO_DEEPVI_DATA``, else ``~/.cache/pyro_deepvi``.
    :param bool download: whether a missing file may be downloaded.
    :rtype: Dataset
    """
    npz = name.endswith(".npz") and name not in DATASETS
    base, sep, variant = ("", "", "") if npz else name.partition(":")
    builder = None if npz else DATASETS.get(base)
    if split not in SPLITS:
        raise ValueError(f"{name}: unknown split {split!r}; choose one of: {', '.join(SPLITS)}")
    if npz:
        return load_npz(name, split)
    if not sep:
        return builder(split, root=root, download=download)
    if not getattr(builder, "takes_variant", False):
        raise ValueError(f"{name}: data set {base!r} has no variants (nothing may follow ':')")
    return builder(split, root=root, download=download, variant=variant)


__all__ = ["SPLITS", "SUPPORTS", "Dataset", "check_compatible", "check_values", "load"]
