"""curves.png: a panel per unit, one line per distinct curve, integer epochs, a title."""

import matplotlib.image

from pyro_deepvi.evaluation.plots import curve_lines, save_curves

RECORDS = [
    {"epoch": 1, "step": 10, "seconds": 0.5, "train_elbo": -120.0, "train_bound": -120.0, "train_rate": 3.0},
    {"epoch": 2, "step": 20, "seconds": 0.5, "train_elbo": -110.0, "train_bound": -110.0, "train_rate": 4.0,
     "valid_elbo": -112.0, "valid_iwae_100": -108.0, "valid_perplexity": 1900.0, "valid_test_error": 0.1},
    {"epoch": 3, "step": 30, "seconds": 0.5, "train_elbo": -105.0, "train_bound": -105.0, "train_rate": 4.5},
]


def test_one_panel_per_unit_and_no_duplicated_lines():
    panels = curve_lines(RECORDS)
    assert list(panels) == ["nats per data point", "accuracy or error rate", "perplexity"]
    nats = panels["nats per data point"]
    assert sorted(nats) == ["train_bound = train_elbo", "valid_elbo", "valid_iwae_100"]  # the ELBO's bound is drawn once
    assert nats["train_bound = train_elbo"] == [(1, -120.0), (2, -110.0), (3, -105.0)]
    assert panels["perplexity"] == {"valid_perplexity": [(2, 1900.0)]}
    assert panels["accuracy or error rate"] == {"valid_test_error": [(2, 0.1)]}
    iwae = [{**r, "train_bound": r["train_elbo"] + 2} for r in RECORDS]
    assert {"train_bound", "train_elbo"} <= set(curve_lines(iwae)["nats per data point"])  # different: two lines


def test_the_figure_has_a_row_per_panel(tmp_path):
    path = tmp_path / "run" / "curves.png"
    path.parent.mkdir()
    assert save_curves(RECORDS, path)
    height, width, _ = matplotlib.image.imread(path).shape
    assert height > 1.4 * width  # three panels stacked (6 x 9.6 inches)
    assert save_curves(RECORDS[:1], tmp_path / "one.png")
    assert not save_curves([], tmp_path / "none.png") and not (tmp_path / "none.png").exists()
