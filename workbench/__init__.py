"""workbench: a notebook-first workbench for medical imaging data (DICOM)."""

from workbench.index import Index, crawl, open_index
from workbench.lazy import lazy_attributes

__all__ = ["Index", "crawl", "inspect_series", "load_series", "open_index", "reformat"]
__version__ = "0.1.0"

# The volume API needs SimpleITK; it is imported on first use so the crawl command starts fast.
__getattr__ = lazy_attributes(__name__, {
    "load_series": "workbench.volume.load",
    "inspect_series": "workbench.volume.load",
    "reformat": "workbench.volume.reformat",
})
