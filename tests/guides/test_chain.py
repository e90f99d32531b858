"""The bottom-up chain guide on a two-layer linear-Gaussian DLGM, whose log p(x) is exact."""

import pyro
import torch

from pyro_deepvi import GUIDES
from pyro_deepvi.registry import OBJECTIVES
from pyro_deepvi.data import Dataset
from pyro_deepvi.evaluation import active_units, bounds
from pyro_deepvi.guides.chain import ChainGuide
from pyro_deepvi.guides.gaussian import AmortizedGaussianGuide
from pyro_deepvi.models.dlgm import DLGM
from pyro_deepvi.objectives import Objective
from pyro_deepvi.objectives.estimators import ELBO


def linear_two_layer(num_data=20):
    """x = W h1 + b + σε, h1 = A h2 + a + G ξ, h2 ~ N(0, I): a strong link, so h1 and h2 are correlated given x."""
    torch.manual_seed(0)
    model = DLGM((5,), num_data, latent_dims=(3, 2), hidden_dims=(), likelihood="gaussian").double()
    with torch.no_grad():
        model.links[0][0].weight.copy_(3.0 * torch.randn(3, 2, dtype=torch.float64))
        model.noise_scale_tril[0].copy_(torch.eye(3, dtype=torch.float64) * -1.0)  # G = softplus(−1) I ≈ 0.31 I
        model.obs_log_scale.fill_(-0.5)
    for p in model.parameters():
        p.requires_grad_(False)
    x = Dataset("toy", "train", torch.randn(num_data, 5, dtype=torch.float64) * 3.0, support="real")
    return model, x


def test_exact_log_likelihood_of_two_layers_is_the_gaussian_marginal():
    model, data = linear_two_layer()
    W, b = model.decoder[0].weight, model.decoder[0].bias
    A, a, G = model.links[0][0].weight, model.links[0][0].bias, model._noise_tril(1)
    # x = M u + c with u = (h2, ξ, ε) ~ N(0, I): M = [WA, WG, σI], c = Wa + b.
    sigma = model.obs_log_scale.exp()
    M = torch.cat([W @ A, W @ G, sigma * torch.eye(5, dtype=torch.float64)], dim=1)
    marginal = torch.distributions.MultivariateNormal(W @ a + b, covariance_matrix=M @ M.T)
    assert torch.allclose(model.exact_log_likelihood(data.x), marginal.log_prob(data.x), atol=1e-10)


def _exact_posterior_factors(model):
    """p(h1 | x) = N(B1 x + c1, P1) and p(h2 | h1, x) = p(h2 | h1) = N(B2 h1 + c2, P2), and the joint precision Λ of (h1, h2) | x."""
    W, b = model.decoder[0].weight, model.decoder[0].bias
    A, a, G = model.links[0][0].weight, model.links[0][0].bias, model._noise_tril(1)
    noise_precision = model.obs_log_scale.exp().pow(-2)
    S1 = A @ A.T + G @ G.T  # prior of h1: N(a, S1)
    P1 = torch.linalg.inv(torch.linalg.inv(S1) + noise_precision * W.T @ W)
    B1, c1 = noise_precision * P1 @ W.T, P1 @ (torch.linalg.solve(S1, a) - noise_precision * W.T @ b)
    Q = torch.linalg.inv(G @ G.T)
    P2 = torch.linalg.inv(torch.eye(2, dtype=W.dtype) + A.T @ Q @ A)
    B2, c2 = P2 @ A.T @ Q, -P2 @ A.T @ Q @ a
    joint = torch.cat([torch.cat([Q + noise_precision * W.T @ W, -Q @ A], 1), torch.cat([-A.T @ Q, torch.linalg.inv(P2)], 1)])
    return (B1, c1, P1), (B2, c2, P2), joint


def _set_full_head(head, linear, offset, cov):
    """Make a ``full`` head output N(linear · features + offset, cov) whatever the features' noise."""
    k = offset.shape[0]
    L = torch.linalg.cholesky(cov)
    raw = L.clone()
    raw.diagonal().copy_(torch.log(torch.expm1(L.diagonal() - 1e-5)))  # softplus⁻¹
    rows, cols = torch.tril_indices(k, k)
    with torch.no_grad():
        head.weight.zero_()
        head.weight[:k] = linear
        head.bias[:k] = offset
        head.bias[k:] = raw[rows, cols]


def _fit(model, guide, data, steps=300):
    objective = Objective(ELBO(num_particles=16))
    optimizer = torch.optim.Adam(guide.parameters(), lr=0.05)
    pyro.set_rng_seed(1)
    for _ in range(steps):
        optimizer.zero_grad()
        objective(model.model, guide, x=data.x).backward()
        optimizer.step()
    return bounds(model.model, guide, data, num_particles=2000, chunk_size=1000)[0].mean()


def test_chain_guide_holds_the_exact_posterior_where_the_factorized_one_cannot():
    model, data = linear_two_layer()
    exact = model.exact_log_likelihood(data.x)
    (B1, c1, P1), (B2, c2, P2), joint_precision = _exact_posterior_factors(model)
    # The chain q(h1 | x) q(h2 | h1), each factor a full-covariance Gaussian, set to p(h1 | x) p(h2 | h1):
    # every importance weight is then p(x) exactly.
    chain = ChainGuide(model, (), "full").double()
    _set_full_head(chain.heads["h1"], B1, c1, P1)
    _set_full_head(chain.heads["h2"], B2, c2, P2)
    elbo, log_lik = bounds(model.model, chain, data, num_particles=5)
    assert torch.allclose(elbo, exact, atol=1e-8) and torch.allclose(log_lik, exact, atol=1e-8)
    # The best factorized q(h1 | x) q(h2 | x) misses the correlation of h1 and h2 given x by at least
    # KL = ½ (log det Λ11 + log det Λ22 − log det Λ) (its factors' precisions are Λ's diagonal blocks).
    gap = 0.5 * (torch.logdet(joint_precision[:3, :3]) + torch.logdet(joint_precision[3:, 3:]) - torch.logdet(joint_precision))
    assert gap > 0.5
    factorized = _fit(model, AmortizedGaussianGuide(model, (), "full").double(), data)
    assert exact.mean() - gap - 5.0 < factorized <= exact.mean() - gap + 0.05  # fitted, and still short by the gap


def test_chain_guide_samples_bottom_up_and_works_with_iwae():
    model = DLGM((12,), num_data=50, latent_dims=(4, 3, 2), hidden_dims=(8,))
    guide = GUIDES.get("chain")(model, hidden_dims=(8,))
    x = torch.bernoulli(torch.full((6, 12), 0.5))
    trace = pyro.poutine.trace(guide).get_trace(x, index=torch.arange(6))
    assert [n for n, s in trace.nodes.items() if s["type"] == "sample" and not n.startswith("data")] == ["h1", "h2", "h3"]
    loss = OBJECTIVES.get("iwae")(particles=4)(model.model, guide, x=x, index=torch.arange(6))
    loss.backward()
    assert all(p.grad is not None for p in guide.links.parameters())  # the links are trained through the bound


def test_active_units_average_the_conditional_means_of_a_chain():
    """A unit of h2 whose conditional mean follows the draw of h1 but not x is inactive."""
    model = DLGM((4,), num_data=200, latent_dims=(1, 1), hidden_dims=())
    guide = ChainGuide(model, ())
    with torch.no_grad():
        for p in guide.parameters():
            p.zero_()
        guide.heads["h1"].bias.copy_(torch.tensor([0.0, 0.0]))  # q(h1 | x) = N(0, softplus(0)² ≈ 0.48): not x-driven
        guide.heads["h2"].weight[0, 0] = 1.0  # E[h2 | h1] = h1: varies with the draw only
    data = Dataset("toy", "test", torch.randn(200, 4), support="real")
    counts = active_units(guide, data, num_samples=1000)
    assert counts["h2"] == 0 and counts["h1"] == 0
