"""The command line: list, train, eval, compare, and its error messages."""

import json
import subprocess
import sys

import torch

import pyro_deepvi
from pyro_deepvi.cli import main

SMALL = ["--data", "digits", "--epochs", "1", "--latent-dims", "4", "--hidden-dims", "16", "--test-particles", "10", "--no-progress"]


def test_list_names_every_registered_component(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in ("dlgm", "diag", "rank_one", "full", "iaf", "elbo", "iwae", "tracegraph_elbo", "rate", "mnist5k", "digits"):
        assert f"  {name} " in out


def test_train_then_eval(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "dlgm", "--guide", "rank_one", "--objective", "iwae", "--particles", "3", "--term", "rate=0.5", "--term", "mmd=2", "--term-arg", "mmd.kernel=imq", "--out", str(run), *SMALL]) == 0
    out = capsys.readouterr().out
    assert "test log-likelihood" in out and "IWAE, k = 10" in out
    config = json.loads((run / "config.json").read_text())
    assert (config["guide"], config["objective"], config["particles"], config["latent_dims"]) == ("rank_one", "iwae", 3, [4])
    assert config["terms"] == {"rate": 0.5, "mmd": 2}
    assert config["term_args"] == {"mmd": {"kernel": "imq"}}
    assert main(["eval", str(run), "--particles", "20"]) == 0
    assert json.loads((run / "eval.json").read_text())["num_particles"] == 20


def test_compare_writes_a_table_json_and_plot(tmp_path, capsys):
    out = tmp_path / "cmp"
    assert main(["compare", "dlgm", "--guides", "diag,rank_one", "--objectives", "elbo", "--out", str(out), *SMALL]) == 0
    rows = json.loads((out / "compare.json").read_text())
    assert [(r["guide"], r["objective"]) for r in rows] == [("diag", "elbo"), ("rank_one", "elbo")]
    assert (out / "compare.png").exists()
    assert "rank_one" in capsys.readouterr().out


def test_errors_are_one_clear_line(tmp_path, capsys):
    assert main(["train", "nope", "--out", str(tmp_path)]) == 2
    assert "unknown model 'nope'; choose one of: darn, " in capsys.readouterr().err
    assert main(["eval", str(tmp_path / "missing")]) == 2
    assert "not a run directory" in capsys.readouterr().err
    assert main(["train", "--term-arg", "mmd.kernel=imq", "--out", str(tmp_path / "t"), *SMALL]) == 2
    assert "not among the terms" in capsys.readouterr().err


def test_console_script_entry_point():
    result = subprocess.run([sys.executable, "-m", "pyro_deepvi.cli", "list"], capture_output=True, text=True)
    assert result.returncode == 0 and "models:" in result.stdout


def test_rd_places_runs_on_the_rate_distortion_plane(tmp_path, capsys):
    for beta in ("0.5", "4"):
        args = ["train", "--term", f"rate={float(beta) - 1}", "--out", str(tmp_path / f"beta-{beta}"), *SMALL]
        assert main(args) == 0
    capsys.readouterr()
    out = tmp_path / "rd.png"
    assert main(["rd", str(tmp_path / "beta-0.5"), str(tmp_path / "beta-4"), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert out.exists() and "beta-4" in printed and "test" in printed and "upper estimate" in printed
    rates = {line.split()[0]: float(line.split()[1]) for line in printed.splitlines() if line.startswith("beta-")}
    assert rates["beta-0.5"] > rates["beta-4"]  # a heavier rate penalty, a lower rate


def test_a_flow_guide_trains_and_reports_why_surgery_is_skipped(tmp_path, capsys):
    assert main(["train", "--guide", "iaf", "--out", str(tmp_path), *SMALL]) == 0
    assert "ELBO surgery         skipped: " in capsys.readouterr().out
    assert "flow" in json.loads((tmp_path / "eval.json").read_text())["elbo_surgery"]["skipped"]


def test_adam_betas_reach_the_optimizer_and_a_resume(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "vib", "--out", str(out), "--adam-betas", "0.5,0.999", *SMALL]) == 0
    assert json.loads((out / "config.json").read_text())["adam_betas"] == [0.5, 0.999]
    checkpoint = torch.load(out / "checkpoint.pt", weights_only=True)
    assert checkpoint["optimizer"]["param_groups"][0]["betas"] == (0.5, 0.999)
    # Resuming with other betas is another run, refused by name.
    assert main(["train", "vib", "--out", str(out), "--adam-betas", "0.9,0.999", *SMALL, "--epochs", "2"]) == 2
    assert "holds a run with a different config (adam_betas)" in capsys.readouterr().err


def test_guide_arg_sets_the_encoder_activation_and_old_runs_resume(tmp_path):
    out = tmp_path / "relu"
    assert main(["train", "dlgm", "--out", str(out), "--guide-arg", "activation=relu", *SMALL]) == 0
    _, components = pyro_deepvi.restore(out, "cpu")
    kinds = {type(m) for m in components.guide.encoder.modules()}
    assert torch.nn.ReLU in kinds and torch.nn.Tanh not in kinds
    # A run written before guide_args and adam_betas existed resumes: a missing field counts as its default.
    plain = tmp_path / "plain"
    assert main(["train", "dlgm", "--out", str(plain), *SMALL]) == 0
    config = json.loads((plain / "config.json").read_text())
    del config["guide_args"], config["adam_betas"]
    (plain / "config.json").write_text(json.dumps(config))
    assert main(["train", "dlgm", "--out", str(plain), *SMALL, "--epochs", "2"]) == 0  # the last --epochs counts
    assert json.loads((plain / "config.json").read_text())["epochs"] == 2
