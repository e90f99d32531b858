"""The rate–distortion plane: reading R and D of run directories, and the PNG with the H − R line."""

import json

import numpy as np
import pytest

from pyro_deepvi.evaluation.rate_distortion import (
    estimate_entropy,
    plot_rate_distortion,
    rate_distortion_points,
)


def fake_run(root, name, records, report=None):
    run = root / name
    run.mkdir()
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    if report is not None:
        (run / "eval.json").write_text(json.dumps(report))
    return run


@pytest.fixture
def runs(tmp_path):
    return [
        # train points: the last record counts
        fake_run(tmp_path, "beta-0.5", [
            {"epoch": 1, "train_rate": 30.0, "train_distortion": 40.0},
            {"epoch": 2, "train_rate": 25.0, "train_distortion": 20.0},
        ], {"test_log_likelihood": -60.0, "test_elbo": -62.0}),
        fake_run(tmp_path, "beta-4", [{"epoch": 2, "train_rate": 3.0, "train_distortion": 55.0}],
                 {"test_log_likelihood": -58.5}),
        # a test point: eval.json's test_rate and test_distortion win over the metrics
        fake_run(tmp_path, "beta-1", [{"epoch": 2, "train_rate": 12.0, "train_distortion": 45.0}],
                 {"test_rate": 11.0, "test_distortion": 48.0, "test_log_likelihood": -57.0}),
        fake_run(tmp_path, "no-eval", [{"epoch": 3, "train_rate": 8.0, "train_distortion": 50.0}]),
    ]


def test_points_are_read_from_eval_json_or_the_last_metrics_record(runs):
    points = rate_distortion_points(runs)
    got = [(p["label"], p["rate"], p["distortion"], p["source"], p["epoch"], p["test_log_likelihood"]) for p in points]
    assert got == [
        ("beta-0.5", 25.0, 20.0, "train", 2, -60.0),
        ("beta-4", 3.0, 55.0, "train", 2, -58.5),
        ("beta-1", 11.0, 48.0, "test", None, -57.0),
        ("no-eval", 8.0, 50.0, "train", 3, None),
    ]
    assert estimate_entropy(points) == 57.0  # −(best test log p(x))


def test_a_run_without_rate_or_distortion_is_refused(tmp_path):
    run = fake_run(tmp_path, "empty", [{"epoch": 1, "train_elbo": -3.0}])
    with pytest.raises(ValueError, match="no rate and distortion"):
        rate_distortion_points([run])


def _h_line(fig):
    (ax,) = fig.axes
    lines = [line for line in ax.lines if line.get_label().startswith("D = H − R")]
    assert len(lines) == 1
    return lines[0]


def test_plot_draws_the_points_and_the_line_at_the_given_entropy(runs, tmp_path):
    points = rate_distortion_points(runs)
    path = tmp_path / "rd.png"
    fig, entropy, estimated = plot_rate_distortion(points, path, entropy=50.0)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (entropy, estimated) == (50.0, False)
    line = _h_line(fig)
    assert np.allclose(line.get_xdata(), [0.0, 50.0]) and np.allclose(line.get_ydata(), [50.0, 0.0])
    assert "estimate" not in line.get_label()
    (ax,) = fig.axes
    offsets = ax.collections[-1].get_offsets()  # the scatter of the runs, drawn last
    assert np.allclose(offsets, [[p["rate"], p["distortion"]] for p in points])
    assert sorted(t.get_text() for t in ax.texts) == sorted(p["label"] for p in points)


def test_plot_estimates_the_entropy_from_the_best_test_log_likelihood(runs, tmp_path):
    fig, entropy, estimated = plot_rate_distortion(rate_distortion_points(runs), tmp_path / "rd.png")
    assert (entropy, estimated) == (57.0, True)
    line = _h_line(fig)
    assert np.allclose(line.get_xdata(), [0.0, 57.0])
    assert "estimate" in line.get_label()


def test_plot_without_any_entropy_draws_no_line(tmp_path):
    run = fake_run(tmp_path, "only", [{"epoch": 1, "train_rate": 2.0, "train_distortion": 9.0}])
    fig, entropy, _ = plot_rate_distortion(rate_distortion_points([run]), tmp_path / "rd.png")
    assert entropy is None
    assert not [line for line in fig.axes[0].lines if line.get_label().startswith("D = H")]
    assert (tmp_path / "rd.png").exists()
