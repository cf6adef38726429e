"""Dose reports from real vendors, against the values OpenREM's own tests assert for the same files.

``openrem_expected.json`` records, per corpus file, what OpenREM's test suite asserts (with the
test names and OpenREM's units). Our tables normalise units (mGy, mGy.cm, Gy.m2, s, mm); the
comparison converts OpenREM's units to ours.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pydicom
import pytest

from workbench.dose.rdsr import DoseReportError, philips_capture_rows, report_rows
from workbench.dose.tables import dose_tables, merge_reports, read_report

EXPECTED = json.loads((Path(__file__).parent / "openrem_expected.json").read_text())

# OpenREM event key -> (our column, factor from OpenREM's unit to ours).
CT_EVENT = {
    "mean_ctdivol": ("ctdivol_mgy", 1.0),
    "dlp": ("dlp_mgycm", 1.0),
    "scanning_length": ("scanning_length_mm", 1.0),
    "nominal_single_collimation_width": ("nominal_single_collimation_mm", 1.0),
    "nominal_total_collimation_width": ("nominal_total_collimation_mm", 1.0),
    "exposure_time": ("exposure_time_s", 1.0),
    "pitch_factor": ("pitch_factor", 1.0),
    "number_of_xray_sources": ("number_of_xray_sources", 1.0),
    "acquisition_protocol": ("acquisition_protocol", None),
    "target_region": ("target_region", None),
    "ct_acquisition_type": ("acquisition_type", None),
    "ctdiw_phantom_type": ("ctdiw_phantom", None),
    "kvp": ("kvp", 1.0),
    "xray_tube_current": ("mean_tube_current_ma", 1.0),
    "maximum_xray_tube_current": ("max_tube_current_ma", 1.0),
    "exposure_time_per_rotation": ("exposure_time_per_rotation_s", 1.0),
    "dose_check.dlp_alert_value": ("dlp_alert_value_mgycm", 1.0),
    "dose_check.ctdivol_alert_value": ("ctdivol_alert_value_mgy", 1.0),
    "dose_check.accumulated_dlp_forward_estimate": ("accumulated_dlp_forward_estimate_mgycm", 1.0),
    "dose_check.accumulated_ctdivol_forward_estimate": ("accumulated_ctdivol_forward_estimate_mgy", 1.0),
}
PROJECTION_EVENT = {
    "dose_area_product": ("dap_gym2", 1.0),
    "dose_rp": ("dose_rp_mgy", 1000.0),
    "average_glandular_dose": ("agd_mgy", 1.0),
    "entrance_exposure_at_rp": ("entrance_exposure_mgy", 1.0),
    "half_value_layer": ("half_value_layer_mm", 1.0),
    "compression_thickness": ("compression_thickness_mm", 1.0),
    "kvp": ("kvp", 1.0),
    "xray_tube_current": ("tube_current_ma", 1.0),
    "exposure_time": ("exposure_time_s", 1e-3),
    "exposure": ("exposure_mas", 1e-3),
    "number_of_pulses": ("number_of_pulses", 1.0),
    "pulse_rate": ("pulse_rate", 1.0),
    "irradiation_duration": ("irradiation_duration_s", 1.0),
    "acquisition_plane": ("acquisition_plane", None),
    "irradiation_event_type": ("irradiation_event_type", None),
    "acquisition_protocol": ("acquisition_protocol", None),
    "target_region": ("target_region", None),
    "image_view": ("image_view", None),
    "positioner_primary_angle": ("positioner_primary_angle_deg", 1.0),
    "positioner_secondary_angle": ("positioner_secondary_angle_deg", 1.0),
}
SOURCE = {
    "kvp": "kvp",
    "xray_tube_current": "mean_tube_current_ma",
    "maximum_xray_tube_current": "max_tube_current_ma",
    "exposure_time_per_rotation": "exposure_time_per_rotation_s",
}
STUDY = {
    "ct_dose_length_product_total": ("dlp_total_mgycm", 1.0),
    "total_dlp": ("dlp_total_mgycm", 1.0),
    "total_dap": ("dap_total_gym2", 1.0),
    "dose_area_product_total": ("dap_total_gym2", 1.0),
    "fluoro_dose_area_product_total": ("fluoro_dap_total_gym2", 1.0),
    "acquisition_dose_area_product_total": ("acquisition_dap_total_gym2", 1.0),
    "fluoro_dose_rp_total": ("fluoro_dose_rp_total_mgy", 1000.0),
    "total_agd_left": ("agd_accumulated_mgy_left", 1.0),
    "total_agd_right": ("agd_accumulated_mgy_right", 1.0),
    "accession_number": ("AccessionNumber", None),
    "manufacturer_model_name": ("ManufacturerModelName", None),
    "station_name": ("StationName", None),
}


def _same(ours, expected, factor) -> bool:
    if factor is None:
        return str(ours or "").strip().lower() == str(expected or "").strip().lower()
    if ours is None:
        return False
    return math.isclose(float(ours), float(expected) * factor, rel_tol=1e-6, abs_tol=1e-9)


def _rows(path: Path):
    dataset = pydicom.dcmread(path, force=True)
    if "DOSE_INFO" in [str(v) for v in dataset.get("ImageType", [])]:
        return philips_capture_rows(dataset)
    return report_rows(dataset)


# Radiopharmaceutical dose reports (TID 10021) are not X-ray dose: out of these tables' scope.
RADIOPHARMACEUTICAL = {"NM-RRDSR-Siemens.dcm", "NM-RRDSR-Siemens-Extended.dcm"}
CASES = sorted(set(EXPECTED["files"]) - RADIOPHARMACEUTICAL)


@pytest.mark.parametrize("name", CASES)
def test_values_equal_what_openrem_asserts(corpus_dir, name) -> None:
    path = corpus_dir / "rdsr" / name
    expected = EXPECTED["files"][name]
    try:
        events, study = _rows(path)
    except DoseReportError as exc:
        assert not expected.get("events") and not _study_values(expected), f"{name}: {exc}"
        return
    checked, mismatches = 0, []
    for wanted in expected.get("events", []):
        index = wanted["index"]
        assert index < len(events), f"{name}: OpenREM has event {index}, we have {len(events)} events"
        row = events[index]
        if wanted.get("IrradiationEventUID") and row.get("IrradiationEventUID"):
            assert row["IrradiationEventUID"] == wanted["IrradiationEventUID"]
        mapping = CT_EVENT if row["report_kind"] == "CT" else PROJECTION_EVENT
        for key, value in wanted.items():
            if key in mapping and value is not None and not isinstance(value, (dict, list)):
                column, factor = mapping[key]
                checked += 1
                if not _same(row.get(column), value, factor):
                    mismatches.append((index, key, row.get(column), value))
        for number, source in enumerate(wanted.get("sources", [])[:2]):
            suffix = "" if number == 0 else "_b"
            for key, value in source.items():
                if key in SOURCE and value is not None:
                    checked += 1
                    if not _same(row.get(SOURCE[key] + suffix), value, 1.0):
                        mismatches.append(
                            (index, f"source {number} {key}", row.get(SOURCE[key] + suffix), value)
                        )
    for key, value in _study_values(expected).items():
        column, factor = STUDY[key]
        checked += 1
        if not _same(study.get(column), value, factor):
            mismatches.append(("study", key, study.get(column), value))
    assert mismatches == [], f"{name}: {mismatches}"


def test_the_comparison_covers_hundreds_of_values(corpus_dir) -> None:
    total = 0
    for name in CASES:
        try:
            events, _ = _rows(corpus_dir / "rdsr" / name)
        except DoseReportError:
            events = []
        expected = EXPECTED["files"][name]
        for wanted in expected.get("events", []):
            mapping = CT_EVENT if events and events[0]["report_kind"] == "CT" else PROJECTION_EVENT
            total += sum(
                1
                for k, v in wanted.items()
                if k in mapping and v is not None and not isinstance(v, (dict, list))
            )
            total += sum(1 for source in wanted.get("sources", [])[:2] for k in source if k in SOURCE)
        total += len(_study_values(expected))
    assert total >= 300


def _study_values(expected: dict) -> dict:
    return {
        k: v
        for k, v in expected.get("study", {}).items()
        if k in STUDY and v is not None and not isinstance(v, (dict, list))
    }


def test_every_x_ray_dose_report_of_the_corpus_parses(corpus_dir) -> None:
    reports = sorted((corpus_dir / "rdsr").glob("*.dcm"))
    not_x_ray = {
        "ESR_non-dose.dcm",
        "NM-RRDSR-Siemens.dcm",
        "NM-RRDSR-Siemens-Extended.dcm",
        "RF-ESR-Siemens-Varic.dcm",
    }
    for path in reports:
        events, study, error = read_report(str(path))
        if path.name in not_x_ray:
            assert error and "not" in error, path.name
        else:
            assert error is None and events, (path.name, error)
            assert study["events_counted"] == len(events)


def test_reports_of_one_study_are_merged_without_double_counting(corpus_dir) -> None:
    multi = [read_report(str(corpus_dir / "rdsr" / f"CT-RDSR-Siemens-Multi-{n}.dcm"))[:2] for n in (1, 2, 3)]
    events, studies = merge_reports(multi)
    assert len(studies) == 1 and studies.iloc[0]["n_reports"] == 3
    # Each report repeats the earlier events: the merged study has the last one's three events once.
    assert len(events) == 3 and events["IrradiationEventUID"].is_unique
    assert studies.iloc[0]["dlp_total_mgycm"] == pytest.approx(236.09)
    assert studies.iloc[0]["dlp_sum_mgycm"] == pytest.approx(236.09)
    continued = [
        read_report(str(corpus_dir / "rdsr" / f"CT-RDSR-Siemens-Continued-{n}.dcm"))[:2] for n in (1, 2)
    ]
    events, studies = merge_reports(continued)
    # "Continued" reports hold different events of one study: merged, both kept (OpenREM keeps two studies).
    assert len(events) == 4 and len(studies) == 1
    assert studies.iloc[0]["dlp_sum_mgycm"] == pytest.approx(sum(e for e in events["dlp_mgycm"]))
    # Each continued object states the total of its own part: the study's stated total is their sum.
    parts = [study["dlp_total_mgycm"] for _, study in continued]
    assert studies.iloc[0]["dlp_total_mgycm"] == pytest.approx(sum(parts))
    assert studies.iloc[0]["dlp_total_mgycm"] == pytest.approx(studies.iloc[0]["dlp_sum_mgycm"])


def test_units_are_normalised(corpus_dir) -> None:
    # Canon writes Dose (RP) in mGy; others in Gy: both come out in mGy.
    canon, _ = report_rows(pydicom.dcmread(corpus_dir / "rdsr" / "RF-RDSR-Canon-Ultimaxi-mGyDoseAtRP.dcm"))
    assert canon[0]["dose_rp_mgy"] == pytest.approx(0.384)
    # Hologic writes Exposure in uAs and exposure time in ms.
    hologic, _ = report_rows(pydicom.dcmread(corpus_dir / "rdsr" / "MG-RDSR-Hologic_2D.dcm"))
    assert hologic[0]["exposure_mas"] == pytest.approx(90.2)
    assert hologic[0]["exposure_time_s"] == pytest.approx(0.854)


def test_a_broken_report_goes_to_the_errors_table(corpus_dir, tmp_path) -> None:
    good = (corpus_dir / "rdsr" / "CT-RDSR-Siemens_Flash-TAP-SS.dcm").read_bytes()
    (tmp_path / "cut.dcm").write_bytes(good[: len(good) // 2])
    (tmp_path / "good.dcm").write_bytes(good)
    tables = dose_tables([tmp_path / "cut.dcm", tmp_path / "good.dcm"])
    assert len(tables.studies) == 1 and len(tables.events) == 4
    assert list(tables.errors["path"]) == [str(tmp_path / "cut.dcm")]
    assert tables.errors["error"].iloc[0]
