"""How much label information a representation keeps: a linear classifier on posterior means.

InfoVAE (Zhao et al., 2019) and VCCA (Wang et al., 2016) judge a latent code by
how well a linear classifier reads the labels off it. Here the classifier is a
multinomial logistic regression, p(y | z) = softmax(W z̃ + b) with z̃ the
training-standardized posterior mean E_q[z | x], fit by L-BFGS on the training
split with an L2 penalty and scored on the test split. The penalty is fixed, or
chosen on a validation split as VCCA's paper tunes its linear SVM's C (a fixed
small penalty overfits wide features such as raw pixels).
"""

import torch

#: The L2 penalties a probe with a validation split chooses from.
L2_GRID = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)


def linear_probe_accuracy(train_features, train_labels, test_features, test_labels, num_classes, l2=1e-3, steps=100,
                          valid=None):
    """Test accuracy of a logistic regression fit on ``train_features`` [N, D] to ``train_labels`` [N].

    With ``valid = (features, labels)`` the penalty is not ``l2`` but the one of :data:`L2_GRID`
    whose probe is the most accurate on that split (the smallest on a tie).
    """
    if valid is not None:
        l2 = max(L2_GRID, key=lambda c: linear_probe_accuracy(train_features, train_labels, *valid, num_classes, c, steps))
    mean, std = train_features.mean(0), train_features.std(0).clamp_min(1e-6)
    train_z, test_z = (train_features - mean) / std, (test_features - mean) / std
    with torch.enable_grad():
        weight = torch.zeros(train_z.shape[1], num_classes, dtype=train_z.dtype, device=train_z.device, requires_grad=True)
        bias = torch.zeros(num_classes, dtype=train_z.dtype, device=train_z.device, requires_grad=True)
        optimizer = torch.optim.LBFGS([weight, bias], max_iter=steps, line_search_fn="strong_wolfe")

        def closure():
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(train_z @ weight + bias, train_labels) + l2 * weight.pow(2).sum()
            loss.backward()
            return loss

        optimizer.step(closure)
    with torch.no_grad():
        predictions = (test_z @ weight + bias).argmax(-1)
    return float((predictions == test_labels).float().mean())
