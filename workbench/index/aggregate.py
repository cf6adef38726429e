"""The ``series`` and ``studies`` tables, aggregated from the ``instances`` parts.

Besides the attributes of each level, a series row carries the geometry facts
a user needs before loading it: how many distinct positions and orientations
it holds, its dominant plane, and whether its slices are evenly spaced along
the slice normal (PS3.3 Section C.7.6.2.1.1). Attributes are aggregated by
DuckDB straight from the Parquet parts and geometry with NumPy over two
columns, so memory stays small however many instances there are.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from workbench.index.columns import INSTANCE_COLUMNS

_SERIES_ATTRIBUTES = [c.name for c in INSTANCE_COLUMNS if c.level in ("patient", "study", "series")]
_STUDY_ATTRIBUTES = [c.name for c in INSTANCE_COLUMNS if c.level in ("patient", "study")]
# A plane within 10 degrees of a patient axis is named after it.
_PLANE_COSINE = float(np.cos(np.radians(10)))
# Slices are evenly spaced when every gap is within this fraction (or 0.01 mm) of the median.
_SPACING_TOLERANCE = 0.01
_PLANES = np.array(["SAGITTAL", "CORONAL", "AXIAL"])
GEOMETRY_SCHEMA = pa.schema([
    ("SeriesInstanceUID", pa.string()), ("n_positions", pa.int64()), ("n_orientations", pa.int64()),
    ("plane", pa.string()), ("slice_spacing", pa.float64()), ("slice_spacing_min", pa.float64()),
    ("slice_spacing_max", pa.float64()), ("spacing_uniform", pa.bool_()),
])


def plane_name(orientation: np.ndarray) -> str:
    """AXIAL, CORONAL, SAGITTAL or OBLIQUE for one ImageOrientationPatient value."""
    return str(_plane_names(np.asarray(orientation, dtype=float).reshape(1, 6))[0])


def _plane_names(orientations: np.ndarray) -> np.ndarray:
    normals = np.cross(orientations[:, :3], orientations[:, 3:6])
    lengths = np.linalg.norm(normals, axis=1)
    axis = np.argmax(np.abs(normals), axis=1)
    dominant = np.abs(normals[np.arange(len(normals)), axis])
    return np.where(dominant >= _PLANE_COSINE * lengths, _PLANES[axis], "OBLIQUE")


def _fixed_lists(column: pa.ChunkedArray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows of a list<double> column holding exactly ``size`` non-null numbers, as an (n, size) array."""
    column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    lengths = pc.fill_null(pc.list_value_length(column), 0).to_numpy(zero_copy_only=False)
    ok = lengths == size
    values = np.full((len(column), size), np.nan)
    if ok.any():
        flat = pc.list_flatten(column.filter(pa.array(ok))).to_numpy(zero_copy_only=False)
        values[ok] = np.asarray(flat, dtype=float).reshape(-1, size)
    ok &= ~np.isnan(values).any(axis=1)
    return values, ok


def series_geometry(geometry: pa.Table) -> pa.Table:
    """Geometry facts per series from SeriesInstanceUID, ImagePositionPatient, ImageOrientationPatient.

    Returns
    -------
    pyarrow.Table
        One row per series with a valid position and orientation (:data:`GEOMETRY_SCHEMA`).
    """
    positions, has_position = _fixed_lists(geometry["ImagePositionPatient"], 3)
    orientations, has_orientation = _fixed_lists(geometry["ImageOrientationPatient"], 6)
    valid = has_position & has_orientation
    if not valid.any():
        return GEOMETRY_SCHEMA.empty_table()
    encoded = pc.dictionary_encode(geometry["SeriesInstanceUID"].combine_chunks().filter(pa.array(valid)))
    codes = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False)
    keep = codes >= 0
    positions, orientations = positions[valid][keep], np.round(orientations[valid][keep], 4)
    used, series = np.unique(codes[keep], return_inverse=True)
    names = encoded.dictionary.take(pa.array(used))
    # Distinct positions and orientations per series.
    n_positions = np.bincount(
        np.unique(np.column_stack([series, np.round(positions, 3)]), axis=0)[:, 0].astype(int),
        minlength=len(names),
    )
    pairs, pair_counts = np.unique(np.column_stack([series, orientations]), axis=0, return_counts=True)
    pair_series = pairs[:, 0].astype(int)
    n_orientations = np.bincount(pair_series, minlength=len(names))
    # The dominant orientation of each series: its most frequent one.
    order = np.lexsort((-pair_counts, pair_series))
    first = order[np.unique(pair_series[order], return_index=True)[1]]
    main = pairs[first, 1:]
    normals = np.cross(main[:, :3], main[:, 3:6])
    in_main = np.all(orientations == main[series], axis=1)
    along = np.round(np.einsum("ij,ij->i", positions, normals[series]), 3)
    stack = np.unique(np.column_stack([series[in_main], along[in_main]]), axis=0)
    spacing = np.full((len(names), 4), np.nan)  # median, min, max, uniform
    boundaries = np.flatnonzero(np.diff(stack[:, 0])) + 1
    for block in np.split(stack, boundaries):
        if len(block) >= 2:
            gaps = np.diff(block[:, 1])
            median = float(np.median(gaps))
            uniform = np.all(np.abs(gaps - median) <= max(_SPACING_TOLERANCE * median, 0.01))
            spacing[int(block[0, 0])] = (median, gaps.min(), gaps.max(), float(uniform))
    has_spacing = ~np.isnan(spacing[:, 0])
    return pa.table({
        "SeriesInstanceUID": names,
        "n_positions": pa.array(n_positions, pa.int64()),
        "n_orientations": pa.array(n_orientations, pa.int64()),
        "plane": pa.array(_plane_names(main).tolist(), pa.string()),
        "slice_spacing": pa.array(spacing[:, 0], pa.float64(), mask=~has_spacing),
        "slice_spacing_min": pa.array(spacing[:, 1], pa.float64(), mask=~has_spacing),
        "slice_spacing_max": pa.array(spacing[:, 2], pa.float64(), mask=~has_spacing),
        "spacing_uniform": pa.array(spacing[:, 3] == 1.0, pa.bool_(), mask=~has_spacing),
    }, schema=GEOMETRY_SCHEMA)


def _any_values(columns: list[str], key: str) -> str:
    """SQL for one value per group of each column: attributes constant within a series or study."""
    return ", ".join(f"any_value({c}) AS {c}" for c in columns if c != key)


def _parquet_list(parts: list[Path]) -> str:
    return "[" + ", ".join("'" + str(p).replace("'", "''") + "'" for p in parts) + "]"


def build_aggregates(parts: list[Path]) -> tuple[pa.Table, pa.Table]:
    """The ``series`` and ``studies`` tables of the instances stored in ``parts``.

    Parameters
    ----------
    parts : list of Path
        The Parquet parts of the ``instances`` table; may be empty.

    Returns
    -------
    tuple[pyarrow.Table, pyarrow.Table]
        ``series``: one row per SeriesInstanceUID with its attributes, ``n_instances``,
        ``n_frames``, ``total_bytes``, ``n_sop_instance_uids``, ``mixed_sizes`` and the
        geometry facts of :func:`series_geometry`. ``studies``: one row per
        StudyInstanceUID with its attributes, ``n_series``, ``n_instances`` and
        ``ModalitiesInStudy`` (distinct modalities joined by ``\\``).
    """
    with duckdb.connect() as con:
        if parts:
            source = f"read_parquet({_parquet_list(parts)}, union_by_name = true)"
        else:
            from workbench.index.columns import instance_schema

            con.register("empty_instances", instance_schema().empty_table())
            source = "empty_instances"
        geometry = series_geometry(con.sql(
            f"SELECT SeriesInstanceUID, ImagePositionPatient, ImageOrientationPatient FROM {source}"
        ).to_arrow_table())
        con.register("geometry", geometry)
        attributes = _any_values(_SERIES_ATTRIBUTES, "SeriesInstanceUID")
        series = con.sql(f"""
            SELECT * FROM (
                SELECT SeriesInstanceUID, {attributes},
                    any_value(Rows) AS Rows, any_value(Columns) AS Columns,
                    any_value(PixelSpacing) AS PixelSpacing,
                    count(*) AS n_instances, sum(coalesce(NumberOfFrames, 1)) AS n_frames,
                    sum(file_size) AS total_bytes, count(DISTINCT SOPInstanceUID) AS n_sop_instance_uids,
                    count(DISTINCT Rows) > 1 OR count(DISTINCT Columns) > 1 AS mixed_sizes
                FROM {source} GROUP BY SeriesInstanceUID
            ) LEFT JOIN geometry USING (SeriesInstanceUID)
            ORDER BY PatientID, StudyDate, StudyInstanceUID, SeriesNumber, SeriesInstanceUID
        """).to_arrow_table()
        attributes = _any_values(_STUDY_ATTRIBUTES, "StudyInstanceUID")
        studies = con.sql(f"""
            SELECT StudyInstanceUID, {attributes},
                count(DISTINCT SeriesInstanceUID) AS n_series, count(*) AS n_instances,
                string_agg(DISTINCT Modality, '\\' ORDER BY Modality) AS ModalitiesInStudy
            FROM {source} GROUP BY StudyInstanceUID
            ORDER BY PatientID, StudyDate, StudyInstanceUID
        """).to_arrow_table()
    return series, studies


