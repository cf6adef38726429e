"""Radiation dose audit: dose reports into tables, SSDE from the images, DRL comparison, charts.

Names are imported from their modules on first use.
"""

from typing import Any

_NAMES = {
    "DoseReportError": "rdsr", "report_rows": "rdsr",
    "DoseTables": "tables", "dose_tables": "tables", "header_dose": "tables",
}
__all__ = sorted(_NAMES)


def __getattr__(name: str) -> Any:
    if name in _NAMES:
        import importlib

        return getattr(importlib.import_module(f"workbench.dose.{_NAMES[name]}"), name)
    raise AttributeError(f"module 'workbench.dose' has no attribute {name!r}")
