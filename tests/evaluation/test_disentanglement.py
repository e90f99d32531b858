"""MIG: 1 for a code with one latent per factor (up to binning), low for mixed or random codes."""

import math

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.nn import PyroModule

from pyro_deepvi.data import Dataset, load
from pyro_deepvi.data.shapes import FACTOR_SIZES, NUM_COMBINATIONS, factors_of
from pyro_deepvi.evaluation.disentanglement import (
    discretize,
    encoder_mutual_information_gap,
    entropy,
    mutual_information,
    mutual_information_gap,
    posterior_means,
)
from pyro_deepvi.models import data_plate


def grid(sizes):
    """Every combination of the factor values: independent uniform factors, exactly."""
    return torch.cartesian_prod(*[torch.arange(n) for n in sizes])


def kept_fraction(n, num_bins):
    """H(bin) / H(v) for a uniform factor of n values 0..n-1 in equal-width bins, by counting."""
    bins = [min(v * num_bins // (n - 1), num_bins - 1) for v in range(n)]
    counts = [bins.count(b) for b in set(bins)]
    return -sum(c / n * math.log(c / n) for c in counts) / math.log(n)


@pytest.fixture(scope="module")
def sampled():
    """20,000 random points of the shapes factor grid, and the factors scaled to [0, 1]."""
    index = torch.randint(NUM_COMBINATIONS, (20000,), generator=torch.Generator().manual_seed(0))
    v = factors_of(index)
    return v, v.double() / (torch.tensor(FACTOR_SIZES) - 1)


def test_tiny_example_by_hand():
    z = torch.tensor([[0.0], [0.0], [1.0], [1.0], [1.0], [0.0]])
    v = torch.tensor([[0, 0], [0, 0], [0, 1], [1, 1], [1, 1], [1, 0]])
    # Column 0: p(z, v) = [[2, 1], [1, 2]] / 6 with uniform marginals; column 1 equals z.
    expected = 2 / 6 * math.log((2 / 6) / (1 / 4)) * 2 + 1 / 6 * math.log((1 / 6) / (1 / 4)) * 2
    codes = discretize(z, num_bins=2)
    assert codes.flatten().tolist() == [0, 0, 1, 1, 1, 0]
    mi = mutual_information(codes, v, 2, [2, 2])
    assert mi.shape == (1, 2)
    assert mi[0, 0].item() == pytest.approx(expected, abs=1e-12)
    assert mi[0, 1].item() == pytest.approx(math.log(2), abs=1e-12)
    assert entropy(v, [2, 2]).tolist() == pytest.approx([math.log(2)] * 2, abs=1e-12)
    result = mutual_information_gap(z, v, [2, 2], num_bins=2)
    assert torch.equal(result["mutual_information"], mi)
    # One latent: no runner-up, so the gap is I / H.
    assert result["gaps"].tolist() == pytest.approx([expected / math.log(2), 1.0], abs=1e-12)
    assert result["mig"] == pytest.approx((expected / math.log(2) + 1) / 2, abs=1e-12)


def test_three_valued_example_by_hand():
    # z in 3 bins against a 3-valued factor: p(b, v) = counts / 8.
    z = torch.tensor([0.0, 0.1, 0.5, 0.5, 1.0, 1.0, 1.0, 0.0]).unsqueeze(-1)
    v = torch.tensor([0, 0, 1, 2, 2, 2, 1, 0]).unsqueeze(-1)
    codes = discretize(z, num_bins=3)
    assert codes.flatten().tolist() == [0, 0, 1, 1, 2, 2, 2, 0]
    joint = torch.tensor([[3, 0, 0], [0, 1, 1], [0, 1, 2]], dtype=torch.float64) / 8
    pb, pv = joint.sum(1, keepdim=True), joint.sum(0, keepdim=True)
    nz = joint > 0
    expected = (joint[nz] * (joint[nz] / (pb * pv)[nz]).log()).sum()
    assert mutual_information(codes, v, 3, [3])[0, 0].item() == pytest.approx(expected.item(), abs=1e-12)


def test_discretize_equal_width_bins():
    z = torch.tensor([[-1.0, 5.0], [0.0, 5.0], [0.999, 5.0], [1.0, 5.0]])
    codes = discretize(z, num_bins=4)
    assert codes[:, 0].tolist() == [0, 2, 3, 3]  # [-1, -0.5), [-0.5, 0), [0, 0.5), [0.5, 1]
    assert codes[:, 1].tolist() == [0, 0, 0, 0]  # a constant latent


def test_perfect_code_scores_one():
    v = grid((3, 6, 4, 5, 20))  # no factor has more values than bins
    result = mutual_information_gap(v.double(), v, (3, 6, 4, 5, 20))
    assert result["mig"] == pytest.approx(1.0, abs=1e-12)
    assert result["latent"].tolist() == [0, 1, 2, 3, 4]
    off_diagonal = result["mutual_information"] * (1 - torch.eye(5, dtype=torch.float64))
    assert off_diagonal.abs().max() < 1e-12
    # Neither scale nor order matters: any increasing affine map of each latent, any order.
    scrambled = (v.double() * torch.tensor([3.0, 0.1, 7.0, 2.0, 0.5]) - 4)[:, [4, 2, 0, 1, 3]]
    result = mutual_information_gap(scrambled, v, (3, 6, 4, 5, 20))
    assert result["mig"] == pytest.approx(1.0, abs=1e-12)
    assert result["latent"].tolist() == [2, 3, 1, 4, 0]


def test_perfect_code_on_the_shapes_grid_loses_only_to_binning():
    v = grid(FACTOR_SIZES)  # the full 737,280-point grid
    result = mutual_information_gap(v.double(), v, FACTOR_SIZES)
    # 40 orientations in 20 bins keep log 20 / log 40; 32 positions keep 4.25 of 5 bits.
    expected = [1.0, 1.0, math.log(20) / math.log(40), 0.85, 0.85]
    assert [kept_fraction(n, 20) for n in FACTOR_SIZES] == pytest.approx(expected, abs=1e-12)
    assert result["gaps"].tolist() == pytest.approx(expected, abs=1e-9)
    assert result["mig"] == pytest.approx(sum(expected) / 5, abs=1e-9)  # 0.90242
    # With at least as many bins as values, the loss goes away.
    fine = mutual_information_gap(v.double(), v, FACTOR_SIZES, num_bins=40)
    assert fine["mig"] == pytest.approx(1.0, abs=1e-9)


def test_perfect_code_on_a_random_sample(sampled):
    v, s = sampled
    result = mutual_information_gap(s, v, FACTOR_SIZES)
    expected = sum(kept_fraction(n, 20) for n in FACTOR_SIZES) / 5
    # Less a little finite-sample MI of the runner-ups.
    assert result["mig"] == pytest.approx(expected, abs=0.005)
    assert result["mig"] < expected


def test_mixed_codes_score_lower(sampled):
    v, s = sampled
    perfect_result = mutual_information_gap(s, v, FACTOR_SIZES)
    perfect, perfect_gaps = perfect_result["mig"], perfect_result["gaps"]
    # Each latent the sum of two factors.
    mixed = mutual_information_gap(s + s.roll(-1, 1), v, FACTOR_SIZES)
    assert mixed["mig"] < 0.4 and perfect > 0.85
    # Rotating the two position latents by 45° shares each position between two latents.
    c = math.cos(math.pi / 4)
    rotated = s.clone()
    rotated[:, 3], rotated[:, 4] = c * (s[:, 3] - s[:, 4]), c * (s[:, 3] + s[:, 4])
    result = mutual_information_gap(rotated, v, FACTOR_SIZES)
    assert result["gaps"][3:].abs().max() < 0.05
    # The other factors keep their latents; a rotated one may become a runner-up by chance.
    assert result["gaps"][:3].tolist() == pytest.approx(perfect_gaps[:3].tolist(), abs=0.002)


def test_irrelevant_latents_keep_the_score(sampled):
    v, s = sampled
    base = mutual_information_gap(s, v, FACTOR_SIZES)
    extra = torch.full((len(s), 1), 3.0, dtype=torch.float64)
    constant = mutual_information_gap(torch.cat([s, extra], 1), v, FACTOR_SIZES)
    assert constant["mig"] == pytest.approx(base["mig"], abs=1e-12)
    assert torch.equal(constant["mutual_information"][:5], base["mutual_information"])
    assert constant["mutual_information"][5].abs().max() < 1e-12
    noise = torch.randn(len(s), 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    noisy = mutual_information_gap(torch.cat([noise[:, :1], s, noise[:, 1:]], 1), v, FACTOR_SIZES)
    assert noisy["mig"] == pytest.approx(base["mig"], abs=0.005)
    assert noisy["latent"].tolist() == [1, 2, 3, 4, 5]


def test_random_code_scores_zero(sampled):
    v, _ = sampled
    z = torch.randn(len(v), 10, generator=torch.Generator().manual_seed(2))
    result = mutual_information_gap(z, v, FACTOR_SIZES)
    assert 0 <= result["mig"] < 0.01
    assert result["mutual_information"].max() < 0.05  # finite-sample MI only (about 0.02 nats at most)


def test_constant_factor_and_bad_input():
    z = torch.tensor([[0.0, 1.0], [1.0, 0.0], [2.0, 1.0], [3.0, 0.0]])
    v = torch.tensor([[0, 0], [1, 0], [2, 0], [3, 0]])
    result = mutual_information_gap(z, v, (4, 2), num_bins=4)
    assert math.isnan(result["gaps"][1]) and result["mig"] == pytest.approx(result["gaps"][0].item())
    assert result["mig"] == pytest.approx(1 - math.log(2) / math.log(4))
    # Factor sizes default to the largest value + 1.
    assert mutual_information_gap(z, v, num_bins=4)["mig"] == result["mig"]
    with pytest.raises(ValueError, match="integer"):
        mutual_information_gap(z, v.float(), (4, 2))
    with pytest.raises(ValueError, match=r"\[0, size\)"):
        mutual_information_gap(z, v, (3, 2))
    with pytest.raises(ValueError, match="same rows"):
        mutual_information_gap(z[:3], v, (4, 2))
    with pytest.raises(ValueError, match="finite"):
        mutual_information_gap(z.masked_fill(z == 3, float("nan")), v, (4, 2))


class CentroidGuide(PyroModule):
    """q(z|x), a hand-made encoder of 32x32 images: z = (centroid column, row; area) + N(0, 0.1)."""

    def forward(self, x, y=None, index=None):
        image = x.reshape(-1, 32, 32)
        pixels = torch.arange(32.0)
        area = image.sum((1, 2))
        cx = (image.sum(1) * pixels).sum(1) / area
        cy = (image.sum(2) * pixels).sum(1) / area
        with data_plate(len(x), x, index):
            pyro.sample("pos", dist.Normal(torch.stack([cx, cy], -1), 0.1).to_event(1))
            pyro.sample("size", dist.Normal(area.unsqueeze(-1), 0.1).to_event(1))


def test_posterior_means_and_mig_of_a_guide():
    data = load("shapes_small", "train")
    guide = CentroidGuide()
    means = posterior_means(guide, data, batch_size=700)  # batches of 700, the last one short
    assert means.shape == (2400, 3)
    assert torch.equal(posterior_means(guide, data, site="size"), means[:, 2:])
    assert torch.equal(posterior_means(guide, data, site="pos", batch_size=2400), means[:, :2])
    assert torch.allclose(means[:, 2], data.x.sum(1))
    with pytest.raises(KeyError, match="pos, size"):
        posterior_means(guide, data, site="z")
    result = mutual_information_gap(means, data.y, FACTOR_SIZES)
    assert result["latent"][1:].tolist() == [2, 2, 0, 1]  # scale by area, position by centroid
    assert (result["gaps"][[1, 3, 4]] > 0.5).all() and (result["gaps"][[0, 2]] < 0.1).all()
    assert 0.3 < result["mig"] < 0.6


def test_posterior_means_without_a_closed_form_mean():
    class FlowGuide(PyroModule):
        def forward(self, x, y=None, index=None):
            base = dist.Normal(x[:, :2] * 4, 0.5).to_event(1)
            with data_plate(len(x), x, index):
                pyro.sample("z", dist.TransformedDistribution(base, [dist.transforms.identity_transform]))

    data = Dataset("toy", "test", torch.bernoulli(torch.full((50, 4), 0.5)), support="binary")
    means = posterior_means(FlowGuide(), data, num_samples=2000)
    assert torch.allclose(means, data.x[:, :2] * 4, atol=0.1)  # Monte Carlo, 0.5 / sqrt(2000) per unit
    assert torch.equal(posterior_means(FlowGuide(), data, num_samples=2000), means)  # seeded


class FactorGuide(PyroModule):
    """q(z|x) = N(z; M v(x), σ²I): a code of the known factors v (scaled to [0, 1]) mixed by M, with noise σ."""

    def __init__(self, mix, scale):
        super().__init__()
        self.mix, self.scale = mix, scale

    def forward(self, x, y=None, index=None):
        v = y.double() / (torch.tensor(FACTOR_SIZES) - 1)
        with data_plate(len(x), x, index):
            pyro.sample("z", dist.Normal((v @ self.mix).float(), self.scale).to_event(1))


def test_encoder_mig_of_a_perfect_and_a_rotated_code():
    data = load("shapes_small", "train")
    perfect = encoder_mutual_information_gap(FactorGuide(torch.eye(5, dtype=torch.float64), 0.002), data, FACTOR_SIZES)
    # σ = 0.002 is far below every factor's step (1/39 at the finest): each latent carries its factor whole.
    assert perfect["latent"].tolist() == [0, 1, 2, 3, 4]
    assert torch.allclose(perfect["mutual_information"].diagonal(), perfect["entropy"], rtol=0.01)
    # The runner-ups hold only finite-sample information: about (|v_j| − 1)(|v_k| − 1) / 2N nats, 0.25 at most here.
    assert (perfect["gaps"] > 0.9).all()
    c = math.cos(math.pi / 4)
    rotation = torch.eye(5, dtype=torch.float64)
    rotation[3:, 3:] = torch.tensor([[c, -c], [c, c]], dtype=torch.float64)
    rotated = encoder_mutual_information_gap(FactorGuide(rotation, 0.002), data, FACTOR_SIZES)
    assert rotated["gaps"][3:].abs().max() < 0.02
    # The other factors keep their latents; a rotated latent, with ~1,000 distinct values on 2,400 points,
    # holds more finite-sample information about them as a runner-up.
    assert rotated["latent"][:3].tolist() == [0, 1, 2] and (rotated["gaps"][:3] > 0.8).all()
    assert rotated["mig"] < perfect["mig"] - 0.3


def test_encoder_mig_ignores_a_unit_whose_noise_swamps_its_means():
    data = load("shapes_small", "train")
    # z_0 moves with pos_x by a hundredth of its noise; binning its means sees pos_x whole.
    leaky = torch.zeros(5, 2, dtype=torch.float64)
    leaky[3, 0], leaky[3, 1] = 0.01, 1.0
    guide = FactorGuide(leaky, torch.tensor([1.0, 0.01]))
    means = posterior_means(guide, data)
    assert mutual_information_gap(means, data.y, FACTOR_SIZES)["gaps"][3] < 0.1  # two latents share pos_x
    encoded = encoder_mutual_information_gap(guide, data, FACTOR_SIZES)
    assert encoded["mutual_information"][0].max() < 0.01
    assert encoded["gaps"][3] > 0.9


def test_encoder_mutual_information_against_quadrature():
    # One binary factor, q(z|x_n) = N(2 v_n, 1): q(z | v) are two unit Gaussians 2 apart, q(z) their average.
    v = torch.arange(2000) % 2
    data = Dataset("toy", "train", torch.zeros(2000, 1), v.unsqueeze(-1), support="binary")

    class Guide(PyroModule):
        def forward(self, x, y=None, index=None):
            with data_plate(len(x), x, index):
                pyro.sample("z", dist.Normal(2.0 * y.float(), 1.0).to_event(1))

    z = torch.linspace(-8, 10, 20001, dtype=torch.float64)
    components = torch.stack([dist.Normal(0.0, 1.0).log_prob(z), dist.Normal(2.0, 1.0).log_prob(z)]).double()
    mixture = components.logsumexp(0) - math.log(2)
    exact = float(((components.exp() * (components - mixture)).sum(0) / 2 * (z[1] - z[0])).sum())  # ≈ 0.35 nats
    result = encoder_mutual_information_gap(Guide(), data, num_samples=2000)
    assert result["mutual_information"].item() == pytest.approx(exact, abs=0.02)  # Monte Carlo over 2,000 draws
    assert result["mig"] == pytest.approx(exact / math.log(2), abs=0.03)
    with pytest.raises(ValueError, match="integer factors"):
        encoder_mutual_information_gap(Guide(), Dataset("toy", "train", torch.zeros(4, 1), support="binary"))
