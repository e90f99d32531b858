"""Checks that data values fit a support, and that a model can score them."""

import inspect

import torch

SUPPORTS = ("binary", "unit_interval", "real", "count")

_EXPECTED = {
    "binary": "in {0, 1}",
    "unit_interval": "in [0, 1]",
    "count": "non-negative integers",
}

# The data supports each likelihood support can score.
_ACCEPTS = {
    "real": SUPPORTS,
    "unit_interval": ("unit_interval", "binary"),
    "binary": ("binary",),
    "count": ("count", "binary"),
}


def _check_support(support):
    if support not in SUPPORTS:
        raise ValueError(f"unknown support {support!r}; choose one of: {', '.join(SUPPORTS)}")


def _outside(x, support):
    if support == "binary":
        return (x != 0) & (x != 1)
    if support == "unit_interval":
        return (x < 0) | (x > 1)
    if support == "count":
        bad = x < 0
        if x.is_floating_point():
            bad = bad | (x != x.round())
        return bad
    return torch.zeros_like(x, dtype=torch.bool)


def check_values(x, support, what):
    """
    Raises a :class:`ValueError` unless every value of the tensor ``x`` is
    finite and lies in ``support``.

    :param torch.Tensor x: the values.
    :param str support: one of :data:`SUPPORTS`; ``"count"`` means
        non-negative integers.
    :param str what: names ``x`` in error messages, e.g. ``"mnist5k/train: x"``.
    """
    _check_support(support)
    num_nan = int(torch.isnan(x).sum())
    if num_nan:
        raise ValueError(f"{what} has {num_nan} NaN values")
    num_inf = int(torch.isinf(x).sum())
    if num_inf:
        raise ValueError(f"{what} has {num_inf} infinite values")
    bad = _outside(x, support)
    if bad.any():
        raise ValueError(
            f"{what} values must be {_EXPECTED[support]} for support {support!r}, "
            f"found {int(bad.sum())} other values, e.g. {x[bad][0].item():g} "
            f"(min {x.min().item():g} max {x.max().item():g})"
        )


def check_compatible(data_support, model_support, model_name, data_name=None):
    """
    Raises a :class:`ValueError` when a model whose likelihood has support
    ``model_support`` cannot score data whose values have ``data_support``.

    A ``"real"`` likelihood scores every support, ``"unit_interval"`` scores
    unit-interval and binary values, ``"binary"`` only binary values and
    ``"count"`` counts and binary values.

    :param str data_name: the data set, named in the error message.
    """
    _check_support(data_support)
    _check_support(model_support)
    if data_support not in _ACCEPTS[model_support]:
        data = "the data" if data_name is None else f"data set {data_name}"
        raise ValueError(
            f"model {model_name!r} has a {model_support!r} likelihood but {data} "
            f"gives {data_support!r} values; it accepts: {', '.join(_ACCEPTS[model_support])}"
        )


def check_views(view_names, model_fn, model_name, data_name):
    """
    Raises a :class:`ValueError` unless ``model_fn`` (a model's ``model``
    method) names in its signature every further view ``view_names`` of the
    data set, which :meth:`~pyro_deepvi.data.Dataset.batch` hands it by keyword.
    """
    parameters = inspect.signature(model_fn).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return
    missing = [name for name in view_names if name not in parameters]
    if missing:
        raise ValueError(
            f"data set {data_name} has the further view(s) {', '.join(missing)}, which model "
            f"{model_name!r} does not take; use a multi-view model (e.g. vcca) or a single-view data set"
        )
