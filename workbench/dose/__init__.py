"""Radiation dose audit: dose reports into tables, SSDE from the images, DRL comparison, charts.

Names are imported from their modules on first use.
"""

from workbench.lazy import lazy_attributes

_NAMES = {
    "DoseReportError": ".rdsr", "report_rows": ".rdsr",
    "DoseTables": ".tables", "dose_tables": ".tables", "header_dose": ".tables",
}
__all__ = sorted(_NAMES)
__getattr__ = lazy_attributes(__name__, _NAMES)
