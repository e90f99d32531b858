"""Plug-ins: a user's model in the user's own module, reached by --import or an entry point."""

import importlib.metadata
import json
import os
import subprocess
import sys
import textwrap

import pytest

from pyro_deepvi import MODELS, load_run
from pyro_deepvi.cli import main
from pyro_deepvi.plugins import GROUP

SMALL = ["--data", "digits", "--epochs", "1", "--latent-dims", "3", "--hidden-dims", "16", "--test-particles", "10",
         "--eval-every", "0", "--no-progress", "--device", "cpu"]

MIXTURE_VAE = '''
"""A VAE whose prior is a mixture of K Gaussians: c ~ Cat(π), z | c ~ N(μ_c, σ_c²), x | z ~ Bernoulli(f(z))."""
from collections import OrderedDict

import pyro
import pyro.distributions as dist
import torch
from pyro.nn import PyroModule

from pyro_deepvi import MODELS
from pyro_deepvi.models import data_plate
from pyro_deepvi.nn import MLP


@MODELS.register("{name}", "VAE with a mixture-of-Gaussians prior (a user's plug-in)")
class MixtureVAE(PyroModule):
    default_guide = "diag"
    support = "binary"
    max_plate_nesting = 1

    def __init__(self, data_shape, num_data, latent_dim=3, hidden_dims=(16,), components=4):
        super().__init__()
        self.data_shape, self.num_data, self.latent_dim = torch.Size(data_shape), num_data, latent_dim
        self.latent_shapes = OrderedDict(z=torch.Size([latent_dim]))
        self.logits = torch.nn.Parameter(torch.zeros(components))
        self.locs = torch.nn.Parameter(torch.randn(components, latent_dim))
        self.log_scales = torch.nn.Parameter(torch.zeros(components, latent_dim))
        self.decoder = MLP(latent_dim, hidden_dims, self.data_shape.numel())

    def prior(self):
        mixture = dist.Categorical(logits=self.logits)
        return dist.MixtureSameFamily(mixture, dist.Normal(self.locs, self.log_scales.exp()).to_event(1))

    def model(self, x, y=None, index=None):
        with data_plate(self.num_data, x, index):
            z = pyro.sample("z", self.prior())
            pyro.sample("x", dist.Bernoulli(logits=self.decoder(z)).to_event(1), obs=x)

    @classmethod
    def from_data(cls, data, latent_dims=(3,), hidden_dims=(16,), **options):
        (latent_dim,) = latent_dims
        return cls(data.event_shape, len(data), latent_dim, hidden_dims, **options)
'''


def _write(folder, module, model):
    path = folder / f"{module}.py"
    path.write_text(textwrap.dedent(MIXTURE_VAE.format(name=model)))
    return path


def test_a_model_in_the_user_s_module_trains_evaluates_and_loads_from_its_run_directory(tmp_path, monkeypatch, capsys):
    """--import a module in the current directory; config.json records it, and `eval` and load_run in a
    fresh process, from elsewhere, need nothing but the run directory."""
    (tmp_path / "work").mkdir()
    _write(tmp_path / "work", "my_mixture_models", "mog_vae")
    monkeypatch.chdir(tmp_path / "work")
    run = tmp_path / "run"
    assert main(["train", "mog_vae", "--import", "my_mixture_models", "--out", str(run), *SMALL]) == 0
    assert "test log-likelihood" in capsys.readouterr().out
    config = json.loads((run / "config.json").read_text())
    assert config["imports"] == ["my_mixture_models"] and config["model"] == "mog_vae"
    assert load_run(run).log_likelihood(load_run(run).sample(4), particles=3).shape == (4,)

    code = (
        "import sys; from pyro_deepvi.cli import main; from pyro_deepvi import load_run;"
        f"assert main(['eval', {str(run)!r}, '--particles', '5']) == 0;"
        f"print('loaded', load_run({str(run)!r}).config.model)"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path / "work"), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert "loaded mog_vae" in result.stdout and "IWAE, k = 5" in result.stdout


def test_a_plug_in_given_as_a_file_is_recorded_by_its_absolute_path(tmp_path, monkeypatch):
    path = _write(tmp_path, "file_plugin", "file_vae")
    monkeypatch.chdir(tmp_path)
    run = tmp_path / "run"
    assert main(["train", "file_vae", "--import", "file_plugin.py", "--out", str(run), *SMALL]) == 0
    assert json.loads((run / "config.json").read_text())["imports"] == [str(path.resolve())]


def test_a_missing_plug_in_is_named(tmp_path, capsys):
    assert main(["train", "--import", "no_such_plugin_module", "--out", str(tmp_path / "r"), *SMALL]) == 2
    err = capsys.readouterr().err
    assert "plug-in module 'no_such_plugin_module' was not found" in err
    assert main(["train", "--import", str(tmp_path / "absent.py"), "--out", str(tmp_path / "r"), *SMALL]) == 2
    assert "absent.py" in capsys.readouterr().err and not (tmp_path / "r").exists()


def test_a_run_whose_plug_in_is_gone_says_which(tmp_path, monkeypatch, capsys):
    _write(tmp_path, "vanishing_plugin", "vanishing_vae")
    monkeypatch.chdir(tmp_path)
    run = tmp_path / "run"
    assert main(["train", "vanishing_vae", "--import", "vanishing_plugin", "--out", str(run), *SMALL]) == 0
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**config, "imports": ["vanished_plugin"]}))
    assert main(["eval", str(run)]) == 2
    assert "'vanished_plugin'" in capsys.readouterr().err


def test_installed_packages_register_through_the_entry_point_group(tmp_path, monkeypatch, capsys):
    _write(tmp_path, "installed_plugin", "entry_point_vae")
    monkeypatch.syspath_prepend(str(tmp_path))
    real = importlib.metadata.entry_points

    def entry_points(**selection):
        if selection.get("group") == GROUP:
            return [importlib.metadata.EntryPoint(name="mine", value="installed_plugin", group=GROUP)]
        return real(**selection)

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    assert "entry_point_vae" not in MODELS
    assert main(["list"]) == 0
    assert "  entry_point_vae " in capsys.readouterr().out
    assert main(["train", "entry_point_vae", "--out", str(tmp_path / "run"), *SMALL]) == 0


def test_a_failing_entry_point_is_named(monkeypatch, capsys):
    def entry_points(**selection):
        return [importlib.metadata.EntryPoint(name="broken", value="no_such_package_xyz.models", group=GROUP)]

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    assert main(["list"]) == 2
    assert "entry point 'broken' (no_such_package_xyz.models) failed to load" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["compare"])
def test_compare_takes_imports_too(tmp_path, monkeypatch, command):
    _write(tmp_path, "compare_plugin", "compare_vae")
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "cmp"
    assert main([command, "compare_vae", "--guides", "diag", "--objectives", "elbo", "--import", "compare_plugin",
                 "--out", str(out), *SMALL]) == 0
    assert (out / "compare.json").exists()
