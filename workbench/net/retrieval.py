"""Retrieve instances of the index from their PACS into a local cache, and index them there.

C-GET (PS3.4 Section C.4.3) by default: the instances come back on the same association. C-MOVE
(Section C.4.2) sends them to a storage SCP this function runs for the time of the retrieve, on
127.0.0.1 unless told otherwise, accepting associations from the PACS's AE title only. WADO-RS
(PS3.18 Section 10.4) for ``dicomweb+http(s)://`` sources. Files land in
``CACHE/<StudyInstanceUID>/<SeriesInstanceUID>/<SOPInstanceUID>.dcm``, each written to a
temporary name and renamed; what is already in the cache is not asked for again, so an
interrupted retrieve resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.index.crawler import finish_retrieve, index_retrieved
from workbench.index.index import Index
from workbench.net.address import PacsAddress, TlsFiles, parse_address
from workbench.net.association import (
    DEFAULT_CALLING_AET,
    MAX_CONTEXTS,
    UNCOMPRESSED,
    PacsError,
    associate,
    check_ae_title,
    requiring,
    storage_contexts,
)
from workbench.progress import progress_bar

STUDY_ROOT_MOVE = "1.2.840.10008.5.1.4.1.2.2.2"
STUDY_ROOT_GET = "1.2.840.10008.5.1.4.1.2.2.3"
#: Transfer syntaxes accepted for retrieved instances: the uncompressed ones and the usual
#: compressed ones, so a PACS can send what it holds without transcoding it.
TRANSFER_SYNTAXES = (
    "1.2.840.10008.1.2.1", "1.2.840.10008.1.2", "1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.2",
    "1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51", "1.2.840.10008.1.2.4.57", "1.2.840.10008.1.2.4.70",
    "1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81", "1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91",
    "1.2.840.10008.1.2.5",
)
# UIDs per IMAGE-level request: a UI list must fit a 16-bit explicit VR length.
_UIDS_PER_REQUEST = 500
# Index what arrived every this many instances or seconds. Files in the cache are never asked for
# again, and a new run indexes those a killed run had not, so this bounds work, not losses.
_COMMIT_EVERY = 1000
_COMMIT_SECONDS = 30.0
_DONE = {0x0000, 0xB000}
_UID = re.compile(r"[0-9]+(\.[0-9]+)*")


@dataclass
class RetrieveResult:
    """What a :func:`retrieve` did.

    Attributes
    ----------
    selected : int
        Instances the ``where`` clause selected.
    already : int
        Of those, already in the cache (not asked for again).
    received : int
        Instances that arrived in this run.
    indexed : int
        Files indexed in this run (the received ones and earlier arrivals not yet indexed).
    bytes : int
        Bytes received in this run.
    seconds : float
    failed : list of (what, reason)
        Requests that failed, each with the PACS's answer.
    """

    selected: int = 0
    already: int = 0
    received: int = 0
    indexed: int = 0
    bytes: int = 0
    seconds: float = 0.0
    failed: list[tuple[str, str]] = field(default_factory=list)

    @property
    def megabytes_per_second(self) -> float:
        """Throughput of this run."""
        return self.bytes / 1e6 / self.seconds if self.seconds else 0.0


@dataclass(frozen=True)
class _Wanted:
    sop_instance_uid: str
    series_instance_uid: str
    study_instance_uid: str
    sop_class_uid: str


class _Cache:
    """The cache folder: where each instance goes, what is there, and what arrived in this run."""

    def __init__(self, root: Path, wanted: dict[str, _Wanted], bar: Any) -> None:
        self.root = root
        self.wanted = wanted
        self.bar = bar
        self.arrived: list[tuple[str, str]] = []
        self.committed = 0
        self.bytes = 0
        self.started = time.monotonic()
        self._lock = threading.Lock()

    def store(self, sop: str, data: bytes, dataset: Callable | None = None) -> None:
        """Write one arrived instance atomically."""
        known = self.wanted.get(sop)
        if known is not None:
            study, series = known.study_instance_uid, known.series_instance_uid
        else:  # not asked for by UID (a PACS may send more): place it by its own UIDs
            ds = dataset()
            study, series = str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID)
        target = cache_path(self.root, sop, series, study)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, target)
        with self._lock:
            self.arrived.append((str(target), sop))
            self.bytes += len(data)
            self.bar.update(1)
            seconds = time.monotonic() - self.started
            self.bar.set_postfix_str(f"{self.bytes / 1e6 / max(seconds, 1e-6):.1f} MB/s", refresh=False)

    def take(self) -> list[tuple[str, str]]:
        with self._lock:
            arrived, self.arrived = self.arrived, []
        return arrived


def cache_path(root: Path, sop: str, series: str, study: str) -> Path:
    """Where an instance is kept in the cache: ``root/study/series/sop.dcm``."""
    return root / _safe(study) / _safe(series) / f"{_safe(sop)}.dcm"


def _safe(uid: str) -> str:
    # A UID is digits and dots (PS3.5 Section 9.1); anything else a PACS sends, "..", say, must not
    # name a folder: it becomes a digest.
    uid = uid.strip()
    if _UID.fullmatch(uid):
        return uid
    return "x" + hashlib.sha1(uid.encode("utf-8", "replace")).hexdigest()[:20]


def retrieve(
    index: str | os.PathLike,
    into: str | os.PathLike,
    *,
    where: str | None = None,
    method: str = "get",
    calling_aet: str = DEFAULT_CALLING_AET,
    move_aet: str | None = None,
    move_port: int = 11112,
    move_host: str = "127.0.0.1",
    timeout: float = 30.0,
    quiet: bool = False,
    tls: TlsFiles | None = None,
    connections: int = 2,
) -> RetrieveResult:
    """Fetch the selected PACS instances of an index into a cache folder and index them there.

    Parameters
    ----------
    index : path
        An index holding instances crawled from a PACS (``workbench crawl dicom://...``).
    into : path
        The cache folder (created when missing).
    where : str, optional
        SQL condition over the ``instances`` view choosing what to fetch (all PACS instances
        when None), e.g. ``"StudyInstanceUID = '1.2.3'"`` or ``"Modality = 'CT'"``.
    method : {"get", "move", "wado"}
        C-GET, C-MOVE to a storage SCP run here, or WADO-RS; ``dicomweb+`` sources always use
        WADO-RS.
    calling_aet : str
        This side's AE title.
    move_aet : str, optional
        The C-MOVE destination AE title the PACS knows for this host and ``move_port``
        (default: ``calling_aet``); the storage SCP answers to it.
    move_port, move_host : int, str
        Where the C-MOVE storage SCP listens.
    timeout : float
        Seconds for connecting and for each reply.
    quiet : bool
        No progress bar.
    tls : TlsFiles, optional
        DIMSE over TLS with these files (sources crawled as ``dicoms://`` use TLS with the system's
        CAs without them). The C-MOVE storage SCP does not use TLS: keep it on 127.0.0.1.
    connections : int
        Associations (or HTTP sessions) fetching at once, each a share of the series.

    Returns
    -------
    RetrieveResult
        Counts, bytes, throughput and the failed requests.

    Raises
    ------
    ValueError
        When ``method`` is unknown, ``where`` is not valid SQL, or an AE title or port is invalid.
    PacsError
        When the PACS cannot be reached, refuses the association or the move destination, or
        stops answering; what arrived before is kept and indexed, and a new run fetches the rest.
    """
    if method not in ("get", "move", "wado"):
        raise ValueError(f"retrieve method {method!r} is not one of get, move, wado")
    check_ae_title(calling_aet, "the calling AE title")
    move_aet = check_ae_title(move_aet or calling_aet, "the move destination AE title")
    if connections < 1:
        raise ValueError(f"connections must be 1 or more, not {connections}")
    if not 0 < move_port < 65536:
        raise ValueError(f"--move-port {move_port} is not between 1 and 65535")
    began = time.monotonic()
    idx = Index(index)
    rows = _selection(idx, where)
    result = RetrieveResult(selected=len(rows))
    cache_root = Path(into).absolute()
    cache_root.mkdir(parents=True, exist_ok=True)
    todo: dict[str, dict[str, _Wanted]] = {}
    in_cache: dict[str, list[tuple[str, str]]] = {}
    for row in rows:
        wanted = _Wanted(row["SOPInstanceUID"], row["SeriesInstanceUID"], row["StudyInstanceUID"],
                         row["SOPClassUID"])
        if row["path"] is not None and os.path.exists(row["path"]):
            result.already += 1
            continue
        cached = cache_path(cache_root, wanted.sop_instance_uid, wanted.series_instance_uid,
                            wanted.study_instance_uid)
        if cached.exists():  # arrived in a run that stopped before indexing it
            result.already += 1
            in_cache.setdefault(row["source"], []).append((str(cached), wanted.sop_instance_uid))
            continue
        todo.setdefault(row["source"], {})[wanted.sop_instance_uid] = wanted
    for source, files in in_cache.items():
        result.indexed += index_retrieved(idx.store, files, source)
    whole = _series_sizes(idx)
    total = sum(len(w) for w in todo.values())
    with progress_bar(total=total, unit="instance", desc="retrieve", disable=quiet or not total) as bar:
        try:
            for source, wanted in todo.items():
                transfer = _Transfer(source, idx, result, _Cache(cache_root, wanted, bar), calling_aet,
                                     timeout, connections)
                requests = _requests(wanted, whole)
                try:
                    if source.startswith("dicomweb+") or method == "wado":
                        transfer.wado(requests)
                    elif method == "get":
                        transfer.get(parse_address(source, tls), requests)
                    else:
                        transfer.move(parse_address(source, tls), requests, move_aet, move_host, move_port)
                finally:
                    transfer.commit(force=True)
                    result.received += transfer.cache.committed
                    result.bytes += transfer.cache.bytes
        finally:
            finish_retrieve(idx.store)
            result.seconds = round(time.monotonic() - began, 3)
    return result


def _selection(idx: Index, where: str | None) -> list[dict]:
    import duckdb

    query = ("SELECT SOPInstanceUID, SeriesInstanceUID, StudyInstanceUID, SOPClassUID, source, path "
             "FROM instances WHERE (source LIKE 'dicom://%' OR source LIKE 'dicoms://%' "
             "OR source LIKE 'dicomweb+%')")
    if where:
        query += f" AND ({where})"
    with idx.connect() as con:
        try:
            table = con.sql(query).to_arrow_table()
        except duckdb.Error as exc:
            raise ValueError(f"--where {where!r} is not a valid condition on instances: {exc}") from None
    return table.to_pylist()


def _series_sizes(idx: Index) -> dict[str, int]:
    """Instances of each series: a selection of all of them, none in the cache, asks for the series."""
    with idx.connect() as con:
        pairs = con.sql("SELECT SeriesInstanceUID, count(*) FROM instances GROUP BY 1").fetchall()
    return dict(pairs)


def _requests(wanted: dict[str, _Wanted], whole: dict[str, int]) -> list[tuple[str, dict[str, str]]]:
    """(level, keys) of the C-GET/C-MOVE requests fetching ``wanted``: whole series where possible."""
    by_series: dict[tuple[str, str], list[str]] = {}
    for item in wanted.values():
        key = (item.study_instance_uid, item.series_instance_uid)
        by_series.setdefault(key, []).append(item.sop_instance_uid)
    requests = []
    for (study, series), uids in by_series.items():
        if whole.get(series) == len(uids):
            requests.append(("SERIES", {"StudyInstanceUID": study, "SeriesInstanceUID": series}))
            continue
        for first in range(0, len(uids), _UIDS_PER_REQUEST):
            chunk = uids[first:first + _UIDS_PER_REQUEST]
            requests.append(("IMAGE", {"StudyInstanceUID": study, "SeriesInstanceUID": series,
                                       "SOPInstanceUID": "\\".join(chunk)}))
    return requests


def _identifier(level: str, keys: dict[str, str]):
    from pydicom import Dataset

    identifier = Dataset()
    identifier.QueryRetrieveLevel = level
    for keyword, value in keys.items():
        setattr(identifier, keyword, value)
    return identifier


def _store_handler(cache: _Cache):
    def handle(event) -> int:
        try:
            sop = str(event.request.AffectedSOPInstanceUID)
            cache.store(sop, event.encoded_dataset(include_meta=True), lambda: event.dataset)
        except Exception:  # noqa: BLE001 - the PACS is told the store failed (PS3.4 Table B.2-1)
            return 0xA700
        return 0x0000
    return handle


class _Transfer:
    """The requests to one source: sends them, follows the answers, indexes what arrives."""

    def __init__(self, source: str, idx: Index, result: RetrieveResult, cache: _Cache, calling_aet: str,
                 timeout: float, connections: int) -> None:
        self.source = source
        self.idx = idx
        self.result = result
        self.cache = cache
        self.calling_aet = calling_aet
        self.timeout = timeout
        self.last_commit = time.monotonic()
        self.commit_lock = threading.Lock()
        self.connections = connections

    def commit(self, force: bool = False) -> None:
        """Index what arrived, every _COMMIT_EVERY instances or _COMMIT_SECONDS (now with ``force``)."""
        if not (force or len(self.cache.arrived) >= _COMMIT_EVERY
                or time.monotonic() - self.last_commit > _COMMIT_SECONDS):
            return
        with self.commit_lock:  # one writer at a time: the index lock is per process
            self.last_commit = time.monotonic()
            arrived = self.cache.take()
            self.cache.committed += len(arrived)
            self.result.indexed += index_retrieved(self.idx.store, arrived, self.source)

    def follow(self, responses, address: PacsAddress, request: str,
               move_to: tuple[str, int] | None = None) -> None:
        """Follow the C-GET/C-MOVE responses of one request, indexing arrivals as they accumulate."""
        final = None
        for status, _ in responses:
            code = getattr(status, "Status", None)
            if code is None:
                raise PacsError(
                    f"{address} stopped answering during {request} (no reply within {self.timeout:g} s, "
                    "or the association was lost)",
                    "run the same command again: what arrived is kept and indexed")
            final = status
            if code not in (0xFF00, 0xFF01):
                break
            self.commit()
        code = getattr(final, "Status", None)
        nothing_yet = not self.cache.arrived and not self.cache.committed
        if move_to and (code == 0xA801 or (code not in _DONE and nothing_yet)):
            # 0xA801 is Move Destination Unknown (PS3.4 Table C.4-2); some PACSs answer a generic
            # failure instead, which on a first C-MOVE that moved nothing has the same likely cause.
            what = ("does not know the move destination" if code == 0xA801
                    else f"refused the first C-MOVE with status 0x{code:04X} before moving anything:"
                         " is the move destination known to it?")
            raise PacsError(f"{address} {what} {move_to[0]!r}",
                            f"ask the PACS administrator to register AE title {move_to[0]!r} with this host "
                            f"and port {move_to[1]} as a C-MOVE destination")
        if code == 0xB000 or code not in _DONE:
            failed = final.get("NumberOfFailedSuboperations", "?")
            comment = final.get("ErrorComment", "")
            result = f"{failed} sub-operations failed" if code == 0xB000 else \
                f"status 0x{code:04X}, {failed} sub-operations failed"
            self.result.failed.append((request, result + (f": {comment}" if comment else "")))

    def in_parallel(self, requests: list[tuple[str, dict[str, str]]], work: Callable) -> None:
        """``work(some_requests)`` on each of ``connections`` interleaved shares, in threads."""
        shares = [requests[i::self.connections] for i in range(min(self.connections, len(requests)))]
        with ThreadPoolExecutor(max(1, len(shares))) as pool:
            for _ in pool.map(work, shares):
                pass

    def get(self, address: PacsAddress, requests: list[tuple[str, dict[str, str]]]) -> None:
        """C-GET the requests on associations that take the storage classes back (SCP role)."""
        from pynetdicom import evt

        classes = sorted({w.sop_class_uid for w in self.cache.wanted.values() if w.sop_class_uid})[:127]
        # One context per class and transfer syntax, so the PACS sends what it holds untranscoded;
        # with too many classes for that, one context per class.
        storing = storage_contexts(dict.fromkeys(classes, TRANSFER_SYNTAXES))
        if len(storing) >= MAX_CONTEXTS:
            storing = [(uid, list(TRANSFER_SYNTAXES)) for uid in classes]
        if any(not w.sop_class_uid for w in self.cache.wanted.values()):
            # A PACS that did not return SOP Class UIDs to the crawl (dcmqrscp does not): offer
            # every storage class there is room for, uncompressed.
            from pynetdicom import StoragePresentationContexts

            others = [c.abstract_syntax for c in StoragePresentationContexts
                      if c.abstract_syntax not in classes]
            storing += [(uid, list(UNCOMPRESSED)) for uid in others[:MAX_CONTEXTS - 1 - len(storing)]]
            classes = list(dict.fromkeys(uid for uid, _ in storing))
        contexts = [(STUDY_ROOT_GET, None), *storing]
        refused = f"{address} does not accept C-GET (Study Root) from {self.calling_aet}"
        handlers = [(evt.EVT_C_STORE, _store_handler(self.cache))]

        def get_share(share: list[tuple[str, dict[str, str]]]) -> None:
            opened = associate(address, contexts, calling_aet=self.calling_aet, timeout=self.timeout,
                               scp_roles=classes, evt_handlers=handlers)
            with requiring(opened, STUDY_ROOT_GET, refused, "retrieve with --method move instead") as assoc:
                for level, keys in share:
                    responses = assoc.send_c_get(_identifier(level, keys), STUDY_ROOT_GET)
                    self.follow(responses, address, f"C-GET {level} {keys.get('SeriesInstanceUID', '')}")

        self.in_parallel(requests, get_share)

    def move(self, address: PacsAddress, requests: list[tuple[str, dict[str, str]]], move_aet: str, host: str,
             port: int) -> None:
        """C-MOVE the requests to a storage SCP run here for the time of the transfer."""
        def move_share(share: list[tuple[str, dict[str, str]]]) -> None:
            with move_association(address, self.calling_aet, self.timeout) as assoc:
                for level, keys in share:
                    responses = assoc.send_c_move(_identifier(level, keys), move_aet, STUDY_ROOT_MOVE)
                    self.follow(responses, address, f"C-MOVE {level} {keys.get('SeriesInstanceUID', '')}",
                                (move_aet, port))

        on_store = _store_handler(self.cache)
        with storage_scp(move_aet, host, port, address.called_aet, on_store, self.timeout):
            self.in_parallel(requests, move_share)

    def wado(self, requests: list[tuple[str, dict[str, str]]]) -> None:
        """WADO-RS each series (or instance), in the transfer syntax the server holds."""
        from workbench.net.dicomweb import parse_dicomweb

        address = parse_dicomweb(self.source)
        self.in_parallel(requests, lambda share: self._wado_share(address, share))

    def _wado_share(self, address, requests: list[tuple[str, dict[str, str]]]) -> None:
        import requests as http
        from pydicom import dcmwrite
        from pydicom.filebase import DicomBytesIO

        from workbench.net.dicomweb import client, http_failure

        web = client(address, self.timeout)
        original = (("application/dicom", "*"),)
        for level, keys in requests:
            study, series = keys["StudyInstanceUID"], keys["SeriesInstanceUID"]
            what = f"WADO-RS {level} {series}"
            try:
                if level == "SERIES":
                    datasets = web.iter_series(study, series, media_types=original)
                else:
                    datasets = (web.retrieve_instance(study, series, uid, media_types=original)
                                for uid in keys["SOPInstanceUID"].split("\\"))
                for ds in datasets:
                    buffer = DicomBytesIO()
                    dcmwrite(buffer, ds, enforce_file_format=True)
                    self.cache.store(str(ds.SOPInstanceUID), buffer.getvalue(), lambda ds=ds: ds)
                    self.commit()
            except http.HTTPError as exc:  # this request refused (gone since the crawl?): the rest go on
                self.result.failed.append((what, str(http_failure(address, what, exc))))
            except Exception as exc:  # noqa: BLE001 - unreachable, timeout: one sentence, stop
                raise http_failure(address, what, exc) from None


@contextmanager
def storage_scp(ae_title: str, host: str, port: int, peer_aet: str, on_store: Callable,
                timeout: float = 30.0) -> Iterator[None]:
    """A storage SCP listening on ``host:port`` for the time of the ``with`` block.

    It accepts associations only from ``peer_aet`` (the PACS sending the C-MOVE sub-operations)
    and calls ``on_store(event)`` for each C-STORE, which returns the status to answer.

    Raises
    ------
    PacsError
        When ``host:port`` cannot be listened on.
    """
    from pynetdicom import AE, AllStoragePresentationContexts, evt

    scp = AE(ae_title=ae_title)
    scp.require_calling_aet = [peer_aet]
    scp.network_timeout = scp.dimse_timeout = scp.acse_timeout = timeout
    for context in AllStoragePresentationContexts:
        scp.add_supported_context(context.abstract_syntax, TRANSFER_SYNTAXES)
    try:
        server = scp.start_server((host, port), block=False, evt_handlers=[(evt.EVT_C_STORE, on_store)])
    except OSError as exc:
        raise PacsError(f"cannot listen on {host}:{port} for C-MOVE: {exc.strerror or exc}",
                        "choose another --move-port, registered on the PACS for this AE title") from None
    try:
        yield
    finally:
        server.shutdown()


def move_association(address: PacsAddress, calling_aet: str, timeout: float):
    """An association proposing Study Root C-MOVE; raises :class:`PacsError` when it is not accepted."""
    opened = associate(address, [(STUDY_ROOT_MOVE, None)], calling_aet=calling_aet, timeout=timeout)
    return requiring(opened, STUDY_ROOT_MOVE, f"{address} does not accept C-MOVE (Study Root) from "
                      f"{calling_aet}", "ask the PACS administrator to allow C-MOVE for this AE title")
