"""A user's own data: arrays in memory, or a ``.npz`` file, as the three splits of a :class:`Dataset`.

The layout (``numpy.savez("mine.npz", x=..., y=..., x_test=...)``, or a dict of
the same keys given to ``TrainConfig(data=...)``):

=========================  =====================================================
``x``                      the training points, ``[N, *event_shape]`` (required)
``y``                      optional: integer class labels ``[N]`` or a second view
``x_valid``, ``y_valid``   optional validation split
``x_test``, ``y_test``     optional test split
``support``                optional: one of ``binary``, ``unit_interval``, ``real``,
                           ``count`` (inferred from ``x`` when absent)
=========================  =====================================================

A held-out split that is not given takes 10 % of the rows of ``x`` (a seeded
permutation, as for the embedded data sets). A single array is ``x`` alone.
Integer labels give ``num_classes = max(y) + 1``. The values are checked as
every data set's are (:func:`~pyro_deepvi.data.checks.check_values`).
"""

import os

import numpy as np
import torch

from .checks import check_values
from .dataset import SPLITS, Dataset, split_index

#: The data name a run trained on in-memory arrays records in ``config.json``.
ARRAYS = "arrays"
KEYS = ("x", "y", "x_valid", "y_valid", "x_test", "y_test", "support")
HELD_OUT_FRACTION = 0.1


def _tensor(value, key, name):
    try:
        tensor = torch.as_tensor(np.asarray(value.cpu() if torch.is_tensor(value) else value))
    except (TypeError, ValueError) as e:
        raise ValueError(f"{name}: {key} must be an array of numbers: {e}") from None
    if tensor.dtype == torch.bool:
        tensor = tensor.float()
    if not (tensor.is_floating_point() or tensor.dtype in (torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8)):
        raise ValueError(f"{name}: {key} must hold numbers, found dtype {tensor.dtype}")
    return tensor


def infer_support(x, what):
    """The narrowest support that holds every value of ``x``: binary, count, unit_interval or real."""
    check_values(x, "real", what)
    if bool(((x == 0) | (x == 1)).all()):
        return "binary"
    if bool(((x >= 0) & (x == x.round())).all()):
        return "count"
    if bool(((x >= 0) & (x <= 1)).all()):
        return "unit_interval"
    return "real"


def _split_arrays(arrays, name):
    """``{split: (x, y)}`` from the layout's keys, carving missing held-out splits from ``x``."""
    x, y = arrays["x"], arrays.get("y")
    given = {"train": (x, y)}
    for split in ("valid", "test"):
        if f"x_{split}" in arrays:
            given[split] = (arrays[f"x_{split}"], arrays.get(f"y_{split}"))
    missing = [s for s in SPLITS if s not in given]
    if not missing:
        return given
    carved = max(1, int(HELD_OUT_FRACTION * len(x)))
    sizes = {s: carved if s in missing else 0 for s in SPLITS}
    sizes["train"] = len(x) - carved * len(missing)
    if sizes["train"] < 1:
        raise ValueError(f"{name}: x has {len(x)} rows, too few to carve {', '.join(missing)} split(s) from; give x_valid and x_test")
    splits = {s: given[s] for s in given if s != "train"}
    for split in ("train", *missing):
        rows = split_index(sizes, split)
        splits[split] = (x[rows], None if y is None else y[rows])
    return splits


def splits_from_arrays(data, name=ARRAYS):
    """``{split: Dataset}`` from an array (``x``) or a mapping in the layout above."""
    if not hasattr(data, "keys"):
        data = {"x": data}
    unknown = set(data.keys()) - set(KEYS)
    if unknown:
        raise ValueError(f"{name}: unknown arrays {sorted(unknown)}; the layout has {', '.join(KEYS)}")
    if "x" not in data:
        raise ValueError(f"{name}: no array 'x' (the training points); found {sorted(data.keys())}")
    support = data.get("support")
    arrays = {k: _tensor(v, k, name) for k, v in data.items() if k != "support" and v is not None}
    for key in ("x", "x_valid", "x_test"):
        if key in arrays:
            arrays[key] = arrays[key].float()
            if arrays[key].dim() < 2:
                raise ValueError(f"{name}: {key} must have shape [N, *event_shape], found {tuple(arrays[key].shape)}")
    for key in ("y", "y_valid", "y_test"):
        if key in arrays and "x" + key[1:] not in arrays:
            raise ValueError(f"{name}: {key} is given without x{key[1:]}")
        if key in arrays and len(arrays[key]) != len(arrays["x" + key[1:]]):
            raise ValueError(f"{name}: {key} has {len(arrays[key])} rows but x{key[1:]} has {len(arrays['x' + key[1:]])}")
    support = str(np.asarray(support)) if support is not None else infer_support(arrays["x"], f"{name}: x")
    labels = [arrays[k] for k in ("y", "y_valid", "y_test") if k in arrays and not arrays[k].is_floating_point()]
    num_classes = int(max(int(y.max()) for y in labels if len(y))) + 1 if labels and any(len(y) for y in labels) else None
    return {
        split: Dataset(name, split, x, None if y is None else (y if y.is_floating_point() else y.long()), support, num_classes=num_classes)
        for split, (x, y) in _split_arrays(arrays, name).items()
    }


def load_npz(path, split):
    """One split of the ``.npz`` file ``path`` (layout above)."""
    if os.path.isdir(path):
        raise ValueError(f"data path {path!r} is a directory; give a .npz file")
    if not os.path.exists(path):
        raise FileNotFoundError(f"data file {path!r} does not exist")
    try:
        with np.load(path, allow_pickle=False) as arrays:
            data = {key: arrays[key] for key in arrays.files}
    except (OSError, ValueError) as e:
        raise ValueError(f"data file {path!r} is not a readable .npz file: {e}") from None
    return splits_from_arrays(data, os.path.basename(path))[split]
