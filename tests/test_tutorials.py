"""Every tutorial notebook runs from top to bottom without an error, in smoke mode.

Each ``tutorials/*.ipynb`` is executed with nbclient in a fresh ``python3``
kernel whose working directory is a temporary folder and whose environment has
``PYRO_DEEPVI_SMOKE=1``, which every tutorial reads to shrink its budgets
(epochs, particles) so that it runs in under a minute. New notebooks are
picked up automatically.
"""

from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

TUTORIALS = Path(__file__).resolve().parents[1] / "tutorials"
NOTEBOOKS = sorted(TUTORIALS.glob("*.ipynb"))
CELL_TIMEOUT = 600  # seconds per cell


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_tutorial_runs(path, tmp_path, monkeypatch):
    # The kernel inherits this process's environment. One intra-op thread: smoke-mode networks are
    # tiny, and several OpenMP threads on a busy machine (pytest -n, other jobs) slow them down
    # several-fold.
    monkeypatch.setenv("PYRO_DEEPVI_SMOKE", "1")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    # Run directories made with tempfile (tempfile.mkdtemp()) land in tmp_path, cleaned up by pytest.
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    notebook = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()  # raises CellExecutionError, with the cell and its traceback, on any error


def test_tutorials_found():
    assert NOTEBOOKS, f"no notebooks in {TUTORIALS}"
