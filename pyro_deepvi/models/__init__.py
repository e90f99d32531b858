"""Models, one module per section of the seed; importing registers them in ``MODELS``."""

from . import darn, deep_gp, dlgm, exponential_families, lvae, vcca, vib, vlae
from .base import data_plate

__all__ = ["darn", "data_plate", "deep_gp", "dlgm", "exponential_families", "lvae", "vcca", "vib", "vlae"]
