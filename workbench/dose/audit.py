"""A dose audit of an index: the tables, SSDE, the DRL comparison and the charts, written to a folder.

This is what ``workbench dose DIR --out OUTDIR`` runs, and the Python twin for notebooks.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from workbench.dose.tables import DoseTables, dose_tables, header_dose
from workbench.index.store import write_atomic

#: Relative difference between an event's CTDIvol and a series' header CTDIvol that still links them.
LINK_TOLERANCE = 0.05


@dataclass
class Audit:
    """What a dose audit produced."""

    tables: DoseTables
    header: pd.DataFrame
    out: Path
    files: list[Path] = field(default_factory=list)
    drl_summary: pd.DataFrame | None = None

    @property
    def failed(self) -> bool:
        """Whether some dose object could not be read (they are in ``tables.errors``)."""
        return not self.tables.errors.empty

    def summary(self) -> str:
        """A few lines for the command line."""
        events, studies = self.tables.events, self.tables.studies
        lines = [f"dose audit in {self.out}: {len(studies)} studies, {len(events)} irradiation events, "
                 f"{len(self.tables.errors)} files not read"]
        if not studies.empty:
            for kind, group in studies.groupby("report_kind"):
                models = group["ManufacturerModelName"].nunique()
                lines.append(f"  {kind}: {len(group)} studies from {models} device model(s)")
        if "ssde_mgy" in events and events["ssde_mgy"].notna().any():
            lines.append(f"  SSDE for {events['ssde_mgy'].notna().sum()} CT events")
        if self.drl_summary is not None and not self.drl_summary.empty:
            above = int(self.drl_summary.get("median_above_drl", pd.Series(dtype=bool)).fillna(False).sum())
            lines.append(f"  DRL: {len(self.drl_summary)} comparisons, {above} with the median above the DRL")
        lines += [f"  wrote {path.name}" for path in self.files]
        return "\n".join(lines)


def _write_table(frame: pd.DataFrame, path: Path) -> Path:
    table = pa.Table.from_pandas(frame, preserve_index=False)
    write_atomic(path, lambda tmp: pq.write_table(table, tmp))
    return path


def link_series(events: pd.DataFrame, header: pd.DataFrame, series: pd.DataFrame) -> pd.Series:
    """The axial CT series each CT event's images are, by study and CTDIvol (header vs report).

    An event links to the axial series of its study whose header CTDIvol is within
    :data:`LINK_TOLERANCE` of the event's; localizers (Constant Angle) link to nothing.
    """
    axial = series[(series["Modality"] == "CT") & (series["plane"] == "AXIAL")]
    axial = axial.merge(header[["SeriesInstanceUID", "ctdivol_mean_mgy"]], on="SeriesInstanceUID", how="left")
    links = []
    for event in events.itertuples():
        match = None
        if getattr(event, "report_kind", None) == "CT" and "Constant Angle" not in str(
                getattr(event, "acquisition_type", "") or ""):
            candidates = axial[axial["StudyInstanceUID"] == event.StudyInstanceUID]
            ctdivol = getattr(event, "ctdivol_mgy", None)
            if ctdivol and not candidates.empty:
                close = candidates[(candidates["ctdivol_mean_mgy"] - ctdivol).abs()
                                   <= LINK_TOLERANCE * ctdivol]
                if not close.empty:
                    match = close.sort_values("n_instances").iloc[-1]["SeriesInstanceUID"]
        links.append(match)
    return pd.Series(links, index=events.index, dtype=object)


def run_audit(
    index,
    out: str | os.PathLike,
    *,
    ssde: bool = False,
    drl_path: str | os.PathLike | None = None,
    quiet: bool = False,
) -> Audit:
    """Audit the dose of everything in ``index`` into ``out``.

    Writes ``dose_events.parquet``, ``dose_studies.parquet``, ``dose_errors.parquet`` and
    ``header_dose.parquet`` (CTDIvol from image headers, per series); with ``ssde`` the CT
    events linked to their axial series get Dw and SSDE (AAPM 204/220); with ``drl_path``
    the DRL comparison and its summary; charts as PNG where there is something to draw.

    Raises
    ------
    ValueError
        When the DRL table is not valid.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tables = dose_tables(index)
    header = header_dose(index)
    audit = Audit(tables, header, out)
    if ssde and not tables.events.empty:
        _add_ssde(index, audit)
    if drl_path is not None:
        _add_drl(audit, drl_path)
    audit.files += [
        _write_table(tables.events, out / "dose_events.parquet"),
        _write_table(tables.studies, out / "dose_studies.parquet"),
        _write_table(tables.errors, out / "dose_errors.parquet"),
        _write_table(header, out / "header_dose.parquet"),
    ]
    _add_charts(audit)
    return audit


def _add_ssde(index, audit: Audit) -> None:
    """Dw from each linked series (once per series) and SSDE = f(mean Dw) x CTDIvol per event."""
    import numpy as np

    from workbench.dose.ssde import conversion_factor, water_equivalent_diameters
    from workbench.volume import load_series

    events = audit.tables.events
    events["ssde_series_uid"] = link_series(events, audit.header, index.series)
    diameters = {uid: float(np.nanmean(water_equivalent_diameters(load_series(index, uid))))
                 for uid in events["ssde_series_uid"].dropna().unique()}
    localizers = _localizer_diameters(index, events)
    dw, factors, values, methods = [], [], [], []
    for event in events.itertuples():
        uid, ctdivol = event.ssde_series_uid, getattr(event, "ctdivol_mgy", None)
        diameter, method = None, None
        if isinstance(uid, str):
            diameter, method = diameters[uid], "water-equivalent diameter (images)"
        elif getattr(event, "report_kind", None) == "CT" and "Constant Angle" not in str(
                getattr(event, "acquisition_type", "") or "") and event.StudyInstanceUID in localizers:
            diameter, method = localizers[event.StudyInstanceUID], "effective diameter (localizer width)"
        if diameter is None or ctdivol is None or ctdivol != ctdivol:
            dw.append(None), factors.append(None), values.append(None), methods.append(None)
            continue
        phantom = "16" if "head" in str(getattr(event, "ctdiw_phantom", "") or "").lower() else "32"
        factor = conversion_factor(diameter, phantom, out_of_range="nan")
        dw.append(diameter), factors.append(factor), values.append(factor * ctdivol), methods.append(method)
    events["dw_mean_mm"], events["ssde_factor"], events["ssde_mgy"] = dw, factors, values
    events["ssde_method"] = methods


def _localizer_diameters(index, events: pd.DataFrame) -> dict[str, float]:
    """Effective diameter from a CT localizer, per study whose CT events have no axial images linked."""
    from workbench.dose.ssde import localizer_effective_diameter
    from workbench.volume import load_series

    unlinked = set(events.loc[events["ssde_series_uid"].isna() & (events.get("report_kind") == "CT"),
                              "StudyInstanceUID"].dropna())
    if not unlinked:
        return {}
    found = index.sql(
        "SELECT StudyInstanceUID, any_value(SeriesInstanceUID) AS uid FROM instances WHERE Modality = 'CT' "
        "AND ImageType LIKE '%LOCALIZER%' GROUP BY 1"
    )
    diameters = {}
    for study, uid in zip(found["StudyInstanceUID"], found["uid"]):
        if study in unlinked:
            try:
                diameters[study] = localizer_effective_diameter(load_series(index, uid))
            except ValueError:
                continue  # a localizer whose orientation gives no width: no SSDE from it
    return diameters


def _add_drl(audit: Audit, drl_path) -> None:
    from workbench.dose.drl import compare_to_drl, read_drl_table

    drl = read_drl_table(drl_path)
    flagged_events, flagged_studies, summary = compare_to_drl(audit.tables.events, audit.tables.studies, drl)
    audit.tables.events, audit.tables.studies = flagged_events, flagged_studies
    audit.drl_summary = summary
    audit.files.append(_write_table(summary, audit.out / "drl_summary.parquet"))


def _add_charts(audit: Audit) -> None:
    from workbench.dose.charts import distribution_chart, save_chart, ssde_chart

    events = audit.tables.events
    ct = events[events.get("report_kind", pd.Series(dtype=str)) == "CT"] if not events.empty else events
    if not ct.empty and ct["ctdivol_mgy"].notna().any():
        figure = distribution_chart(ct, "ctdivol_mgy", by="StationName")
        audit.files.append(save_chart(figure, audit.out / "ctdivol_by_station.png"))
    if "ssde_mgy" in events and events["ssde_mgy"].notna().any():
        audit.files.append(save_chart(ssde_chart(events), audit.out / "ssde_vs_ctdivol.png"))
