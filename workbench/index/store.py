"""The index directory on disk: Parquet parts written atomically, repaired after a kill.

Layout (the contract in DESIGN.md)::

    DIR/instances/part-00000001.parquet ...   one row per instance
    DIR/errors/part-00000001.parquet ...      one row per file that could not be indexed
    DIR/series.parquet, DIR/studies.parquet   aggregates
    DIR/queries.parquet                       the queries of PACS crawls
    DIR/manifest.json                         schema version, sources, crawl statistics

Every file is written under a temporary name and renamed into place, so a
reader never sees half a file. Parts carry a sequence number shared by both
tables; when a killed crawl leaves two rows for one file (its old row and the
new one), the row in the higher part wins and :meth:`IndexStore.compact`
removes the other. A file's key is ``(path, member)``; an instance known from a PACS but
not retrieved has no path, and its key is ``(source, SOPInstanceUID)``.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from itertools import repeat
from pathlib import Path
from typing import Any, NamedTuple

import pyarrow as pa
import pyarrow.parquet as pq

#: Seconds a short commit (a PACS crawl's part, a retrieve's arrivals) waits for another writer.
COMMIT_WAIT = 120.0
#: Version of the on-disk layout and columns; a crawl into an older index rescans it.
SCHEMA_VERSION = 1
TABLES = ("instances", "errors")
_PART = re.compile(r"part-(\d{8})\.parquet$")
_KEY_COLUMNS = ["path", "member", "file_size", "mtime_ns"]
_REMOTE_KEY_COLUMNS = ["source", "SOPInstanceUID"]


class StoredRow(NamedTuple):
    """Where one row of ``instances`` or ``errors`` is stored, and what it says of its file."""

    path: str
    member: str
    file_size: int | None
    mtime_ns: int | None
    error: str | None
    table: str
    seq: int

    @property
    def remote(self) -> bool:
        """Whether the row is an instance known from a PACS and not retrieved (it has no file)."""
        return self.file_size is None and self.table == "instances" and "://" in self.path


class IndexLockedError(RuntimeError):
    """Another crawl is writing to the same index directory."""


def row_keys(data: pa.Table) -> list[tuple[str, str]]:
    """The key of each row of ``data``: ``(path, member)``, or ``(source, SOPInstanceUID)`` without path."""
    paths = data.column("path").to_pylist()
    members = data.column("member").to_pylist()
    if "SOPInstanceUID" not in data.column_names or None not in paths:
        return [(p, m or "") for p, m in zip(paths, members)]
    return [
        (p, m or "") if p is not None else (s, uid)
        for p, m, s, uid in zip(paths, members, data.column("source").to_pylist(),
                                data.column("SOPInstanceUID").to_pylist())
    ]


def write_atomic(path: Path, write, durable: bool = True) -> None:
    """Call ``write(tmp_path)`` and rename the result onto ``path``.

    The rename is atomic on POSIX file systems, so ``path`` is either the old
    file or the complete new one, whatever happens to this process. ``durable``
    also flushes the file to disk first, so it survives a crash of the machine.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        if durable:
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_parquet(path: Path, table: pa.Table) -> None:
    """Write ``table`` to ``path`` atomically."""
    write_atomic(path, lambda tmp: pq.write_table(table, tmp, compression="zstd"))


def write_json(path: Path, value: Any) -> None:
    """Write ``value`` as JSON to ``path`` atomically."""
    write_atomic(path, lambda tmp: tmp.write_text(json.dumps(value, indent=2, default=str) + "\n"))


class IndexStore:
    """The files of one index directory.

    Parameters
    ----------
    directory : str or Path
        The index directory; created when missing.
    """

    def __init__(self, directory: str | os.PathLike) -> None:
        self.directory = Path(directory)
        self.manifest_path = self.directory / "manifest.json"
        self.series_path = self.directory / "series.parquet"
        self.studies_path = self.directory / "studies.parquet"
        self.queries_path = self.directory / "queries.parquet"

    def table_dir(self, table: str) -> Path:
        """The folder of the Parquet parts of ``table`` (``instances`` or ``errors``)."""
        return self.directory / table

    @contextmanager
    def lock(self, wait: float = 0.0) -> Iterator[None]:
        """Hold the index's write lock, waiting up to ``wait`` seconds for another writer.

        Raises
        ------
        IndexLockedError
            When another crawl still holds it.
        """
        self.directory.mkdir(parents=True, exist_ok=True)
        for table in TABLES:
            self.table_dir(table).mkdir(exist_ok=True)
        deadline = time.monotonic() + wait
        with open(self.directory / ".lock", "w") as fh:
            while True:
                try:
                    fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise IndexLockedError(
                            f"{self.directory} is being written by another crawl; wait for it to finish"
                        ) from None
                    time.sleep(0.1)
            self._remove_leftovers()
            yield

    def _remove_leftovers(self) -> None:
        """Delete temporary files a killed crawl left behind."""
        for folder in (self.directory, *(self.table_dir(t) for t in TABLES)):
            for tmp in folder.glob(".*.tmp"):
                tmp.unlink()

    def parts(self, table: str) -> list[tuple[int, Path]]:
        """The (sequence number, path) of each part of ``table``, in order."""
        folder = self.table_dir(table)
        if not folder.is_dir():
            return []
        found = []
        for entry in os.scandir(folder):
            match = _PART.match(entry.name)
            if match:
                found.append((int(match.group(1)), Path(entry.path)))
        return sorted(found)

    def next_seq(self) -> int:
        """The sequence number for the next part."""
        return max((seq for t in TABLES for seq, _ in self.parts(t)), default=0) + 1

    def write_part(self, table: str, seq: int, data: pa.Table) -> None:
        """Commit ``data`` as part ``seq`` of ``table``."""
        write_parquet(self.table_dir(table) / f"part-{seq:08d}.parquet", data)

    def read_table(self, table: str, columns: list[str] | None = None) -> pa.Table | None:
        """All parts of ``table`` as one Arrow table (columns unified), or None when there is none."""
        tables = []
        for _, path in self.parts(table):
            if columns is None:
                tables.append(pq.read_table(path))
            else:
                present = set(pq.read_schema(path).names)
                tables.append(pq.read_table(path, columns=[c for c in columns if c in present]))
        if not tables:
            return None
        return pa.concat_tables(tables, promote_options="default")

    def read_keys(self) -> list[StoredRow]:
        """One entry per stored row of both tables, with its key, size, mtime, error and part."""
        rows: list[StoredRow] = []
        for table in TABLES:
            columns = _KEY_COLUMNS + (["error"] if table == "errors" else _REMOTE_KEY_COLUMNS)
            for seq, path in self.parts(table):
                data = pq.read_table(path, columns=columns)
                errors = data.column("error").to_pylist() if table == "errors" else repeat(None)
                rows.extend(
                    StoredRow(p, m, size, mtime, error, table, seq)
                    for (p, m), size, mtime, error in zip(
                        row_keys(data), data.column("file_size").to_pylist(),
                        data.column("mtime_ns").to_pylist(), errors,
                    )
                )
        return rows

    def compact(self, remove: Iterable[tuple[str, str]] = ()) -> int:
        """Drop rows of removed files, and every row superseded by one in a later part.

        Parameters
        ----------
        remove : iterable of (path, member)
            Keys of files that no longer exist (``member`` is ``""`` for plain files).

        Returns
        -------
        int
            Number of rows dropped.
        """
        rows = self.read_keys()
        latest: dict[tuple[str, str], int] = {}
        for row in rows:
            key = (row.path, row.member)
            latest[key] = max(latest.get(key, 0), row.seq)
        removed = set(remove)
        drop: dict[tuple[str, int], set[tuple[str, str]]] = {}
        for row in rows:
            key = (row.path, row.member)
            if row.seq < latest[key] or key in removed:
                drop.setdefault((row.table, row.seq), set()).add(key)
        for (table, seq), gone in drop.items():
            path = self.table_dir(table) / f"part-{seq:08d}.parquet"
            data = pq.read_table(path)
            keep = [key not in gone for key in row_keys(data)]
            kept = data.filter(pa.array(keep))
            if kept.num_rows:
                write_parquet(path, kept)
            else:
                path.unlink()
        return sum(len(gone) for gone in drop.values())

    def remove_remote(self, keys: set[tuple[str, str]]) -> int:
        """Drop the rows of PACS instances not retrieved, by ``(source, SOPInstanceUID)``.

        Only parts with rows without a path are read (the Parquet statistics tell which), so
        the cost does not grow with the files indexed.

        Returns
        -------
        int
            Number of rows dropped.
        """
        dropped = 0
        for _, path in self.parts("instances"):
            metadata = pq.read_metadata(path)
            column = metadata.schema.names.index("path")
            stats = [metadata.row_group(i).column(column).statistics for i in range(metadata.num_row_groups)]
            if all(s is not None and s.has_null_count and s.null_count == 0 for s in stats):
                continue  # every row has a path: no PACS row to drop here
            data = pq.read_table(path)
            keep = [key not in keys for key in row_keys(data)]
            if all(keep):
                continue
            dropped += len(keep) - sum(keep)
            kept = data.filter(pa.array(keep))
            if kept.num_rows:
                write_parquet(path, kept)
            else:
                path.unlink()
        return dropped

    def read_manifest(self) -> dict[str, Any]:
        """The manifest, or an empty dict for a new index."""
        if not self.manifest_path.exists():
            return {}
        return json.loads(self.manifest_path.read_text())
