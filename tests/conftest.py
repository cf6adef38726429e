"""Shared fixtures: real test data (pydicom's bundled files, the shared corpus, the sample set)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pydicom
import pytest

REPO = Path(__file__).resolve().parents[1]
SAMPLE_DIR = REPO / "data" / "sample"
CORPUS_DIR = REPO.parent / "shared" / "corpus"
PYDICOM_TEST_FILES = Path(pydicom.__file__).parent / "data" / "test_files"


@pytest.fixture(scope="session")
def pydicom_files() -> Path:
    """pydicom's bundled test files: real vendor files that nobody here wrote."""
    return PYDICOM_TEST_FILES


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    """../shared/corpus (real vendor dose reports and scanner series); skipped where absent."""
    if not CORPUS_DIR.is_dir():
        pytest.skip(f"the shared corpus {CORPUS_DIR} is absent (a fresh clone); CI has it")
    return CORPUS_DIR


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    """The bundled sample data made by data/make_sample.py."""
    return SAMPLE_DIR


@pytest.fixture()
def sample_copy(tmp_path: Path) -> Path:
    """A writable copy of the sample data, for tests that add, change or delete files."""
    target = tmp_path / "sample"
    shutil.copytree(SAMPLE_DIR, target)
    return target


@pytest.fixture(scope="session")
def sample_index(tmp_path_factory: pytest.TempPathFactory):
    """The sample data crawled once per session (read-only for the tests that use it)."""
    import workbench

    return workbench.crawl([SAMPLE_DIR], index=tmp_path_factory.mktemp("sample") / "index", quiet=True)


@pytest.fixture(scope="session")
def run_env() -> dict[str, str]:
    """The environment for running ``python -m workbench`` from this checkout in a subprocess."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env
