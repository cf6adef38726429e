"""A PACS as a source and a destination: addresses, associations, C-ECHO and C-STORE (pynetdicom)."""

from workbench.net.address import PacsAddress, parse_address
from workbench.net.association import PacsError
from workbench.net.echo import EchoCheck, echo
from workbench.net.send import SendResult, send

__all__ = ["EchoCheck", "PacsAddress", "PacsError", "SendResult", "echo", "parse_address", "send"]
