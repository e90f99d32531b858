"""Deep variational information bottleneck (Alemi, Fischer, Dillon & Murphy, 2017).

Learn a representation z of x that is maximally compressive about x and
expressive about y, in the seed's notation::

    max_θ I(z, y; θ)  s.t.  I(x, z; θ) ≤ I_c   ⟺   max_θ I(z, y; θ) − β · I(z, x; θ)

With the empirical p(x, y) = (1/N) Σ_n δ_{x_n}(x) δ_{y_n}(y), the stochastic
encoder p(z|x) = N(z | f_e^μ(x), f_e^Σ(x)), the variational classifier
q(y|z) = S(y | f_d(z)) (S the softmax) and the variational marginal
r(z) = N(z | 0, I), the lower bound on the objective is::

    L = ∫ p(x) p(y|x) p(z|x) (log q(y|z) − β log p(z|x) / r(z)) dx dy dz
      = E_{p(x)p(y|x)} [ E_{p(z|x)}[log q(y|z)] − β · KL(p(z|x) ‖ r(z)) ]

As a Pyro program the *model* is ``z ~ r(z)`` inside the data plate and
``y ~ Categorical(logits = f_d(z))`` observed; x only conditions the *guide*,
which is the stochastic encoder p(z|x): the generic amortized ``diag`` guide
(:mod:`pyro_deepvi.guides.gaussian`) is exactly N(f_e^μ(x), diag f_e^Σ(x)).
The ELBO of this pair is then E log q(y|z) − KL(p(z|x) ‖ r(z)) = −(D + R),
distortion D = −E log q(y|z) and rate R = KL, and the VIB objective −(D + βR)
is the ELBO plus the ``rate`` term (:mod:`pyro_deepvi.objectives.rate`, which
makes the loss D + (1 + w) R) with weight w = β − 1::

    pyro-deepvi train vib --data mnist5k --term rate=-0.999   # β = 1e-3

The paper uses K = 256 with a 1024-1024 ReLU encoder, a single softmax layer
as decoder, β = 1e-3 and, at test time, predictions averaged over 12 draws of
z (:meth:`VIB.predict`); 1.13 % test error on MNIST. Here ``latent_dims = (K,)``,
``hidden_dims`` are the encoder's (guide's) widths, its nonlinearity the guide's
option (``--guide-arg activation=relu`` for the paper's; tanh by default), and
the decoder is linear unless ``decoder_hidden_dims`` is given.

The model does not score x, so any x is accepted (``support = "real"``); it
needs labels y (``from_data`` reads ``data.num_classes``).

Sites: ``z`` (latent, in the data plate), ``y`` (observed).
"""

from collections import OrderedDict

import pyro
import pyro.distributions as dist
import torch
from pyro import poutine
from pyro.nn import PyroModule, pyro_method
from torch import nn

from ..evaluation.batches import seeded_batches
from ..nn import MLP
from ..registry import MODELS
from .base import check_batch, data_plate


@MODELS.register("vib", "deep variational information bottleneck (Alemi et al. 2017): classifier with a stochastic encoder")
class VIB(PyroModule):
    """The deep VIB classifier: z ~ N(0, I), y ~ Categorical(softmax(f_d(z))), encoder p(z|x) in the guide.

    :param data_shape: event shape of one input x.
    :param int num_data: size N of the training set (the data plate's size).
    :param int num_classes: number of label classes C.
    :param latent_dims: ``(K,)``, the width of the bottleneck z.
    :param hidden_dims: the encoder's (guide's) hidden widths; kept for reference only,
        since the encoder is the guide (the run's ``guide_hidden_dims``).
    :param decoder_hidden_dims: hidden widths of the decoder f_d (empty, the paper's choice:
        one softmax layer).
    """

    max_plate_nesting = 1
    default_guide = "diag"
    #: `pyro-deepvi train vib`: labelled mnist5k digits, β = 1e-3 (the paper's best; the rate term's weight is β − 1).
    train_defaults = {"data": "mnist5k", "terms": {"rate": 1e-3 - 1}, "latent_dims": (256,), "hidden_dims": (1024, 1024), "epochs": 30}
    support = "real"  # x is not scored: any input values are fine

    def __init__(self, data_shape, num_data, num_classes, latent_dims=(32,), hidden_dims=(200, 200), decoder_hidden_dims=()):
        super().__init__()
        latent_dims = tuple(int(d) for d in latent_dims)
        if len(latent_dims) != 1:
            raise ValueError(f"vib has one stochastic layer: latent_dims must be (K,), got {latent_dims}")
        if int(num_classes) < 2:
            raise ValueError(f"vib needs at least two classes, got num_classes={num_classes}")
        self.data_shape = torch.Size(data_shape)
        self.num_data = int(num_data)
        self.num_classes = int(num_classes)
        self.latent_dims = latent_dims
        self.hidden_dims = tuple(hidden_dims)
        self.latent_shapes = OrderedDict(z=torch.Size(latent_dims))
        self.decoder = MLP(latent_dims[0], tuple(decoder_hidden_dims), self.num_classes)

    @pyro_method  # a plain Pyro SVI loop over `model.model` then sees (and trains) the module's parameters
    def model(self, x, y=None, index=None):
        check_batch(x, self.data_shape, "vib")
        if y is None:
            raise ValueError(
                "vib is a classifier and needs labels y to train or score (E log q(y|z)); "
                "use VIB.predict(guide, x) for predictions"
            )
        if y.shape != x.shape[:1] or y.is_floating_point():
            raise ValueError(f"vib expects integer class labels y of shape [{x.shape[0]}], got {y.dtype} {tuple(y.shape)}")
        K = self.latent_dims[0]
        with data_plate(self.num_data, x, index):
            z = pyro.sample("z", dist.Normal(x.new_zeros(K), x.new_ones(K)).to_event(1))
            return pyro.sample("y", dist.Categorical(logits=self.decoder(z)), obs=y)

    def encoder_distribution(self, guide, x):
        """The stochastic encoder p(z|x) of ``guide``: its ``z`` site, batch shape [B]."""
        check_batch(x, self.data_shape, "vib")
        trace = poutine.trace(guide).get_trace(x)
        return trace.nodes["z"]["fn"]

    def predict(self, guide, x, num_samples=12):
        """Class probabilities [B, C], q(y|x) ≈ (1/S) Σ_s softmax(f_d(z_s)), z_s ~ p(z|x).

        The paper's test-time averaging over S = 12 draws; ``num_samples=0`` uses the posterior
        mean z = f_e^μ(x) instead (one deterministic pass).
        """
        fn = self.encoder_distribution(guide, x)
        if num_samples == 0:
            return self.decoder(fn.mean).softmax(-1)
        if num_samples < 0:
            raise ValueError(f"num_samples must be non-negative, got {num_samples}")
        z = fn.sample((num_samples,))
        return self.decoder(z).softmax(-1).mean(0)

    def evaluate(self, guide, test_data, seed=0, num_samples=12, batch_size=500):
        """Test error rates: of the 12-draw average (``test_error``), of one draw of z
        (``test_error_one_sample``, the paper's "1 shot") and of the posterior mean (``test_error_mean``)."""
        if test_data.y is None:
            raise ValueError(f"{test_data.name}/{test_data.split} has no labels: vib's test error needs them")
        wrong = {"test_error": 0, "test_error_one_sample": 0, "test_error_mean": 0}
        with torch.no_grad():
            for batch in seeded_batches(test_data, batch_size, seed):
                x, y = batch["x"], batch["y"]
                for key, s in (("test_error", num_samples), ("test_error_one_sample", 1), ("test_error_mean", 0)):
                    wrong[key] += int((self.predict(guide, x, s).argmax(-1) != y).sum())
        return {key: value / len(test_data) for key, value in wrong.items()}

    @classmethod
    def from_data(cls, data, latent_dims=(32,), hidden_dims=(200, 200), **options):
        if data.y is None or data.num_classes is None:
            raise ValueError(
                f"vib is a classifier and needs a labeled data set; {data.name} has no class labels "
                "(num_classes is None); use e.g. digits or mnist5k"
            )
        return cls(data.event_shape, len(data), data.num_classes, latent_dims, hidden_dims, **options)


def deterministic_baseline(train, test, hidden_dims, latent_dim, epochs, batch_size=100, lr=1e-3, seed=0, activation="tanh",
                           adam_betas=(0.9, 0.999)):
    """Test error of the paper's deterministic baseline: the same network with z = f_e^μ(x), no noise.

    The encoder's widths ``hidden_dims`` (``activation``, as the guide's ``--guide-arg activation``), a linear map to the ``latent_dim``
    bottleneck and the linear softmax decoder, trained on the cross-entropy with Adam (``lr``, ``adam_betas``),
    the same minibatches a ``vib`` run of that seed sees (binarized afresh where the
    data set is). Returns ``{"test_error": ..., "network": ...}``.
    """
    from ..guides.amortized import Encoder  # the VIB guide's own encoder (a module-level import would be circular)

    with torch.random.fork_rng():
        torch.manual_seed(seed)
        encoder = Encoder(train.event_shape, hidden_dims, activation)
        network = nn.Sequential(
            encoder, nn.Linear(encoder.out_dim, latent_dim), nn.Linear(latent_dim, train.num_classes)
        )
        optimizer = torch.optim.Adam(network.parameters(), lr=lr, betas=adam_betas)
        shuffle = torch.Generator().manual_seed(seed)
        for _ in range(epochs):
            order = torch.randperm(len(train), generator=shuffle)
            for start in range(0, len(train), batch_size):
                batch = train.batch(order[start : start + batch_size])
                loss = nn.functional.cross_entropy(network(batch["x"]), batch["y"])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
    with torch.no_grad():
        error = float((network(test.x).argmax(-1) != test.y).float().mean())
    return {"test_error": error, "network": network}
