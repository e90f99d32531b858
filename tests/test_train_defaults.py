"""Per-model training defaults: `pyro-deepvi train MODEL` with no other option uses the model's own."""

import dataclasses

import pytest

from pyro_deepvi import MODELS, TrainConfig, train
from pyro_deepvi.cli import main
from pyro_deepvi.engine import DEFAULTS


def test_defaults_fill_only_what_the_user_did_not_give():
    config = TrainConfig(model="def")
    assert (config.data, config.latent_dims, config.batch_size, config.lr) == ("reuters", (100, 30, 15), 315, 0.05)
    assert TrainConfig(model="def", lr=0.01, data="def_toy" if False else "reuters").lr == 0.01
    assert TrainConfig(model="sbn").particles == 5 and TrainConfig(model="sbn", particles=2).particles == 2
    assert TrainConfig(model="dlgm", objective="iwae").particles == 5 and TrainConfig().particles == 1
    assert TrainConfig(model="vib").terms == {"rate": pytest.approx(-0.999)}
    assert TrainConfig(model="vib", terms={}).terms == {}
    plain = TrainConfig()
    assert all(getattr(plain, name) == value for name, value in DEFAULTS.items())
    # a saved config.json (every field given) comes back unchanged
    assert TrainConfig.from_dict(TrainConfig(model="def").to_dict()) == TrainConfig(model="def")


def test_a_model_s_unknown_default_is_named(monkeypatch):
    monkeypatch.setattr(MODELS.get("dlgm"), "train_defaults", {"epoch": 3}, raising=False)
    with pytest.raises(ValueError, match=r"model 'dlgm': train_defaults names unknown fields \['epoch'\]"):
        TrainConfig()


def test_help_shows_every_default_and_list_shows_the_models_own(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for shown in ("default mnist5k*", "default 100*", "default 0.001*", "default 50*", "default 200,200*", "default 5000*",
                  "default 10*", "default elbo*", "default 1, or 5 for iwae", "train_defaults"):
        assert shown in text, shown
    assert main(["list"]) == 0
    assert "defaults: data=reuters, latent_dims=(100, 30, 15), batch_size=315, lr=0.05" in capsys.readouterr().out


TINY = {"epochs": 1, "latent_dims": None, "hidden_dims": None, "test_particles": 3, "valid_particles": 3, "eval_every": 1}
#: Small sizes per model (the defaults' data, objective, terms and learning rate stay).
SMALL = {
    "dlgm": dict(latent_dims=(3,), hidden_dims=(16,)),
    "darn": dict(latent_dims=(8,), hidden_dims=(16,)),
    "sbn": dict(latent_dims=(8,), hidden_dims=(16,)),
    "def": dict(latent_dims=(4, 2), model_args={"completion_steps": 3}),
    "double_def": dict(latent_dims=(4, 2), model_args={"completion_steps": 3}),
    "vib": dict(latent_dims=(4,), hidden_dims=(16,)),
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_model_trains_with_its_defaults(name, tmp_path):
    """Every registered model trains and evaluates from its defaults, only made smaller (epochs, sizes)."""
    options = {**{k: v for k, v in TINY.items() if v is not None}, **SMALL.get(name, {})}
    config = TrainConfig(model=name, progress=False, device="cpu", out=str(tmp_path / name), **options)
    defaults = getattr(MODELS.get(name), "train_defaults", {})
    kept = {k: v for k, v in defaults.items() if k not in options}
    assert all(getattr(config, k) == (tuple(v) if isinstance(v, list) else v) for k, v in kept.items())
    if config.data == "mnist5k":  # the test trains on the small digits with the same support and labels
        config = dataclasses.replace(config, data="digits")
    result = train(config)
    assert result["num_data"] > 0
