"""The README a newcomer reads: the column reference is the code's, the two commands are real."""

from __future__ import annotations

import re
from pathlib import Path

from workbench.index.columns import readme_with_reference

REPO = Path(__file__).resolve().parents[2]


def test_column_reference_is_generated_from_the_column_list() -> None:
    readme = (REPO / "README.md").read_text()
    assert readme_with_reference(readme) == readme, "run: python scripts/readme_columns.py"


def test_ci_runs_the_readme_test_command() -> None:
    readme = (REPO / "README.md").read_text()
    commands = re.findall(r"^(.+?)\s+# ", readme.split("## Two commands", 1)[1].split("```")[1], re.M)
    assert commands == ["pip install -e . && workbench demo", "bash scripts/test.sh"]
    ci = (REPO / ".ci" / "run").read_text()
    assert "exec bash scripts/test.sh" in ci
