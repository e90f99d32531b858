from .made import MADE, AutoregressiveBernoulli, MaskedLinear
from .mlp import ACTIVATIONS, MLP, BatchNorm, activation_class, loc_and_variance

__all__ = ["ACTIVATIONS", "BatchNorm", "MLP", "activation_class", "MADE", "AutoregressiveBernoulli", "MaskedLinear", "loc_and_variance"]
