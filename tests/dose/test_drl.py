"""DRL tables: validation, matching, flags, the per-room median summary, the shipped example table."""

from __future__ import annotations

import csv
import datetime as dt
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from workbench.dose.drl import (
    DRL_COLUMNS,
    QUANTITIES,
    compare_to_drl,
    drl_comparisons,
    example_drl_path,
    infer_modality,
    read_drl_table,
    validate_drl_table,
)

GOOD = {"modality": "CT", "match_on": "acquisition_protocol", "pattern": "head", "level": "event",
        "quantity": "ctdivol_mgy", "value": "60", "unit": "mGy", "source": "Test document, 2020, Table 1"}


def write_table(path: Path, rows: list[dict]) -> Path:
    columns = list(DRL_COLUMNS) + [c for c in rows[0] if c not in DRL_COLUMNS]
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return path


def drl(*rows: dict) -> pd.DataFrame:
    return validate_drl_table(pd.DataFrame([{**GOOD, **row} for row in rows]))


def ct_event(protocol: str | None, ctdivol: float | None, station: str = "CT1", study: str = "1.1",
             acquisition_type: str = "Spiral Acquisition", **more) -> dict:
    return {"report_kind": "CT", "StudyInstanceUID": study, "StationName": station,
            "ManufacturerModelName": "Model", "StudyDate": dt.date(2024, 1, 1),
            "acquisition_protocol": protocol, "acquisition_type": acquisition_type, "ctdivol_mgy": ctdivol,
            "dlp_mgycm": None, **more}


# --- validation -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("change", "message"), [
    ({"source": ""}, r"row 2 \(line 3\): empty source"),
    ({"source": "   "}, r"row 2 \(line 3\): empty source"),
    ({"unit": "mGy.cm"}, r"row 2 \(line 3\): unit 'mGy.cm' does not match quantity 'ctdivol_mgy'.*'mGy'"),
    ({"unit": "MGy"}, r"unit 'MGy' does not match"),
    ({"quantity": "ctdi_vol"}, r"row 2 \(line 3\): unknown quantity 'ctdi_vol'"),
    ({"quantity": "dlp_total_mgycm", "unit": "mGy.cm"}, r"'dlp_total_mgycm' is a study-level quantity"),
    ({"level": "series"}, r"unknown level 'series'"),
    ({"modality": "US"}, r"unknown modality 'US'"),
    ({"value": "-1"}, r"value '-1' is not a positive number"),
    ({"value": "ten"}, r"value 'ten' is not a number"),
    ({"pattern": "head("}, r"pattern 'head\(' is not a valid regular expression"),
    ({"match_on": ""}, r"empty match_on"),
])
def test_invalid_rows_are_refused_naming_row_and_value(tmp_path: Path, change: dict, message: str) -> None:
    path = write_table(tmp_path / "drl.csv", [GOOD, {**GOOD, **change}])
    with pytest.raises(ValueError, match=message):
        read_drl_table(path)


def test_missing_column_and_empty_table_are_refused(tmp_path: Path) -> None:
    table = pd.DataFrame([GOOD]).drop(columns=["source"])
    with pytest.raises(ValueError, match="missing column.*source"):
        validate_drl_table(table)
    path = tmp_path / "empty.csv"
    path.write_text(",".join(DRL_COLUMNS) + "\n")
    with pytest.raises(ValueError, match="no DRL rows"):
        read_drl_table(path)


def test_a_valid_table_is_normalised(tmp_path: Path) -> None:
    path = write_table(tmp_path / "drl.csv", [
        {**GOOD, "modality": "ct", "level": "Event", "note": "kept"},
        {**GOOD, "level": "study", "quantity": "dlp_total_mgycm", "unit": "mGy cm", "value": "1000"},
        {**GOOD, "modality": "RF", "level": "study", "quantity": "dap_total_gym2", "unit": "Gy·m²",
         "value": "0.002"},
    ])
    table = read_drl_table(path)
    assert table["modality"].tolist() == ["CT", "CT", "RF"]
    assert table["level"].tolist() == ["event", "study", "study"]
    assert table["unit"].tolist() == ["mGy", "mGy.cm", "Gy.m2"]
    assert table["value"].tolist() == [60.0, 1000.0, 0.002]
    assert table.loc[0, "note"] == "kept"


# --- matching and flags ---------------------------------------------------------------------------


def test_matching_is_a_case_insensitive_regular_expression_search() -> None:
    events = pd.DataFrame([
        ct_event("Routine HEAD", 50.0), ct_event("Head and Neck", 50.0), ct_event("head", 50.0),
        ct_event("Chest", 50.0), ct_event(None, 50.0), ct_event("Forehead", 50.0),
    ])
    table = drl({"pattern": r"^(?!.*neck).*\bhead\b"})
    flagged, _, _ = compare_to_drl(events, None, table)
    assert flagged["drl_matches"].tolist() == [1, 0, 1, 0, 0, 0]
    plain = drl({"pattern": "head"})  # plain words match anywhere
    flagged, _, _ = compare_to_drl(events, None, plain)
    assert flagged["drl_matches"].tolist() == [1, 1, 1, 0, 0, 1]


def test_flags_exactly_the_values_above_the_drl() -> None:
    values = [5.0, 10.0, 10.0001, 20.0, None, 9.99]
    events = pd.DataFrame([ct_event("Head", v) for v in values] + [ct_event("Knee", 99.0)])
    flagged, flagged_studies, _ = compare_to_drl(events, pd.DataFrame(), drl({"value": "10"}))
    assert len(flagged) == len(events) and flagged_studies.empty
    assert flagged["above_drl"].tolist() == [False, False, True, True, False, False, False]
    assert flagged["drl_matches"].tolist() == [1, 1, 1, 1, 1, 1, 0]
    assert flagged["drl_value"].iloc[:6].tolist() == [10.0] * 6 and np.isnan(flagged["drl_value"].iloc[6])
    assert flagged["drl_source"].iloc[0] == GOOD["source"]
    ratio = flagged["drl_ratio"].to_numpy()
    np.testing.assert_allclose(ratio[[0, 1, 2, 3, 5]], np.array([5.0, 10.0, 10.0001, 20.0, 9.99]) / 10.0)
    assert np.isnan(ratio[4]) and np.isnan(ratio[6])
    # The original columns are untouched.
    pd.testing.assert_frame_equal(flagged[events.columns], events)


def test_a_row_matching_several_drls_shows_the_worst_and_every_comparison_is_kept() -> None:
    events = pd.DataFrame([ct_event("Head", 50.0, dlp_mgycm=900.0)])
    table = drl({"value": "60"}, {"quantity": "dlp_mgycm", "unit": "mGy.cm", "value": "800"})
    flagged, _, _ = compare_to_drl(events, None, table)
    assert flagged.loc[0, "drl_matches"] == 2 and bool(flagged.loc[0, "above_drl"])
    assert flagged.loc[0, "drl_quantity"] == "dlp_mgycm"
    assert flagged.loc[0, "drl_ratio"] == pytest.approx(900 / 800)
    every = drl_comparisons(events, None, table)
    pairs = sorted(zip(every["drl_quantity"], every["above_drl"]))
    assert pairs == [("ctdivol_mgy", False), ("dlp_mgycm", True)]


def test_ct_localizers_are_left_out_unless_asked() -> None:
    events = pd.DataFrame([ct_event("Head", 0.5, acquisition_type="Constant Angle Acquisition"),
                           ct_event("Head", 70.0)])
    flagged, _, summary = compare_to_drl(events, None, drl({}))
    assert flagged["drl_matches"].tolist() == [0, 1]
    assert summary["n"].tolist() == [1] and summary["median"].tolist() == [70.0]
    flagged, _, summary = compare_to_drl(events, None, drl({}), exclude_localizers=False)
    assert flagged["drl_matches"].tolist() == [1, 1] and summary["median"].tolist() == [35.25]


def projection_tables() -> tuple[pd.DataFrame, pd.DataFrame]:
    events = pd.DataFrame([
        {"report_kind": "projection", "StudyInstanceUID": "rf", "StationName": "Room 1",
         "irradiation_event_type": "Fluoroscopy", "acquisition_protocol": "Barium swallow", "dap_gym2": 0.001,
         "agd_mgy": None},
        {"report_kind": "projection", "StudyInstanceUID": "rf", "StationName": "Room 1",
         "irradiation_event_type": "Stationary Acquisition", "acquisition_protocol": "Barium swallow",
         "dap_gym2": 0.0005, "agd_mgy": None},
        {"report_kind": "projection", "StudyInstanceUID": "dx", "StationName": "Room 2",
         "irradiation_event_type": "Stationary Acquisition", "acquisition_protocol": "Chest PA",
         "dap_gym2": 1e-5, "agd_mgy": None},
        {"report_kind": "projection", "StudyInstanceUID": "mg", "StationName": "Room 3",
         "irradiation_event_type": "Stationary Acquisition", "acquisition_protocol": "Routine",
         "dap_gym2": None, "agd_mgy": 1.4},
        ct_event("Chest", 9.0, study="ct"),
    ])
    studies = pd.DataFrame([
        {"report_kind": "projection", "StudyInstanceUID": "rf", "StationName": "Room 1",
         "dap_total_gym2": 0.0015, "fluoro_time_total_s": 60.0},
        {"report_kind": "projection", "StudyInstanceUID": "dx", "StationName": "Room 2",
         "dap_total_gym2": 1e-5, "fluoro_time_total_s": None},
        {"report_kind": "projection", "StudyInstanceUID": "mg", "StationName": "Room 3",
         "dap_total_gym2": None, "fluoro_time_total_s": None},
        {"report_kind": "CT", "StudyInstanceUID": "ct", "StationName": "CT1", "dap_total_gym2": None,
         "fluoro_time_total_s": None},
    ])
    return events, studies


def test_modality_is_inferred_from_the_report_and_a_modality_column_wins() -> None:
    events, studies = projection_tables()
    # A stationary acquisition in a fluoroscopy study is RF, like its study.
    assert infer_modality(events).tolist() == ["RF", "RF", "DX", "MG", "CT"]
    assert infer_modality(studies, events).tolist() == ["RF", "DX", "MG", "CT"]
    given = events.assign(modality=[None, None, "CR", "mg", None])
    assert infer_modality(given).tolist() == ["RF", "RF", "CR", "MG", "CT"]


def test_projection_studies_match_their_modality_group_only() -> None:
    events, studies = projection_tables()
    table = drl(
        {"modality": "XA", "match_on": "acquisition_protocol", "pattern": "swallow|chest", "level": "study",
         "quantity": "dap_total_gym2", "unit": "Gy.m2", "value": "0.001"},
        {"modality": "DX", "match_on": "acquisition_protocol", "pattern": "swallow|chest", "level": "study",
         "quantity": "dap_total_gym2", "unit": "Gy.m2", "value": "0.00002"},
        {"modality": "MG", "match_on": "acquisition_protocol", "pattern": ".", "level": "event",
         "quantity": "agd_mgy", "unit": "mGy", "value": "1.2"},
    )
    flagged_events, flagged_studies, _ = compare_to_drl(events, studies, table)
    # Studies have no acquisition_protocol column: they match through their events.
    assert flagged_studies["drl_row"].tolist() == [0, 1, pd.NA, pd.NA]
    assert flagged_studies["above_drl"].tolist() == [True, False, False, False]
    assert flagged_events["above_drl"].tolist() == [False, False, False, True, False]
    every = drl_comparisons(events, studies, table)
    assert set(every.loc[every["level"] == "study", "matched_via"]) == {"events"}


def test_a_study_own_column_is_used_before_its_events() -> None:
    events = pd.DataFrame([ct_event("Chest", 5.0, study="a"), ct_event("Chest", 5.0, study="b")])
    studies = pd.DataFrame([
        {"report_kind": "CT", "StudyInstanceUID": "a", "StationName": "CT1", "study_description": "CT HEAD",
         "dlp_total_mgycm": 1200.0},
        {"report_kind": "CT", "StudyInstanceUID": "b", "StationName": "CT1", "study_description": None,
         "dlp_total_mgycm": 300.0},
    ])
    table = drl({"match_on": "study_description", "pattern": "head", "level": "study",
                 "quantity": "dlp_total_mgycm", "unit": "mGy.cm", "value": "1000"})
    _, flagged, _ = compare_to_drl(events, studies, table)
    assert flagged["drl_matches"].tolist() == [1, 0] and flagged["above_drl"].tolist() == [True, False]


def test_a_column_no_table_has_matches_nothing_with_a_warning() -> None:
    events = pd.DataFrame([ct_event("Head", 100.0)])
    with pytest.warns(UserWarning, match="no column 'procedure'"):
        flagged, _, summary = compare_to_drl(events, None, drl({"match_on": "procedure"}))
    assert flagged["drl_matches"].tolist() == [0] and summary.empty


def test_by_must_be_a_column() -> None:
    events = pd.DataFrame([ct_event("Head", 100.0)])
    with pytest.raises(ValueError, match="by='Room'"):
        compare_to_drl(events, None, drl({}), by="Room")


# --- the summary ----------------------------------------------------------------------------------


def test_summary_is_the_median_per_drl_row_and_station() -> None:
    rng = np.random.default_rng(7)
    head = {"CT1": rng.uniform(30, 70, 9), "CT2": rng.uniform(50, 90, 6), None: rng.uniform(40, 60, 4)}
    chest = {"CT1": rng.uniform(5, 15, 5), "CT2": rng.uniform(5, 15, 8)}
    rows = [ct_event("Head", float(v), station=s) for s, vs in head.items() for v in vs]
    rows += [ct_event("Chest", float(v), station=s) for s, vs in chest.items() for v in vs]
    rows += [ct_event("Head", None, station="CT1"), ct_event("Pelvis", 500.0, station="CT1")]
    events = pd.DataFrame(rows).sample(frac=1.0, random_state=3)
    table = drl({"value": "60"}, {"pattern": "chest", "value": "10"})
    _, _, summary = compare_to_drl(events, None, table)

    expected = {(0, s): (vs, 60.0) for s, vs in head.items()}
    expected |= {(1, s): (vs, 10.0) for s, vs in chest.items()}
    assert len(summary) == len(expected)
    for row in summary.itertuples():
        station = None if pd.isna(row.StationName) else row.StationName
        values, level = expected[(row.drl_row, station)]
        assert row.n == values.size
        assert row.median == pytest.approx(float(np.median(values)))
        assert row.mean == pytest.approx(float(np.mean(values)))
        assert row.n_above_drl == int((values > level).sum())
        assert row.median_above_drl == bool(np.median(values) > level)
        assert row.median_ratio == pytest.approx(float(np.median(values)) / level)
        assert row.source == GOOD["source"] and row.drl_value == level
    assert summary["median_above_drl"].any() and not summary["median_above_drl"].all()


def test_summary_by_model() -> None:
    events = pd.DataFrame([ct_event("Head", 10.0, station="A", ManufacturerModelName="X"),
                           ct_event("Head", 30.0, station="B", ManufacturerModelName="X"),
                           ct_event("Head", 80.0, station="C", ManufacturerModelName="Y")])
    _, _, summary = compare_to_drl(events, None, drl({}), by="ManufacturerModelName")
    assert summary.set_index("ManufacturerModelName")["median"].to_dict() == {"X": 20.0, "Y": 80.0}


# --- the shipped example table ---------------------------------------------------------------------

_SUFFIX_UNIT = (("_mgycm", "mGy.cm"), ("_gym2", "Gy.m2"), ("_mgy", "mGy"), ("_s", "s"))


def test_example_table_loads_and_every_value_cites_its_source() -> None:
    path = example_drl_path()
    with open(path, newline="") as f:
        raw = list(csv.DictReader(f))
    assert raw, "the example table has rows"
    table = read_drl_table(path)
    assert len(table) == len(raw)
    for i, row in enumerate(raw):
        source = row["source"].strip()
        assert source, f"row {i + 1} has no source"
        assert re.search(r"\b(19|20)\d\d\b", source), f"row {i + 1}: the source names no year"
        assert re.search(r"\btable\b", source, re.IGNORECASE), f"row {i + 1}: the source names no table"
        # The unit follows from the column name's suffix (checked without the module's own table).
        unit = next(u for suffix, u in _SUFFIX_UNIT if row["quantity"].endswith(suffix))
        assert row["unit"] == unit, f"row {i + 1}: {row['quantity']} in {row['unit']}"
        assert row["quantity"] in QUANTITIES[row["level"]]
        # The value is the one the source quotes (guards against a typo in either).
        quoted = rf"(?<![\d.]){re.escape(row['value'])} {re.escape(row['unit'].replace('.', ' '))}\b"
        assert re.search(quoted, source), f"row {i + 1}: source lacks {row['value']} {row['unit']}"


def test_example_patterns_pick_the_intended_examinations() -> None:
    table = read_drl_table(example_drl_path())
    events = pd.DataFrame([ct_event(p, 1.0, study=str(i)) for i, p in enumerate(
        ["Routine Head", "Sinuses", "C-Spine", "Chest", "CAP", "Abdomen/Pelvis", "CTPA", "KUB", "HRCT",
         "Knee"])])
    every = drl_comparisons(events, None, table)
    matched = every.groupby("row")["drl_source"].apply(lambda s: sorted(set(s)))
    assert set(matched.index) == {0, 1, 2, 3, 5, 6, 7, 8}  # CAP has only a DLP (study) DRL; Knee none
    for row, sources in matched.items():
        assert len(sources) == 1, f"{events.loc[row, 'acquisition_protocol']} matches {sources}"
    names = {0: "Head", 1: "Paranasal sinuses", 2: "Cervical spine", 3: "Chest /", 5: "Abdomen and pelvis",
             6: "CTPA", 7: "Kidneys, ureters, bladder", 8: "Chest-high resolution"}
    for row, name in names.items():
        assert f": {name}" in matched[row][0] or name in matched[row][0]


def test_example_table_on_the_corpus(corpus_dir: Path) -> None:
    import pydicom

    from workbench.dose.rdsr import report_rows

    events, studies = [], []
    # CT reports (the example table is CT-only) and a few small projection ones; the large
    # fluoroscopy reports would only make the test slow.
    paths = [p for pattern in ("CT-*.dcm", "DX-*.dcm", "MG-*.dcm")
             for p in (corpus_dir / "rdsr").glob(pattern)]
    assert paths, "the corpus has dose reports"
    for path in sorted(paths):
        try:
            rows, study = report_rows(pydicom.dcmread(path))
        except ValueError:  # not a dose report, or one the parser refuses: not this test's subject
            continue
        events += rows
        studies.append(study)
    events, studies = pd.DataFrame(events), pd.DataFrame(studies)
    flagged_events, flagged_studies, summary = compare_to_drl(events, studies, example_drl_path())
    assert len(flagged_events) == len(events) and len(flagged_studies) == len(studies)
    assert (flagged_studies["drl_matches"] > 0).any()
    for flagged in (flagged_events, flagged_studies):
        above = flagged[flagged["above_drl"]]
        assert (above["drl_value_compared"] > above["drl_value"]).all()
    # Only CT rows match this CT-only table, and no localizer does.
    assert set(flagged_events.loc[flagged_events["drl_matches"] > 0, "report_kind"]) <= {"CT"}
    assert not flagged_events.loc[flagged_events["drl_matches"] > 0, "acquisition_type"].str.contains(
        "Constant Angle").any()
    assert not summary.empty and (summary["n"] > 0).all()
