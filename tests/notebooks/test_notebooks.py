"""Every notebook runs top to bottom in a fresh kernel, as a user would run it."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOK_DIR = Path(__file__).resolve().parents[2] / "notebooks"
#: Notebooks that need a PACS run in tests/net, with one.
NEEDS_PACS = {"05_pacs_crawl_and_retrieve.ipynb"}
NOTEBOOKS = sorted(p for p in NOTEBOOK_DIR.glob("*.ipynb") if p.name not in NEEDS_PACS)


@cache
def executed_text(path: Path) -> str:
    """Run the notebook in a fresh kernel (failing on any error) and return its text outputs."""
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    ).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    return "".join(str(o.get("data", {}).get("text/plain", "")) + o.get("text", "") for o in outputs)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs_without_error(path: Path) -> None:
    assert executed_text(path)


def test_crawl_notebook_answers_its_questions() -> None:
    text = executed_text(NOTEBOOK_DIR / "01_crawl_and_query.ipynb")
    assert "AXIAL" in text and "CORONAL" in text  # the series geometry table
    assert "not_dicom" in text and "truncated" in text and "empty" in text  # the errors table
    assert "duplicate SOPInstanceUIDs: 1" in text
    assert "'files_read': 0" in text  # the incremental re-crawl


def test_volume_notebook_shows_planes_and_explains_a_refusal() -> None:
    text = executed_text(NOTEBOOK_DIR / "02_volumes_mpr_mip.ipynb")
    assert "spacing (1.5, 1.5, 5.0)" in text
    assert "refused: slices are not evenly spaced" in text and "10 mm at" in text
    assert "resampled onto (256, 256, 30) voxels" in text
    assert text.count("<Figure") >= 3  # the plane, slab and preset figures


def test_anonymization_notebook_exports_verified_and_shows_the_check_works() -> None:
    text = executed_text(NOTEBOOK_DIR / "04_anonymized_dataset.ipynb")
    assert "exported 71 files, held back 0, failed 0" in text
    assert "verified: True - findings: 0" in text
    assert "findings in the originals" in text and "PatientName" in text


def test_dose_notebook_audits_the_sample_and_the_corpus() -> None:
    text = executed_text(NOTEBOOK_DIR / "03_dose_audit.ipynb")
    assert "studies," in text and "irradiation events" in text  # audit.summary()
    # The sample study: the DLP total its report states, and our sum over its two events.
    assert "DLP total 151.83 mGy.cm as reported, 151.83 mGy.cm summed over 2 events" in text
    assert "mean Dw 258.6 mm" in text and "SSDE 14.06 mGy" in text  # SSDE of the sample's spiral event
    assert "Abdomen 5.0 B30f" in text and "9.81" in text  # dose from the image headers
    assert "above their DRL" in text
    assert text.count("<Figure") >= 5  # distributions, trend, SSDE vs CTDIvol
    if (NOTEBOOK_DIR.parent.parent / "shared" / "corpus" / "rdsr").is_dir():
        assert "corpus of vendor RDSRs: included" in text
        assert "116.61" in text  # Siemens "continued" reports merged: the sum over their 4 events, once each
        assert "studies above their DRL: 1 of 3 compared" in text  # CTAWP00001's TAP, 724.52 > 660 mGy.cm
        assert "Selenia Dimensions" in text and "Allura Xper" in text  # mammography and fluoroscopy
    else:
        assert "corpus of vendor RDSRs: not found, the sample alone" in text
