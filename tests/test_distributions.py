import math

import pytest
import pyro
import pyro.distributions as dist
import torch
from pyro.infer import SVI, Trace_ELBO
from pyro.optim import Adam

from pyro_deepvi.distributions import IndependentBernoulli, RankOnePrecisionNormal


def random_params(batch_shape, k, u_scale=1.0, seed=0):
    gen = torch.Generator().manual_seed(seed)
    shape = batch_shape + (k,)
    opts = dict(dtype=torch.float64, generator=gen)
    loc = torch.randn(shape, **opts)
    d = torch.rand(shape, **opts) * 2 + 0.1
    u = torch.randn(shape, **opts) * u_scale
    return loc, d, u


def precision(d, u):
    return torch.diag_embed(d) + u.unsqueeze(-1) * u.unsqueeze(-2)


CASES = {
    "batched": random_params((2, 3), 4),
    "unbatched": random_params((), 5),
    "u_zero": random_params((3,), 4, u_scale=0.0),
    "u_huge": random_params((3,), 4, u_scale=1e3),
}


def test_float32_variance_does_not_cancel():
    # One dominant u_i^2/d_i: 1/d_i - eta u_i^2/d_i^2 cancels to 0 in float32 (relative error 1.0).
    loc, d, u = random_params((3,), 6)
    u[..., 2] *= 1e4
    C = torch.linalg.inv(precision(d, u))
    p = RankOnePrecisionNormal(loc.float(), d.float(), u.float())
    assert torch.allclose(p.variance.double(), C.diagonal(dim1=-2, dim2=-1), rtol=1e-5, atol=0)
    assert torch.allclose(p.covariance_matrix.double(), C, rtol=1e-5, atol=1e-6 * C.abs().max().item())


@pytest.mark.parametrize("case", CASES)
def test_matrices_match_linear_algebra(case):
    loc, d, u = CASES[case]
    p = RankOnePrecisionNormal(loc, d, u)
    C = torch.linalg.inv(precision(d, u))
    assert p.batch_shape == loc.shape[:-1] and p.event_shape == loc.shape[-1:]
    assert torch.allclose(p.precision_matrix, precision(d, u))
    assert torch.allclose(p.covariance_matrix, C, rtol=1e-8, atol=1e-12)
    R = p.scale_matrix
    assert torch.allclose(R @ R.transpose(-1, -2), C, rtol=1e-8, atol=1e-12)
    sign, logdet = torch.linalg.slogdet(C)
    assert (sign > 0).all()
    assert torch.allclose(p.log_det_covariance, logdet, rtol=1e-10, atol=1e-10)
    assert torch.allclose(p.variance, torch.diagonal(C, dim1=-2, dim2=-1), atol=1e-12)
    eps = torch.randn(loc.shape, dtype=loc.dtype)
    expected = loc + (R @ eps.unsqueeze(-1)).squeeze(-1)
    assert torch.allclose(p.transform(eps), expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("case", CASES)
def test_log_prob_and_entropy_match_mvn(case):
    loc, d, u = CASES[case]
    p = RankOnePrecisionNormal(loc, d, u)
    q = torch.distributions.MultivariateNormal(loc, precision_matrix=precision(d, u))
    x = q.sample((7,))
    assert p.log_prob(x).shape == (7,) + p.batch_shape
    assert torch.allclose(p.log_prob(x), q.log_prob(x), rtol=1e-8)
    assert torch.allclose(p.entropy(), q.entropy(), rtol=1e-8)


def test_u_zero_is_diagonal_normal():
    loc, d, u = CASES["u_zero"]
    p = RankOnePrecisionNormal(loc, d, u)
    q = dist.Normal(loc, d.rsqrt()).to_event(1)
    x = q.sample((5,))
    assert torch.allclose(p.log_prob(x), q.log_prob(x))
    eps = torch.randn(loc.shape, dtype=loc.dtype)
    assert torch.allclose(p.transform(eps), loc + d.rsqrt() * eps)


def test_rsample_empirical_covariance():
    torch.manual_seed(0)
    n = 200_000
    loc, d, u = random_params((), 3, u_scale=1.5, seed=1)
    p = RankOnePrecisionNormal(loc, d, u)
    x = p.rsample((n,))
    C = torch.linalg.inv(precision(d, u))
    delta = x - loc
    emp = delta.T @ delta / n
    # standard error of the empirical second moment: Var(x_i x_j) = C_ii C_jj + C_ij^2
    se = ((torch.outer(C.diag(), C.diag()) + C.pow(2)) / n).sqrt()
    assert ((emp - C).abs() < 5 * se).all()
    se_mean = (C.diag() / n).sqrt()
    assert ((x.mean(0) - loc).abs() < 5 * se_mean).all()


def test_shapes_broadcast_expand_and_sample_shape():
    k = 4
    p = RankOnePrecisionNormal(torch.zeros(k), torch.ones(3, k), torch.randn(2, 1, k))
    assert p.batch_shape == (2, 3) and p.event_shape == (k,)
    shapes = dict(loc=(k,), precision_diag=(3, k), precision_factor=(2, 1, k))
    assert RankOnePrecisionNormal.infer_shapes(**shapes) == ((2, 3), (k,))
    assert p.rsample().shape == (2, 3, k)
    assert p.rsample((5,)).shape == (5, 2, 3, k)
    e = p.expand((6, 2, 3))
    assert isinstance(e, RankOnePrecisionNormal)
    assert e.batch_shape == (6, 2, 3) and e.event_shape == (k,)
    assert e.rsample((5,)).shape == (5, 6, 2, 3, k)
    assert e.log_prob(e.sample()).shape == (6, 2, 3)
    assert e.entropy().shape == (6, 2, 3)
    assert e.variance.shape == (6, 2, 3, k)
    assert torch.allclose(e.log_det_covariance, p.log_det_covariance.expand(6, 2, 3))
    with pytest.raises(RuntimeError):
        p.expand((4, 3))


def test_sample_is_detached_and_rsample_is_not():
    loc = torch.zeros(3, requires_grad=True)
    p = RankOnePrecisionNormal(loc, torch.ones(3), torch.ones(3))
    assert not p.sample().requires_grad
    assert p.rsample().requires_grad


def test_validate_args():
    zero, one = torch.zeros(3), torch.ones(3)
    with pytest.raises(ValueError):
        RankOnePrecisionNormal(zero, -one, one, validate_args=True)
    p = RankOnePrecisionNormal(zero, -one, one, validate_args=False)
    assert p.batch_shape == ()


@pytest.mark.parametrize("u_scale", [1.0, 0.0])
def test_reparameterized_gradients_gradcheck(u_scale):
    loc, d, u = random_params((2,), 3, u_scale=u_scale, seed=2)
    eps = torch.randn(2, 3, dtype=torch.float64)
    w = torch.randn(3, dtype=torch.float64)
    params = tuple(t.clone().requires_grad_() for t in (loc, d, u))

    def xi(loc, d, u):
        return RankOnePrecisionNormal(loc, d, u).transform(eps)

    def f(loc, d, u):
        return (torch.sin(xi(loc, d, u)) * w).sum()

    assert torch.autograd.gradcheck(xi, params)
    assert torch.autograd.gradcheck(f, params)
    assert torch.autograd.gradgradcheck(f, params)


def test_gradient_wrt_scale_matrix():
    # for fixed eps, grad_R f(mu + R eps) = g eps^T with g = f'(xi)
    loc, d, u = random_params((), 3, seed=3)
    eps = torch.randn(3, dtype=torch.float64)
    R = RankOnePrecisionNormal(loc, d, u).scale_matrix.requires_grad_()
    xi = loc + R @ eps
    torch.sin(xi).sum().backward()
    assert torch.allclose(R.grad, torch.outer(torch.cos(xi.detach()), eps))


def test_pyro_sample_under_plate():
    k = 4
    p = RankOnePrecisionNormal(torch.zeros(k), torch.ones(k), torch.randn(k))

    def model():
        with pyro.plate("data", 3):
            return pyro.sample("z", p)

    trace = pyro.poutine.trace(model).get_trace()
    trace.compute_log_prob()
    site = trace.nodes["z"]
    assert site["value"].shape == (3, k)
    assert site["fn"].batch_shape == (3,)
    assert site["log_prob"].shape == (3,)


def test_trace_elbo_equals_log_evidence_for_exact_posterior():
    # z ~ N(0, (D0 + u u^T)^{-1}), x | z ~ N(z, diag(1/lam)) has posterior
    # N(m, (D0 + diag(lam) + u u^T)^{-1}), so the ELBO is exact.
    pyro.clear_param_store()
    k = 3
    _, d0, u = random_params((), k, seed=4)
    lam = torch.tensor([0.5, 2.0, 4.0], dtype=torch.float64)
    x = torch.randn(3, k, dtype=torch.float64)
    post_prec = precision(d0 + lam, u)
    m = torch.linalg.solve(post_prec, (lam * x).T).T

    def model():
        with pyro.plate("data", 3):
            z = pyro.sample("z", RankOnePrecisionNormal(torch.zeros_like(u), d0, u))
            pyro.sample("x", dist.Normal(z, lam.rsqrt()).to_event(1), obs=x)

    def guide():
        with pyro.plate("data", 3):
            pyro.sample("z", RankOnePrecisionNormal(m, d0 + lam, u))

    C0 = torch.linalg.inv(precision(d0, u))
    evidence = torch.distributions.MultivariateNormal(
        torch.zeros(k, dtype=torch.float64), C0 + torch.diag(lam.reciprocal())
    )
    loss = Trace_ELBO().loss(model, guide)
    assert math.isclose(loss, -evidence.log_prob(x).sum().item(), rel_tol=1e-9)


def test_svi_step_with_learned_guide():
    pyro.clear_param_store()
    k = 3
    x = torch.randn(3, k)

    def model():
        with pyro.plate("data", 3):
            zero, one = torch.zeros(k), torch.ones(k)
            prior = RankOnePrecisionNormal(zero, one, zero)
            z = pyro.sample("z", prior)
            pyro.sample("x", dist.Normal(z, 1.0).to_event(1), obs=x)

    def guide():
        loc = pyro.param("loc", torch.zeros(3, k))
        d = pyro.param("d", torch.ones(3, k), constraint=dist.constraints.positive)
        u = pyro.param("u", 0.1 * torch.ones(k))
        with pyro.plate("data", 3):
            pyro.sample("z", RankOnePrecisionNormal(loc, d, u))

    svi = SVI(model, guide, Adam({"lr": 0.05}), Trace_ELBO())
    losses = [svi.step() for _ in range(20)]
    assert all(math.isfinite(loss) for loss in losses)
    for name in ("loc", "d", "u"):
        assert torch.isfinite(pyro.param(name)).all()
    assert not torch.equal(pyro.param("u"), 0.1 * torch.ones(k))


@pytest.mark.parametrize("logits_shape, value_shape, event_dims", [((7, 5, 30), (5, 30), 1), ((4, 3, 6), (4, 3, 6), 2)])
def test_independent_bernoulli_is_pyros_bernoulli_to_event_to_the_bit(logits_shape, value_shape, event_dims):
    logits = (3 * torch.randn(logits_shape)).requires_grad_()
    value = torch.bernoulli(torch.full(value_shape, 0.3))
    fast = IndependentBernoulli(dist.Bernoulli(logits=logits), event_dims)
    stock = dist.Bernoulli(logits=logits).to_event(event_dims)
    assert (fast.batch_shape, fast.event_shape) == (stock.batch_shape, stock.event_shape)
    assert torch.equal(fast.log_prob(value), stock.log_prob(value))  # the negation moved after the sum is exact
    hand = (value * torch.nn.functional.logsigmoid(logits) + (1 - value) * torch.nn.functional.logsigmoid(-logits))
    torch.testing.assert_close(fast.log_prob(value), hand.sum(list(range(-event_dims, 0))))
    (grad_fast,) = torch.autograd.grad(fast.log_prob(value).sum(), logits)
    (grad_stock,) = torch.autograd.grad(stock.log_prob(value).sum(), logits)
    assert torch.equal(grad_fast, grad_stock)
    expanded = fast.expand((2,) + fast.batch_shape)
    assert isinstance(expanded, IndependentBernoulli)
    assert torch.equal(expanded.log_prob(value), stock.expand((2,) + stock.batch_shape).log_prob(value))
    torch.testing.assert_close(fast.mean, torch.sigmoid(logits))


def test_independent_bernoulli_refuses_values_off_its_support():
    fast = IndependentBernoulli(dist.Bernoulli(logits=torch.zeros(3, 4), validate_args=True), 1)
    with pytest.raises(ValueError, match="support"):
        fast.log_prob(torch.full((3, 4), 0.5))
