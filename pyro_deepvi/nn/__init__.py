from .made import MADE, AutoregressiveBernoulli, MaskedLinear
from .mlp import MLP, BatchNorm, loc_and_variance

__all__ = ["BatchNorm", "MLP", "MADE", "AutoregressiveBernoulli", "MaskedLinear", "loc_and_variance"]
