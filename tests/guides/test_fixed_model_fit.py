"""``benchmarks/hvm_table.py --fixed-model``: a guide fitted to a trained model that stays as it was.

Its table compares guide families by their ELBOs on one model, which is only a comparison of the
families' gaps if the model really is the same: here the fitted run's model must equal the source
run's to the bit, after training and after a resume, while the guide's bound on it improves.
"""

import json
import sys
from pathlib import Path

import torch

from pyro_deepvi import TrainConfig, restore
from pyro_deepvi.engine import Trainer
from pyro_deepvi.run_dir import read_metrics

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import hvm_table  # noqa: E402

TINY = dict(model="dlgm", data="digits", latent_dims=(4,), hidden_dims=(16,), batch_size=100, lr=1e-2,
            test_particles=10, eval_every=0, progress=False, seed=0)


def test_fitting_a_guide_to_a_fixed_model_trains_the_guide_only(tmp_path):
    source = tmp_path / "diag"
    Trainer(TrainConfig(guide="diag", epochs=2, out=str(source), **TINY)).fit()  # a checkpoint is all it needs
    fitted = tmp_path / "fixed-diag-hvm"
    hvm_table.fit_to_fixed_model(TrainConfig(guide="hvm", epochs=1, out=str(fitted), **TINY), source)
    result = hvm_table.fit_to_fixed_model(TrainConfig(guide="hvm", epochs=4, out=str(fitted), **TINY), source)  # resumes

    model, fitted_model = (restore(run)[1].model.state_dict() for run in (source, fitted))
    assert all(torch.equal(value, fitted_model[name]) for name, value in model.items())
    elbos = [record["train_elbo"] for record in read_metrics(fitted)]
    assert len(elbos) == 4 and elbos[-1] > elbos[0] + 0.3
    assert result == json.loads((fitted / "eval.json").read_text())
