"""The results table every benchmark prints: metric, value, target, PASS/FAIL."""

from __future__ import annotations

import os
import platform
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import psutil


@dataclass
class Report:
    """Lines of one table: (metric, value, target, verdict or '')."""

    title: str
    rows: list[tuple[str, str, str, str]] = field(default_factory=list)

    def add(self, metric: str, value: str, target: str = "", ok: bool | None = None) -> None:
        """A row; ``ok`` None for a row with no target."""
        verdict = "" if ok is None else ("PASS" if ok else "FAIL")
        self.rows.append((metric, value, target, verdict))

    @property
    def failed(self) -> bool:
        """Whether any row missed its target."""
        return any(row[3] == "FAIL" for row in self.rows)

    def print(self) -> None:
        """The table, columns aligned."""
        header = ("metric", "value", "target", "result")
        widths = [max(len(row[i]) for row in [header, *self.rows]) for i in range(4)]
        print(f"\n== {self.title}")
        for row in [header, *self.rows]:
            print("  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def version(dist: str) -> str:
    """Installed version of a distribution, or 'not installed'."""
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine() -> str:
    """One line on the machine a benchmark runs on: CPUs, memory, load, platform."""
    return (
        f"machine: {os.cpu_count()} CPUs, {psutil.virtual_memory().total / 2**30:.1f} GiB RAM, "
        f"load average {os.getloadavg()[0]:.1f}, {platform.platform()}"
    )


@contextmanager
def work_directory(given: Path | None, prefix: str, keep: bool = False) -> Iterator[Path]:
    """``given`` (created if missing, never deleted), or a temporary directory under /tmp named
    ``prefix``..., deleted at the end unless ``keep``."""
    workdir = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp")) if given is None else given
    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        yield workdir
    finally:
        if given is None and not keep:
            shutil.rmtree(workdir, ignore_errors=True)
        elif given is None:
            print(f"kept {workdir}")
