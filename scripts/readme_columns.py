"""Write the column reference of README.md from the one column list (workbench.index.columns)."""

from pathlib import Path

from workbench.index.columns import readme_with_reference

README = Path(__file__).resolve().parents[1] / "README.md"

if __name__ == "__main__":
    README.write_text(readme_with_reference(README.read_text()))
    print(f"updated the column reference in {README}")
