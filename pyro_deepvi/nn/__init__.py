from .made import MADE, AutoregressiveBernoulli, MaskedLinear
from .mlp import MLP

__all__ = ["MLP", "MADE", "AutoregressiveBernoulli", "MaskedLinear"]
