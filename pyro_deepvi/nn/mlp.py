"""Multi-layer perceptrons, the T_l of the seed's deep latent Gaussian model."""

from torch import nn

#: Nonlinearities by name (``--guide-arg activation=relu``, VCCA's ``--model-arg activation=relu``):
#: tanh as Kingma & Welling and Burda et al., ReLU as Alemi et al.'s deep VIB and Wang et al.'s VCCA.
ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU, "leaky_relu": nn.LeakyReLU, "elu": nn.ELU}


def activation_class(name, role):
    """The ``nn.Module`` class of the nonlinearity ``name`` (a key of :data:`ACTIVATIONS`); an unknown
    name is a ValueError that names the ``role`` ("encoder", "decoder") and the choices."""
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown {role} activation {name!r}; choose one of: {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]


class BatchNorm(nn.BatchNorm1d):
    """Batch normalization of the last dimension, over every leading one (particles and data points alike)."""

    def forward(self, x):
        return super().forward(x.reshape(-1, x.shape[-1])).reshape(x.shape)


class MLP(nn.Sequential):
    """``Linear -> [BatchNorm ->] activation -> ... -> Linear``; with no hidden layers it is one affine map.

    :param int in_dim: input width.
    :param hidden_dims: widths of the hidden layers (may be empty).
    :param int out_dim: output width.
    :param activation: an ``nn.Module`` class applied after every hidden layer.
    :param bool batch_norm: batch-normalize every hidden layer before its activation
        (Ioffe & Szegedy 2015; in ``eval()`` mode the running statistics are used).
    """

    def __init__(self, in_dim, hidden_dims, out_dim, activation=nn.Tanh, batch_norm=False):
        dims = [in_dim, *hidden_dims]
        layers = []
        for d_in, d_out in zip(dims[:-1], dims[1:]):
            layers += [nn.Linear(d_in, d_out), *([BatchNorm(d_out)] if batch_norm else []), activation()]
        layers.append(nn.Linear(dims[-1], out_dim))
        super().__init__(*layers)


def loc_and_variance(params, min_variance=1e-5):
    """Split a layer's output [..., 2d] into μ = its first half and σ² = Softplus(its second half) + ``min_variance``."""
    loc, raw = params.chunk(2, dim=-1)
    return loc, nn.functional.softplus(raw) + min_variance
