"""Crawl a PACS into the index: Study Root queries at study, series and instance level.

The rows are those of a folder crawl, with ``source`` the PACS address and no ``path`` until
the instance is retrieved (:mod:`workbench.net.retrieval`). Every query is recorded in the
``queries`` table (``DIR/queries.parquet``). A study-level query that comes back capped is
split by StudyDate (then StudyTime) and asked again until no window is capped, so no study is
silently missed; the counts the PACS gives for each study and series
(NumberOfStudyRelatedSeries/Instances, NumberOfSeriesRelatedInstances, PS3.4 Section C.3.4)
are compared with what the lower levels returned, and every difference is reported.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import queue
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from pydicom import Dataset
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.multival import MultiValue

from workbench.dicom import values
from workbench.index.columns import DICOM_COLUMNS, ERROR_SCHEMA, QUERY_SCHEMA, Column, instance_schema
from workbench.index.crawler import PART_ROWS, PART_SECONDS, CrawlStats, rebuild_aggregates
from workbench.index.index import Index
from workbench.index.reader import CONVERTERS, with_sop_class_names
from workbench.index.store import COMMIT_WAIT, SCHEMA_VERSION, IndexStore, write_json, write_parquet
from workbench.net.address import TlsFiles
from workbench.net.association import DEFAULT_CALLING_AET, PacsError
from workbench.net.find import Finder
from workbench.progress import progress_bar

#: The query level that returns each column level.
_QUERY_LEVEL = {"patient": "STUDY", "study": "STUDY", "series": "SERIES", "instance": "IMAGE"}
_COUNTS = {
    "STUDY": ("NumberOfStudyRelatedSeries", "NumberOfStudyRelatedInstances"),
    "SERIES": ("NumberOfSeriesRelatedInstances",),
    "IMAGE": (),
}
# A text VR that parses each column kind from its string form (values.*).
_TEXT_VR = {"str": "LO", "int": "IS", "float": "DS", "float_list": "DS",
            "date": "DA", "time": "TM", "datetime": "DT"}
_EARLIEST = dt.date(1900, 1, 1)

#: The index columns each query level returns.
_COLUMNS = {level: [c for c in DICOM_COLUMNS if _QUERY_LEVEL.get(c.level) == level]
            for level in ("STUDY", "SERIES", "IMAGE")}


def _return_keys(level: str) -> dict[str, str]:
    keys = {c.name: "" for c in DICOM_COLUMNS
            if _QUERY_LEVEL.get(c.level) == level and c.name != "SpecificCharacterSet"}
    keys.update(dict.fromkeys(_COUNTS[level], ""))
    return keys


def element_value(element: DataElement | RawDataElement | None, column: Column,
                  encodings: tuple[str, ...] = ()) -> Any:
    """The typed value of ``column`` from its element in a query result (None when absent, empty or
    unparseable).

    A C-FIND identifier holds raw elements: their bytes are typed like a file's (no pydicom
    conversion); a DICOM JSON result (QIDO-RS) holds values, typed from their text.
    """
    if element is None:
        return None
    if isinstance(element, RawDataElement):
        if not element.value:
            return None
        return CONVERTERS[column.kind](element.VR or column.vr, element.value, element.is_little_endian,
                                       encodings)
    value = element.value
    if value in (None, "", b"") or isinstance(value, bytes):
        return None
    if isinstance(value, (list, tuple, MultiValue)):
        text = "\\".join(_text(v) for v in value)
    else:
        text = _text(value)
    return CONVERTERS[column.kind](_TEXT_VR[column.kind], text.encode("utf-8"), True, ("utf_8",))


def _text(value: Any) -> str:
    # DS values keep the string they were read from; a float from DICOM JSON is written in full.
    return repr(value) if type(value) is float else str(value)


def identifier_encodings(elements: dict[int, DataElement | RawDataElement]) -> tuple[str, ...]:
    """The Python codecs of a query result's Specific Character Set."""
    element = elements.get(0x00080005)
    if element is None:
        return values.python_encodings(None)
    raw = element.value if isinstance(element, RawDataElement) else "\\".join(
        element.value if isinstance(element.value, (list, MultiValue)) else [element.value or ""]).encode()
    return values.python_encodings(raw.strip(b" \x00") if raw else None)


@dataclass(frozen=True)
class Window:
    """A StudyDate range (``None`` ends are open) and, within one day, a StudyTime range in seconds;
    or, with ``undated``, the studies that have no StudyDate."""

    start: dt.date | None = None
    end: dt.date | None = None
    seconds: tuple[int, int] | None = None
    undated: bool = False

    def keys(self) -> dict[str, str]:
        """The matching keys of the window (PS3.4 Section C.2.2.2.5, range matching; C.2.2.2.7,
        empty value matching for ``undated``)."""
        if self.undated:
            return {"StudyDate": '""'}
        if self.start is None and self.end is None:
            return {}
        first = self.start.strftime("%Y%m%d") if self.start else ""
        last = self.end.strftime("%Y%m%d") if self.end else ""
        keys = {"StudyDate": first if first == last else f"{first}-{last}"}
        if self.seconds is not None:
            # The upper bound takes in fractions of its last second, so the halves of a day meet.
            keys["StudyTime"] = f"{_hhmmss(self.seconds[0])}-{_hhmmss(self.seconds[1])}.999999"
        return keys

    def __str__(self) -> str:
        keys = self.keys()
        return " ".join(f"{k}={v}" for k, v in keys.items()) or "all dates"

    @property
    def everything(self) -> bool:
        """Whether the window is every date (no matching key)."""
        return self.start is None and self.end is None and not self.undated

    def split(self) -> list[Window]:
        """Smaller windows that together cover this one, or ``[]`` when it cannot be split.

        Every date splits into two halves and the studies without a date (which no range
        matches); a range into halves; one day into halves of the day, down to one second.
        """
        if self.undated:
            return []
        if self.start is None or self.end is None or self.start != self.end:
            low, high = self.start or _EARLIEST, self.end or dt.date.today()
            if low >= high:  # an open end before 1900 or after today: nothing sensible to halve
                return []
            middle = low + (high - low) // 2
            halves = [Window(self.start, middle), Window(middle + dt.timedelta(days=1), self.end)]
            return halves + ([Window(undated=True)] if self.everything else [])
        first, last = self.seconds or (0, 86399)
        if first >= last:
            return []
        middle = (first + last) // 2
        return [Window(self.start, self.end, (first, middle)),
                Window(self.start, self.end, (middle + 1, last))]

    def holds(self, day: dt.date | None) -> bool:
        """Whether a study of ``day`` is inside the window's dates."""
        if self.undated:
            return day is None
        if self.everything:
            return True
        return day is not None and (self.start or day) <= day <= (self.end or day)


def _hhmmss(seconds: int) -> str:
    return f"{seconds // 3600:02d}{seconds // 60 % 60:02d}{seconds % 60:02d}"


class _Crawl:
    """One PACS crawl: the queries, their log, the rows found and the problems seen."""

    def __init__(self, finder: Finder, started: str, retries: int, backoff: float) -> None:
        self.finder = finder
        self.started = started
        self.retries = retries
        self.backoff = backoff
        self.log: list[dict[str, Any]] = []
        self.errors: list[dict[str, Any]] = []
        self.incomplete: list[str] = []
        #: The study windows answered in full or in part: rows outside them are never dropped.
        self.covered: list[Window] = []
        self.asked_everything = False

    def query(self, level: str, keys: dict[str, str], window: str = "",
              finder: Finder | None = None) -> tuple[list[Dataset], bool, bool]:
        """Run one query with retries; log it. Returns (matches, capped, answered); no matches and
        ``answered`` False when it failed."""
        finder = finder or self.finder
        begun = time.monotonic()
        matching = {k: v for k, v in keys.items() if v}
        entry = {"crawl_started": self.started, "source": self.finder.source, "level": level,
                 "keys": " ".join(f"{k}={v}" for k, v in matching.items()), "window": window,
                 "results": 0, "cap_hit": False, "split": False, "status": "ok", "attempts": 0,
                 "message": ""}
        self.log.append(entry)
        for attempt in range(1, self.retries + 2):
            entry["attempts"] = attempt
            try:
                reply = finder.find(level, keys)
            except PacsError as exc:
                entry["status"], entry["message"] = "failed", str(exc)
                if attempt <= self.retries:
                    time.sleep(self.backoff * 2 ** (attempt - 1))
                continue
            entry.update(results=len(reply.identifiers), cap_hit=reply.capped, status="ok",
                         message=reply.reason, seconds=round(time.monotonic() - begun, 4))
            return reply.identifiers, reply.capped, True
        entry["seconds"] = round(time.monotonic() - begun, 4)
        what = f"{level} query {entry['keys'] or window or '(all)'}"
        message = f"{what} failed after {entry['attempts']} attempts: {entry['message']}"
        self.errors.append({"path": self.finder.source, "member": what, "source": self.finder.source,
                            "file_size": None, "mtime_ns": None, "error": "query_failed",
                            "message": message})
        self.incomplete.append(f"the {what} failed: its results are missing")
        return [], False, False

    def check(self, what: str, of: str, expected: int | None, returned: int, capped: bool) -> bool:
        """Note when the PACS's count for ``what`` disagrees with what its query returned.

        A capped reply whose count agrees is complete; one without a count may not be.
        Returns whether nothing was noted.
        """
        if expected is not None and expected != returned:
            self.incomplete.append(
                f"{what}: the PACS counts {expected} {of}, the queries returned {returned}")
            return False
        if expected is None and capped:
            self.incomplete.append(f"{what}: the {of} query is capped and the PACS gives no count: "
                                   f"{of} may be missing")
            return False
        return True

    def studies(self, windows: list[Window], modalities: list[str]) -> list[Dataset]:
        """Every study in the windows, splitting each capped window until none is."""
        found: dict[str, Dataset] = {}
        self.asked_everything = any(w.everything for w in windows)
        pending = list(windows)
        while pending:
            window = pending.pop(0)
            keys = _return_keys("STUDY") | window.keys()
            if modalities:
                keys["ModalitiesInStudy"] = "\\".join(modalities)
            matches, capped, answered = self.query("STUDY", keys, str(window))
            halves = window.split() if capped else []
            if halves:
                self.log[-1]["split"] = True
                pending[:0] = halves
                continue
            if answered:
                self.covered.append(window)
            if capped:
                self.incomplete.append(f"the study query for {window} is capped and cannot be split further")
            for match in matches:
                uid = match.get("StudyInstanceUID")
                if uid:
                    found[str(uid)] = match
        return list(found.values())


def _typed(matches: Iterable[Dataset], columns: list[Column]) -> dict[str, Any]:
    """Column values taken from the first of ``matches`` that has each one."""
    row: dict[str, Any] = {}
    maps = [{int(e.tag): e for e in match.elements()} for match in matches]
    encodings = [identifier_encodings(elements) for elements in maps]
    for column in columns:
        for elements, codecs in zip(maps, encodings):
            value = element_value(elements.get(column.tag), column, codecs)
            if value is not None:
                row[column.name] = value
                break
    return row


def _count(match: Dataset, keyword: str) -> int | None:
    value = match.get(keyword)
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def open_finder(
    url: str, *, calling_aet: str = DEFAULT_CALLING_AET, timeout: float = 30.0,
    max_results: int | None = None, tls: TlsFiles | None = None,
) -> Finder:
    """The query service of ``url``: ``dicom://AET@HOST:PORT`` or ``dicomweb+http(s)://...``.

    Raises
    ------
    ValueError
        When ``url`` is neither.
    """
    from workbench.net.dicomweb import DicomwebFinder, is_dicomweb
    from workbench.net.find import DimseFinder

    if is_dicomweb(url):
        return DicomwebFinder(url, timeout=timeout, max_results=max_results)
    return DimseFinder(url, calling_aet=calling_aet, timeout=timeout, max_results=max_results, tls=tls)


def crawl_pacs(
    url: str,
    index: str | os.PathLike,
    *,
    calling_aet: str = DEFAULT_CALLING_AET,
    timeout: float = 30.0,
    max_results: int | None = 1000,
    level: str = "instance",
    since: dt.date | None = None,
    until: dt.date | None = None,
    modalities: Iterable[str] = (),
    retries: int = 2,
    backoff: float = 1.0,
    quiet: bool = False,
    tls: TlsFiles | None = None,
    connections: int = 2,
) -> Index:
    """Index what a PACS holds, without downloading it.

    Parameters
    ----------
    url : str
        ``dicom://AET@HOST:PORT`` (C-FIND, Study Root) or ``dicomweb+http(s)://HOST:PORT/PATH``
        (QIDO-RS).
    index : path
        The index directory.
    calling_aet : str
        This side's AE title, as registered on the PACS (DIMSE only).
    timeout : float
        Seconds for connecting and for each reply.
    max_results : int or None
        The PACS's limit of results per query (a DIMSE reply this long is taken as capped and
        split; the page size of DICOMweb queries). Many PACSs cap at 500 or 1000.
    level : {"instance", "series", "study"}
        How deep to query. Rows are instances; at ``series`` or ``study`` level the crawl only
        checks what it can (the queries are logged) and no rows are written.
    since, until : datetime.date, optional
        Only studies of these dates (inclusive).
    modalities : iterable of str
        Only studies holding one of these modalities (ModalitiesInStudy), and only their series of
        these modalities.
    retries, backoff : int, float
        A failed query is tried again ``retries`` times, after ``backoff``, 2x, 4x ... seconds.
    quiet : bool
        No progress bar.
    tls : TlsFiles, optional
        DIMSE over TLS with these files (``dicoms://`` uses TLS with the system's CAs without them).
    connections : int
        Associations (or HTTP sessions) querying at once, each crawling one study at a time; a
        PACS administrator may ask for 1.

    Returns
    -------
    Index
        The updated index; ``index.last_crawl`` holds the statistics and, in ``notes``, every
        sign that the crawl may be incomplete.

    Raises
    ------
    ValueError
        When ``url`` is not a PACS address, ``level`` is not one of the three, or ``since`` is
        after ``until``.
    PacsError
        When the PACS cannot be reached or refuses the association (failures of single queries
        are retried, then recorded in ``errors`` and ``queries``, and the crawl goes on).
    """
    if level not in ("instance", "series", "study"):
        raise ValueError(f"crawl level {level!r} is not one of instance, series, study")
    if since and until and since > until:
        raise ValueError(f"--since {since} is after --until {until}")
    if connections < 1:
        raise ValueError(f"connections must be 1 or more, not {connections}")
    modalities = [m.strip().upper() for m in modalities if m.strip()]
    with ExitStack() as stack:
        finders = [stack.enter_context(open_finder(url, calling_aet=calling_aet, timeout=timeout,
                                                   max_results=max_results, tls=tls))
                   for _ in range(connections)]
        return _crawl(finders, IndexStore(index), level, Window(since, until), modalities, retries,
                      backoff, quiet)


def _crawl(
    finders: list[Finder], store: IndexStore, level: str, window: Window, modalities: list[str],
    retries: int, backoff: float, quiet: bool,
) -> Index:
    began = time.time()
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    source = finders[0].source
    stats = CrawlStats(sources=[source], started=started, workers=len(finders))
    work = _Crawl(finders[0], started, retries, backoff)
    writer = _Writer(store, source, f"{source} {window} {','.join(modalities)} {level}")
    studies = work.studies([window], modalities)
    todo = [s for s in studies if str(s.StudyInstanceUID) not in writer.done] if level != "study" else []
    if len(todo) < len(studies) and level != "study":
        stats.notes.append(
            f"resumed: {len(studies) - len(todo)} studies were crawled by the run that stopped")
    idle: queue.SimpleQueue[Finder] = queue.SimpleQueue()
    for finder in finders:
        idle.put(finder)

    def crawl_one(study: Dataset) -> tuple[str, list[dict[str, Any]], bool]:
        finder = idle.get()
        try:
            return _crawl_study(work, finder, study, level, modalities)
        finally:
            idle.put(finder)

    with progress_bar(total=len(todo), unit="study", desc="crawl " + source, disable=quiet or not todo,
              mininterval=0.5) as bar, ThreadPoolExecutor(len(finders)) as pool:
        for study_uid, rows, whole in pool.map(crawl_one, todo):
            writer.add(study_uid, rows, whole)
            bar.update(1)
    writer.finish(work, modalities, level, stats)
    stats.failed = len(work.errors)
    stats.queries = len(work.log)
    stats.complete = not work.incomplete
    stats.notes += work.incomplete[:200] + (
        [f"... and {len(work.incomplete) - 200} more"] if len(work.incomplete) > 200 else [])
    stats.seconds = round(time.time() - began, 3)
    with store.lock(COMMIT_WAIT):
        manifest = store.read_manifest()
        manifest.setdefault("schema_version", SCHEMA_VERSION)
        manifest.setdefault("tags", [])
        manifest.setdefault("full_header", False)
        manifest["sources"] = sorted(set(manifest.get("sources", [])) | set(stats.sources))
        manifest["last_crawl"] = asdict(stats)
        manifest["crawls"] = (manifest.get("crawls", []) + [asdict(stats)])[-50:]
        write_json(store.manifest_path, manifest)
    writer.checkpoint.unlink(missing_ok=True)
    return Index(store.directory)


def _crawl_study(
    work: _Crawl, finder: Finder, study: Dataset, level: str, modalities: list[str],
) -> tuple[str, list[dict[str, Any]], bool]:
    """The series and instance queries of one study: its rows, and whether every query was
    answered and every count agreed (only such a study counts as done for a resumed crawl)."""
    study_uid = str(study.StudyInstanceUID)
    series_keys = _return_keys("SERIES") | {"StudyInstanceUID": study_uid}
    if modalities:
        series_keys["Modality"] = "\\".join(modalities)
    series_list, capped, whole = work.query("SERIES", series_keys, finder=finder)
    expected_series = None if modalities else _count(study, "NumberOfStudyRelatedSeries")
    whole &= work.check(f"study {study_uid}", "series", expected_series, len(series_list), capped)
    rows: list[dict[str, Any]] = []
    for series in series_list:
        series_uid = str(series.get("SeriesInstanceUID", ""))
        if level == "series" or not series_uid:
            continue
        keys = _return_keys("IMAGE") | {"StudyInstanceUID": study_uid, "SeriesInstanceUID": series_uid}
        instances, capped, answered = work.query("IMAGE", keys, finder=finder)
        whole &= answered and work.check(f"series {series_uid}", "instances",
                                         _count(series, "NumberOfSeriesRelatedInstances"), len(instances),
                                         capped)
        shared = _typed([series, study], _COLUMNS["SERIES"] + _COLUMNS["STUDY"])
        for instance in instances:
            row = _typed([instance], _COLUMNS["IMAGE"]) | shared
            row["StudyInstanceUID"], row["SeriesInstanceUID"] = study_uid, series_uid
            if row.get("SOPInstanceUID"):
                rows.append(row)
    if level == "instance" and not modalities:
        whole &= work.check(f"study {study_uid}", "instances",
                            _count(study, "NumberOfStudyRelatedInstances"), len(rows), False)
    return study_uid, rows, whole


class _Writer:
    """Commits the rows of a PACS crawl in parts, with a checkpoint of the studies done.

    A crawl killed at any moment and run again with the same source, dates, modalities and level
    skips the studies the checkpoint lists (their rows are committed); a study whose rows were
    committed but not yet listed is crawled again, its new rows superseding the old (same key).
    """

    def __init__(self, store: IndexStore, source: str, scope: str) -> None:
        self.store = store
        self.source = source
        digest = hashlib.sha1(scope.encode()).hexdigest()[:16]
        self.checkpoint = store.directory / f".pacs-crawl-{digest}.json"
        self.known: dict[str, dict[str, Any]] = {}
        self.retrieved: set[str] = set()
        with store.lock(COMMIT_WAIT):
            stored = store.read_table("instances", ["path", "source", "SOPInstanceUID", "StudyInstanceUID",
                                                    "StudyDate", "Modality"])
            self.tags = tuple(store.read_manifest().get("tags", ()))
            done = json.loads(self.checkpoint.read_text()) if self.checkpoint.exists() else []
        for row in (stored.to_pylist() if stored is not None else []):
            if row["source"] == source and row["SOPInstanceUID"]:
                if row["path"] is None:
                    self.known[row["SOPInstanceUID"]] = row
                else:
                    self.retrieved.add(row["SOPInstanceUID"])
        self.done: set[str] = set(done)
        self.found: set[str] = {
            uid for uid, row in self.known.items() if row["StudyInstanceUID"] in self.done}
        self.pending: list[dict[str, Any]] = []
        self.pending_studies: list[str] = []
        self.written = 0
        self.last = time.monotonic()

    def add(self, study_uid: str, rows: list[dict[str, Any]], whole: bool) -> None:
        """The rows of one study, committed with the next part; listed as done when ``whole``
        (a study with a failed query or a disagreeing count is crawled again on resuming)."""
        self.pending.extend(rows)
        if whole:
            self.pending_studies.append(study_uid)
        self.found.update(row["SOPInstanceUID"] for row in rows)
        if len(self.pending) >= PART_ROWS or time.monotonic() - self.last > PART_SECONDS:
            self.flush()

    def flush(self) -> None:
        """Commit the pending rows as one part, then list their studies as done."""
        new = [row | {"source": self.source} for row in self.pending
               if row["SOPInstanceUID"] not in self.retrieved]
        with self.store.lock(COMMIT_WAIT):
            if new:
                table = pa.Table.from_pylist(new, schema=instance_schema(self.tags))
                self.store.write_part("instances", self.store.next_seq(), with_sop_class_names(table))
            self.done.update(self.pending_studies)
            write_json(self.checkpoint, sorted(self.done))
        self.written += len(new)
        self.pending, self.pending_studies = [], []
        self.last = time.monotonic()

    def finish(self, work: _Crawl, modalities: list[str], level: str, stats: CrawlStats) -> None:
        """Last part; drop vanished rows and old query errors; log the queries; rebuild aggregates.

        Rows are dropped as vanished only after a complete crawl, and only inside the date
        windows it queried (a study without a date is inside them only if the undated query ran).
        Earlier query errors are dropped only by a crawl of everything the PACS holds.
        """
        self.flush()
        gone = set()
        if level == "instance" and not work.errors and not work.incomplete:
            gone = {(self.source, uid) for uid, row in self.known.items()
                    if uid not in self.found and _in_scope(row, work.covered, modalities)}
        everything = level == "instance" and not modalities and work.asked_everything
        with self.store.lock(COMMIT_WAIT):
            old_errors = {(r.path, r.member) for r in self.store.read_keys()
                          if r.table == "errors" and r.path == self.source} if everything else set()
            stats.rows_removed = len(gone)
            self.store.compact(gone | old_errors)
            if work.errors:  # may supersede error rows of earlier crawls: compact again
                self.store.write_part("errors", self.store.next_seq(),
                                      pa.Table.from_pylist(work.errors, schema=ERROR_SCHEMA))
                self.store.compact()
            rebuild_aggregates(self.store)
            log = pa.Table.from_pylist(work.log, schema=QUERY_SCHEMA)
            if self.store.queries_path.exists():
                log = pa.concat_tables([pq.read_table(self.store.queries_path), log])
            write_parquet(self.store.queries_path, log)
        stats.files_seen = len(self.found)
        stats.files_read = self.written
        stats.files_unchanged = len(self.found & self.retrieved)
        stats.instances_added = len(self.found - self.known.keys() - self.retrieved)
        stats.errors_added = len(work.errors)


def _in_scope(row: dict[str, Any], windows: list[Window], modalities: list[str]) -> bool:
    """Whether a stored row is inside what a crawl queried: one of its windows, its modalities."""
    return any(w.holds(row.get("StudyDate")) for w in windows) and (
        not modalities or row.get("Modality") in modalities)
