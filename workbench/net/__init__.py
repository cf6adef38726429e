"""A PACS as a source and a destination: addresses, associations, C-ECHO, C-FIND, C-GET/C-MOVE,
C-STORE (pynetdicom) and DICOMweb (dicomweb-client)."""

from typing import Any

from workbench.net.address import PacsAddress, parse_address
from workbench.net.association import PacsError

__all__ = ["EchoCheck", "PacsAddress", "PacsError", "RetrieveResult", "SendResult", "echo", "parse_address",
           "retrieve", "send"]

# The services need pydicom and pynetdicom; they are imported on first use so the CLI starts fast.
_LAZY = {
    "EchoCheck": "workbench.net.verification",
    "echo": "workbench.net.verification",
    "SendResult": "workbench.net.storage",
    "send": "workbench.net.storage",
    "RetrieveResult": "workbench.net.retrieval",
    "retrieve": "workbench.net.retrieval",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'workbench.net' has no attribute {name!r}")
