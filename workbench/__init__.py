"""workbench: a notebook-first workbench for medical imaging data (DICOM)."""

from workbench.index import Index, crawl, open_index

__all__ = ["Index", "crawl", "open_index"]
__version__ = "0.1.0"
