"""The mutual autoencoder's information constraint C·|Î(x, z) − M| (Phuong et al., 2018).

The mutual autoencoder maximizes the ELBO subject to I_{p_θ}(x, z) = M, with the
generative model's mutual information replaced by the variational lower bound
(Barber & Agakov's infomax bound)::

    I_{p_θ}(x, z) ≥ Î(x, z) = H_p(z) + max_w E_{p(z) p_θ(x|z)}[log r_w(z|x)]

and the constraint turned into a penalty: ELBO − C·|Î(x, z) − M|. Use it as::

    pyro-deepvi train dlgm --term mutual_info=<C> --term-arg mutual_info.target=<M>

**Samples.** Per Algorithm 1 of the seed, every call draws (z_i, x_i) ~ p_θ,
i = 1..B, by *running the model generatively*: the model's own function is run
again, under ``poutine.uncondition``, on a dummy minibatch of B rows (the
run's minibatch, rows repeated or cut; its values are never used, since
every observed site is sampled instead) and without the subsample index (so
the data plate has size B and scale 1). Every latent layer is drawn from its
prior and x from p_θ(x|h_1); z is the value at ``site`` (by default the model's
top latent, the first of ``model.latent_shapes``), x the value at ``obs``
(default ``"x"``). This is generic (any model with the library's
``model(x, y=None, index=None)`` signature, one layer or many); for a
hierarchical model Î bounds I(x; h_L), the information in the top layer.
The model's function is kept on the term as a plain attribute (not a
submodule, so the model's parameters are not checkpointed twice).

**Gradients to θ.** Sites with ``rsample`` (the Gaussian latents, a Gaussian
likelihood's x) are reparameterized. A site without it (a Bernoulli x) gets
**REINFORCE**, as Algorithm 1 allows ("using reparametrization trick or
REINFORCE"): the surrogate adds (f_i − b_i)·log p_θ(x_i | h_i) with
f_i = log r_w(z_i|x_i) and the leave-one-out baseline b_i = mean_{j≠i} f_j, so
the θ-gradient is unbiased for ∇_θ E_{p_θ}[log r_w(z|x)]. The alternative, the
Bernoulli mean as a relaxed x, was not chosen: r_w would then be fitted to
and evaluated on inputs the model never generates, and Î would no longer be a
bound on the Bernoulli model's information.

**Entropy.** H_p(z) is the analytic entropy of the prior at ``site`` in the
generative run (½ d log(2πe) for N(0, I)), averaged over the draws.

**One surrogate, two updates.** r_w (an :class:`~pyro_deepvi.nn.MLP` from the
flattened x to the mean and softplus scale of a diagonal Gaussian over z) is a
submodule of the term, so the run's single optimizer trains it. The term
returns::

    value = |Î − M|                                  (its value: parts["mutual_info"])
            + s·(Î_θ − Î_θ.detach())                 (zero; gradient s·∇_θ Î, s = sign(Î − M))

and sets its ``auxiliary_loss`` to −(F_w − F_w.detach()) (zero; gradient
−∇_w E log r_w), where F_w = mean_i log r_w(z_i.detach() | x_i.detach())
carries gradient to w only and Î_θ = H_p(z) + mean_i [f_i + REINFORCE part] is
evaluated with r_w's parameters detached (``torch.func.functional_call``), so it
carries gradient to θ only. The objective adds N·C·value + N·auxiliary_loss to
the loss, hence:

- w descends N·(−∇_w E log r_w): it always *maximizes* the bound
  (UpdateMIEstimate), whatever the side of M Î is on and whatever C is (also
  C = 0, e.g. at the start of a warm-up schedule, so Î is ready when C grows);
- θ descends N·C·sign(Î − M)·∇_θ Î: the gradient of +C·|Î − M| per data point,
  i.e. UpdateModel's −C·sign(m − M)·g_MI on the ascent side.

**Reading Î.** ``objective.parts["mutual_info"]`` (and the metrics'
``train_mutual_info``) is |Î − M|, which does not tell the side. Î itself is
``term.last["mi"]`` after each call (with ``"entropy"``, ``"log_r"`` and
``"gap"`` = Î − M), e.g.
``trainer.components.objective.terms["mutual_info"].last["mi"]``; or evaluate
:meth:`MutualInfo.estimate` on a larger sample.
"""

import torch
import torch.nn.functional as F
from pyro import poutine

from ..nn import MLP
from ..registry import TERMS
from .objective import Term


def _data_rows(value, n):
    """The first ``n`` rows of ``value`` repeated as needed (``value`` has B ≥ 1 rows)."""
    index = torch.arange(n, device=value.device) % value.shape[0]
    return value[index]


class MutualInfo(Term):
    """|Î(x, z) − M| with Î the infomax lower bound of the generative model's I(x; z).

    :param model_fn: the model's function (``model.model``), run generatively.
    :param int x_dim: width of the flattened observation.
    :param int z_dim: width of the flattened latent at ``site``.
    :param float target: M, in nats.
    :param str site: the latent site z.
    :param str obs: the observed site x.
    :param hidden_dims: hidden widths of r_w's MLP.
    :param int num_samples: B, draws per call; the minibatch size when ``None``.
    """

    def __init__(self, model_fn, x_dim, z_dim, target, site, obs="x", hidden_dims=(200,), num_samples=None):
        super().__init__()
        if num_samples is not None and (int(num_samples) != num_samples or num_samples < 2):
            raise ValueError(f"num_samples must be an integer ≥ 2 (or None for the minibatch size), got {num_samples!r}")
        if isinstance(hidden_dims, int):
            hidden_dims = (hidden_dims,)
        self.model_fn = model_fn
        self.target = float(target)
        self.site = site
        self.obs = obs
        self.num_samples = None if num_samples is None else int(num_samples)
        self.z_dim = int(z_dim)
        self.r = MLP(int(x_dim), tuple(int(h) for h in hidden_dims), 2 * self.z_dim)
        self.last = {}

    def extra_repr(self):
        return f"target={self.target}, site={self.site!r}, obs={self.obs!r}, num_samples={self.num_samples}"

    # r_w(z|x) -------------------------------------------------------------------------------

    def log_r(self, z, x, params=None):
        """log r_w(z|x) per row, [n]; with ``params`` (a name -> tensor dict) r_w uses those."""
        out = self.r(x) if params is None else torch.func.functional_call(self.r, params, (x,))
        loc, raw = out.split(self.z_dim, dim=-1)
        scale = F.softplus(raw) + 1e-4
        return torch.distributions.Normal(loc, scale).log_prob(z).sum(-1)

    # p_θ(z, x) ------------------------------------------------------------------------------

    def sample(self, model_trace, num_samples=None):
        """A generative trace of the model with ``num_samples`` draws (default ``self.num_samples`` or B)."""
        if self.model_fn is None:
            raise ValueError("the mutual_info term needs the model's function to draw (z, x) ~ p_θ")
        node = model_trace.nodes["_INPUT"]
        args, kwargs = list(node["args"]), dict(node["kwargs"])
        x = args[0] if args else kwargs.get("x")
        if not torch.is_tensor(x):
            raise ValueError("the mutual_info term expects the model's first argument (or x=) to be the minibatch")
        batch = x.shape[0]
        n = num_samples or self.num_samples or batch

        def resize(value):
            return _data_rows(value, n) if torch.is_tensor(value) and value.dim() >= 1 and value.shape[0] == batch else value

        args = [resize(a) for a in args]
        kwargs = {k: (None if k == "index" else resize(v)) for k, v in kwargs.items()}
        with poutine.block():
            trace = poutine.trace(poutine.uncondition(self.model_fn)).get_trace(*args, **kwargs)
        for name in (self.site, self.obs):
            if name not in trace.nodes or trace.nodes[name]["type"] != "sample":
                raise ValueError(f"the model has no sample site {name!r} for the mutual_info term")
        return trace, n

    def _score(self, trace, n):
        """Σ log p of the data-plate sites drawn without rsample (REINFORCE), per draw, [n]; None if none."""
        score = None
        for site in trace.nodes.values():
            if site["type"] != "sample" or site["fn"].has_rsample:
                continue
            if not any(frame.name == "data" for frame in site["cond_indep_stack"]):
                continue
            log_p = site["fn"].log_prob(site["value"]).reshape(n, -1).sum(-1)
            score = log_p if score is None else score + log_p
        return score

    def _draws(self, model_trace, num_samples=None):
        trace, n = self.sample(model_trace, num_samples)
        fn = trace.nodes[self.site]["fn"]
        z = trace.nodes[self.site]["value"].reshape(n, -1)
        x = trace.nodes[self.obs]["value"].reshape(n, -1).to(z.dtype)
        entropy = fn.entropy().reshape(-1)
        entropy = entropy.sum() / n if entropy.numel() == n else entropy.sum()
        return trace, n, z, x, entropy

    @torch.no_grad()
    def estimate(self, model_trace, num_samples=1000):
        """Î on ``num_samples`` fresh draws, a float (no gradients)."""
        _, _, z, x, entropy = self._draws(model_trace, num_samples)
        return float(entropy + self.log_r(z, x).mean())

    # the term -------------------------------------------------------------------------------

    def forward(self, model_trace, guide_trace, log_weights):
        trace, n, z, x, entropy = self._draws(model_trace)
        # w only: r_w at detached draws.
        fit = self.log_r(z.detach(), x.detach()).mean()
        # θ only: r_w with detached parameters at the draws (pathwise), plus REINFORCE.
        frozen = {name: p.detach() for name, p in self.r.named_parameters()}
        f = self.log_r(z, x, frozen)
        mi_theta = entropy + f.mean()
        score = self._score(trace, n)
        if score is not None:
            fd = f.detach()
            baseline = (fd.sum() - fd) / (n - 1)
            mi_theta = mi_theta + ((fd - baseline) * (score - score.detach())).mean()
        mi = mi_theta.detach()
        gap = mi - self.target
        self.last = {"mi": float(mi), "entropy": float(entropy), "log_r": float(f.detach().mean()), "gap": float(gap)}
        self.auxiliary_loss = -(fit - fit.detach())
        return gap.abs() + torch.sign(gap) * (mi_theta - mi_theta.detach())

    @classmethod
    def from_model(cls, model, target, site=None, obs="x", hidden_dims=(200,), num_samples=None):
        shapes = getattr(model, "latent_shapes", None)
        if site is None:
            if not shapes:
                raise ValueError(
                    f"{type(model).__name__} does not list its latent sites (``latent_shapes``); "
                    "give the mutual_info term a site"
                )
            site = next(iter(shapes))
        if not shapes or site not in shapes:
            raise ValueError(f"site {site!r} is not among the model's latent sites {list(shapes or [])}")
        return cls(
            model.model,
            x_dim=model.data_shape.numel(),
            z_dim=torch.Size(shapes[site]).numel(),
            target=target,
            site=site,
            obs=obs,
            hidden_dims=hidden_dims,
            num_samples=num_samples,
        )


TERMS.register("mutual_info", "mutual autoencoder: C·|Î(x,z) − M|, Î the infomax bound on the model's I(x; z)")(MutualInfo)
