"""The :class:`Index`: an index directory's tables as pandas DataFrames and DuckDB views."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from workbench.index.columns import ERROR_SCHEMA, QUERY_SCHEMA, instance_schema
from workbench.index.store import IndexStore

if TYPE_CHECKING:
    import duckdb
    import pandas as pd


def to_pandas(table: pa.Table) -> pd.DataFrame:
    """An Arrow table as a DataFrame, keeping integer and boolean columns with nulls as such."""
    # pandas is imported here, not at the top, so the crawl command starts fast without it.
    import pandas as pd

    types = {pa.int64(): pd.Int64Dtype(), pa.bool_(): pd.BooleanDtype()}
    return table.to_pandas(types_mapper=types.get)


# SQL types of the Arrow types the tables use, for views of tables that have no rows yet.
_SQL_TYPES = {
    pa.string(): "VARCHAR", pa.int64(): "BIGINT", pa.float64(): "DOUBLE", pa.bool_(): "BOOLEAN",
    pa.date32(): "DATE", pa.time64("us"): "TIME", pa.timestamp("us"): "TIMESTAMP",
    pa.list_(pa.float64()): "DOUBLE[]",
}


def _empty_select(schema: pa.Schema) -> str:
    """A SELECT of no rows with the columns of ``schema`` (DuckDB's register of an Arrow table
    would import pandas, a fifth of a second for a command that does not need it)."""
    columns = ", ".join(f'NULL::{_SQL_TYPES[f.type]} AS "{f.name}"' for f in schema)
    return f"SELECT {columns} WHERE false"


#: The views :meth:`Index.sql` offers.
VIEWS = ("instances", "series", "studies", "errors", "queries")


class Index:
    """A crawled index directory.

    The tables are read from disk on each access, so an ``Index`` always shows
    the latest committed crawl.

    Parameters
    ----------
    directory : str or Path
        The index directory (made by :func:`workbench.crawl`).

    Raises
    ------
    FileNotFoundError
        When ``directory`` holds no index (no ``manifest.json``).
    """

    def __init__(self, directory: str | os.PathLike) -> None:
        self.store = IndexStore(directory)
        if not self.store.manifest_path.exists():
            raise FileNotFoundError(f"{directory} is not a workbench index (no manifest.json)")
        self.directory = self.store.directory

    def __repr__(self) -> str:
        return f"Index({str(self.directory)!r})"

    @property
    def manifest(self) -> dict[str, Any]:
        """The manifest: schema version, sources, options and crawl statistics."""
        return self.store.read_manifest()

    @property
    def last_crawl(self) -> dict[str, Any]:
        """Statistics of the last crawl (files seen, read, unchanged, errors, seconds, ...)."""
        return self.manifest.get("last_crawl", {})

    def _files(self, table: str) -> list[Path]:
        """The Parquet files of ``table``."""
        if table in ("instances", "errors"):
            return [p for _, p in self.store.parts(table)]
        return [{"series": self.store.series_path, "studies": self.store.studies_path,
                 "queries": self.store.queries_path}[table]]

    def _empty_schema(self, table: str) -> pa.Schema:
        """The columns of ``table`` when it has no file yet."""
        if table == "errors":
            return ERROR_SCHEMA
        if table == "queries":
            return QUERY_SCHEMA
        manifest = self.manifest
        return instance_schema(tuple(manifest.get("tags", ())), bool(manifest.get("full_header")))

    def _arrow(self, table: str) -> pa.Table:
        if table in ("series", "studies"):
            path = self.store.series_path if table == "series" else self.store.studies_path
            return pq.read_table(path)
        if table == "queries":
            path = self.store.queries_path
            return pq.read_table(path) if path.exists() else QUERY_SCHEMA.empty_table()
        data = self.store.read_table(table)
        return data if data is not None else self._empty_schema(table).empty_table()

    @property
    def instances(self) -> pd.DataFrame:
        """One row per indexed DICOM instance (file or zip member)."""
        return to_pandas(self._arrow("instances"))

    @property
    def series(self) -> pd.DataFrame:
        """One row per series, with counts and geometry facts."""
        return to_pandas(self._arrow("series"))

    @property
    def studies(self) -> pd.DataFrame:
        """One row per study, with counts and the modalities in it."""
        return to_pandas(self._arrow("studies"))

    @property
    def queries(self) -> pd.DataFrame:
        """One row per query of the PACS crawls: level, keys, results, capped, split, status."""
        return to_pandas(self._arrow("queries"))

    @property
    def errors(self) -> pd.DataFrame:
        """One row per file that could not be indexed: ``path``, ``error`` class, ``message``."""
        return to_pandas(self._arrow("errors"))

    def connect(self) -> duckdb.DuckDBPyConnection:
        """An in-memory DuckDB connection with the views instances, series, studies, errors, queries."""
        import duckdb  # here, not at the top: the crawl command has no use for it

        con = duckdb.connect()
        for view in VIEWS:
            parts = self._files(view)
            if parts and all(p.exists() for p in parts):
                files = ", ".join("'" + str(p).replace("'", "''") + "'" for p in parts)
                con.execute(
                    f"CREATE VIEW {view} AS SELECT * FROM read_parquet([{files}], union_by_name = true)"
                )
            else:
                schema = (self._arrow(view).schema if view in ("series", "studies")
                          else self._empty_schema(view))
                con.execute(f"CREATE VIEW {view} AS {_empty_select(schema)}")
        return con

    def sql(self, query: str) -> pd.DataFrame:
        """Run a DuckDB SQL query over the views and return the result.

        Parameters
        ----------
        query : str
            SQL over the views ``instances``, ``series``, ``studies`` and ``errors``.

        Returns
        -------
        pandas.DataFrame

        Raises
        ------
        duckdb.Error
            When the query is not valid SQL for these views.
        """
        with self.connect() as con:
            return to_pandas(con.sql(query).to_arrow_table())

    def duplicates(self) -> pd.DataFrame:
        """Instances whose SOPInstanceUID appears more than once, with their paths."""
        return self.sql(
            "SELECT SOPInstanceUID, path, member, SeriesInstanceUID FROM instances "
            "WHERE SOPInstanceUID IN (SELECT SOPInstanceUID FROM instances "
            "GROUP BY 1 HAVING count(*) > 1) ORDER BY SOPInstanceUID, path, member"
        )

    def status(self) -> dict[str, Any]:
        """Counts per table, per modality, errors per class, duplicates and the last crawl.

        Returns
        -------
        dict
            ``counts`` (rows per table), ``modalities`` (DataFrame), ``error_classes``
            (DataFrame), ``duplicates`` (number of SOPInstanceUIDs seen more than once)
            and ``last_crawl`` (dict).
        """
        with self.connect() as con:
            counts = {v: con.sql(f"SELECT count(*) FROM {v}").fetchall()[0][0] for v in VIEWS}
            modalities = to_pandas(con.sql(
                "SELECT Modality, count(DISTINCT StudyInstanceUID) AS studies, "
                "count(DISTINCT SeriesInstanceUID) AS series, count(*) AS instances "
                "FROM instances GROUP BY 1 ORDER BY instances DESC"
            ).to_arrow_table())
            error_classes = to_pandas(con.sql(
                "SELECT error, count(*) AS files FROM errors GROUP BY 1 ORDER BY files DESC"
            ).to_arrow_table())
            duplicates = con.sql(
                "SELECT count(*) FROM (SELECT SOPInstanceUID FROM instances GROUP BY 1 HAVING count(*) > 1)"
            ).fetchall()[0][0]
        return {
            "counts": counts,
            "modalities": modalities,
            "error_classes": error_classes,
            "duplicates": duplicates,
            "last_crawl": self.last_crawl,
        }


def open_index(directory: str | os.PathLike) -> Index:
    """Open a crawled index directory.

    Raises
    ------
    FileNotFoundError
        When ``directory`` holds no index.
    """
    return Index(directory)
