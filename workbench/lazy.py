"""Attributes of a package imported on first use, so that a command imports only what it needs."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_attributes(package: str, where: dict[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` (PEP 562) that imports ``where[name]`` and returns its ``name``.

    A module name starting with ``.`` is relative to ``package``.

    Raises
    ------
    AttributeError
        From the returned function, for a name that is not in ``where``.
    """
    def __getattr__(name: str) -> Any:
        if name in where:
            return getattr(importlib.import_module(where[name], package), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")
    return __getattr__
