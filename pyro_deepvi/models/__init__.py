"""Models, one module per section of the seed; importing registers them in ``MODELS``."""

from . import darn, dlgm, exponential_families, lvae, vib
from .base import data_plate

__all__ = ["darn", "data_plate", "dlgm", "exponential_families", "lvae", "vib"]
