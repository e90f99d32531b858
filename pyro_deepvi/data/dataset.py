"""The :class:`Dataset` container and the seeded split shared by embedded data sets."""

import dataclasses
from dataclasses import dataclass, field
from typing import Dict, Optional

import torch

from .checks import SUPPORTS, check_values

SPLITS = ("train", "valid", "test")
#: Keywords of every batch, which a further view cannot take as its name.
BATCH_KEYS = ("x", "y", "index")
BINARIZE = ("none", "dynamic")

#: Seed of the permutation that splits an embedded data set.
SPLIT_SEED = 0
#: Seeds of the one fixed binarization of the valid and test splits.
BINARIZATION_SEEDS = {"valid": 1, "test": 2}


@dataclass(frozen=True, eq=False)
class Dataset:
    """
    One split of a data set, held as tensors.

    Views and labels: :meth:`batch` hands a model its keyword arguments,
    ``x`` (the first view), ``index``, ``y`` where there are labels, and
    each further view under its name in ``views`` (``two_view_mnist`` names
    its second view ``x2``). A multi-view model names the views it uses in
    its signature, ``model(x, x2, y=None, index=None)``; a guide that encodes
    ``x`` alone (the generic amortized ones) takes ``**views`` and ignores
    them, so one guide serves single- and multi-view data. A model that
    names no further view refuses data that has one (``build`` says so).

    :param str name: the data set's registered name.
    :param str split: ``"train"``, ``"valid"`` or ``"test"``.
    :param torch.Tensor x: floating-point values of shape ``[N, *event_shape]``.
    :param torch.Tensor y: int64 labels ``[N]`` or a second view ``[N, ...]``.
    :param str support: the values the model sees, one of
        :data:`~pyro_deepvi.data.checks.SUPPORTS`.
    :param str binarize: ``"dynamic"`` when ``x`` holds probabilities and
        every minibatch draws ``torch.bernoulli(x)``; ``"none"`` to use ``x``
        as is.
    :param int num_classes: the number of label classes, if ``y`` holds labels.
    :param dict views: further views of the same data points, name ->
        floating-point tensor ``[N, ...]`` with the values of ``support``
        (binarized with ``x`` when ``binarize == "dynamic"``).
    """

    name: str
    split: str
    x: torch.Tensor
    y: Optional[torch.Tensor] = None
    support: str = "real"
    binarize: str = "none"
    num_classes: Optional[int] = None
    views: Dict[str, torch.Tensor] = field(default_factory=dict)

    def __post_init__(self):
        where = f"{self.name}/{self.split}"
        if self.split not in SPLITS:
            raise ValueError(f"{where}: split must be one of {', '.join(SPLITS)}")
        if self.binarize not in BINARIZE:
            raise ValueError(
                f"{where}: binarize must be one of {', '.join(BINARIZE)}, found {self.binarize!r}"
            )
        if self.support not in SUPPORTS:
            raise ValueError(
                f"{where}: support must be one of {', '.join(SUPPORTS)}, found {self.support!r}"
            )
        x = self.x
        if not isinstance(x, torch.Tensor):
            raise ValueError(f"{where}: x must be a torch.Tensor, found {type(x).__name__}")
        if not x.is_floating_point():
            raise ValueError(f"{where}: x must be a floating-point tensor, found {x.dtype}")
        if x.dim() < 2:
            raise ValueError(f"{where}: x must have shape [N, *event_shape], found {tuple(x.shape)}")
        if self.binarize == "dynamic":
            if self.support != "binary":
                raise ValueError(
                    f"{where}: binarize='dynamic' needs support 'binary', found {self.support!r}"
                )
            check_values(x, "unit_interval", f"{where}: x")
        else:
            check_values(x, self.support, f"{where}: x")
        if self.y is not None:
            self._check_y(where)
        for name, view in self.views.items():
            self._check_view(where, name, view)

    def _check_view(self, where, name, view):
        if name in BATCH_KEYS or not name.isidentifier():
            raise ValueError(
                f"{where}: a view's name must be a Python identifier other than "
                f"{', '.join(BATCH_KEYS)}, found {name!r}"
            )
        if not isinstance(view, torch.Tensor) or not view.is_floating_point():
            found = view.dtype if isinstance(view, torch.Tensor) else type(view).__name__
            raise ValueError(f"{where}: view {name!r} must be a floating-point tensor, found {found}")
        if view.dim() < 2 or view.shape[0] != len(self):
            raise ValueError(
                f"{where}: view {name!r} must have shape [{len(self)}, ...] like x, found {tuple(view.shape)}"
            )
        support = "unit_interval" if self.binarize == "dynamic" else self.support
        check_values(view, support, f"{where}: view {name!r}")

    def _check_y(self, where):
        y = self.y
        if not isinstance(y, torch.Tensor):
            raise ValueError(f"{where}: y must be a torch.Tensor, found {type(y).__name__}")
        if y.dim() < 1 or y.shape[0] != len(self):
            raise ValueError(
                f"{where}: y must have {len(self)} rows like x, found shape {tuple(y.shape)}"
            )
        if y.is_floating_point():
            check_values(y, "real", f"{where}: y")
        elif self.num_classes is not None and len(y):
            if y.min() < 0 or y.max() >= self.num_classes:
                raise ValueError(
                    f"{where}: y labels must be in [0, {self.num_classes}), "
                    f"found min {int(y.min())} max {int(y.max())}"
                )

    @property
    def event_shape(self):
        return self.x.shape[1:]

    def __len__(self):
        return self.x.shape[0]

    def batch(self, index):
        """
        Returns the rows ``index`` as ``{"x": ..., "index": index}``, plus
        ``"y"`` when there are labels and each further view under its name;
        ``x`` and the views are freshly binarized when ``binarize == "dynamic"``.
        """
        batch = {"x": self.x[index], "index": index}
        batch.update((name, view[index]) for name, view in self.views.items())
        if self.binarize == "dynamic":
            for name in ("x", *self.views):
                batch[name] = torch.bernoulli(batch[name])
        if self.y is not None:
            batch["y"] = self.y[index]
        return batch

    def rows(self, index):
        """Returns the data set of the rows ``index`` (of ``x``, ``y`` and every view)."""
        y = None if self.y is None else self.y[index]
        views = {name: view[index] for name, view in self.views.items()}
        return dataclasses.replace(self, x=self.x[index], y=y, views=views)

    def to(self, device):
        """Returns a copy whose ``x``, ``y`` and views live on ``device``."""
        y = None if self.y is None else self.y.to(device)
        views = {name: view.to(device) for name, view in self.views.items()}
        return dataclasses.replace(self, x=self.x.to(device), y=y, views=views)


def split_index(sizes, split):
    """
    Returns the rows of ``split`` in an embedded data set whose
    ``sizes[s]`` for ``s`` in ``SPLITS`` sum to its number of rows: a
    permutation drawn from ``torch.Generator().manual_seed(SPLIT_SEED)``
    gives its first rows to train, the next to valid and the rest to test.
    """
    total = sum(sizes[s] for s in SPLITS)
    perm = torch.randperm(total, generator=torch.Generator().manual_seed(SPLIT_SEED))
    start = sum(sizes[s] for s in SPLITS[: SPLITS.index(split)])
    return perm[start : start + sizes[split]]


def seeded_split(name, split, x, y, sizes, *, num_classes=None, binarized=True):
    """
    Builds one split of an embedded data set from grey values ``x`` in
    ``[0, 1]`` and labels ``y``, rows chosen by :func:`split_index`.

    With ``binarized=True`` the train split is binarized dynamically and the
    valid and test splits once, by ``torch.bernoulli`` with a generator seeded
    ``BINARIZATION_SEEDS[split]``; otherwise the grey values are kept with
    support ``"unit_interval"``.
    """
    if len(x) != sum(sizes.values()):
        raise ValueError(f"{name}: expected {sum(sizes.values())} rows, found {len(x)}")
    index = split_index(sizes, split)
    x, y = x[index], y[index]
    if not binarized:
        return Dataset(name, split, x, y, support="unit_interval", num_classes=num_classes)
    return binarized_split(name, split, x, y, num_classes)


def binarized_split(name, split, x, y, num_classes=None):
    """
    One split of grey values ``x`` in ``[0, 1]`` as binary data: the train
    split binarized afresh in every minibatch, valid and test once, by
    ``torch.bernoulli`` with a generator seeded ``BINARIZATION_SEEDS[split]``.
    """
    if split == "train":
        return Dataset(name, split, x, y, "binary", "dynamic", num_classes)
    generator = torch.Generator().manual_seed(BINARIZATION_SEEDS[split])
    x = torch.bernoulli(x, generator=generator)
    return Dataset(name, split, x, y, "binary", "none", num_classes)
