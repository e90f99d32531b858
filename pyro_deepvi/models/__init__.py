"""Models, one module per section of the seed; importing registers them in ``MODELS``."""

from . import darn, dlgm, exponential_families, vib
from . import vlae  # noqa: F401
from .base import data_plate

__all__ = ["darn", "data_plate", "dlgm", "exponential_families", "vib"]
