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


def _bash_block(readme: str, section: str) -> str:
    """The first bash block of a README section, without its trailing comments."""
    block = readme.split(section, 1)[1].split("```bash", 1)[1].split("```")[0]
    return "\n".join(line.split("  #")[0] for line in block.strip().splitlines())


def test_the_readme_volume_and_anonymize_commands_work(tmp_path, run_env) -> None:
    import subprocess

    readme = (REPO / "README.md").read_text()
    script = "set -euo pipefail\n" + "\n".join([
        _bash_block(readme, "## Load a series, look at it in any plane"),
        _bash_block(readme, "## Export an anonymized copy"),
    ]).replace("workbench demo", "workbench demo --quiet")
    result = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=run_env, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "coronal_mip.png").stat().st_size > 1000
    assert (tmp_path / "ct.nii.gz").stat().st_size > 1000
    assert (tmp_path / "ct-anon" / "manifest.csv").exists() and (tmp_path / "ct-anon-map.parquet").exists()
    assert "no identifying value of the index found" in result.stdout
