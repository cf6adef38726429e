"""notebooks/05 runs top to bottom in a fresh kernel against the test PACS."""

from __future__ import annotations

from pathlib import Path

import nbformat
from conftest import TEST_AET
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "05_pacs_crawl_and_retrieve.ipynb"


def test_pacs_notebook_crawls_and_pulls_a_study(pacs, monkeypatch):
    monkeypatch.setenv("WORKBENCH_PACS", pacs.url)
    monkeypatch.setenv("WORKBENCH_AET", TEST_AET)
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(notebook, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    text = "".join(str(o.get("data", {}).get("text/plain", "")) + o.get("text", "") for o in outputs)
    assert "FAIL" not in text and "ok    C-ECHO" in text
    n_files = sum(1 for p in pacs.files.rglob("*") if p.is_file())
    assert f"complete: True - {n_files} instances" in text
    assert "retrieved 20 of 20 instances" in text and "failed: []" in text
    assert "second run: 20 already there, 0 fetched" in text
    assert "size (192, 192, 20)" in text and any("image/png" in o.get("data", {}) for o in outputs)
