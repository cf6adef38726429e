"""Dose reports of a selection into the ``dose_events``, ``dose_studies`` and ``dose_errors`` tables.

The selection is an :class:`~workbench.index.Index` (its dose reports and Philips dose
captures are found with SQL), a slice of its ``instances`` table, or a list of paths. Several
reports of one study (Siemens "continued" reports, a report sent twice, reports per
acquisition) are merged: an event known by its Irradiation Event UID counts once, and the
study keeps the totals of its most complete report beside our own sums over the merged
events. Dose from image headers (CTDIvol per series, when no report exists) comes from the
index alone: :func:`header_dose`.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

import pandas as pd

from workbench.dicom.header import HeaderError
from workbench.dicom.tree import read_tree
from workbench.dose.rdsr import (
    DOSE_SR_CLASSES,
    REPORT_TAGS,
    DoseReportError,
    _as_tree,
    philips_capture_rows,
    report_rows,
)

#: The SQL that finds dose objects in an index: dose SRs and Philips dose captures.
DOSE_OBJECTS_SQL = (
    "SELECT path, member FROM instances WHERE SOPClassUID IN ({classes}) "
    "OR (ImageType LIKE '%DOSE_INFO%') ORDER BY path, member"
)


@dataclass
class DoseTables:
    """The dose tables of a selection, as pandas DataFrames."""

    events: pd.DataFrame
    studies: pd.DataFrame
    errors: pd.DataFrame


def _paths(selection: Any) -> list[tuple[str, str | None]]:
    from workbench.index import Index

    if isinstance(selection, Index):
        classes = ", ".join(f"'{uid}'" for uid in DOSE_SR_CLASSES)
        found = selection.sql(DOSE_OBJECTS_SQL.format(classes=classes))
        return [(p, m if isinstance(m, str) else None) for p, m in zip(found["path"], found["member"])]
    if hasattr(selection, "columns") and "path" in selection.columns:
        members = selection["member"] if "member" in selection.columns else [None] * len(selection)
        return [(p, m if isinstance(m, str) else None) for p, m in zip(selection["path"], members)]
    if isinstance(selection, (str, os.PathLike)):
        selection = [selection]
    return [(os.fspath(p), None) for p in selection]


def read_report(path: str, member: str | None = None) -> tuple[list[dict], dict | None, str | None]:
    """The rows of one file: (events, study, None), or ([], None, reason) when it is not usable."""
    import io

    import pydicom

    source = {"path": path, "member": member}
    try:
        if member:
            with zipfile.ZipFile(path) as archive:
                data = archive.read(member)
        else:
            with open(path, "rb") as fh:
                data = fh.read()
        try:
            tree, little = read_tree(data, REPORT_TAGS)
        except HeaderError:  # deflated or unusual: pydicom reads it, the same code parses it
            dataset = pydicom.dcmread(io.BytesIO(data), force=True)
            tree, little = _as_tree(dataset)
        kind = _text(tree, 0x00080016) or ""
        if "DOSE_INFO" in (_text(tree, 0x00080008) or "") and 0x0040030E in tree:
            events, study = philips_capture_rows(pydicom.dcmread(io.BytesIO(data), force=True), source)
        elif kind in DOSE_SR_CLASSES:
            events, study = report_rows(tree, source, little=little)
        else:
            return [], None, "not a dose report: neither a dose SR nor a dose information capture"
        study.update(source)
        study["content_datetime"] = (_text(tree, 0x00080023) or "") + (_text(tree, 0x00080033) or "")
        return events, study, None
    except DoseReportError as exc:
        return [], None, str(exc)
    except Exception as exc:  # noqa: BLE001 - one report's failure is recorded and the rest go on
        return [], None, f"cannot be read: {type(exc).__name__}: {exc}"


def _text(tree, tag: int) -> str | None:
    element = tree.get(tag)
    if element is None or element[0] == "SQ":
        return None
    return element[1].decode("latin-1").strip(" \x00") or None


def _read(task: tuple[str, str | None]) -> tuple[str, str | None, list[dict], dict | None, str | None]:
    events, study, error = read_report(*task)
    return task[0], task[1], events, study, error


def dose_tables(selection: Any, *, workers: int | None = None) -> DoseTables:
    """Read every dose report of a selection into merged tables.

    Parameters
    ----------
    selection : Index, pandas.DataFrame or list of paths
        Where the reports are.
    workers : int, optional
        Processes reading reports (default: the CPU count; one for a few files).

    Returns
    -------
    DoseTables
        ``events`` and ``studies`` (merged per study), and ``errors`` (path, member, reason)
        for files that are not dose reports or cannot be read.
    """
    tasks = _paths(selection)
    workers = max(1, min(workers or os.cpu_count() or 1, len(tasks) // 50 or 1))
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            results = list(pool.map(_read, tasks, chunksize=16))
    else:
        results = [_read(task) for task in tasks]
    reports, errors = [], []
    for path, member, events, study, error in results:
        if error:
            errors.append({"path": path, "member": member, "error": error})
        else:
            reports.append((events, study))
    events, studies = merge_reports(reports)
    return DoseTables(events, studies, pd.DataFrame(errors, columns=["path", "member", "error"]))


def merge_reports(reports: Sequence[tuple[list[dict], dict]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Merge the reports of each study: every event once, the most complete report's totals.

    Returns
    -------
    tuple[pandas.DataFrame, pandas.DataFrame]
        The events and the studies. ``n_reports`` counts the reports merged into a study.
    """
    by_study: dict[str, list[tuple[list[dict], dict]]] = {}
    for events, study in reports:
        by_study.setdefault(study.get("StudyInstanceUID") or study.get("SOPInstanceUID"), []).append(
            (events, study))
    all_events, all_studies = [], []
    for group in by_study.values():
        # Later and larger reports supersede earlier ones for the same event.
        group.sort(key=lambda r: (len(r[0]), r[1].get("content_datetime") or ""))
        merged: dict[str, dict] = {}
        unnamed = []
        for events, _ in group:
            for event in events:
                uid = event.get("IrradiationEventUID")
                if uid:
                    merged[uid] = event
                else:
                    unnamed.append(event)
        events = list(merged.values()) + (unnamed if not merged else [])
        events.sort(key=_event_order)
        study = dict(group[-1][1])
        _combine_stated_totals(study, group)
        study["n_reports"] = len(group)
        study["events_counted"] = len(events)
        if study.get("report_kind") == "CT":
            study["dlp_sum_mgycm"] = _sum(events, "dlp_mgycm")
        else:
            study["dap_sum_gym2"] = _sum(events, "dap_gym2")
            study["agd_sum_mgy"] = _sum(events, "agd_mgy")
        study.pop("content_datetime", None)
        all_events.extend(events)
        all_studies.append(study)
    return pd.DataFrame(all_events), pd.DataFrame(all_studies)


def _combine_stated_totals(study: dict, group: list[tuple[list[dict], dict]]) -> None:
    """The study's stated totals from reports that cover different events.

    Reports that repeat earlier events (a later, fuller report) replace them; reports of
    other events of the study (Siemens "continued" objects) each state the totals of their
    own part, which add up. Reports are taken largest first, skipping those whose events an
    earlier one already covers.
    """
    covered: set[str] = set()
    chosen = []
    for events, stated in sorted(group, key=lambda r: -len(r[0])):
        uids = {e["IrradiationEventUID"] for e in events if e.get("IrradiationEventUID")}
        if chosen and (not uids or uids & covered):
            continue
        covered |= uids
        chosen.append(stated)
    if len(chosen) < 2:
        return
    for column in study:
        if any(word in column for word in ("_total", "accumulated", "events_reported")):
            values = [s.get(column) for s in chosen if isinstance(s.get(column), (int, float))]
            if values:
                study[column] = float(sum(values))


def _event_order(event: dict) -> tuple[str, str]:
    return str(event.get("event_datetime") or ""), str(event.get("IrradiationEventUID") or "")


def _sum(rows: Iterable[dict], column: str) -> float | None:
    values = [r[column] for r in rows if r.get(column) is not None and r.get(column) == r.get(column)]
    return float(sum(values)) if values else None


def header_dose(index) -> pd.DataFrame:
    """CT dose from image headers, per series: what the index knows when no report exists.

    Returns
    -------
    pandas.DataFrame
        One row per CT series with CTDIvol in its headers: mean and maximum CTDIvol (mGy),
        mean kVp, tube current and exposure, slice count and scan length along z (mm).
    """
    return index.sql(
        "SELECT StudyInstanceUID, SeriesInstanceUID, any_value(StationName) AS StationName, "
        "any_value(ManufacturerModelName) AS ManufacturerModelName, any_value(SeriesDescription) AS "
        "SeriesDescription, any_value(StudyDate) AS StudyDate, count(*) AS n_images, "
        "avg(CTDIvol) AS ctdivol_mean_mgy, max(CTDIvol) AS ctdivol_max_mgy, avg(KVP) AS kvp_mean, "
        "avg(XRayTubeCurrent) AS tube_current_mean_ma, avg(Exposure) AS exposure_mean_mas, "
        "max(ImagePositionPatient[3]) - min(ImagePositionPatient[3]) AS z_extent_mm "
        "FROM instances WHERE Modality = 'CT' AND CTDIvol IS NOT NULL "
        "GROUP BY StudyInstanceUID, SeriesInstanceUID ORDER BY StudyInstanceUID, SeriesInstanceUID"
    )
