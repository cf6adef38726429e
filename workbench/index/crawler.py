"""Crawl folders and zip archives into the Parquet index.

The crawl is incremental (a file whose path, size and mtime are unchanged is
not read again; rows of deleted files are dropped), resumable (work is
committed in parts; a crawl killed at any moment and run again ends with
every file indexed exactly once) and parallel (a process pool reads headers).
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field

import pyarrow as pa

from workbench.index.aggregate import build_aggregates
from workbench.index.columns import ERROR_SCHEMA, column_for_keyword
from workbench.index.index import Index
from workbench.index.reader import FileItem, ReadSpec, error_row, read_files, with_sop_class_names
from workbench.index.store import (
    COMMIT_WAIT,
    SCHEMA_VERSION,
    IndexStore,
    write_atomic,
    write_json,
    write_parquet,
)
from workbench.index.walk import WalkError, is_zip_path, walk, zip_members
from workbench.progress import progress_bar

# Commit a part after this many rows or seconds, whichever comes first.
PART_ROWS = 5000
PART_SECONDS = 10.0
# Error classes that are not failures of the crawl.
NOT_FAILURES = frozenset({"dicomdir"})
# Errors worth retrying even when the file looks unchanged (permissions change no mtime).
_RETRY_ERRORS = frozenset({"unreadable", "missing", "broken_link", "symlink_loop"})


@dataclass
class CrawlStats:
    """What one crawl did, kept in the manifest."""

    sources: list[str]
    started: str
    seconds: float = 0.0
    files_seen: int = 0
    files_read: int = 0
    files_unchanged: int = 0
    instances_added: int = 0
    errors_added: int = 0
    rows_removed: int = 0
    failed: int = 0
    rescan: bool = False
    workers: int = 1
    notes: list[str] = field(default_factory=list)
    #: PACS crawls: the number of queries, and whether nothing suggests a missed instance.
    queries: int = 0
    complete: bool = True


def under_any(path: str, sources: list[str]) -> bool:
    """Whether ``path`` is one of ``sources`` or inside one of them."""
    return any(path == s or path.startswith(s.rstrip(os.sep) + os.sep) for s in sources)


def _read_chunk(args: tuple[list[FileItem], ReadSpec]) -> tuple[int, pa.Table, pa.Table]:
    items, spec = args
    instances, errors = read_files(items, spec)
    return len(items), instances, errors


def _chunks(items: list[FileItem], size: int) -> Iterator[list[FileItem]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def crawl(
    paths: str | os.PathLike | Iterable[str | os.PathLike],
    index: str | os.PathLike,
    *,
    workers: int | None = None,
    tags: Iterable[str] = (),
    full_header: bool = False,
    rescan: bool = False,
    quiet: bool = False,
    part_rows: int = PART_ROWS,
) -> Index:
    """Crawl folders and zip archives into an index directory.

    Parameters
    ----------
    paths : path or iterable of paths
        Folders, files or ``.zip`` archives to crawl.
    index : path
        The index directory; created when missing, updated when present.
    workers : int, optional
        Number of reading processes; defaults to the number of CPUs.
    tags : iterable of str
        Extra DICOM keywords to index as columns. Tags of earlier crawls are kept.
    full_header : bool
        Also store the whole header as DICOM JSON in the ``header_json`` column.
    rescan : bool
        Read every file again, changed or not.
    quiet : bool
        No progress bar.
    part_rows : int
        Commit a part every this many rows (and at least every PART_SECONDS):
        the most work a killed crawl loses.

    Returns
    -------
    Index
        The updated index; ``index.last_crawl`` holds this crawl's statistics.

    Raises
    ------
    ValueError
        When a keyword in ``tags`` is not a DICOM keyword.
    workbench.index.store.IndexLockedError
        When another crawl is writing to the same index.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    sources = list(dict.fromkeys(os.path.abspath(os.fspath(p)) for p in paths))
    new_tags = tuple(column_for_keyword(t.strip()).name for t in tags if t.strip())
    workers = max(1, workers or os.cpu_count() or 1)
    store = IndexStore(index)
    started = time.time()
    stats = CrawlStats(sources=sources, started=time.strftime("%Y-%m-%dT%H:%M:%S%z"), workers=workers)
    with store.lock():
        manifest = store.read_manifest()
        old_tags = tuple(manifest.get("tags", ()))
        spec = ReadSpec(
            tags=tuple(dict.fromkeys(old_tags + new_tags)),
            full_header=bool(manifest.get("full_header")) or full_header,
        )
        if manifest and manifest.get("schema_version") != SCHEMA_VERSION:
            rescan = True
            stats.notes.append("the index was made by another version of workbench: rescanning")
        elif manifest and (spec.tags != old_tags or spec.full_header != bool(manifest.get("full_header"))):
            rescan = True
            stats.notes.append("new columns were asked for: rescanning to fill them")
        stats.rescan = rescan
        store.compact()
        to_read, walk_errors, removed = _plan(store, sources, rescan, stats)
        _read_all(store, spec, to_read, walk_errors, workers, quiet, part_rows, stats)
        stats.rows_removed = store.compact(removed)
        rebuild_aggregates(store)
        errors = store.read_table("errors", ["path", "error"])
        if errors is not None:
            stats.failed = sum(
                1 for p, e in zip(errors["path"].to_pylist(), errors["error"].to_pylist())
                if e not in NOT_FAILURES and under_any(p, sources)
            )
        stats.seconds = round(time.time() - started, 3)
        manifest.update(
            schema_version=SCHEMA_VERSION,
            tags=list(spec.tags),
            full_header=spec.full_header,
            sources=sorted(set(manifest.get("sources", [])) | set(sources)),
            last_crawl=asdict(stats),
        )
        manifest["crawls"] = (manifest.get("crawls", []) + [asdict(stats)])[-50:]
        write_json(store.manifest_path, manifest)
    return Index(store.directory)


def _plan(
    store: IndexStore, sources: list[str], rescan: bool, stats: CrawlStats
) -> tuple[list[FileItem], list[WalkError], set[tuple[str, str]]]:
    """Walk the sources and compare with the index: what to read, what failed, what is gone."""
    known: dict[tuple[str, str], tuple[int | None, int | None, str | None]] = {}
    archive_mtimes: dict[str, set[int | None]] = {}
    archive_members: dict[str, list[str]] = {}
    for row in store.read_keys():
        if row.remote:
            continue
        known[(row.path, row.member)] = (row.file_size, row.mtime_ns, row.error)
        if row.member:
            archive_mtimes.setdefault(row.path, set()).add(row.mtime_ns)
            archive_members.setdefault(row.path, []).append(row.member)
    seen: set[tuple[str, str]] = set()
    to_read: list[FileItem] = []
    walk_errors: list[WalkError] = []

    def consider(item: FileItem) -> None:
        key = (item.path, item.member or "")
        if key in seen:
            return
        seen.add(key)
        stats.files_seen += 1
        old = known.get(key)
        if (
            not rescan and old is not None and old[0] == item.file_size and old[1] == item.mtime_ns
            and old[2] not in _RETRY_ERRORS
        ):
            stats.files_unchanged += 1
        else:
            to_read.append(item)

    for source in sources:
        for found in walk(source):
            if isinstance(found, WalkError):
                seen.add((found.item.path, ""))
                walk_errors.append(found)
            elif is_zip_path(found.path):
                if not rescan and archive_mtimes.get(found.path) == {found.mtime_ns}:
                    members = archive_members[found.path]
                    seen.update((found.path, member) for member in members)
                    stats.files_seen += len(members)
                    stats.files_unchanged += len(members)
                    continue
                for member in zip_members(found):
                    if isinstance(member, WalkError):
                        seen.add((member.item.path, ""))
                        walk_errors.append(member)
                    else:
                        consider(member)
            else:
                consider(found)
    removed = {key for key in known if key not in seen and under_any(key[0], sources)}
    return to_read, walk_errors, removed


def _read_all(
    store: IndexStore,
    spec: ReadSpec,
    to_read: list[FileItem],
    walk_errors: list[WalkError],
    workers: int,
    quiet: bool,
    part_rows: int,
    stats: CrawlStats,
) -> None:
    """Read the files in a process pool, committing a part every ``part_rows`` rows or PART_SECONDS."""
    pending_instances: list[pa.Table] = []
    pending_errors: list[pa.Table] = [pa.Table.from_pylist(
        [error_row(e.item, e.error, e.message) for e in walk_errors], schema=ERROR_SCHEMA
    )]
    last_commit = time.monotonic()

    def commit() -> None:
        nonlocal last_commit, pending_instances, pending_errors
        seq = store.next_seq()
        instances = [t for t in pending_instances if t.num_rows]
        errors = [t for t in pending_errors if t.num_rows]
        if instances:
            table = with_sop_class_names(pa.concat_tables(instances))
            store.write_part("instances", seq, table)
            stats.instances_added += table.num_rows
        if errors:
            table = pa.concat_tables(errors)
            store.write_part("errors", seq, table)
            stats.errors_added += table.num_rows
        pending_instances, pending_errors = [], []
        last_commit = time.monotonic()

    stats.files_read = len(to_read)
    workers = min(workers, max(1, len(to_read) // 64))
    stats.workers = workers
    chunk = max(1, min(512, part_rows, len(to_read) // (workers * 8) or 1))
    tasks = ((items, spec) for items in _chunks(to_read, chunk))
    with progress_bar(total=len(to_read), unit="file", desc="crawl", disable=quiet or not to_read,
              mininterval=0.5) as bar:
        if workers > 1:
            # Keep the parent's objects out of the garbage collector so the forked
            # workers do not copy every page they share with it.
            gc.freeze()
            pool = multiprocessing.get_context("fork").Pool(workers)
            results = pool.imap_unordered(_read_chunk, tasks)
        else:
            pool = None
            results = map(_read_chunk, tasks)
        try:
            pending = 0
            for count, instances, errors in results:
                pending_instances.append(instances)
                pending_errors.append(errors)
                pending += instances.num_rows + errors.num_rows
                bar.update(count)
                if pending >= part_rows or time.monotonic() - last_commit > PART_SECONDS:
                    commit()
                    pending = 0
        finally:
            if pool is not None:
                pool.terminate()
                gc.unfreeze()
    commit()


def rebuild_aggregates(store: IndexStore) -> None:
    """Rebuild series.parquet and studies.parquet when the instances changed since the last build."""
    parts = store.parts("instances")
    state = repr([(seq, path.stat().st_mtime_ns) for seq, path in parts])
    stamp = store.directory / ".aggregates"
    if store.series_path.exists() and store.studies_path.exists() and stamp.exists() \
            and stamp.read_text() == state:
        return
    series, studies = build_aggregates([path for _, path in parts])
    write_parquet(store.series_path, series)
    write_parquet(store.studies_path, studies)
    write_atomic(stamp, lambda tmp: tmp.write_text(state))


def index_retrieved(store: IndexStore, files: list[tuple[str, str]], source: str) -> int:
    """Index files retrieved from a PACS in place of their path-less rows.

    Parameters
    ----------
    store : IndexStore
        The index.
    files : list of (path, SOPInstanceUID)
        The files that arrived and the instance each was asked for.
    source : str
        The PACS address; the new rows keep it as their ``source``.

    Returns
    -------
    int
        The number of files indexed (the others are in ``errors``).
    """
    if not files:
        return 0
    manifest = store.read_manifest()
    spec = ReadSpec(tags=tuple(manifest.get("tags", ())), full_header=bool(manifest.get("full_header")))
    items = []
    for path, _ in files:
        info = os.stat(path)
        items.append(FileItem(path, None, source, info.st_size, info.st_mtime_ns))
    instances, errors = read_files(items, spec)
    with store.lock(COMMIT_WAIT):
        seq = store.next_seq()
        if instances.num_rows:
            store.write_part("instances", seq, with_sop_class_names(instances))
        if errors.num_rows:
            store.write_part("errors", seq, errors)
        arrived = set(instances.column("SOPInstanceUID").to_pylist())
        store.remove_remote({(source, uid) for _, uid in files if uid in arrived})
    return instances.num_rows


def finish_retrieve(store: IndexStore) -> None:
    """Rebuild the aggregates after :func:`index_retrieved` calls."""
    with store.lock(COMMIT_WAIT):
        rebuild_aggregates(store)
