"""Weight schedules: their values, their parsing, and their use by the engine."""

import pytest

from pyro_deepvi import TrainConfig
from pyro_deepvi.engine import Trainer
from pyro_deepvi.objectives.schedules import Constant, Cyclic, Linear, parse_weight
from pyro_deepvi.run_dir import read_metrics


def test_values():
    assert Constant(2)(7.5) == 2.0
    warmup = Linear(-1, 0, 10)
    assert [warmup(e) for e in (0, 5, 10, 20)] == [-1.0, -0.5, 0.0, 0.0]
    cycle = Cyclic(0, 1, 4, rise=0.5)
    assert [cycle(e) for e in (0, 1, 2, 3, 4, 5)] == [0.0, 0.5, 1.0, 1.0, 0.0, 0.5]


@pytest.mark.parametrize(
    "spec, epoch, value",
    [(3, 1.0, 3.0), ("0.25", 4.0, 0.25), ("linear:0:1:4", 1.0, 0.25), ("cyclic:0:2:2:1", 2.5, 0.5)],
)
def test_parse(spec, epoch, value):
    assert parse_weight(spec)(epoch) == pytest.approx(value)


@pytest.mark.parametrize(
    "spec, message",
    [("fast", "give a number"), ("linear:0:1", "takes 3 to 3 numbers"), ("linear:a:b:c", "must have numbers"),
     ("linear:0:1:0", "positive number of epochs"), ("cyclic:0:1:2:0", "0 < rise")],
)
def test_bad_weights_are_named(spec, message):
    with pytest.raises(ValueError, match=message):
        parse_weight(spec)


def test_engine_follows_the_schedule_and_logs_it(tmp_path):
    config = TrainConfig(
        data="digits", terms={"rate": "linear:-1:0:2"}, epochs=3, latent_dims=(4,), hidden_dims=(16,),
        out=str(tmp_path), eval_every=0, progress=False,
    )
    Trainer(config).fit()
    weights = [r["weight_rate"] for r in read_metrics(tmp_path)]
    # the last step of each epoch: progress (e + 11/12) epochs with 12 batches of digits
    assert weights == pytest.approx([-1 + (11 / 12) / 2, -1 + (1 + 11 / 12) / 2, 0.0])
    with pytest.raises(ValueError, match="cannot read the weight"):
        TrainConfig(terms={"rate": "soon"})
