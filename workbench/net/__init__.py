"""A PACS as a source and a destination: addresses, associations, C-ECHO, C-FIND, C-GET/C-MOVE,
C-STORE (pynetdicom) and DICOMweb (dicomweb-client)."""

from workbench.lazy import lazy_attributes
from workbench.net.address import PacsAddress, parse_address
from workbench.net.association import PacsError

__all__ = ["EchoCheck", "PacsAddress", "PacsError", "RetrieveResult", "SendResult", "echo", "parse_address",
           "retrieve", "send"]

# The services need pydicom and pynetdicom; they are imported on first use so the CLI starts fast.
__getattr__ = lazy_attributes(__name__, {
    "EchoCheck": "workbench.net.verification",
    "echo": "workbench.net.verification",
    "SendResult": "workbench.net.storage",
    "send": "workbench.net.storage",
    "RetrieveResult": "workbench.net.retrieval",
    "retrieve": "workbench.net.retrieval",
})
