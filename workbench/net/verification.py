"""``workbench echo``: can this PACS be reached, and which services does it offer us?

C-ECHO (PS3.7 Section 9.1.5) on an association that also proposes the Study Root
query/retrieve models (PS3.4 Annex C) and the storage classes this tool sends, so one
association tells which of them the PACS accepts.
"""

from __future__ import annotations

from dataclasses import dataclass

from workbench.net.address import PacsAddress, TlsFiles, parse_address
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


def echo(
    url: str,
    *,
    calling_aet: str = DEFAULT_CALLING_AET,
    timeout: float = 10.0,
    move_port: int | None = None,
    move_aet: str | None = None,
    move_host: str = "127.0.0.1",
    move_study: str | None = None,
    tls: TlsFiles | None = None,
) -> list[EchoCheck]:
    """Check the PACS at ``url`` (``dicom://AET@HOST:PORT``) the way a user should before a crawl.

    Parameters
    ----------
    move_port : int, optional
        Also check C-MOVE back to us: a storage SCP listens on ``move_host:move_port`` as
        ``move_aet`` (default ``calling_aet``) and the PACS is asked to move ``move_study`` there
        (every instance that arrives is counted and dropped), or, without ``move_study``, a study
        that does not exist, which tells whether the PACS knows the destination when it answers
        0xA801 (Move Destination Unknown, PS3.4 Table C.4-2) or success.
    tls : TlsFiles, optional
        Use TLS with these files (``dicoms://`` uses TLS with the system's CAs without them).

    Returns
    -------
    list of EchoCheck
        The association, C-ECHO, each Study Root query/retrieve service, the storage classes
        of :data:`STORAGE_CLASSES` and, with ``move_port``, C-MOVE back to us. When the
        association fails, only that check, with the reason.

    Raises
    ------
    ValueError
        When ``url`` or ``calling_aet`` is malformed.
    """
    address = parse_address(url, tls)
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
    if move_port is not None:
        checks.append(_move_back(address, calling_aet, move_aet or calling_aet, move_host, move_port,
                                 move_study, timeout))
    return checks


def _move_back(address: PacsAddress, calling_aet: str, move_aet: str, host: str, port: int,
               study: str | None, timeout: float) -> EchoCheck:
    """Whether the PACS can C-MOVE to us: a storage SCP here, and a C-MOVE of one study to it."""
    from pydicom import Dataset

    from workbench.net.retrieval import STUDY_ROOT_MOVE, move_association, storage_scp

    name = "C-MOVE back to us"
    advice = (f"ask the PACS administrator to register AE title {move_aet!r} with host {host} and port "
              f"{port} as a C-MOVE destination, and to let it connect there")
    arrived = []

    def count(event) -> int:
        arrived.append(event.request.AffectedSOPInstanceUID)
        return 0x0000

    identifier = Dataset()
    identifier.QueryRetrieveLevel = "STUDY"
    identifier.StudyInstanceUID = study or "2.25.0"  # no study has this UID
    try:
        with storage_scp(move_aet, host, port, address.called_aet, count, timeout), \
                move_association(address, calling_aet, timeout) as assoc:
            final = None
            for status, _ in assoc.send_c_move(identifier, move_aet, STUDY_ROOT_MOVE):
                final = status
    except PacsError as exc:
        return EchoCheck(name, False, str(exc), exc.advice)
    code = getattr(final, "Status", None)
    where = f"{move_aet} at {host}:{port}"
    if code == 0xA801:
        return EchoCheck(name, False, f"the PACS does not know {move_aet!r} as a move destination (0xA801)",
                         advice)
    if code is None:
        return EchoCheck(name, False, "no answer to the C-MOVE", advice)
    if study:
        if arrived and code in (0x0000, 0xB000):
            return EchoCheck(name, True, f"{len(arrived)} instance(s) of the study came back to {where}")
        return EchoCheck(name, False, f"status 0x{code:04X}, {len(arrived)} instance(s) came back to {where}",
                         advice)
    if code == 0x0000:
        return EchoCheck(name, True, f"the PACS knows {move_aet!r} as a move destination (give a study to "
                                     f"check that instances reach {host}:{port})")
    return EchoCheck(name, False, f"status 0x{code:04X} to a C-MOVE of no study: the PACS may not know "
                                  f"{move_aet!r}; give a study to check", advice)
