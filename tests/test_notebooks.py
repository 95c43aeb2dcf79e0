"""The notebooks: each .ipynb is paired with its py-percent script and executes top to bottom in a Jupyter kernel.

Budget: every cell must finish within CELL_BUDGET_S (nbclient fails the cell otherwise); a whole notebook takes
well under a minute on 2 cores (docs: notebooks/README.md).
"""

from __future__ import annotations

from pathlib import Path

import pytest

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
SCRIPTS = sorted(p for p in NOTEBOOK_DIR.glob("*.py"))
CELL_BUDGET_S = 240

jupytext = pytest.importorskip("jupytext")
nbformat = pytest.importorskip("nbformat")


def _cells(nb) -> list[tuple[str, str]]:
    return [(c.cell_type, c.source.strip()) for c in nb.cells if c.source.strip()]


def test_every_script_has_its_notebook():
    assert SCRIPTS, "no notebooks"
    assert {p.stem for p in SCRIPTS} == {p.stem for p in NOTEBOOKS}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_matches_its_script(path):
    """The .ipynb holds the script's cells (refresh with `make notebooks` after editing the script)."""
    script = jupytext.read(path.with_suffix(".py"))
    notebook = nbformat.read(path, as_version=4)
    assert _cells(notebook) == _cells(script)
    assert notebook.cells[0].cell_type == "markdown" and notebook.cells[0].source.lstrip().startswith("# ")
    assert notebook.cells[0].source.splitlines()[0].rstrip().endswith("?"), "the title asks the question"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes(path, monkeypatch, tmp_path):
    from nbclient import NotebookClient

    monkeypatch.setenv("PSL_SCHED_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=CELL_BUDGET_S,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK_DIR)}},
    )
    client.execute()
    errors = [o for c in notebook.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    images = [o for c in notebook.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert images, "a notebook shows at least one plot"
