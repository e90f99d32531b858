"""Swappable guides, registered by name in ``GUIDES``; any guide whose sites match a model fits it."""

from . import autoregressive, chain, flows, gaussian, inducing, ladder, local, multiview, vlae
from .amortized import AmortizedGuide, Encoder
from .flows import IAFGuide
from .gaussian import AmortizedGaussianGuide

__all__ = ["AmortizedGaussianGuide", "AmortizedGuide", "Encoder", "IAFGuide", "autoregressive", "chain", "flows", "gaussian", "ladder", "local"]
