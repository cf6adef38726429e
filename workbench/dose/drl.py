"""Diagnostic reference levels (DRLs): a DRL table, and the dose tables compared with it.

A DRL table is a CSV file, one DRL a row, with these columns (others are kept, unused):

============ ===================================================================================
column       meaning
============ ===================================================================================
modality     CT, DX, CR, RF, XA, MG, IO or PX
match_on     the column of ``dose_events``/``dose_studies`` the pattern is searched in, e.g.
             ``acquisition_protocol``, ``target_region``, ``study_description``, ``procedure``
pattern      a case-insensitive regular expression searched anywhere in that column's text (plain
             words are a regular expression that matches themselves; anchor with ``^``/``$``)
level        ``event`` (compared with each irradiation event) or ``study`` (with each study)
quantity     the column compared, e.g. ``ctdivol_mgy``, ``dlp_mgycm`` (event level),
             ``dlp_total_mgycm``, ``dap_total_gym2`` (study level); see :data:`QUANTITIES`
value        the DRL, a positive number in ``unit``
unit         the quantity's unit as the tables hold it: mGy, mGy.cm, Gy.m2 or s (a DRL published
             in another unit, e.g. Gy.cm2, is converted by whoever writes the table)
source       where the value comes from: document, year, table. Required, never empty.
============ ===================================================================================

How a table row finds its DRL rows (:func:`compare_to_drl`):

- **Modality.** A ``modality`` column in the dose table is used where it has a value. Elsewhere
  the modality is inferred from the report: ``report_kind == "CT"`` is CT; a projection report
  is MG when any of its study's events (or the study row) has an average glandular dose, RF when
  any event is fluoroscopy (``irradiation_event_type`` starting "Fluoro") or the study states a
  fluoroscopy time or fluoroscopy DAP above zero, and DX otherwise. RF and XA are one group
  (fluoroscopy and interventional), as are DX and CR (radiography): a DRL row for XA matches an
  inferred RF study.
- **Pattern.** The DRL row's ``pattern`` is searched in the row's ``match_on`` column. A study
  row whose own ``match_on`` value is missing (or whose table has no such column) matches when
  any of its events matches (``matched_via == "events"``), so a DLP-per-examination DRL can be
  matched on the events' ``acquisition_protocol`` when the studies carry no description. A row
  matching several DRL rows is compared with each.
- **Localizers.** CT events with ``acquisition_type`` "Constant Angle Acquisition" (scout views)
  are not compared with event-level DRLs unless ``exclude_localizers=False``: a CTDIvol DRL is
  set per diagnostic sequence, and localizers would pull a room's median down.

What comes out: :func:`compare_to_drl` returns the events and studies tables with every row
kept (one row per event, one per study) and flag columns added, plus the per-room median summary;
:func:`drl_comparisons` lists every single comparison (one row per row and matching DRL).

The DRL values of the example table shipped with the package
(:func:`example_drl_path`, ``workbench/dose/data/drl_example.csv``) each cite their published
source; its patterns are ours (illustrative) and must be adapted to the local protocol names.
"""

from __future__ import annotations

import math
import os
import re
import warnings
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

#: Columns every DRL table has, in this order.
DRL_COLUMNS = ("modality", "match_on", "pattern", "level", "quantity", "value", "unit", "source")

#: Quantities a DRL may be set on, per level, with the unit of their column.
QUANTITIES: dict[str, dict[str, str]] = {
    "event": {
        "ctdivol_mgy": "mGy",
        "dlp_mgycm": "mGy.cm",
        "ssde_mgy": "mGy",
        "dap_gym2": "Gy.m2",
        "dose_rp_mgy": "mGy",
        "entrance_exposure_mgy": "mGy",
        "agd_mgy": "mGy",
        "exposure_time_s": "s",
        "irradiation_duration_s": "s",
    },
    "study": {
        "dlp_total_mgycm": "mGy.cm",
        "dlp_sum_mgycm": "mGy.cm",
        "dap_sum_gym2": "Gy.m2",
        "agd_sum_mgy": "mGy",
        "fluoro_time_sum_s": "s",
        "agd_accumulated_mgy_left": "mGy",
        "agd_accumulated_mgy_right": "mGy",
        "agd_accumulated_mgy_both": "mGy",
        # Accumulated projection X-ray totals (TID 10002), single plane or per plane.
        **{
            f"{name}{plane}": unit
            for name, unit in (
                ("dap_total_gym2", "Gy.m2"),
                ("fluoro_dap_total_gym2", "Gy.m2"),
                ("acquisition_dap_total_gym2", "Gy.m2"),
                ("dose_rp_total_mgy", "mGy"),
                ("fluoro_dose_rp_total_mgy", "mGy"),
                ("acquisition_dose_rp_total_mgy", "mGy"),
                ("fluoro_time_total_s", "s"),
                ("acquisition_time_total_s", "s"),
            )
            for plane in ("", "_plane_a", "_plane_b")
        },
    },
}

#: Modalities a DRL row may name, and the group each is matched as.
MODALITY_GROUPS = {"CT": "CT", "DX": "DX", "CR": "DX", "RF": "RF", "XA": "RF", "MG": "MG", "IO": "IO",
                   "PX": "PX"}

LEVELS = ("event", "study")
_LOCALIZER = re.compile(r"constant\s+angle", re.IGNORECASE)


def example_drl_path() -> Path:
    """The example DRL table shipped with the package (every value cites its source)."""
    return Path(__file__).with_name("data") / "drl_example.csv"


def unit_of(quantity: str) -> str | None:
    """The unit of a DRL quantity's column (mGy, mGy.cm, Gy.m2, s); None when unknown."""
    for level in LEVELS:
        if quantity in QUANTITIES[level]:
            return QUANTITIES[level][quantity]
    return None


def _normalise_unit(unit: str) -> str:
    """'mGy cm', 'mGy·cm' and 'mGy.cm' are one spelling; 'Gy·m²' is 'Gy.m2'. Case is kept (m != M)."""
    text = re.sub(r"[\s·*×]+", ".", unit.strip()).replace("²", "2")
    return text.strip(".")


def _text(value: object) -> str:
    """A cell as stripped text; missing values are the empty string."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return ""
    return str(value).strip()


def validate_drl_table(table: pd.DataFrame, name: str = "DRL table") -> pd.DataFrame:
    """Check a DRL table and return it normalised.

    Parameters
    ----------
    table : pandas.DataFrame
        The DRL rows, with the columns of :data:`DRL_COLUMNS` (others are kept).
    name : str
        What to call the table in error messages (e.g. its path).

    Returns
    -------
    pandas.DataFrame
        A copy with a fresh index, ``modality`` upper case, ``level`` lower case, ``value`` float,
        ``unit`` in its canonical spelling, text stripped.

    Raises
    ------
    ValueError
        When a column is missing, the table is empty, or a row is wrong: an unknown modality,
        level or quantity, a quantity that is not of the row's level, a unit that is not the
        quantity's unit, a value that is not a positive number, a pattern that is not a valid
        regular expression, an empty ``match_on`` or ``source``. The message names the row
        (1-based data row and CSV line) and the offending value.
    """
    missing = [c for c in DRL_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"{name}: missing column(s) {', '.join(missing)}; "
                         f"a DRL table has {', '.join(DRL_COLUMNS)}")
    if table.empty:
        raise ValueError(f"{name}: no DRL rows")
    out = table.reset_index(drop=True).copy()
    rows: list[dict[str, object]] = []
    for i, raw in enumerate(out.to_dict("records")):
        where = f"{name} row {i + 1} (line {i + 2})"
        row = dict(raw)
        modality = _text(raw["modality"]).upper()
        if modality not in MODALITY_GROUPS:
            raise ValueError(f"{where}: unknown modality {raw['modality']!r}; "
                             f"expected one of {', '.join(MODALITY_GROUPS)}")
        match_on = _text(raw["match_on"])
        if not match_on:
            raise ValueError(f"{where}: empty match_on; name the column the pattern is searched in")
        pattern = _text(raw["pattern"])
        if not pattern:
            raise ValueError(f"{where}: empty pattern")
        try:
            re.compile(pattern, re.IGNORECASE)
        except re.error as exc:
            raise ValueError(f"{where}: pattern {pattern!r} is not a valid regular expression "
                             f"({exc})") from None
        level = _text(raw["level"]).lower()
        if level not in LEVELS:
            raise ValueError(f"{where}: unknown level {raw['level']!r}; expected 'event' or 'study'")
        quantity = _text(raw["quantity"])
        if quantity not in QUANTITIES[level]:
            other = next((lv for lv in LEVELS if quantity in QUANTITIES[lv]), None)
            if other is not None:
                raise ValueError(f"{where}: quantity {quantity!r} is a {other}-level quantity, "
                                 f"not a {level}-level one")
            raise ValueError(f"{where}: unknown quantity {raw['quantity']!r}; {level}-level quantities are "
                             f"{', '.join(QUANTITIES[level])}")
        expected = QUANTITIES[level][quantity]
        unit = _normalise_unit(_text(raw["unit"]))
        if unit != expected:
            raise ValueError(f"{where}: unit {raw['unit']!r} does not match quantity {quantity!r}, "
                             f"whose unit is {expected!r} (convert the value)")
        try:
            value = float(_text(raw["value"]))
        except ValueError:
            raise ValueError(f"{where}: value {raw['value']!r} is not a number") from None
        if not math.isfinite(value) or value <= 0:
            raise ValueError(f"{where}: value {raw['value']!r} is not a positive number")
        source = _text(raw["source"])
        if not source:
            raise ValueError(f"{where}: empty source; every DRL value must cite its document, year and table")
        row.update(modality=modality, match_on=match_on, pattern=pattern, level=level, quantity=quantity,
                   value=value, unit=unit, source=source)
        rows.append(row)
    result = pd.DataFrame(rows, columns=list(out.columns))
    result["value"] = result["value"].astype(float)
    return result


def read_drl_table(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read and validate a DRL table (CSV).

    Parameters
    ----------
    path : str or os.PathLike
        The CSV file: a header row with at least the columns of :data:`DRL_COLUMNS`.

    Returns
    -------
    pandas.DataFrame
        One row per DRL, validated and normalised (see :func:`validate_drl_table`).

    Raises
    ------
    ValueError
        When the file is not a readable CSV or a row is wrong (the message names the row).
    FileNotFoundError
        When there is no such file.
    """
    path = Path(path)
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ValueError(f"DRL table {path}: not a readable CSV file ({exc})") from None
    table.columns = [str(c).strip() for c in table.columns]
    return validate_drl_table(table, name=f"DRL table {path}")


# --- modality -------------------------------------------------------------------------------------


def _column(table: pd.DataFrame, name: str) -> pd.Series:
    """A column, or an all-missing one when the table lacks it."""
    if name in table.columns:
        return table[name]
    return pd.Series([None] * len(table), index=table.index, dtype=object)


def _positive(table: pd.DataFrame, columns: Iterable[str]) -> pd.Series:
    """True where any of ``columns`` (those present) holds a number above zero."""
    result = pd.Series(False, index=table.index)
    for name in columns:
        if name in table.columns:
            result |= pd.to_numeric(table[name], errors="coerce").fillna(0) > 0
    return result


def infer_modality(table: pd.DataFrame, events: pd.DataFrame | None = None) -> pd.Series:
    """The modality of each row of ``dose_events`` or ``dose_studies``.

    Parameters
    ----------
    table : pandas.DataFrame
        ``dose_events`` or ``dose_studies``.
    events : pandas.DataFrame, optional
        The events of the same studies (for a studies table; an events table is its own).

    Returns
    -------
    pandas.Series
        CT, MG, RF or DX per row (None when ``report_kind`` is neither CT nor projection); a
        ``modality`` column of ``table`` wins where it has a value. Every event of a study has
        the study's modality: a stationary acquisition in a fluoroscopy study is RF.
    """
    if events is None:
        events = table
    kind = _column(table, "report_kind").astype(object)
    agd_columns = ["agd_mgy"] + [c for c in table.columns if c.startswith("agd_")]
    mammo = _positive(table, agd_columns)
    fluoro = _positive(table, [c for c in table.columns if c.startswith("fluoro_")])
    fluoro |= _column(table, "irradiation_event_type").astype("string").str.lower().str.startswith(
        "fluoro").fillna(False).astype(bool)
    if len(events) and "StudyInstanceUID" in events.columns and "StudyInstanceUID" in table.columns:
        ev_agd = _positive(events, ["agd_mgy"])
        ev_fluoro = _column(events, "irradiation_event_type").astype("string").str.lower().str.startswith(
            "fluoro").fillna(False).astype(bool)
        uids = events["StudyInstanceUID"]
        mammo |= table["StudyInstanceUID"].isin(set(uids[ev_agd].dropna()))
        fluoro |= table["StudyInstanceUID"].isin(set(uids[ev_fluoro].dropna()))
    inferred = pd.Series(
        np.select(
            [kind == "CT", (kind == "projection") & mammo, (kind == "projection") & fluoro,
             kind == "projection"],
            ["CT", "MG", "RF", "DX"],
            default="",
        ),
        index=table.index,
        dtype=object,
    ).replace("", None)
    if "modality" in table.columns:
        given = table["modality"].map(lambda v: _text(v).upper() or None)
        inferred = given.where(given.notna(), inferred)
    return inferred


# --- matching -------------------------------------------------------------------------------------


def _searcher(pattern: str):
    rx = re.compile(pattern, re.IGNORECASE)

    def search(value: object) -> bool:
        text = _text(value)
        return bool(text) and rx.search(text) is not None

    return search


def drl_matches(
    table: pd.DataFrame,
    drl: pd.DataFrame,
    level: str,
    events: pd.DataFrame | None = None,
    *,
    exclude_localizers: bool = True,
) -> pd.DataFrame:
    """Which rows of a dose table match which DRL rows.

    Parameters
    ----------
    table : pandas.DataFrame
        ``dose_events`` (``level="event"``) or ``dose_studies`` (``level="study"``).
    drl : pandas.DataFrame
        A validated DRL table (:func:`read_drl_table`); only its rows of ``level`` are used.
    level : {"event", "study"}
        The level of ``table``.
    events : pandas.DataFrame, optional
        For a studies table: the events, for the modality and for matching a study whose own
        ``match_on`` value is missing through its events.
    exclude_localizers : bool
        Leave CT localizers (Constant Angle Acquisition) out of event-level matching.

    Returns
    -------
    pandas.DataFrame
        Columns ``row`` (position in ``table``), ``drl_row`` (index label in ``drl``) and
        ``matched_via`` ("row" or "events"), one row per match.
    """
    if level not in LEVELS:
        raise ValueError(f"level must be 'event' or 'study', not {level!r}")
    empty = pd.DataFrame({"row": pd.Series(dtype="int64"), "drl_row": pd.Series(dtype="int64"),
                          "matched_via": pd.Series(dtype=object)})
    rows = drl[drl["level"] == level]
    if table is None or table.empty or rows.empty:
        return empty
    if events is None and level == "event":
        events = table
    modality = infer_modality(table, events).map(lambda m: MODALITY_GROUPS.get(m) if m else None)
    eligible = pd.Series(True, index=table.index)
    if level == "event" and exclude_localizers:
        acq = _column(table, "acquisition_type")
        eligible &= ~acq.map(lambda v: bool(_LOCALIZER.search(_text(v))))
    parts = []
    for drl_row, row in rows.iterrows():
        search = _searcher(row["pattern"])
        column = row["match_on"]
        in_table = column in table.columns
        in_events = level == "study" and events is not None and column in events.columns
        if not in_table and not in_events:
            warnings.warn(f"DRL row {drl_row + 1} ({row['modality']} {row['pattern']!r}): the {level} table "
                          f"has no column {column!r}; the row matches nothing", UserWarning, stacklevel=3)
            continue
        base = eligible & (modality == MODALITY_GROUPS[row["modality"]])
        own = _column(table, column)
        own_present = own.map(lambda v: bool(_text(v)))
        direct = base & own_present & own.map(search)
        via_events = pd.Series(False, index=table.index)
        if in_events and "StudyInstanceUID" in table.columns and "StudyInstanceUID" in events.columns:
            hits = events["StudyInstanceUID"][events[column].map(search)]
            via_events = base & ~own_present & table["StudyInstanceUID"].isin(set(hits.dropna()))
        for mask, how in ((direct, "row"), (via_events, "events")):
            if mask.any():
                parts.append(pd.DataFrame({"row": np.flatnonzero(mask.to_numpy()), "drl_row": drl_row,
                                           "matched_via": how}))
    if not parts:
        return empty
    return pd.concat(parts, ignore_index=True)


#: Columns :func:`compare_to_drl` adds to each event and study row.
FLAG_COLUMNS = ("drl_matches", "drl_row", "drl_quantity", "drl_value", "drl_unit", "drl_source",
                "drl_pattern", "drl_value_compared", "drl_ratio", "above_drl")


def _comparisons(table: pd.DataFrame, drl: pd.DataFrame, matches: pd.DataFrame, level: str) -> pd.DataFrame:
    """One row per match: the table row's columns, its DRL, the value compared, ratio, above_drl."""
    columns = ["row", "level", "drl_row", "drl_modality", "drl_match_on", "drl_pattern", "drl_quantity",
               "drl_value", "drl_unit", "drl_source", "matched_via", "value", "ratio", "above_drl"]
    if matches.empty:
        return pd.DataFrame(columns=list(table.columns) + columns)
    found = table.iloc[matches["row"].to_numpy()].reset_index(drop=True)
    found = found.drop(columns=[c for c in columns + list(FLAG_COLUMNS) if c in found.columns])
    d = drl.loc[matches["drl_row"]].reset_index(drop=True)
    found["row"] = matches["row"].to_numpy()
    found["level"] = level
    found["drl_row"] = matches["drl_row"].to_numpy()
    for name in ("modality", "match_on", "pattern", "quantity", "value", "unit", "source"):
        found[f"drl_{name}"] = d[name].to_numpy()
    found["matched_via"] = matches["matched_via"].to_numpy()
    values = np.full(len(found), np.nan)
    for quantity in d["quantity"].unique():
        pick = (d["quantity"] == quantity).to_numpy()
        if quantity in table.columns:
            column = pd.to_numeric(table[quantity], errors="coerce").to_numpy(dtype=float)
            values[pick] = column[matches["row"].to_numpy()[pick]]
    found["value"] = values
    found["drl_value"] = found["drl_value"].astype(float)
    found["ratio"] = found["value"] / found["drl_value"]
    found["above_drl"] = (found["value"] > found["drl_value"]).astype(bool)
    return found


def drl_comparisons(
    events: pd.DataFrame | None,
    studies: pd.DataFrame | None,
    drl: pd.DataFrame | str | os.PathLike[str],
    *,
    exclude_localizers: bool = True,
) -> pd.DataFrame:
    """Every comparison of an event or study with a DRL row it matches, one row each.

    Parameters
    ----------
    events, studies : pandas.DataFrame or None
        ``dose_events`` and ``dose_studies``.
    drl : pandas.DataFrame or path
        A DRL table (validated here) or the path of its CSV.
    exclude_localizers : bool
        Leave CT localizers out of event-level comparisons (default).

    Returns
    -------
    pandas.DataFrame
        The compared row's columns, then ``row`` (its position in its table), ``level``
        ("event"/"study"), ``drl_row`` (index in the validated DRL table), ``drl_modality``,
        ``drl_match_on``, ``drl_pattern``, ``drl_quantity``, ``drl_value``, ``drl_unit``,
        ``drl_source``, ``matched_via`` ("row" or "events"), ``value`` (the row's value of the
        DRL quantity; NaN when it has none), ``ratio`` (value / DRL) and ``above_drl`` (value
        strictly greater than the DRL; False when the value is missing). A row matching several
        DRL rows appears once per DRL row; a row matching none does not appear.
    """
    drl = validate_drl_table(drl) if isinstance(drl, pd.DataFrame) else read_drl_table(drl)
    events = events.reset_index(drop=True) if events is not None else pd.DataFrame()
    studies = studies.reset_index(drop=True) if studies is not None else pd.DataFrame()
    parts = [
        _comparisons(events, drl, drl_matches(events, drl, "event", events,
                                              exclude_localizers=exclude_localizers), "event"),
        _comparisons(studies, drl, drl_matches(studies, drl, "study", events,
                                               exclude_localizers=exclude_localizers), "study"),
    ]
    parts = [p for p in parts if len(p)] or parts[:1]
    return pd.concat(parts, ignore_index=True)


def _flag(table: pd.DataFrame, comparisons: pd.DataFrame) -> pd.DataFrame:
    """``table`` (every row, same order) with the :data:`FLAG_COLUMNS` of its worst comparison."""
    flagged = table.drop(columns=[c for c in FLAG_COLUMNS if c in table.columns])
    n = len(flagged)
    counts = np.zeros(n, dtype="int64")
    above = np.zeros(n, dtype=bool)
    if len(comparisons):
        rows = comparisons["row"].to_numpy(dtype="int64")
        np.add.at(counts, rows, 1)
        np.logical_or.at(above, rows, comparisons["above_drl"].to_numpy(dtype=bool))
        # The comparison shown is the one with the highest ratio (a missing value ranks last).
        worst = (comparisons.assign(_rank=comparisons["ratio"].fillna(-np.inf))
                 .sort_values(["row", "_rank"], ascending=[True, False], kind="stable")
                 .drop_duplicates("row"))
        pick = worst["row"].to_numpy(dtype="int64")
    else:
        worst, pick = comparisons, np.array([], dtype="int64")

    def spread(column: str, dtype: str, fill: object) -> pd.Series:
        out = pd.Series([fill] * n, dtype=dtype, index=flagged.index)
        if len(pick):
            out.iloc[pick] = worst[column].to_numpy()
        return out

    flagged["drl_matches"] = counts
    flagged["drl_row"] = spread("drl_row", "Int64", pd.NA)
    flagged["drl_quantity"] = spread("drl_quantity", "object", None)
    flagged["drl_value"] = spread("drl_value", "float64", np.nan)
    flagged["drl_unit"] = spread("drl_unit", "object", None)
    flagged["drl_source"] = spread("drl_source", "object", None)
    flagged["drl_pattern"] = spread("drl_pattern", "object", None)
    flagged["drl_value_compared"] = spread("value", "float64", np.nan)
    flagged["drl_ratio"] = spread("ratio", "float64", np.nan)
    flagged["above_drl"] = above
    return flagged


def compare_to_drl(
    events: pd.DataFrame | None,
    studies: pd.DataFrame | None,
    drl: pd.DataFrame | str | os.PathLike[str],
    *,
    by: str = "StationName",
    exclude_localizers: bool = True,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Compare every event and study with its diagnostic reference level(s).

    Each event is compared with the event-level DRL rows it matches, each study with the
    study-level ones (see the module docstring for modality, pattern and localizer rules). The
    summary follows ICRP Publication 135, *Diagnostic Reference Levels in Medical Imaging*
    (Ann. ICRP 46(1), 2017): a national DRL is set at the third quartile (75th percentile) of
    the distribution of the **median** values of the DRL quantity observed at each healthcare
    facility, so a room is compared with a DRL through the median of its own distribution, not
    through single patients. A single value above the DRL is not in itself a failing; a median
    above it calls for a review of the protocol.

    Parameters
    ----------
    events : pandas.DataFrame or None
        ``dose_events``.
    studies : pandas.DataFrame or None
        ``dose_studies``.
    drl : pandas.DataFrame or path
        A DRL table (validated here) or the path of its CSV.
    by : str
        The column the summary groups by besides the DRL row: ``StationName`` (a room) or
        ``ManufacturerModelName``, or any other column of the tables.
    exclude_localizers : bool
        Leave CT localizers out of event-level comparisons (default).

    Returns
    -------
    flagged_events, flagged_studies : pandas.DataFrame
        The tables, every row kept in order (index reset), with :data:`FLAG_COLUMNS` added:
        ``drl_matches`` (how many DRL rows the row matches), ``above_drl`` (its value is strictly
        above at least one of them), and for the comparison with the highest ratio: ``drl_row``
        (index in the validated DRL table; NA when none matches), ``drl_quantity``,
        ``drl_value``, ``drl_unit``, ``drl_source``, ``drl_pattern``, ``drl_value_compared``
        and ``drl_ratio`` (value / DRL). Every comparison is in :func:`drl_comparisons`.
    summary : pandas.DataFrame
        One row per DRL row and ``by`` value that has at least one value: the DRL's columns
        (``drl_row``, ``modality``, ``level``, ``match_on``, ``pattern``, ``quantity``, ``unit``,
        ``drl_value``, ``source``), ``by``, ``n`` (values present), ``median``, ``mean``,
        ``n_above_drl``, ``median_ratio`` (median / DRL) and ``median_above_drl``.

    Raises
    ------
    ValueError
        When the DRL table is invalid, or ``by`` is a column of neither table.
    """
    drl = validate_drl_table(drl) if isinstance(drl, pd.DataFrame) else read_drl_table(drl)
    events = events.reset_index(drop=True) if events is not None else pd.DataFrame()
    studies = studies.reset_index(drop=True) if studies is not None else pd.DataFrame()
    if (len(events) or len(studies)) and by not in events.columns and by not in studies.columns:
        raise ValueError(f"by={by!r} is a column of neither the events nor the studies table")
    comparisons = drl_comparisons(events, studies, drl, exclude_localizers=exclude_localizers)
    level = comparisons["level"] if "level" in comparisons.columns else pd.Series(dtype=object)
    flagged_events = _flag(events, comparisons[level == "event"])
    flagged_studies = _flag(studies, comparisons[level == "study"])
    return flagged_events, flagged_studies, summarise(comparisons, drl, by=by)


def summarise(comparisons: pd.DataFrame, drl: pd.DataFrame, by: str = "StationName") -> pd.DataFrame:
    """Median per DRL row and ``by`` group of the compared values, against the DRL.

    Parameters
    ----------
    comparisons : pandas.DataFrame
        From :func:`drl_comparisons`.
    drl : pandas.DataFrame
        The validated DRL table the comparisons were made with.
    by : str
        The grouping column (a missing value is its own group).

    Returns
    -------
    pandas.DataFrame
        See :func:`compare_to_drl`.
    """
    columns = ["drl_row", "modality", "level", "match_on", "pattern", "quantity", "unit", "drl_value",
               "source", by, "n", "median", "mean", "n_above_drl", "median_ratio", "median_above_drl"]
    if comparisons.empty or "value" not in comparisons.columns:
        return pd.DataFrame(columns=columns)
    data = comparisons[comparisons["value"].notna()].copy()
    if data.empty:
        return pd.DataFrame(columns=columns)
    if by not in data.columns:
        data[by] = None
    out = []
    for (drl_row, group), part in data.groupby(["drl_row", by], dropna=False, sort=True):
        d = drl.loc[drl_row]
        level_value = float(d["value"])
        values = part["value"].to_numpy(dtype=float)
        median = float(np.median(values))
        out.append({
            "drl_row": drl_row, "modality": d["modality"], "level": d["level"], "match_on": d["match_on"],
            "pattern": d["pattern"], "quantity": d["quantity"], "unit": d["unit"],
            "drl_value": level_value, "source": d["source"], by: group,
            "n": int(values.size), "median": median, "mean": float(values.mean()),
            "n_above_drl": int((values > level_value).sum()),
            "median_ratio": median / level_value,
            "median_above_drl": bool(median > level_value),
        })
    return pd.DataFrame(out, columns=columns)
