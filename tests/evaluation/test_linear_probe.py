"""The linear probe: separable features are read perfectly, noise is read at chance."""

import torch

from pyro_deepvi.evaluation.linear_probe import linear_probe_accuracy


def test_separable_and_random_features():
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 4, (400,), generator=g)
    centres = 5 * torch.randn(4, 6, generator=g)
    features = centres[labels] + torch.randn(400, 6, generator=g)
    assert linear_probe_accuracy(features[:300], labels[:300], features[300:], labels[300:], 4) > 0.97
    noise = torch.randn(400, 6, generator=g)
    assert linear_probe_accuracy(noise[:300], labels[:300], noise[300:], labels[300:], 4) < 0.45
