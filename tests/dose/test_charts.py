"""Dose charts: each draws and saves a readable PNG; DRL and identity lines sit where they should."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from PIL import Image

from workbench.dose.charts import distribution_chart, save_chart, ssde_chart, trend_chart
from workbench.dose.drl import validate_drl_table

SOURCE = "Test document, 2020, Table 1"


def events_table() -> pd.DataFrame:
    rng = np.random.default_rng(1)
    rows = []
    for station, protocol, centre, n in (("CT1", "Routine Head", 50, 12), ("CT1", "Chest", 8, 10),
                                         ("CT2", "Routine Head", 65, 8), ("CT2", "Knee", 4, 5)):
        for i, value in enumerate(rng.normal(centre, centre / 10, n)):
            rows.append({"report_kind": "CT", "StudyInstanceUID": f"{station}.{protocol}.{i}",
                         "StationName": station, "acquisition_protocol": protocol,
                         "acquisition_type": "Spiral Acquisition", "ctdivol_mgy": float(value),
                         "StudyDate": dt.date(2024, 1 + i % 4, 1 + i)})
    rows.append({"report_kind": "CT", "StudyInstanceUID": "scout", "StationName": "CT1",
                 "acquisition_protocol": "Routine Head", "acquisition_type": "Constant Angle Acquisition",
                 "ctdivol_mgy": 0.1, "StudyDate": dt.date(2024, 1, 1)})
    return pd.DataFrame(rows)


def drl_table() -> pd.DataFrame:
    return validate_drl_table(pd.DataFrame([
        {"modality": "CT", "match_on": "acquisition_protocol", "pattern": r"\bhead\b", "level": "event",
         "quantity": "ctdivol_mgy", "value": 60, "unit": "mGy", "source": SOURCE},
        {"modality": "CT", "match_on": "acquisition_protocol", "pattern": "chest", "level": "event",
         "quantity": "ctdivol_mgy", "value": 10, "unit": "mGy", "source": SOURCE},
        {"modality": "CT", "match_on": "acquisition_protocol", "pattern": "chest", "level": "study",
         "quantity": "dlp_total_mgycm", "value": 400, "unit": "mGy.cm", "source": SOURCE},
    ]))


def drl_lines(fig: Figure) -> list:
    return [line for line in fig.axes[0].lines if line.get_gid() == "drl"]


def assert_png(path: Path) -> None:
    assert path.is_file() and path.stat().st_size > 1000
    with Image.open(path) as image:
        assert image.format == "PNG"
        image.load()
        assert image.size[0] > 100 and image.size[1] > 100


def test_distribution_chart_draws_drl_lines_per_matching_group(tmp_path: Path) -> None:
    fig = distribution_chart(events_table(), "ctdivol_mgy", by="acquisition_protocol", drl=drl_table())
    ax = fig.axes[0]
    ticks = {label.get_text(): x for x, label in zip(ax.get_xticks(), ax.get_xticklabels())}
    assert set(ticks) == {"Chest", "Knee", "Routine Head"}
    lines = drl_lines(fig)
    assert len(lines) == 2  # Head and Chest; Knee has no DRL
    at = {float(np.mean(line.get_xdata())): list(line.get_ydata()) for line in lines}
    assert at == {ticks["Routine Head"]: [60.0, 60.0], ticks["Chest"]: [10.0, 10.0]}
    assert_png(save_chart(fig, tmp_path / "dist.png"))


def test_distribution_chart_points_are_the_values_without_localizers() -> None:
    events = events_table()
    fig = distribution_chart(events, "ctdivol_mgy", by="StationName")
    shown = np.sort(np.concatenate([c.get_offsets()[:, 1] for c in fig.axes[0].collections]))
    expected = np.sort(events.loc[events["acquisition_type"] != "Constant Angle Acquisition", "ctdivol_mgy"])
    np.testing.assert_allclose(shown, expected)
    assert drl_lines(fig) == []


def test_distribution_chart_by_station_with_a_number(tmp_path: Path) -> None:
    fig = distribution_chart(events_table(), "ctdivol_mgy", by="StationName", drl=55.0)
    lines = drl_lines(fig)
    assert len(lines) == 1 and list(lines[0].get_ydata()) == [55.0, 55.0]
    assert_png(save_chart(fig, tmp_path / "by_station.png"))


def test_distribution_chart_of_studies_matches_through_events(tmp_path: Path) -> None:
    events = events_table()
    columns = ["StudyInstanceUID", "StationName", "ctdivol_mgy"]
    studies = pd.DataFrame([{"report_kind": "CT", "StudyInstanceUID": uid, "StationName": station,
                             "dlp_total_mgycm": 30.0 * ctdi}
                            for uid, station, ctdi in events[columns].itertuples(index=False)])
    fig = distribution_chart(studies, "dlp_total_mgycm", by="StationName", drl=drl_table(), events=events)
    assert [list(line.get_ydata()) for line in drl_lines(fig)] == [[400.0, 400.0]]  # CT1 has chest studies
    assert_png(save_chart(fig, tmp_path / "dlp.png"))


def test_trend_chart_plots_monthly_medians(tmp_path: Path) -> None:
    events = events_table()
    fig = trend_chart(events, "ctdivol_mgy", by="StationName", freq="M", drl=60.0)
    ax = fig.axes[0]
    data = events[events["acquisition_type"] != "Constant Angle Acquisition"]
    for station in ("CT1", "CT2"):
        (line,) = [line for line in ax.lines if line.get_gid() == f"trend:{station}"]
        rows = data[data["StationName"] == station]
        months = sorted({(d.year, d.month) for d in rows["StudyDate"]})
        pairs = list(zip(rows["StudyDate"], rows["ctdivol_mgy"]))
        expected = [np.median([v for d, v in pairs if (d.year, d.month) == m]) for m in months]
        np.testing.assert_allclose(np.asarray(line.get_ydata(), dtype=float), expected)
    assert [list(line.get_ydata()) for line in drl_lines(fig)] == [[60.0, 60.0]]
    assert_png(save_chart(fig, tmp_path / "trend.png"))


def test_trend_chart_reads_dicom_date_strings() -> None:
    events = events_table().assign(StudyDate=lambda t: [d.strftime("%Y%m%d") for d in t["StudyDate"]])
    fig = trend_chart(events, "ctdivol_mgy", freq="Q")
    assert len([line for line in fig.axes[0].lines if (line.get_gid() or "").startswith("trend:")]) == 2


def test_ssde_chart_has_the_identity_line(tmp_path: Path) -> None:
    events = events_table().assign(ssde_mgy=lambda t: t["ctdivol_mgy"] * 1.25)
    fig = ssde_chart(events)
    (identity,) = [line for line in fig.axes[0].lines if line.get_gid() == "identity"]
    np.testing.assert_allclose(identity.get_xdata(), identity.get_ydata())
    assert max(identity.get_xdata()) >= events["ssde_mgy"].max()
    n_points = sum(len(c.get_offsets()) for c in fig.axes[0].collections)
    assert n_points == len(events)
    assert_png(save_chart(fig, tmp_path / "ssde.png"))


@pytest.mark.parametrize(("call", "message"), [
    (lambda t: distribution_chart(t, "dose"), "no column 'dose'"),
    (lambda t: distribution_chart(t, "ctdivol_mgy", by="Room"), "no column 'Room'"),
    (lambda t: distribution_chart(t.assign(ctdivol_mgy=np.nan), "ctdivol_mgy"), "no row has a value"),
    (lambda t: distribution_chart(t, "ctdivol_mgy", max_groups=0), "max_groups must be at least 1"),
    (lambda t: distribution_chart("not a table", "ctdivol_mgy"), "expected a pandas DataFrame"),
    (lambda t: trend_chart(t, "ctdivol_mgy", freq="fortnightly"), "freq 'fortnightly'"),
    (lambda t: trend_chart(t.assign(StudyDate=None), "ctdivol_mgy"), "no row has both a StudyDate"),
    (lambda t: ssde_chart(t), "no ssde_mgy column"),
    (lambda t: ssde_chart(t.assign(ssde_mgy=np.nan)), "no event has both"),
    (lambda t: save_chart(distribution_chart(t, "ctdivol_mgy"), "chart.jpg"), "must end in .png"),
    (lambda t: save_chart("not a figure", "chart.png"), "expected a matplotlib Figure"),
])
def test_bad_input_is_a_value_error(call, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call(events_table())


def test_save_chart_is_atomic_and_replaces(tmp_path: Path) -> None:
    target = tmp_path / "out" / "chart.png"
    save_chart(distribution_chart(events_table(), "ctdivol_mgy"), target)
    first = target.read_bytes()
    save_chart(distribution_chart(events_table(), "ctdivol_mgy", by="StationName"), target)
    assert target.read_bytes() != first
    assert [p.name for p in target.parent.iterdir()] == ["chart.png"]  # no temporary file left
    plain = tmp_path / "out" / "plain"
    plain.write_bytes(b"")
    assert (target.stat().st_mode & 0o777) == (plain.stat().st_mode & 0o777)  # ordinary permissions


def test_save_chart_leaves_nothing_when_writing_fails(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    fig = distribution_chart(events_table(), "ctdivol_mgy")

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(fig, "savefig", broken)
    with pytest.raises(OSError, match="disk full"):
        save_chart(fig, tmp_path / "chart.png")
    assert list(tmp_path.iterdir()) == []


def test_charts_need_no_gui_backend(tmp_path: Path) -> None:
    code = (
        "import sys, datetime as dt, pandas as pd\n"
        "from workbench.dose.charts import distribution_chart, save_chart\n"
        "t = pd.DataFrame({'acquisition_protocol': ['a', 'b'], 'ctdivol_mgy': [1.0, 2.0]})\n"
        f"save_chart(distribution_chart(t, 'ctdivol_mgy', drl=1.5), {str(tmp_path / 'x.png')!r})\n"
        "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot was imported'\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env["MPLBACKEND"] = "TkAgg"  # a GUI backend that cannot start here: unused, so harmless
    repo = Path(__file__).resolve().parents[2]
    env["PYTHONPATH"] = str(repo) + os.pathsep + env.get("PYTHONPATH", "")
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert_png(tmp_path / "x.png")
