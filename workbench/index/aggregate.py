"""The ``series`` and ``studies`` tables, aggregated from the ``instances`` parts.

Besides the attributes of each level, a series row carries the geometry facts
a user needs before loading it: how many distinct positions and orientations
it holds, its dominant plane, and whether its slices are evenly spaced along
the slice normal (PS3.3 Section C.7.6.2.1.1). Attributes are aggregated by
Arrow from the columns they need (read from the Parquet parts) and
geometry with NumPy over two columns.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

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


def _read(parts: list[Path], columns: list[str]) -> pa.Table:
    """The ``columns`` of the instances in ``parts`` (missing ones null), in one table."""
    from workbench.index.columns import instance_schema

    schema = instance_schema()
    tables = []
    for path in parts:
        present = set(pq.read_schema(path).names)
        tables.append(pq.read_table(path, columns=[c for c in columns if c in present]))
    table = pa.concat_tables(tables, promote_options="default") if tables else schema.empty_table()
    for name in columns:
        if name not in table.column_names:
            table = table.append_column(schema.field(name), pa.nulls(table.num_rows, schema.field(name).type))
    return table.select(columns)


def _per_group(table: pa.Table, key: str, attributes: list[str], aggregates: list[tuple]) -> pa.Table:
    """One row per value of ``key``: the attributes of its first instance, then the aggregates."""
    rows = table.append_column("_row", pa.array(np.arange(table.num_rows, dtype=np.int64)))
    grouped = rows.group_by(key, use_threads=False).aggregate([("_row", "min"), *aggregates])
    first = table.take(grouped["_row_min"]).select([key, *attributes])
    for name in grouped.column_names:
        if name not in ("_row_min", key):
            first = first.append_column(name, grouped[name])
    return first


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
    series_attributes = [c for c in _SERIES_ATTRIBUTES if c != "SeriesInstanceUID"] + [
        "Rows", "Columns", "PixelSpacing"]
    needed = list(dict.fromkeys(["SeriesInstanceUID", *series_attributes, "SOPInstanceUID", "NumberOfFrames",
                                 "file_size", "ImagePositionPatient", "ImageOrientationPatient"]))
    instances = _read(parts, needed)
    frames = pc.fill_null(instances["NumberOfFrames"], 1)
    series = _per_group(
        instances.append_column("_frames", frames), "SeriesInstanceUID", series_attributes,
        [("SOPInstanceUID", "count", pc.CountOptions(mode="all")), ("_frames", "sum"), ("file_size", "sum"),
         ("SOPInstanceUID", "count_distinct"), ("Rows", "count_distinct"), ("Columns", "count_distinct")],
    )
    mixed = pc.or_(pc.greater(series["Rows_count_distinct"], 1),
                   pc.greater(series["Columns_count_distinct"], 1))
    series = series.drop_columns(["Rows_count_distinct", "Columns_count_distinct"]).append_column(
        "mixed_sizes", mixed)
    series = series.rename_columns({
        "SOPInstanceUID_count": "n_instances", "_frames_sum": "n_frames", "file_size_sum": "total_bytes",
        "SOPInstanceUID_count_distinct": "n_sop_instance_uids"})
    geometry = series_geometry(instances.select(
        ["SeriesInstanceUID", "ImagePositionPatient", "ImageOrientationPatient"]))
    at = pc.index_in(series["SeriesInstanceUID"], value_set=geometry["SeriesInstanceUID"])
    for name in GEOMETRY_SCHEMA.names[1:]:
        series = series.append_column(name, geometry[name].take(at))
    series = series.sort_by([(c, "ascending") for c in (
        "PatientID", "StudyDate", "StudyInstanceUID", "SeriesNumber", "SeriesInstanceUID")])

    study_attributes = [c for c in _STUDY_ATTRIBUTES if c != "StudyInstanceUID"]
    studies = _per_group(
        instances, "StudyInstanceUID", study_attributes,
        [("SeriesInstanceUID", "count_distinct"), ("SOPInstanceUID", "count", pc.CountOptions(mode="all")),
         ("Modality", "distinct")],
    )
    modalities = pa.array(["\\".join(sorted(m for m in found if m)) or None
                           for found in studies["Modality_distinct"].to_pylist()], pa.string())
    studies = studies.drop_columns(["Modality_distinct"]).append_column("ModalitiesInStudy", modalities)
    studies = studies.rename_columns({
        "SeriesInstanceUID_count_distinct": "n_series", "SOPInstanceUID_count": "n_instances"})
    studies = studies.sort_by([(c, "ascending") for c in ("PatientID", "StudyDate", "StudyInstanceUID")])
    return series, studies
