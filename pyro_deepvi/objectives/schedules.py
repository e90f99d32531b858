"""Weights that change during training: constant, linear warm-up, cyclical annealing.

A weight is given as a number or as a string, on the command line and in
``TrainConfig.terms``::

    3                       constant 3
    linear:-1:0:10          from −1 to 0 over the first 10 epochs, then 0
                            (``--term rate=linear:-1:0:10`` is the KL warm-up of the
                            ladder VAE, Sønderby et al. 2016: β from 0 to 1)
    cyclic:-1:0:10          cyclical annealing (Fu et al., 2019): every 10 epochs,
                            rise linearly from −1 to 0 over the first half of the
                            cycle, then hold 0 (``cyclic:-1:0:10:0.5``; the last
                            number is the rising fraction)

A schedule is evaluated at the training progress in epochs (a float: epoch 2.5 is
half-way through the third epoch), so resuming from a checkpoint reproduces it.
Each schedule's ``least`` is the smallest weight it takes.
"""

import math


class Constant:
    def __init__(self, value):
        self.value = self.least = float(value)

    def __call__(self, epoch):
        return self.value


class Linear:
    """``start`` at epoch 0 to ``end`` at epoch ``epochs``, then ``end``."""

    def __init__(self, start, end, epochs):
        if epochs <= 0:
            raise ValueError(f"a linear schedule needs a positive number of epochs, got {epochs}")
        self.start, self.end, self.epochs = float(start), float(end), float(epochs)
        self.least = min(self.start, self.end)

    def __call__(self, epoch):
        progress = min(max(epoch / self.epochs, 0.0), 1.0)
        return self.start + (self.end - self.start) * progress


class Cyclic:
    """Repeats every ``period`` epochs: ``low`` to ``high`` over ``rise`` of the cycle, then ``high``."""

    def __init__(self, low, high, period, rise=0.5):
        if period <= 0 or not 0 < rise <= 1:
            raise ValueError(f"a cyclic schedule needs period > 0 and 0 < rise <= 1, got {period}, {rise}")
        self.low, self.high, self.period, self.rise = float(low), float(high), float(period), float(rise)
        self.least = min(self.low, self.high)

    def __call__(self, epoch):
        phase = (epoch % self.period) / self.period
        return self.low + (self.high - self.low) * min(phase / self.rise, 1.0)


SCHEDULES = {"linear": (Linear, 3, 3), "cyclic": (Cyclic, 3, 4)}


def parse_weight(spec):
    """A schedule from a number or a ``"kind:a:b:..."`` string (see the module docstring)."""
    if isinstance(spec, (int, float)) and not isinstance(spec, bool):
        return Constant(_finite(spec, spec))
    text = str(spec)
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is not None:
        return Constant(_finite(value, spec))
    kind, *numbers = text.split(":")
    if kind not in SCHEDULES:
        raise ValueError(
            f"cannot read the weight {spec!r}: give a number, or one of "
            f"{', '.join(f'{k}:...' for k in SCHEDULES)} (e.g. linear:-1:0:10)"
        )
    cls, least, most = SCHEDULES[kind]
    try:
        values = [float(n) for n in numbers]
    except ValueError:
        raise ValueError(f"the weight {spec!r} must have numbers after {kind!r}") from None
    if not least <= len(values) <= most:
        raise ValueError(f"a {kind} weight takes {least} to {most} numbers, got {len(values)} in {spec!r}")
    return cls(*(_finite(v, spec) for v in values))


def _finite(value, spec):
    if not math.isfinite(value):
        raise ValueError(f"the weight {spec!r} must be finite")
    return value
