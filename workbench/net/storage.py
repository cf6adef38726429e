"""Send instances to a PACS with C-STORE (PS3.4 Annex B, PS3.7 Section 9.1.1)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field

from pydicom import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from workbench.dicom import values
from workbench.dicom.header import read_header
from workbench.net.address import TlsFiles, parse_address
from workbench.net.association import DEFAULT_CALLING_AET, associate, grouped_by_class, storage_contexts
from workbench.progress import progress_bar

# C-STORE statuses that store the instance (PS3.4 Table B.2-1): success and the warnings.
_STORED = {0x0000, 0xB000, 0xB006, 0xB007}
_SOP_CLASS, _SOP_INSTANCE = 0x00080016, 0x00080018


@dataclass
class SendResult:
    """What a :func:`send` stored and what it could not, each with the reason."""

    sent: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)


def send(
    items: Iterable[str | os.PathLike | Dataset],
    url: str,
    *,
    calling_aet: str = DEFAULT_CALLING_AET,
    timeout: float = 30.0,
    quiet: bool = False,
    tls: TlsFiles | None = None,
) -> SendResult:
    """Store files or data sets on the PACS at ``url``: C-STORE or STOW-RS.

    ``dicom://AET@HOST:PORT``: each instance is proposed in its own transfer syntax and in both
    uncompressed little endian ones, so the PACS may take it as is; its SOP Class is the abstract
    syntax (SR classes included). ``dicomweb+http(s)://HOST:PORT/PATH``: STOW-RS (PS3.18
    Section 10.5), a few instances per request, each failure read from the response's Failed
    SOP Sequence.

    Returns
    -------
    SendResult
        How many were stored, and each item that was not (unreadable, no SOP Class, not accepted,
        refused with a status) with the reason; the others are sent all the same.

    Raises
    ------
    PacsError
        When the PACS cannot be reached or rejects the association.
    ValueError
        When ``url`` or ``calling_aet`` is malformed.
    """
    from workbench.net.dicomweb import is_dicomweb

    if is_dicomweb(url):
        return _stow(list(items), url, timeout, quiet)
    address = parse_address(url, tls)
    result = SendResult()
    # (where, SOP Class UID, transfer syntax, what to store): files are only described from their
    # header here, and read one at a time when stored.
    pending: list[tuple[str, str, str, str | Dataset]] = []
    for item in items:
        try:
            pending.append(_describe(item))
        except Exception as exc:  # noqa: BLE001 - one bad item is listed, the rest is sent
            where = "a data set" if isinstance(item, Dataset) else str(item)
            result.failed.append((where, f"not sendable: {type(exc).__name__}: {exc}"))
    # Contexts per SOP class and transfer syntax, in associations of at most 128 contexts.
    by_class: dict[str, set[str]] = {}
    for _, sop_class, syntax, _ in pending:
        by_class.setdefault(sop_class, set()).add(syntax)
    with progress_bar(total=len(pending), unit="instance", desc="send", disable=quiet or not pending) as bar:
        for contexts in grouped_by_class(storage_contexts(by_class)):
            group = {uid for uid, _ in contexts}
            with associate(address, contexts, calling_aet=calling_aet, timeout=timeout) as assoc:
                for where, sop_class, _, what in pending:
                    if sop_class in group:
                        _store(assoc, where, what, result)
                        bar.update(1)
    return result


def _describe(item: str | os.PathLike | Dataset) -> tuple[str, str, str, str | Dataset]:
    """(where, SOP Class UID, transfer syntax, what to store) of one item; raises when unsendable."""
    if isinstance(item, Dataset):
        sop_class, sop_instance = item.get("SOPClassUID"), item.get("SOPInstanceUID")
        meta = getattr(item, "file_meta", None)
        syntax = getattr(meta, "TransferSyntaxUID", None)
        where = f"data set {sop_instance}"
    else:
        with open(item, "rb") as fh:
            header = read_header(fh, {_SOP_CLASS: "UI", _SOP_INSTANCE: "UI"})
        sop_class = values.decode_text(header.elements.get(_SOP_CLASS, ("UI", b""))[1], "UI", ())
        sop_instance = values.decode_text(header.elements.get(_SOP_INSTANCE, ("UI", b""))[1], "UI", ())
        syntax = header.transfer_syntax_uid or (
            ImplicitVRLittleEndian if header.implicit_vr else ExplicitVRLittleEndian)
        where, item = str(item), os.fspath(item)
    if not (sop_class and sop_instance):
        raise ValueError("no SOP Class UID or SOP Instance UID")
    return where, str(sop_class), str(syntax or ExplicitVRLittleEndian), item


def _store(assoc, where: str, what: str | Dataset, result: SendResult) -> None:
    try:
        status = assoc.send_c_store(what)  # a path is read by pynetdicom now, not kept in memory
    except ValueError as exc:  # pynetdicom: no accepted context for this class and syntax
        result.failed.append((where, f"not accepted by the PACS: {exc}"))
        return
    except (OSError, InvalidDicomError) as exc:  # the file changed or vanished since it was listed
        result.failed.append((where, f"not readable: {exc}"))
        return
    except AttributeError as exc:  # a data set without the file meta pynetdicom needs
        result.failed.append((where, f"not sendable: {exc}"))
        return
    except RuntimeError as exc:  # pynetdicom: the association is gone
        result.failed.append((where, f"not sent: {exc}"))
        return
    code = getattr(status, "Status", None)
    if code in _STORED:
        result.sent += 1
    else:
        reason = "no reply (association lost)" if code is None else f"refused with status 0x{code:04X}"
        result.failed.append((where, reason))


# Instances per STOW-RS request: a few, so one failed request costs little.
_STOW_BATCH = 16


def _stow(items: list[str | os.PathLike | Dataset], url: str, timeout: float, quiet: bool) -> SendResult:
    import requests
    from pydicom import dcmread

    from workbench.net.dicomweb import client, http_failure, parse_dicomweb

    address = parse_dicomweb(url)
    web = client(address, timeout)
    result = SendResult()
    with progress_bar(total=len(items), unit="instance", desc="send", disable=quiet or not items) as bar:
        for first in range(0, len(items), _STOW_BATCH):
            batch: list[tuple[str, Dataset]] = []
            for item in items[first:first + _STOW_BATCH]:
                where = "a data set" if isinstance(item, Dataset) else str(item)
                try:
                    batch.append((where, item if isinstance(item, Dataset) else dcmread(item)))
                except Exception as exc:  # noqa: BLE001 - one bad item is listed, the rest is sent
                    result.failed.append((where, f"not sendable: {type(exc).__name__}: {exc}"))
            if not batch:
                bar.update(len(items[first:first + _STOW_BATCH]))
                continue
            try:
                response = web.store_instances([ds for _, ds in batch])
            except requests.HTTPError as exc:  # the server refused this request: the others go on
                reason = str(http_failure(address, "STOW-RS", exc))
                result.failed.extend((where, reason) for where, _ in batch)
                bar.update(len(items[first:first + _STOW_BATCH]))
                continue
            except Exception as exc:  # noqa: BLE001 - unreachable, timeout: one sentence
                raise http_failure(address, "STOW-RS", exc) from None
            failed = {str(f.ReferencedSOPInstanceUID): f.get("FailureReason")
                      for f in response.get("FailedSOPSequence", [])}
            for where, ds in batch:
                reason = failed.get(str(ds.SOPInstanceUID), "ok")
                if reason == "ok":
                    result.sent += 1
                else:
                    result.failed.append((where, f"refused with failure reason {reason}"))
            bar.update(len(items[first:first + _STOW_BATCH]))
    return result
