"""Swappable guides, registered by name in ``GUIDES``; any guide whose sites match a model fits it."""

from . import autoregressive, flows, gaussian, local
from . import vlae  # noqa: F401 (registers the VLAE's guide)
from .amortized import AmortizedGuide, Encoder
from .flows import IAFGuide
from .gaussian import AmortizedGaussianGuide

__all__ = ["AmortizedGaussianGuide", "AmortizedGuide", "Encoder", "IAFGuide", "autoregressive", "flows", "gaussian", "local"]
