"""Swappable guides, registered by name in ``GUIDES``; any guide whose sites match a model fits it."""

from . import autoregressive, flows, gaussian, hierarchical, local
from .amortized import AmortizedGuide, Encoder
from .flows import IAFGuide
from .gaussian import AmortizedGaussianGuide
from .hierarchical import HierarchicalGuide, HierarchicalLocalGuide

__all__ = ["AmortizedGaussianGuide", "AmortizedGuide", "Encoder", "IAFGuide", "autoregressive", "flows", "gaussian", "hierarchical", "local", "HierarchicalGuide", "HierarchicalLocalGuide"]
