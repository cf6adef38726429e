"""Send instances to a PACS with C-STORE (PS3.4 Annex B, PS3.7 Section 9.1.1)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field

from pydicom import Dataset, dcmread
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from tqdm.auto import tqdm

from workbench.net.address import parse_address
from workbench.net.association import DEFAULT_CALLING_AET, associate

# C-STORE statuses that store the instance (PS3.4 Table B.2-1): success and the warnings.
_STORED = {0x0000, 0xB000, 0xB006, 0xB007}
_MAX_CONTEXTS = 128


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
) -> SendResult:
    """Store files or data sets on the PACS at ``url`` (``dicom://AET@HOST:PORT``).

    Each instance is proposed in its own transfer syntax and in both uncompressed little endian
    ones, so the PACS may take it as is; its SOP Class is the abstract syntax (SR classes included).

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
    address = parse_address(url)
    result = SendResult()
    datasets: list[tuple[str, Dataset]] = []
    for item in items:
        where = "a data set" if isinstance(item, Dataset) else str(item)
        try:
            ds = item if isinstance(item, Dataset) else dcmread(item)
            if not (ds.get("SOPClassUID") and ds.get("SOPInstanceUID")):
                raise ValueError("no SOP Class UID or SOP Instance UID")
        except Exception as exc:  # noqa: BLE001 - one bad item is listed, the rest is sent
            result.failed.append((where, f"not sendable: {type(exc).__name__}: {exc}"))
            continue
        if isinstance(item, Dataset):
            where = f"data set {ds.SOPInstanceUID}"
        datasets.append((where, ds))
    # One association per group of at most 128 SOP classes (one context per class).
    by_class: dict[str, set[str]] = {}
    for _, ds in datasets:
        meta = getattr(ds, "file_meta", None)
        syntax = str(getattr(meta, "TransferSyntaxUID", "") or ExplicitVRLittleEndian)
        by_class.setdefault(str(ds.SOPClassUID), set()).add(syntax)
    classes = sorted(by_class)
    with tqdm(total=len(datasets), unit="instance", desc="send", disable=quiet or not datasets) as bar:
        for first in range(0, len(classes), _MAX_CONTEXTS):
            group = set(classes[first:first + _MAX_CONTEXTS])
            contexts = [(uid, sorted(by_class[uid] | {ExplicitVRLittleEndian, ImplicitVRLittleEndian}))
                        for uid in sorted(group)]
            with associate(address, contexts, calling_aet=calling_aet, timeout=timeout) as assoc:
                for where, ds in datasets:
                    if str(ds.SOPClassUID) not in group:
                        continue
                    _store(assoc, where, ds, result)
                    bar.update(1)
    return result


def _store(assoc, where: str, ds: Dataset, result: SendResult) -> None:
    try:
        status = assoc.send_c_store(ds)
    except ValueError as exc:  # pynetdicom: no accepted context for this class and syntax
        result.failed.append((where, f"not accepted by the PACS: {exc}"))
        return
    code = getattr(status, "Status", None)
    if code in _STORED:
        result.sent += 1
    else:
        reason = "no reply (association lost)" if code is None else f"refused with status 0x{code:04X}"
        result.failed.append((where, reason))
