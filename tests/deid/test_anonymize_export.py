"""Anonymized export on a patient with PHI planted everywhere: nothing survives, references hold."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest

import workbench
from workbench.deid.exporter import BlankingRule, export
from workbench.deid.profile import OPTIONS, Profile, table

sys.path.insert(0, str(Path(__file__).parent))
from phi_planting import (  # noqa: E402
    INSTITUTION,
    PATIENT_NAME,
    SERIAL,
    STATION,
    STUDY_DATES,
    make_planted_patient,
    sample_with_burned_in_cr,
)

KEY = bytes(range(32))


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    root = tmp_path_factory.mktemp("phi")
    patient = make_planted_patient(root / "src")
    index = workbench.crawl(root / "src", index=root / "index", quiet=True)
    return patient, index, root


def _exported(out: Path) -> list[Path]:
    return sorted(p for p in out.rglob("*.dcm"))


def _read_all(out: Path) -> list[pydicom.Dataset]:
    return [pydicom.dcmread(p) for p in _exported(out)]


def test_no_planted_phi_survives_in_bytes_or_names(planted, tmp_path) -> None:
    patient, index, _ = planted
    out = tmp_path / "export"
    result = export(index, out, key=KEY, quiet=True)
    assert result.clean and result.verified, (result.failed, result.findings)
    assert result.exported == len(patient.ct_files) + 1
    everything = [p for p in out.rglob("*") if p.is_file()]
    assert (out / "manifest.csv") in everything
    for path in everything:
        data = path.read_bytes().upper()
        name = str(path.relative_to(out)).upper()
        for value in patient.phi:
            assert value.upper().encode() not in data, (value, path)
            assert value.upper() not in name, (value, path)
        # Spellings in free text: "Wilhelmina Hospitalson" in the SR and comments.
        assert b"WILHELMINA" not in data and b"HOSPITALSON" not in data


def test_references_resolve_inside_the_export(planted, tmp_path) -> None:
    _, index, _ = planted
    out = tmp_path / "export"
    export(index, out, key=KEY, quiet=True, verify=False)
    datasets = _read_all(out)
    images = {ds.SOPInstanceUID: ds for ds in datasets if ds.Modality == "CT"}
    report = next(ds for ds in datasets if ds.Modality == "SR")
    referenced = [item.ReferencedSOPInstanceUID
                  for series in report.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence
                  for item in series.ReferencedSOPSequence]
    assert referenced and all(uid in images for uid in referenced)
    image_item = next(i for i in report.ContentSequence if i.ValueType == "IMAGE")
    assert image_item.ReferencedSOPSequence[0].ReferencedSOPInstanceUID in images
    evidence_study = report.CurrentRequestedProcedureEvidenceSequence[0].StudyInstanceUID
    assert evidence_study == report.StudyInstanceUID
    assert evidence_study in {ds.StudyInstanceUID for ds in images.values()}
    assert len({ds.FrameOfReferenceUID for ds in images.values()}) == 1
    assert len({ds.PatientID for ds in datasets}) == 1
    for ds in datasets:
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        assert ds.SOPInstanceUID.startswith("2.25.") and len(ds.SOPInstanceUID) <= 64
        assert ds.PatientIdentityRemoved == "YES"
        assert ds.DeidentificationMethodCodeSequence[0].CodeValue == "113100"
        assert "OtherPatientIDsSequence" not in ds and "RequestAttributesSequence" not in ds  # both X
        assert not [e for e in ds if e.tag.group % 2]  # private tags are gone


def test_the_same_input_gives_the_same_bytes_and_reruns_resume(planted, tmp_path) -> None:
    _, index, _ = planted
    first, second = tmp_path / "a", tmp_path / "b"
    export(index, first, key=KEY, quiet=True, verify=False)
    export(index, second, key=KEY, quiet=True, verify=False)
    files = _exported(first)
    assert [p.relative_to(first) for p in files] == [p.relative_to(second) for p in _exported(second)]
    assert all(p.read_bytes() == (second / p.relative_to(first)).read_bytes() for p in files)
    # A run killed mid-way: some files missing, a temporary file left behind. Run again.
    for path in files[::2]:
        path.unlink()
    (files[1].parent / f".{files[1].name}.123.tmp").write_bytes(b"partial")
    again = export(index, first, key=KEY, quiet=True, verify=False)
    assert again.exported == len(files[::2]) and again.already_there == len(files) - len(files[::2])
    assert [p.read_bytes() for p in _exported(first)] == [p.read_bytes() for p in _exported(second)]
    assert not list(first.rglob("*.tmp"))
    # Another key gives other pseudonyms.
    other = export(index, tmp_path / "c", key=bytes(32), quiet=True, verify=False)
    assert other.exported == len(files)
    assert not set(p.name for p in _exported(tmp_path / "c")) & set(p.name for p in files)


def test_sources_are_never_modified(planted, tmp_path) -> None:
    patient, index, _ = planted
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in patient.folder.iterdir()}
    export(index, tmp_path / "export", key=KEY, quiet=True, verify=False)
    assert {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in patient.folder.iterdir()} == before




def test_options_keep_what_the_standard_says(planted, tmp_path) -> None:
    _, index, _ = planted
    # Basic profile: dates emptied, descriptors removed, characteristics removed, device identity gone.
    basic = _read_all(_export_with(index, tmp_path / "basic", ()))
    ct = next(ds for ds in basic if ds.Modality == "CT")
    assert ct.StudyDate == "" and "StudyDescription" not in ct and "PatientAge" not in ct
    assert ct.get("StationName") in (None, "", "ANONYMIZED")
    assert ct.get("DeviceSerialNumber") in (None, "", "ANONYMIZED")
    assert ct.LongitudinalTemporalInformationModified == "REMOVED"

    full = _read_all(_export_with(index, tmp_path / "full", ("retain_full_dates",)))
    assert {ds.StudyDate for ds in full if ds.Modality == "CT"} == set(STUDY_DATES)

    modified = _read_all(_export_with(index, tmp_path / "modified", ("retain_modified_dates",)))
    dates = sorted({ds.StudyDate for ds in modified if ds.Modality == "CT"})
    assert len(dates) == 2 and not set(dates) & set(STUDY_DATES)
    original_gap = (dt.date.fromisoformat("2024-05-19") - dt.date.fromisoformat("2024-03-12")).days
    new = [dt.datetime.strptime(d, "%Y%m%d").date() for d in dates]
    assert (new[1] - new[0]).days == original_gap  # one offset per patient: intervals kept
    shifted_birth = {ds.PatientBirthDate for ds in modified if "PatientBirthDate" in ds} - {""}
    assert all(d != "19580317" for d in shifted_birth)
    assert modified[0].LongitudinalTemporalInformationModified == "MODIFIED"

    uids = _read_all(_export_with(index, tmp_path / "uids", ("retain_uids",)))
    originals = {pydicom.dcmread(p).SOPInstanceUID for p in planted[0].ct_files}
    assert originals <= {ds.SOPInstanceUID for ds in uids}

    device = _read_all(_export_with(index, tmp_path / "device", ("retain_device_identity",)))
    ct = next(ds for ds in device if ds.Modality == "CT")
    assert ct.StationName == STATION and ct.DeviceSerialNumber == SERIAL

    institution = _read_all(_export_with(index, tmp_path / "institution", ("retain_institution_identity",)))
    assert next(ds for ds in institution if ds.Modality == "CT").InstitutionName == INSTITUTION

    characteristics = _read_all(_export_with(index, tmp_path / "chars", ("retain_patient_characteristics",)))
    ct = next(ds for ds in characteristics if ds.Modality == "CT")
    assert ct.PatientSex == "F" and ct.PatientAge == "066Y" and float(ct.PatientWeight) == 61.5

    descriptors = _read_all(_export_with(index, tmp_path / "desc", ("clean_descriptors",)))
    ct = next(ds for ds in descriptors if ds.Modality == "CT")
    assert ct.StudyDescription.startswith("CT abdomen for")
    assert "HOSPITALSON" not in ct.StudyDescription.upper()


def _export_with(index, out: Path, options) -> Path:
    result = export(index, out, key=KEY, options=options, quiet=True)
    assert result.clean, (options, result.failed, result.findings)
    return out


def test_every_option_of_the_table_is_known_and_exclusive_dates_refused() -> None:
    columns = set(table()["columns"]) - {"basicProfile"}
    assert set(OPTIONS.values()) == columns
    assert table()["edition"] == "2024e" and len(table()["rows"]) == 621
    with pytest.raises(ValueError, match="exclude each other"):
        Profile(["retain_full_dates", "retain_modified_dates"])
    with pytest.raises(ValueError, match="unknown de-identification option"):
        Profile(["retain_everything"])
    assert Profile().action(0x00100010) == "Z"  # Patient's Name
    assert Profile().action(0x00291010) == "X"  # a private attribute
    assert Profile().action(0x60003000) == "X" and Profile(["clean_graphics"]).action(0x60003000) == "C"
    assert Profile().action(0x00280010) is None  # Rows is not identifying: kept


def test_dciodvfy_finds_no_new_errors(planted, tmp_path) -> None:
    import shutil

    tool = shutil.which("dciodvfy")
    assert tool, "dciodvfy (dicom3tools) is needed: the test command installs it"
    patient, index, _ = planted
    out = tmp_path / "export"
    export(index, out, key=KEY, options=("retain_modified_dates",), quiet=True, verify=False)

    def errors(path: Path) -> set[str]:
        run = subprocess.run([tool, str(path)], capture_output=True, text=True)
        return {line.split(" - ", 1)[-1] for line in (run.stdout + run.stderr).splitlines()
                if line.startswith("Error")}

    by_sop = {}
    for path in [*patient.ct_files, patient.sr_file]:
        by_sop[pydicom.dcmread(path).SOPInstanceUID] = path
    anonymized = {ds.SOPInstanceUID: p for p, ds in ((p, pydicom.dcmread(p)) for p in _exported(out))}
    assert len(anonymized) == len(by_sop)
    before = errors(patient.ct_files[0]) | errors(patient.sr_file)
    for path in _exported(out)[:3] + [p for p in _exported(out) if pydicom.dcmread(p).Modality == "SR"]:
        assert errors(path) <= before


def test_burned_in_objects_are_held_back_unless_allowed_or_blanked(tmp_path) -> None:
    cr = sample_with_burned_in_cr(tmp_path / "src")
    index = workbench.crawl(tmp_path / "src", index=tmp_path / "index", quiet=True)
    held = export(index, tmp_path / "held", key=KEY, quiet=True)
    assert len(held.held_back) == 1 and "BurnedInAnnotation" in held.held_back[0][1]
    assert held.exported == len(index.instances) - 1
    allowed = export(index, tmp_path / "allowed", key=KEY, allow_burned_in=True, quiet=True)
    assert not allowed.held_back and allowed.exported == len(index.instances)
    rule = BlankingRule(rectangles=((0, 0, 40, 20),), modality="CR")
    blanked = export(index, tmp_path / "blanked", key=KEY, blanking=[rule], quiet=True,
                     where="Modality = 'CR'")
    assert blanked.exported == 1 and blanked.clean
    out = pydicom.dcmread(next((tmp_path / "blanked").rglob("*.dcm")))
    pixels = out.pixel_array
    assert (pixels[:20, :40] == pixels.min()).all() and out.BurnedInAnnotation == "NO"
    original = pydicom.dcmread(cr, force=True)
    original.file_meta.TransferSyntaxUID = pydicom.uid.ImplicitVRLittleEndian  # a bare data set
    assert np.array_equal(pixels[20:, 40:], original.pixel_array[20:, 40:])
    assert "113101" in [c.CodeValue for c in out.DeidentificationMethodCodeSequence]


def test_the_map_stays_out_of_the_export(planted, tmp_path) -> None:
    import pyarrow.parquet as pq

    _, index, _ = planted
    out = tmp_path / "export"
    with pytest.raises(ValueError, match="must not be inside the export"):
        export(index, out, key=KEY, map_path=out / "map.parquet", quiet=True)
    export(index, out, key=KEY, map_path=tmp_path / "map.parquet", quiet=True, verify=False)
    mapping = pq.read_table(tmp_path / "map.parquet").to_pandas()
    names = mapping[(mapping["kind"] == "PatientName") & (mapping["original"] == PATIENT_NAME)]
    pseudonym = names["pseudonym"].iloc[0]
    assert {str(ds.PatientName) for ds in _read_all(out)} == {pseudonym}
    assert not list(out.rglob("*.parquet"))
