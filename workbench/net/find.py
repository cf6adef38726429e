"""C-FIND queries on a PACS (PS3.4 Annex C, Study Root model; PS3.7 Section 9.1.2).

:class:`DimseFinder` keeps one association open for a whole crawl and opens a new one when
the PACS drops it. A query answers with a :class:`FindReply`: the identifiers and whether the
result was capped, either because as many results came back as the PACS's known limit or
because the PACS said so (status Cancel, 0xFE00, or Refused: Out of Resources, 0xA700).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol

from pydicom import Dataset

from workbench.net.address import PacsAddress, TlsFiles, parse_address
from workbench.net.association import DEFAULT_CALLING_AET, PacsError, associate, requiring

STUDY_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
#: Query/Retrieve levels of the Study Root model (PS3.4 Section C.3.2).
LEVELS = ("STUDY", "SERIES", "IMAGE")
_PENDING = frozenset({0xFF00, 0xFF01})
# Statuses by which a PACS says it stopped before giving every match (PS3.4 Table C.4-1).
_CAPPED = {0xFE00: "cancelled by the PACS", 0xA700: "refused: out of resources"}


@dataclass
class FindReply:
    """What one query returned.

    Attributes
    ----------
    identifiers : list of pydicom.Dataset
        One per match, holding the requested keys the PACS returned.
    capped : bool
        True when the PACS may hold more matches than it returned.
    reason : str
        Why ``capped`` is set (empty when it is not).
    """

    identifiers: list[Dataset] = field(default_factory=list)
    capped: bool = False
    reason: str = ""


class Finder(Protocol):
    """Anything that answers Study Root queries: :class:`DimseFinder` or the DICOMweb one."""

    source: str

    def find(self, level: str, keys: dict[str, str]) -> FindReply:
        """Run one query at ``level`` (STUDY, SERIES or IMAGE) with matching and return keys."""
        ...

    def close(self) -> None:
        """Release what the finder holds."""
        ...


def query_dataset(level: str, keys: dict[str, str]) -> Dataset:
    """The C-FIND identifier for ``keys`` (keyword -> matching value, ``""`` to ask for a value).

    Raises
    ------
    ValueError
        When ``level`` is not a Study Root level or a key is not a DICOM keyword.
    """
    if level not in LEVELS:
        raise ValueError(f"query level {level!r} is not one of {', '.join(LEVELS)}")
    identifier = Dataset()
    identifier.QueryRetrieveLevel = level
    for keyword, value in keys.items():
        try:
            setattr(identifier, keyword, value or None)
        except ValueError:
            raise ValueError(f"{keyword!r} is not a DICOM keyword") from None
    return identifier


class DimseFinder:
    """C-FIND (Study Root) on one PACS, over one association reopened when it is lost.

    Parameters
    ----------
    url : str
        ``dicom://AET@HOST:PORT``.
    calling_aet : str
        This side's AE title, as registered on the PACS.
    timeout : float
        Seconds for connecting and for each reply.
    max_results : int or None
        The PACS's limit of results per query, when known: a reply with this many results is
        taken as capped.
    tls : TlsFiles, optional
        Use TLS with these files (``dicoms://`` uses TLS with the system's CAs without them).
    """

    def __init__(
        self,
        url: str,
        *,
        calling_aet: str = DEFAULT_CALLING_AET,
        timeout: float = 30.0,
        max_results: int | None = None,
        tls: TlsFiles | None = None,
    ) -> None:
        self.address: PacsAddress = parse_address(url, tls)
        self.source = str(self.address)
        self.calling_aet = calling_aet
        self.timeout = timeout
        self.max_results = max_results
        self._opened = None
        self._assoc = None

    def _association(self):
        if self._assoc is None or not self._assoc.is_established:
            self.close()
            opened = associate(self.address, [(STUDY_ROOT_FIND, None)], calling_aet=self.calling_aet,
                               timeout=self.timeout)
            refused = f"{self.address} does not accept C-FIND (Study Root) from {self.calling_aet}"
            advice = "ask the PACS administrator to allow C-FIND (Study Root) for this AE title"
            self._opened = requiring(opened, STUDY_ROOT_FIND, refused, advice)
            try:
                self._assoc = self._opened.__enter__()
            except BaseException:
                self._opened = None
                raise
        return self._assoc

    def find(self, level: str, keys: dict[str, str]) -> FindReply:
        """Run one C-FIND and collect its matches.

        Raises
        ------
        PacsError
            When the association is lost, a reply does not come within the timeout, or the
            PACS answers with a failure status (the status and its comment are in the message).
        """
        identifier = query_dataset(level, keys)
        assoc = self._association()
        reply = FindReply()
        began = time.monotonic()
        for status, match in assoc.send_c_find(identifier, STUDY_ROOT_FIND):
            code = getattr(status, "Status", None)
            if code is None:
                self.close()
                if time.monotonic() - began >= self.timeout:
                    raise PacsError(
                        f"{self.address} did not answer a {level} query within {self.timeout:g} s",
                        "try again later, or raise the timeout")
                raise PacsError(
                    f"{self.address} aborted the association during a {level} query",
                    f"PACSs do this when they do not allow queries from {self.calling_aet}: ask the PACS "
                    "administrator to register this AE title (and this host)",
                )
            if code in _PENDING:
                if match is not None:
                    reply.identifiers.append(match)
            elif code in _CAPPED:
                reply.capped, reply.reason = True, _CAPPED[code]
            elif code != 0x0000:
                comment = status.get("ErrorComment", "")
                raise PacsError(
                    f"{self.address} failed a {level} query with status 0x{code:04X}"
                    + (f": {comment}" if comment else ""),
                    "the query is retried; ask the PACS administrator if it keeps failing",
                )
        if not reply.capped and self.max_results and len(reply.identifiers) >= self.max_results:
            reply.capped, reply.reason = True, f"as many results as the limit ({self.max_results})"
        return reply

    def close(self) -> None:
        """Release the association, if one is open."""
        opened, self._opened, self._assoc = self._opened, None, None
        if opened is not None:
            try:
                opened.__exit__(None, None, None)
            except Exception:  # noqa: BLE001 - a lost association cannot be released; nothing to do
                pass

    def __enter__(self) -> DimseFinder:
        # A refused or unreachable PACS is an error of the whole crawl, not of one query.
        self._association()
        return self

    def __exit__(self, *_) -> None:
        self.close()
