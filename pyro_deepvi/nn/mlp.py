"""Multi-layer perceptrons, the T_l of the seed's deep latent Gaussian model."""

from torch import nn


class MLP(nn.Sequential):
    """``Linear -> activation -> ... -> Linear``; with no hidden layers it is one affine map.

    :param int in_dim: input width.
    :param hidden_dims: widths of the hidden layers (may be empty).
    :param int out_dim: output width.
    :param activation: an ``nn.Module`` class applied after every hidden layer.
    """

    def __init__(self, in_dim, hidden_dims, out_dim, activation=nn.Tanh):
        dims = [in_dim, *hidden_dims]
        layers = []
        for d_in, d_out in zip(dims[:-1], dims[1:]):
            layers += [nn.Linear(d_in, d_out), activation()]
        layers.append(nn.Linear(dims[-1], out_dim))
        super().__init__(*layers)
