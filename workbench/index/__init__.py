"""Crawl sources into the Parquet index and query it."""

from workbench.index.crawler import crawl
from workbench.index.index import Index, open_index

__all__ = ["Index", "crawl", "open_index"]
