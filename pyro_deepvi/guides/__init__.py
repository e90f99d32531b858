"""Swappable guides, registered by name in ``GUIDES``; any guide whose sites match a model fits it."""

from . import autoregressive, chain, flows, gaussian, hierarchical, inducing, ladder, local, multiview, vlae
from .amortized import AmortizedGuide, Encoder
from .flows import IAFGuide
from .gaussian import AmortizedGaussianGuide
from .hierarchical import HierarchicalGuide, HierarchicalLocalGuide

__all__ = [
    "AmortizedGaussianGuide",
    "AmortizedGuide",
    "Encoder",
    "HierarchicalGuide",
    "HierarchicalLocalGuide",
    "IAFGuide",
    "autoregressive",
    "chain",
    "flows",
    "gaussian",
    "hierarchical",
    "inducing",
    "ladder",
    "local",
    "multiview",
    "vlae",
]
