"""The ``series`` and ``studies`` tables, aggregated from ``instances``.

Besides the attributes of each level, a series row carries the geometry facts
a user needs before loading it: how many distinct positions and orientations
it holds, its dominant plane, and whether its slices are evenly spaced along
the slice normal (PS3.3 Section C.7.6.2.1.1).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from workbench.index.columns import INSTANCE_COLUMNS

_SERIES_ATTRIBUTES = [c.name for c in INSTANCE_COLUMNS if c.level in ("patient", "study", "series")]
_STUDY_ATTRIBUTES = [c.name for c in INSTANCE_COLUMNS if c.level in ("patient", "study")]
_GEOMETRY = ["ImagePositionPatient", "ImageOrientationPatient", "Rows", "Columns", "NumberOfFrames"]
#: Columns read from ``instances`` to build the aggregates.
NEEDED_COLUMNS = list(dict.fromkeys(
    ["SOPInstanceUID", "file_size", "ImageType", "PixelSpacing", *_SERIES_ATTRIBUTES, *_GEOMETRY]
))
# A plane within 10 degrees of a patient axis is named after it.
_PLANE_COSINE = float(np.cos(np.radians(10)))
# Slices are evenly spaced when every gap is within this fraction (or 0.01 mm) of the median.
_SPACING_TOLERANCE = 0.01


def plane_name(orientation: np.ndarray) -> str:
    """AXIAL, CORONAL, SAGITTAL or OBLIQUE for an ImageOrientationPatient value."""
    normal = np.cross(orientation[:3], orientation[3:6])
    axis = int(np.argmax(np.abs(normal)))
    if abs(normal[axis]) < _PLANE_COSINE * np.linalg.norm(normal):
        return "OBLIQUE"
    return ("SAGITTAL", "CORONAL", "AXIAL")[axis]


def _geometry(group: pd.DataFrame) -> dict:
    """Geometry facts of one series."""
    out = {
        "n_positions": 0, "n_orientations": 0, "plane": None, "slice_spacing": None,
        "slice_spacing_min": None, "slice_spacing_max": None, "spacing_uniform": None,
        "mixed_sizes": bool(group["Rows"].nunique() > 1 or group["Columns"].nunique() > 1),
    }
    valid = [
        (p, o) for p, o in zip(group["ImagePositionPatient"], group["ImageOrientationPatient"])
        if p is not None and o is not None and len(p) == 3 and len(o) == 6
        and not any(v is None for v in (*p, *o))
    ]
    if not valid:
        return out
    positions = np.array([p for p, _ in valid], dtype=float)
    orientations = np.array([o for _, o in valid], dtype=float)
    out["n_positions"] = len(np.unique(np.round(positions, 3), axis=0))
    rounded, counts = np.unique(np.round(orientations, 4), axis=0, return_counts=True)
    out["n_orientations"] = len(rounded)
    main = rounded[int(np.argmax(counts))]
    out["plane"] = plane_name(main)
    # Spacing of the main stack: positions with the dominant orientation, along its normal.
    normal = np.cross(main[:3], main[3:6])
    in_main = np.all(np.abs(np.round(orientations, 4) - main) < 1e-6, axis=1)
    along = np.unique(np.round(positions[in_main] @ normal, 3))
    if len(along) >= 2:
        gaps = np.diff(along)
        median = float(np.median(gaps))
        out["slice_spacing"] = median
        out["slice_spacing_min"] = float(gaps.min())
        out["slice_spacing_max"] = float(gaps.max())
        out["spacing_uniform"] = bool(
            np.all(np.abs(gaps - median) <= max(_SPACING_TOLERANCE * median, 0.01))
        )
    return out


def _first(frame: pd.DataFrame, key: str, columns: list[str]) -> pd.DataFrame:
    """The first non-null value of each column per group."""
    present = [c for c in columns if c in frame.columns and c != key]
    return frame.groupby(key, sort=False, dropna=False)[present].first()


def build_series(instances: pd.DataFrame) -> pd.DataFrame:
    """One row per SeriesInstanceUID with counts, attributes and geometry facts.

    Parameters
    ----------
    instances : pandas.DataFrame
        The ``instances`` table, with at least :data:`NEEDED_COLUMNS`.

    Returns
    -------
    pandas.DataFrame
        The ``series`` table.
    """
    key = "SeriesInstanceUID"
    grouped = instances.groupby(key, sort=False, dropna=False)
    counts = pd.DataFrame({
        "n_instances": grouped.size(),
        "n_frames": grouped["NumberOfFrames"].apply(lambda s: int(s.fillna(1).sum())),
        "total_bytes": grouped["file_size"].sum(),
        "n_sop_instance_uids": grouped["SOPInstanceUID"].nunique(),
    })
    attributes = _first(instances, key, _SERIES_ATTRIBUTES + ["Rows", "Columns", "PixelSpacing"])
    geometry = pd.DataFrame.from_dict(
        {uid: _geometry(group) for uid, group in grouped[_GEOMETRY]}, orient="index"
    )
    series = attributes.join(counts).join(geometry)
    series.index.name = key
    return series.reset_index().sort_values(
        ["PatientID", "StudyDate", "StudyInstanceUID", "SeriesNumber"], na_position="last"
    ).reset_index(drop=True)


def build_studies(instances: pd.DataFrame) -> pd.DataFrame:
    """One row per StudyInstanceUID with patient and study attributes and counts.

    Returns
    -------
    pandas.DataFrame
        The ``studies`` table: the attributes, ``n_series``, ``n_instances`` and
        ``ModalitiesInStudy`` (distinct modalities joined by ``\\``).
    """
    key = "StudyInstanceUID"
    grouped = instances.groupby(key, sort=False, dropna=False)
    counts = pd.DataFrame({
        "n_series": grouped["SeriesInstanceUID"].nunique(),
        "n_instances": grouped.size(),
        "ModalitiesInStudy": grouped["Modality"].apply(
            lambda s: "\\".join(sorted(s.dropna().unique())) or None
        ),
    })
    studies = _first(instances, key, _STUDY_ATTRIBUTES).join(counts)
    studies.index.name = key
    return studies.reset_index().sort_values(
        ["PatientID", "StudyDate", "StudyInstanceUID"], na_position="last"
    ).reset_index(drop=True)
