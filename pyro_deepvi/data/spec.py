"""What a model's ``from_data`` reads from its training set, kept so that a run loads without it.

A checkpoint records :func:`data_spec` of the training split (shape, N, support,
classes, the shape of ``y`` and of each further view); :func:`stand_in` turns it back into a
:class:`Dataset` of zeros with the same description (an expanded tensor: no
memory), which sizes the model and creates its lazy parameters exactly as the
real data would.
"""

import torch

from .dataset import Dataset


def data_spec(data):
    """The description of ``data`` that :func:`stand_in` rebuilds: plain numbers and strings."""
    y = data.y
    return {
        "name": data.name,
        "event_shape": list(data.event_shape),
        "num_data": len(data),
        "support": data.support,
        "num_classes": data.num_classes,
        "y_shape": None if y is None else list(y.shape[1:]),
        "y_is_float": None if y is None else y.is_floating_point(),
        "views": {name: list(view.shape[1:]) for name, view in data.views.items()},
    }


def stand_in(spec):
    """A :class:`Dataset` of zeros described by ``spec`` (from :func:`data_spec`)."""
    shape = (spec["num_data"], *spec["event_shape"])
    x = torch.zeros(()).expand(shape)
    y = None
    if spec["y_shape"] is not None:
        dtype = torch.get_default_dtype() if spec["y_is_float"] else torch.long
        y = torch.zeros((), dtype=dtype).expand(spec["num_data"], *spec["y_shape"])
    views = {name: torch.zeros(()).expand(spec["num_data"], *shape) for name, shape in spec.get("views", {}).items()}
    return Dataset(spec["name"], "train", x, y, spec["support"], num_classes=spec["num_classes"], views=views)
