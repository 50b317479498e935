"""notebooks/analysis.ipynb executes (nbclient) on the committed real-run fixture."""

import os

import pytest

nbclient = pytest.importorskip("nbclient")
nbformat = pytest.importorskip("nbformat")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOK = os.path.join(REPO, "notebooks", "analysis.ipynb")
FIXTURE = os.path.join(REPO, "tests", "data", "results_fixture.jsonl")


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists(FIXTURE), reason="fixture not generated yet")
def test_analysis_notebook_runs_on_the_fixture(monkeypatch):
    monkeypatch.setenv("TFOPT_RESULTS", FIXTURE)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert "keras" not in code and "build_model" not in code  # analysis only, no model code
    client = nbclient.NotebookClient(
        nb,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": os.path.join(REPO, "notebooks")}},
    )
    client.execute()
    outputs = "".join(
        o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
    )
    assert "trials" in outputs and "| variant |" in outputs
    images = [o for c in nb.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert images
