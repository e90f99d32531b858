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


def test_penalty_chosen_on_a_validation_split_matches_scikit_learn():
    """On raw rotated pixels (wide features, few digits) the penalty matters: tuned on the validation split, the
    probe's error matches scikit-learn's logistic regression with C tuned on that split, and beats the fixed penalty."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    from pyro_deepvi.data import load

    train, valid, test = (load("two_view_mnist", s).rows(slice(0, n)) for s, n in (("train", 1500), ("valid", 500), ("test", 1000)))
    tuned = 1 - linear_probe_accuracy(train.x, train.y, test.x, test.y, 10, valid=(valid.x, valid.y))
    fixed = 1 - linear_probe_accuracy(train.x, train.y, test.x, test.y, 10)
    scaler = StandardScaler().fit(train.x.numpy())
    fits = {C: LogisticRegression(C=C, max_iter=2000).fit(scaler.transform(train.x.numpy()), train.y.numpy())
            for C in (1e-3, 1e-2, 1e-1, 1.0)}
    best = max(fits.values(), key=lambda fit: fit.score(scaler.transform(valid.x.numpy()), valid.y.numpy()))
    theirs = 1 - best.score(scaler.transform(test.x.numpy()), test.y.numpy())
    print(f"raw-pixel probe error: tuned {tuned:.3f}, fixed l2 {fixed:.3f}, scikit-learn {theirs:.3f}")
    assert abs(tuned - theirs) < 0.02
    assert tuned < fixed - 0.01
