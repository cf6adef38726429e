"""``workbench echo``: can this PACS be reached, and which services does it offer us?

C-ECHO (PS3.7 Section 9.1.5) on an association that also proposes the Study Root
query/retrieve models (PS3.4 Annex C) and the storage classes this tool sends, so one
association tells which of them the PACS accepts.
"""

from __future__ import annotations

from dataclasses import dataclass

from workbench.net.address import parse_address
from workbench.net.association import DEFAULT_CALLING_AET, PacsError, associate

_VERIFICATION = "1.2.840.10008.1.1"
_SERVICES = {
    "C-FIND (Study Root)": "1.2.840.10008.5.1.4.1.2.2.1",
    "C-MOVE (Study Root)": "1.2.840.10008.5.1.4.1.2.2.2",
    "C-GET (Study Root)": "1.2.840.10008.5.1.4.1.2.2.3",
}
#: Storage classes checked (what workbench sends back: images it derives and SR results).
STORAGE_CLASSES = {
    "CT Image Storage": "1.2.840.10008.5.1.4.1.1.2",
    "MR Image Storage": "1.2.840.10008.5.1.4.1.1.4",
    "Secondary Capture Image Storage": "1.2.840.10008.5.1.4.1.1.7",
    "Enhanced SR Storage": "1.2.840.10008.5.1.4.1.1.88.22",
    "Comprehensive SR Storage": "1.2.840.10008.5.1.4.1.1.88.33",
    "X-Ray Radiation Dose SR Storage": "1.2.840.10008.5.1.4.1.1.88.67",
}
_ADVICE = {
    "C-FIND (Study Root)": "ask the PACS administrator to allow C-FIND (Study Root) for this AE title",
    "C-MOVE (Study Root)": "ask the PACS administrator to allow C-MOVE, and to register this AE title, "
                           "host and port as a move destination",
    "C-GET (Study Root)": "the PACS offers no C-GET; retrieve with C-MOVE instead",
}


@dataclass(frozen=True)
class EchoCheck:
    """One line of the echo report: what was checked, whether it worked, and what to do if not."""

    name: str
    ok: bool
    detail: str
    advice: str = ""

    def __str__(self) -> str:
        line = f"{'ok  ' if self.ok else 'FAIL'}  {self.name}: {self.detail}"
        return line + (f" -> {self.advice}" if self.advice and not self.ok else "")


def echo(url: str, *, calling_aet: str = DEFAULT_CALLING_AET, timeout: float = 10.0) -> list[EchoCheck]:
    """Check the PACS at ``url`` (``dicom://AET@HOST:PORT``) the way a user should before a crawl.

    Returns
    -------
    list of EchoCheck
        The association, C-ECHO, each Study Root query/retrieve service and the storage classes
        of :data:`STORAGE_CLASSES`. When the association fails, only that check, with the reason.

    Raises
    ------
    ValueError
        When ``url`` or ``calling_aet`` is malformed.
    """
    address = parse_address(url)
    contexts = [(_VERIFICATION, None), *((uid, None) for uid in _SERVICES.values()),
                *((uid, None) for uid in STORAGE_CLASSES.values())]
    checks = []
    try:
        with associate(address, contexts, calling_aet=calling_aet, timeout=timeout) as assoc:
            checks.append(EchoCheck("association", True, f"{address} accepted {calling_aet}"))
            accepted = {str(c.abstract_syntax) for c in assoc.accepted_contexts}
            status = assoc.send_c_echo()
            code = getattr(status, "Status", None)
            checks.append(EchoCheck(
                "C-ECHO", code == 0,
                "success" if code == 0 else f"status {code!r}" if code is not None else "no reply",
                "ask the PACS administrator why the verification service fails"))
            for name, uid in _SERVICES.items():
                ok = uid in accepted
                checks.append(EchoCheck(name, ok, "accepted" if ok else "not accepted", _ADVICE[name]))
            stored = [name for name, uid in STORAGE_CLASSES.items() if uid in accepted]
            missing = [name for name, uid in STORAGE_CLASSES.items() if uid not in accepted]
            detail = f"accepted: {', '.join(stored) or 'none'}"
            checks.append(EchoCheck(
                "storage (C-STORE)", not missing,
                detail + (f"; not accepted: {', '.join(missing)}" if missing else ""),
                "ask the PACS administrator to accept these storage classes from this AE title"))
    except PacsError as exc:
        checks.append(EchoCheck("association", False, str(exc), exc.advice))
    return checks
