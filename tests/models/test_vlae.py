"""VLAE: sites and shapes, the guide's ladder structure, bounds in order, the CLI, and (slow) every level in use."""

import json

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.nn import PyroModule

import pyro_deepvi
from pyro_deepvi import GUIDES, MODELS, TrainConfig
from pyro_deepvi.cli import main
from pyro_deepvi.data.shapes import FACTOR_SIZES
from pyro_deepvi.engine import Trainer
from pyro_deepvi.evaluation import active_units, bounds, rate_by_site
from pyro_deepvi.evaluation.disentanglement import factor_information_by_site
from pyro_deepvi.guides.vlae import VLAEGuide
from pyro_deepvi.models.dlgm import DLGM
from pyro_deepvi.models.vlae import VLAE


def small(num_data=100):
    return VLAE((12,), num_data=num_data, latent_dims=(2, 3, 4), hidden_dims=(16, 8, 6))


def test_registered_with_its_guide_as_default():
    assert MODELS.get("vlae") is VLAE
    assert VLAE.default_guide == "vlae" and GUIDES.get("vlae") is VLAEGuide
    assert TrainConfig(model="vlae").guide == "vlae"
    TrainConfig(model="vlae", **VLAE.train_defaults)  # the defaults are TrainConfig fields


def test_sites_shapes_and_plate_scaling():
    model = small()
    guide = VLAEGuide(model, hidden_dims=(16, 8, 6))
    x = torch.bernoulli(torch.full((5, 12), 0.5))
    index = torch.arange(5)
    guide_trace = pyro.poutine.trace(guide).get_trace(x, index=index)
    trace = pyro.poutine.trace(pyro.poutine.replay(model.model, trace=guide_trace)).get_trace(x, index=index)
    assert list(model.latent_shapes) == ["z3", "z2", "z1"]
    latents = [n for n, s in trace.nodes.items() if s["type"] == "sample" and not s["is_observed"] and n != "data"]
    assert latents == ["z3", "z2", "z1"]
    for l, d in zip((1, 2, 3), (2, 3, 4)):
        assert trace.nodes[f"z{l}"]["value"].shape == (5, d)
        assert trace.nodes[f"z{l}"]["fn"].event_shape == (d,)
        assert trace.nodes[f"z{l}"]["scale"] == pytest.approx(100 / 5)  # the data plate scales N / B
        assert torch.equal(trace.nodes[f"z{l}"]["value"], guide_trace.nodes[f"z{l}"]["value"])
    assert trace.nodes["x"]["is_observed"] and trace.nodes["x"]["scale"] == pytest.approx(20)
    # Every prior is N(0, I), independent of the other levels.
    z = torch.randn(5, 3)
    prior = trace.nodes["z2"]["fn"]
    assert torch.allclose(prior.log_prob(z), torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(-1))


def test_every_level_reaches_x_through_a_deeper_network():
    model = small()
    codes = [torch.randn(4, d) for d in model.latent_dims]
    depths = []
    for l in range(3):
        codes_ = [c.clone().requires_grad_(i == l) for i, c in enumerate(codes)]
        model.decode(codes_).sum().backward()
        depths.append(codes_[l].grad.abs().sum() > 0)  # every level influences x
    assert all(depths)
    # u_l embeds z_l at its level's width; f_L reads u_L(z_L) alone, f_l the concatenation [z̃_{l+1}, u_l(z_l)].
    assert [u[0].in_features for u in model.embed] == [2, 3, 4]
    assert model.ladder[2][0].in_features == 6
    assert model.ladder[1][0].in_features == 6 + 8
    assert model.ladder[0][0].in_features == 8 + 16
    assert model.decoder[-1].out_features == 12
    assert all(isinstance(f[-1], torch.nn.Linear) for f in model.ladder)  # z̃_l ends linear: it cannot saturate


def test_guide_reads_z_l_from_h_l_only():
    model = small()
    guide = VLAEGuide(model, hidden_dims=(16, 8, 6))
    fixed = torch.randn(3, 8)  # h_2 for every input
    guide.ladder[1].register_forward_hook(lambda module, args, out: fixed)
    fns = []
    for seed in (0, 1):
        x = torch.bernoulli(torch.full((3, 12), 0.5), generator=torch.Generator().manual_seed(seed))
        fns.append(pyro.poutine.trace(guide).get_trace(x).nodes)
    same = lambda name: torch.equal(fns[0][name]["fn"].base_dist.loc, fns[1][name]["fn"].base_dist.loc)
    assert not same("z1")  # z_1 reads h_1, which still follows x
    assert same("z2") and same("z3")  # with h_2 fixed, x no longer reaches z_2 nor (through h_3 = g_3(h_2)) z_3


def test_guide_refuses_a_model_without_ladder_sites():
    with pytest.raises(ValueError, match="z1..z2"):
        VLAEGuide(DLGM((12,), num_data=10, latent_dims=(2, 3)))
    with pytest.raises(ValueError, match="one width per level"):
        VLAE((12,), num_data=10, latent_dims=(2, 3), hidden_dims=(4, 4, 4))
    with pytest.raises(ValueError, match=r"expects x of shape \[batch, 12\], got \(3, 5\)"):
        small().model(torch.zeros(3, 5))


def test_bounds_are_ordered_and_the_rate_splits_by_level(ppca_data):
    # A Gaussian VLAE on the PPCA toy data: L_1 ≤ L_10 ≤ L_1000 (Burda et al.), and the per-level
    # rates add up to the rate and equal the closed-form KL(q(z_l | x) ‖ N(0, I)).
    torch.manual_seed(0)
    test = ppca_data["test"]
    model = VLAE((6,), len(test), latent_dims=(1, 1), hidden_dims=(8,), likelihood="gaussian")
    guide = VLAEGuide(model, hidden_dims=(8,))
    estimates = [bounds(model.model, guide, test, num_particles=k, seed=k)[1].mean() for k in (1, 10, 1000)]
    assert estimates[0] < estimates[1] < estimates[2]
    rates = rate_by_site(model.model, guide, test, num_particles=2000)
    with torch.no_grad():
        nodes = pyro.poutine.trace(guide).get_trace(test.x).nodes
    for name in ("z1", "z2"):
        q = nodes[name]["fn"]
        exact = torch.distributions.kl_divergence(q, dist.Normal(torch.zeros(1), torch.ones(1)).to_event(1)).mean()
        assert rates[name] == pytest.approx(float(exact), abs=0.05)


def test_generic_guides_and_iwae_fit(ppca_data):
    model = small(num_data=40)
    x = torch.bernoulli(torch.full((8, 12), 0.5))
    for guide_name, objective in (("diag", "elbo"), ("iaf", "elbo"), ("vlae", "iwae")):
        guide = GUIDES.get(guide_name)(model, hidden_dims=(8,))
        loss = pyro_deepvi.OBJECTIVES.get(objective)(particles=3)(model.model, guide, x=x, index=torch.arange(8))
        assert torch.isfinite(loss)


def test_vary_level_changes_only_what_it_should():
    model = small()
    grid = model.vary_level(2, rows=3, columns=4, generator=torch.Generator().manual_seed(0))
    assert grid.shape == (3, 4, 12) and ((grid >= 0) & (grid <= 1)).all()
    assert not torch.allclose(grid[:, 0], grid[:, 1])  # columns differ in z_2
    assert not torch.allclose(grid[0], grid[1])  # rows differ in the other levels
    with pytest.raises(ValueError, match="level must lie in 1..3"):
        model.vary_level(4)


def test_cli_trains_and_evaluates_at_tiny_size(tmp_path):
    out = tmp_path / "vlae"
    main([
        "train", "vlae", "--data", "digits", "--latent-dims", "2,2", "--hidden-dims", "16", "--epochs", "2",
        "--objective", "iwae", "--particles", "2", "--term", "rate=0", "--test-particles", "5", "--eval-every", "0",
        "--out", str(out), "--no-progress",
    ])  # rate=0 replaces the default KL warm-up, which the IWAE objective refuses (a negative rate weight)
    report = json.loads((out / "eval.json").read_text())
    assert report["test_log_likelihood"] >= report["test_elbo"] - 1.0
    assert set(report["active_units"]) == {"z1", "z2", "total"}
    assert (out / "samples.png").exists()


def _fit(tmp_path, model, guide):
    # The VLAE's defaults for both models: three levels of 2 units, 40 epochs, a KL warm-up over 10.
    config = TrainConfig(
        model=model, guide=guide, data="mnist5k", latent_dims=(2, 2, 2), hidden_dims=(256,), epochs=40,
        terms={"rate": "linear:-1:0:10"}, eval_every=0, progress=False, device="cpu", out=str(tmp_path / model),
    )
    return Trainer(config).fit().components.eval()


@pytest.mark.slow
def test_every_level_stays_in_use_where_a_plain_hierarchy_collapses(tmp_path):
    # Zhao et al. (2017): in a hierarchical VAE z_1 alone suffices, so the upper layers collapse;
    # the VLAE's independent codes, decoded by networks of growing depth, each keep information.
    # Measured (benchmarks/README.md): VLAE KL 4.8 / 2.1 / 4.0 nats, active units 2 / 1 / 2;
    # dlgm 3.6 / 1.4 / 0.01, active units 2 / 2 / 0.
    test = pyro_deepvi.load("mnist5k", "test")
    vlae = _fit(tmp_path, "vlae", "vlae")
    dlgm = _fit(tmp_path, "dlgm", "diag")
    vlae_rates = rate_by_site(vlae.model.model, vlae.guide, test)
    vlae_units = active_units(vlae.guide, test)
    dlgm_rates = rate_by_site(dlgm.model.model, dlgm.guide, test)
    dlgm_units = active_units(dlgm.guide, test)
    for l in (1, 2, 3):
        assert vlae_rates[f"z{l}"] > 1.0 and vlae_units[f"z{l}"] >= 1, (vlae_rates, vlae_units)
    assert dlgm_rates["h3"] < 0.5 and dlgm_units["h3"] == 0, (dlgm_rates, dlgm_units)


class FactorGuide(PyroModule):
    """q(z1 | x) puts its mean on the shape factor, q(z2 | x) on the x position (a guide that reads y)."""

    def forward(self, x, y=None, index=None):
        with pyro.plate("data", x.shape[0]):
            pyro.sample("z1", dist.Normal(y[:, :1].float(), 0.01).to_event(1))
            pyro.sample("z2", dist.Normal(y[:, 3:4].float(), 0.01).to_event(1))


def test_factor_information_by_site_finds_the_factor_each_site_carries():
    data = pyro_deepvi.load("shapes_small", "test")
    information = factor_information_by_site(FactorGuide(), data, FACTOR_SIZES)
    assert set(information) == {"z1", "z2"}
    assert information["z1"][0] == pytest.approx(1.0)  # 3 shapes in 3 distinct bins: all of H(shape)
    assert information["z2"][3] > 0.8  # 32 positions in 20 bins keep most of H(pos_x)
    # Independent factors get only the plug-in estimate's finite-sample bias (largest for the 40 orientations).
    assert information["z1"][0] > 2 * information["z1"][1:].max()
    assert information["z2"][3] > 2 * information["z2"][[0, 1, 2, 4]].max()
    with pytest.raises(ValueError, match="integer factors"):
        factor_information_by_site(FactorGuide(), pyro_deepvi.load("digits", "test"))
