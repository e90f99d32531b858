"""Models, one module per section of the seed; importing registers them in ``MODELS``."""

from . import dlgm, vib
from .base import data_plate

__all__ = ["data_plate", "dlgm", "vib"]
