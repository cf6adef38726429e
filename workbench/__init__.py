"""workbench: a notebook-first workbench for medical imaging data (DICOM)."""

from typing import Any

from workbench.index import Index, crawl, open_index

__all__ = ["Index", "crawl", "inspect_series", "load_series", "open_index", "reformat"]
__version__ = "0.1.0"

# The volume API needs SimpleITK; it is imported on first use so the crawl command starts fast.
_LAZY = {
    "load_series": "workbench.volume.load",
    "inspect_series": "workbench.volume.load",
    "reformat": "workbench.volume.reformat",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'workbench' has no attribute {name!r}")
