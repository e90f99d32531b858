"""Pyro's module_local_params: on inside the library's runs only, so a plain Pyro SVI loop works."""

import subprocess
import sys

import pyro
import pyro.optim
import pytest
import torch
from pyro.infer import SVI, Trace_ELBO

from pyro_deepvi import GUIDES, MODELS, OBJECTIVES, load

PLAIN_PYRO = """
import pyro, torch
from pyro.infer import SVI, Trace_ELBO
import pyro_deepvi
from pyro_deepvi import GUIDES, MODELS, TrainConfig, load, load_run, train

assert pyro.settings.get("module_local_params") is False, "import flipped the setting"
torch.set_num_threads(1)
data = load("digits", "train")
x = data.batch(torch.arange(200))["x"]
pyro.set_rng_seed(0)
model = MODELS.get("dlgm").from_data(data, latent_dims=(4,), hidden_dims=(16,))
guide = GUIDES.get("diag")(model, hidden_dims=(16,))
before = [p.detach().clone() for p in (*model.parameters(), *guide.parameters())]
svi = SVI(model.model, guide, pyro.optim.Adam({"lr": 3e-2}), Trace_ELBO())
losses = [svi.step(x) for _ in range(60)]
assert sum(losses[-10:]) < sum(losses[:10]) - 10 * 200 * 0.2, losses  # 0.2 nats per point lower
after = [*model.parameters(), *guide.parameters()]
assert all(not torch.equal(b, a) for b, a in zip(before, after)), "SVI did not update the modules' own parameters"
assert any(name.startswith("decoder") for name in pyro.get_param_store().keys())

train(TrainConfig(data="digits", latent_dims=(2,), hidden_dims=(8,), epochs=1, eval_every=0, test_particles=5,
                  progress=False, device="cpu", out={out!r}))
load_run({out!r}).elbo(x[:10])
assert pyro.settings.get("module_local_params") is False, "a run left the setting on"

# The user's own Pyro code after the library ran: global pyro.param statements, as before the import.
def user_model(x):
    loc = pyro.param("user_loc", torch.zeros(()))
    with pyro.plate("n", len(x)):
        pyro.sample("obs", pyro.distributions.Normal(loc, 1.0), obs=x)

def user_guide(x):
    pass

pyro.clear_param_store()
svi = SVI(user_model, user_guide, pyro.optim.Adam({{"lr": 0.1}}), Trace_ELBO())
for _ in range(200):
    svi.step(torch.full((20,), 3.0))
assert abs(pyro.param("user_loc").item() - 3.0) < 0.1
print("ok")
"""


def test_import_leaves_pyro_s_setting_alone_and_a_plain_svi_loop_trains(tmp_path):
    """In a fresh process: the import flips nothing, a plain Pyro SVI loop trains the library's DLGM and
    diagonal guide, and after a library run (and load_run) the user's own global-param-store code behaves."""
    code = PLAIN_PYRO.replace("{out!r}", repr(str(tmp_path / "run"))).replace("{{", "{").replace("}}", "}")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("ok")


@pytest.mark.parametrize("guide_name", ["rank_one", "iaf"])
@pytest.mark.parametrize("objective_name", ["elbo", "iwae"])
def test_library_guides_and_objectives_in_pyro_s_own_svi_with_pyro_s_default(guide_name, objective_name):
    """The library's objective is a callable Pyro loss: SVI(model.model, guide, Adam, objective) trains with
    Pyro's default (global param store) mode."""
    with pyro.settings.context(module_local_params=False):
        pyro.clear_param_store()
        pyro.set_rng_seed(0)
        data = load("digits", "train")
        x = data.batch(torch.arange(200))["x"]
        model = MODELS.get("dlgm").from_data(data, latent_dims=(4,), hidden_dims=(16,))
        guide = GUIDES.get(guide_name)(model, hidden_dims=(16,))
        objective = OBJECTIVES.get(objective_name)(particles=3)
        svi = SVI(model.model, guide, pyro.optim.Adam({"lr": 1e-2}), objective)
        losses = [svi.step(x=x) for _ in range(40)]
        pyro.clear_param_store()
    assert sum(losses[-5:]) < 0.95 * sum(losses[:5])


def test_trace_elbo_in_svi_with_pyro_s_default():
    with pyro.settings.context(module_local_params=False):
        pyro.clear_param_store()
        pyro.set_rng_seed(0)
        data = load("digits", "train")
        x = data.batch(torch.arange(200))["x"]
        model = MODELS.get("dlgm").from_data(data, latent_dims=(4, 2), hidden_dims=(16,))
        guide = GUIDES.get("diag")(model, hidden_dims=(16,))
        svi = SVI(model.model, guide, pyro.optim.Adam({"lr": 1e-2}), Trace_ELBO())
        losses = [svi.step(x) for _ in range(40)]
        pyro.clear_param_store()
    assert sum(losses[-5:]) < 0.95 * sum(losses[:5])
