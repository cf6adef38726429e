"""Dose charts: distributions with DRL lines, trends over time, SSDE vs CTDIvol.

Every function returns a :class:`matplotlib.figure.Figure` made without ``pyplot``: nothing
depends on a GUI backend or on pyplot's global state, a notebook shows the returned figure
inline (IPython renders Figure objects as PNG), and :func:`save_chart` writes it as PNG with
the Agg renderer. Lines a test or a reader may look for carry a ``gid``: ``"drl"`` for DRL
lines, ``"identity"`` for the SSDE = CTDIvol line.
"""

from __future__ import annotations

import math
import os
import re
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from workbench.dose.drl import LEVELS, QUANTITIES, drl_matches, read_drl_table, unit_of, validate_drl_table

#: Axis labels of the common quantities.
LABELS = {
    "ctdivol_mgy": "CTDIvol",
    "dlp_mgycm": "DLP",
    "dlp_total_mgycm": "DLP total",
    "dlp_sum_mgycm": "DLP (sum of events)",
    "ssde_mgy": "SSDE",
    "dap_gym2": "DAP",
    "dap_total_gym2": "DAP total",
    "dap_sum_gym2": "DAP (sum of events)",
    "dose_rp_mgy": "Dose at reference point",
    "dose_rp_total_mgy": "Dose at reference point, total",
    "agd_mgy": "Average glandular dose",
    "fluoro_time_total_s": "Fluoroscopy time",
}
_NONE = "(none)"
_LOCALIZER = re.compile(r"constant\s+angle", re.IGNORECASE)
_DRL_STYLE = {"color": "tab:red", "linestyle": "--", "linewidth": 1.5, "gid": "drl"}


def _label(quantity: str) -> str:
    unit = unit_of(quantity)
    name = LABELS.get(quantity, quantity)
    return f"{name} ({unit})" if unit else name


def _name(value: object) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return _NONE
    text = str(value).strip()
    return text or _NONE


def _require(table: pd.DataFrame, *columns: str) -> None:
    if not isinstance(table, pd.DataFrame):
        raise ValueError(f"expected a pandas DataFrame, not {type(table).__name__}")
    for column in columns:
        if column not in table.columns:
            raise ValueError(f"the table has no column {column!r}")


def _values(table: pd.DataFrame, quantity: str) -> pd.Series:
    return pd.to_numeric(table[quantity], errors="coerce").astype(float)


def _not_localizer(table: pd.DataFrame) -> pd.Series:
    if "acquisition_type" not in table.columns:
        return pd.Series(True, index=table.index)
    return ~table["acquisition_type"].map(lambda v: bool(_LOCALIZER.search(_name(v))))


def distribution_chart(
    table: pd.DataFrame,
    quantity: str,
    by: str = "acquisition_protocol",
    drl: pd.DataFrame | str | os.PathLike[str] | float | None = None,
    *,
    events: pd.DataFrame | None = None,
    max_groups: int = 30,
    exclude_localizers: bool = True,
    log: bool = False,
) -> Figure:
    """Box plot with every value as a point, one box per group, DRL lines where a DRL matches.

    Parameters
    ----------
    table : pandas.DataFrame
        ``dose_events`` or ``dose_studies`` (or a slice of either).
    quantity : str
        The numeric column to show, e.g. ``ctdivol_mgy`` or ``dlp_total_mgycm``.
    by : str
        The grouping column, e.g. ``acquisition_protocol`` or ``StationName``.
    drl : DRL table, path of one, number, or None
        A DRL table (or its CSV path): each group gets a horizontal line at every DRL value of
        ``quantity`` its rows match (matching as in :func:`workbench.dose.drl.compare_to_drl`).
        A number draws one line across the whole chart.
    events : pandas.DataFrame, optional
        With a studies table: the events, so studies can match DRLs through their events.
    max_groups : int
        Show the most numerous groups only (the title says how many were left out).
    exclude_localizers : bool
        Leave CT localizers (Constant Angle Acquisition) out, as the DRL comparison does.
    log : bool
        Logarithmic value axis.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ValueError
        When ``quantity`` or ``by`` is not a column, ``max_groups`` is below 1, the DRL table is
        invalid, or no row has a value of ``quantity``.
    """
    _require(table, quantity, by)
    if max_groups < 1:
        raise ValueError(f"max_groups must be at least 1, not {max_groups!r}")
    data = table.reset_index(drop=True)
    keep = _values(data, quantity).notna()
    if exclude_localizers:
        keep &= _not_localizer(data)
    if not keep.any():
        raise ValueError(f"no row has a value of {quantity!r}")
    values = _values(data, quantity)
    groups = data[by].map(_name)
    counts = groups[keep].value_counts()
    shown = sorted(counts.index[:max_groups])

    drl_lines = _drl_lines(data, quantity, groups, drl, events, exclude_localizers)

    fig = Figure(figsize=(max(6.0, 0.6 * len(shown) + 2.5), 4.8), layout="constrained")
    ax = fig.add_subplot()
    series = [values[keep & (groups == g)].to_numpy() for g in shown]
    positions = np.arange(1, len(shown) + 1)
    ax.boxplot(series, positions=positions, widths=0.6, showfliers=False, manage_ticks=False)
    rng = np.random.default_rng(0)
    for x, ys in zip(positions, series):
        ax.scatter(x + rng.uniform(-0.18, 0.18, ys.size), ys, s=12, alpha=0.5, color="tab:blue", zorder=3)
    labelled = False
    if isinstance(drl, int | float) and not isinstance(drl, bool):
        ax.axhline(float(drl), label=f"DRL {float(drl):g}", **_DRL_STYLE)
        labelled = True
    for x, group in zip(positions, shown):
        for value in drl_lines.get(group, []):
            ax.plot([x - 0.4, x + 0.4], [value, value], label=None if labelled else "DRL", **_DRL_STYLE)
            labelled = True
    ax.set_xticks(positions, [g if len(g) <= 40 else g[:37] + "..." for g in shown], rotation=45, ha="right")
    ax.set_xlim(0.4, len(shown) + 0.6)
    ax.set_xlabel(by)
    ax.set_ylabel(_label(quantity))
    if log:
        ax.set_yscale("log")
    title = f"{LABELS.get(quantity, quantity)} by {by} (n = {int(keep.sum())})"
    if len(counts) > len(shown):
        title += f", {len(shown)} of {len(counts)} groups"
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    if labelled:
        ax.legend(loc="best")
    return fig


def _drl_lines(
    data: pd.DataFrame,
    quantity: str,
    groups: pd.Series,
    drl: pd.DataFrame | str | os.PathLike[str] | float | None,
    events: pd.DataFrame | None,
    exclude_localizers: bool,
) -> dict[str, list[float]]:
    """The DRL values each group's rows match, for ``quantity``."""
    if drl is None or (isinstance(drl, int | float) and not isinstance(drl, bool)):
        return {}
    table = validate_drl_table(drl) if isinstance(drl, pd.DataFrame) else read_drl_table(drl)
    level = next((lv for lv in LEVELS if quantity in QUANTITIES[lv]), None)
    rows = table[table["quantity"] == quantity]
    if level is None or rows.empty:
        return {}
    matches = drl_matches(data, rows, level, events, exclude_localizers=exclude_localizers)
    lines: dict[str, list[float]] = {}
    for position, drl_row in zip(matches["row"], matches["drl_row"]):
        value = float(rows.loc[drl_row, "value"])
        group = lines.setdefault(groups.iloc[position], [])
        if value not in group:
            group.append(value)
    return {g: sorted(v) for g, v in lines.items()}


def _period(dates: pd.Series, freq: str) -> pd.Series:
    alias = freq[:-1] if freq.upper().endswith("E") and len(freq) > 1 else freq  # "ME" -> "M"
    for candidate in dict.fromkeys((freq, alias)):
        try:
            return dates.dt.to_period(candidate)
        except (ValueError, TypeError, AttributeError):
            continue
    raise ValueError(f"freq {freq!r} is not a pandas period frequency (e.g. 'W', 'M', 'Q', 'Y')")


def trend_chart(
    table: pd.DataFrame,
    quantity: str,
    by: str = "StationName",
    freq: str = "M",
    *,
    drl: float | None = None,
    date_column: str = "StudyDate",
    exclude_localizers: bool = True,
) -> Figure:
    """Median of ``quantity`` per period, one line per group.

    Parameters
    ----------
    table : pandas.DataFrame
        ``dose_events`` or ``dose_studies``.
    quantity : str
        The numeric column, e.g. ``dlp_total_mgycm``.
    by : str
        One line per value of this column (e.g. ``StationName``, ``ManufacturerModelName``).
    freq : str
        A pandas period frequency: ``"W"``, ``"M"`` (default), ``"Q"``, ``"Y"`` (``"ME"``-style
        aliases are accepted too). Each point is plotted at the start of its period.
    drl : float, optional
        A horizontal DRL line at this value.
    date_column : str
        The date of each row (dates, datetimes or DICOM/ISO date strings).
    exclude_localizers : bool
        Leave CT localizers (Constant Angle Acquisition) out.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ValueError
        When a column is missing, ``freq`` is not a period frequency, or no row has both a date
        and a value.
    """
    _require(table, quantity, by, date_column)
    data = table.reset_index(drop=True)
    dates = data[date_column].map(lambda v: None if _name(v) == _NONE else v)
    dates = pd.to_datetime(dates.astype(object).map(_as_date), errors="coerce")
    values = _values(data, quantity)
    keep = dates.notna() & values.notna()
    if exclude_localizers:
        keep &= _not_localizer(data)
    if not keep.any():
        raise ValueError(f"no row has both a {date_column} and a value of {quantity!r}")
    frame = pd.DataFrame({"group": data[by].map(_name)[keep], "period": _period(dates[keep], freq),
                          "value": values[keep]})
    medians = frame.groupby(["group", "period"], sort=True)["value"].agg(["median", "size"]).reset_index()

    fig = Figure(figsize=(8.0, 4.8), layout="constrained")
    ax = fig.add_subplot()
    for group, part in medians.groupby("group", sort=True):
        x = part["period"].map(lambda p: p.start_time).to_numpy()
        ax.plot(x, part["median"].to_numpy(), marker="o", label=str(group), gid=f"trend:{group}")
    if drl is not None:
        ax.axhline(float(drl), label=f"DRL {float(drl):g}", **_DRL_STYLE)
    ax.set_xlabel(f"{date_column} (period {freq})")
    ax.set_ylabel(f"median {_label(quantity)}")
    ax.set_title(f"Median {LABELS.get(quantity, quantity)} per {freq} by {by}")
    ax.grid(alpha=0.3)
    if medians["group"].nunique() <= 20 or drl is not None:
        ax.legend(loc="best", fontsize="small")
    fig.autofmt_xdate()
    return fig


def _as_date(value: object) -> object:
    """DICOM DA strings (YYYYMMDD) as ISO; everything else as it is."""
    if isinstance(value, str) and re.fullmatch(r"\d{8}", value.strip()):
        text = value.strip()
        return f"{text[:4]}-{text[4:6]}-{text[6:]}"
    return value


def ssde_chart(events: pd.DataFrame, *, by: str | None = "StationName") -> Figure:
    """SSDE against CTDIvol per event, with the identity line SSDE = CTDIvol.

    Parameters
    ----------
    events : pandas.DataFrame
        ``dose_events`` with ``ssde_mgy`` and ``ctdivol_mgy``.
    by : str or None
        Colour the points by this column when the table has it.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ValueError
        When there is no ``ssde_mgy`` (or ``ctdivol_mgy``) column, or no event has both values.
    """
    if isinstance(events, pd.DataFrame) and "ssde_mgy" not in events.columns:
        raise ValueError("the events have no ssde_mgy column: compute SSDE first")
    _require(events, "ssde_mgy", "ctdivol_mgy")
    data = events.reset_index(drop=True)
    x, y = _values(data, "ctdivol_mgy"), _values(data, "ssde_mgy")
    keep = x.notna() & y.notna()
    if not keep.any():
        raise ValueError("no event has both ssde_mgy and ctdivol_mgy")
    fig = Figure(figsize=(6.0, 5.5), layout="constrained")
    ax = fig.add_subplot()
    if by is not None and by in data.columns:
        groups = data[by].map(_name)
        for group in sorted(groups[keep].unique()):
            pick = keep & (groups == group)
            ax.scatter(x[pick], y[pick], s=16, alpha=0.7, label=group)
    else:
        ax.scatter(x[keep], y[keep], s=16, alpha=0.7)
    top = 1.05 * float(max(x[keep].max(), y[keep].max()))
    ax.plot([0.0, top], [0.0, top], color="grey", linestyle=":", gid="identity", label="SSDE = CTDIvol")
    ax.set_xlim(0.0, top)
    ax.set_ylim(0.0, top)
    ax.set_xlabel(_label("ctdivol_mgy"))
    ax.set_ylabel(_label("ssde_mgy"))
    ax.set_title(f"SSDE vs CTDIvol (n = {int(keep.sum())})")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize="small")
    return fig


def save_chart(fig: Figure, path: str | os.PathLike[str], *, dpi: int = 120) -> Path:
    """Write a figure as PNG, atomically (a temporary name in the same folder, then a rename).

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The chart.
    path : str or os.PathLike
        The ``.png`` file to write; its folder is created when missing.
    dpi : int
        Resolution.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    ValueError
        When ``fig`` is not a Figure or ``path`` does not end in ``.png``.
    """
    if not isinstance(fig, Figure):
        raise ValueError(f"expected a matplotlib Figure, not {type(fig).__name__}")
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"{path}: a chart is written as PNG; the name must end in .png")
    path.parent.mkdir(parents=True, exist_ok=True)
    # A unique name beside the target (same file system, so the rename is atomic), created with
    # the ordinary permissions (mkstemp's 0600 would survive the rename).
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    try:
        fig.savefig(tmp, format="png", dpi=dpi)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
