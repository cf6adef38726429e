"""How the profile's actions apply to sequences: combined codes, and codes that name people."""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset

import workbench
from workbench.deid.anonymize import Anonymizer
from workbench.deid.encoded import anonymize_encoded
from workbench.deid.exporter import _anonymized_by_pydicom, export
from workbench.dicom.header import read_header

sys.path.insert(0, str(Path(__file__).parent))
from phi_planting import part10  # noqa: E402

KEY = bytes(range(32))


def _part10(ds: Dataset) -> bytes:
    """``ds`` as an SR of patient DOE^JOHN, a Part 10 file in Explicit VR Little Endian."""
    ds.SOPClassUID, ds.SOPInstanceUID = "1.2.840.10008.5.1.4.1.1.88.67", "1.2.826.0.1.3680043.8.498.2"
    ds.PatientName, ds.PatientID = "DOE^JOHN", "MRN12345"
    return part10(ds)


def _both(ds: Dataset) -> pydicom.Dataset:
    """The data set anonymized by both paths (which must agree), read back."""
    data = _part10(ds)
    header = read_header(io.BytesIO(data), {}, locate_pixel_data=True)
    encoded = anonymize_encoded(Anonymizer(KEY), data, header)
    reference = _anonymized_by_pydicom(data, Anonymizer(KEY), header)
    assert encoded is not None and bytes(encoded) == reference
    return pydicom.dcmread(io.BytesIO(reference))


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = value, scheme, meaning
    return code


def test_what_is_type_2_inside_an_item_is_emptied_there_and_removed_at_the_top() -> None:
    study = Dataset()
    study.ReferencedSOPClassUID, study.ReferencedSOPInstanceUID = "1.2.840.10008.3.1.2.3.1", "1.2.3.4"
    request = Dataset()
    request.StudyInstanceUID = "1.2.3"
    request.ReferencedStudySequence = [study]  # Type 2 in a Referenced Request Sequence item
    request.RequestedProcedureID = "RP-4711"  # X in the table, Type 2 here
    ds = Dataset()
    ds.RequestedProcedureID = "RP-4711"
    ds.ReferencedStudySequence = [study]  # Type 3 in the General Study Module: "one or more items"
    ds.AcquisitionContextSequence = [Dataset()]  # Type 2
    ds.ReferencedRequestSequence = [request]
    out = _both(ds)
    assert "ReferencedStudySequence" not in out
    assert "AcquisitionContextSequence" in out and len(out.AcquisitionContextSequence) == 0
    assert len(out.ReferencedRequestSequence[0].ReferencedStudySequence) == 0
    assert "RequestedProcedureID" not in out and out.ReferencedRequestSequence[0].RequestedProcedureID == ""


def test_a_code_that_names_a_person_is_replaced_and_concept_codes_stay() -> None:
    person = Dataset()
    employee = _code("EMP-4711", "99HOSP", "TECHNICIA BERNADETTE")
    employee.URNCodeValue, employee.MappingResource = "urn:oid:1.2.3.4711", "BERNADETTE"
    meaning_only = Dataset()
    meaning_only.CodeMeaning = "TECHNICIA BERNADETTE"
    person.PersonIdentificationCodeSequence = [employee, meaning_only]
    person.InstitutionName = "SANKT-GEORGSSPITAL NORD"
    content = Dataset()
    content.ConceptNameCodeSequence = [_code("113870", "DCM", "Person Name")]
    content.PersonName = "TECHNICIA^BERNADETTE"
    ds = Dataset()
    ds.OperatorIdentificationSequence = [person]  # X/D: kept, with dummy values
    ds.ContentSequence = [content]  # D: free text replaced, concept codes are vocabulary
    ds.InstitutionCodeSequence = [_code("SGN-1", "99HOSP", "SANKT-GEORGSSPITAL NORD")]  # X/Z/D
    out = _both(ds)
    institution = out.InstitutionCodeSequence[0]
    assert "SGN-1" not in str(institution) and "GEORGSSPITAL" not in str(institution)
    codes = out.OperatorIdentificationSequence[0].PersonIdentificationCodeSequence
    assert codes[0].CodeValue
    assert all(value not in str(codes) for value in ("EMP-4711", "4711", "TECHNICIA", "BERNADETTE"))
    assert out.OperatorIdentificationSequence[0].InstitutionName != "SANKT-GEORGSSPITAL NORD"
    assert out.ContentSequence[0].ConceptNameCodeSequence[0].CodeMeaning == "Person Name"
    assert "TECHNICIA" not in str(out.ContentSequence[0].PersonName)


def _dciodvfy_errors(path: Path) -> set[str]:
    tool = shutil.which("dciodvfy")
    assert tool, "dciodvfy (dicom3tools) is needed: the test command installs it"
    run = subprocess.run([tool, str(path)], capture_output=True, text=True, errors="replace")
    return {line.split(" - ", 1)[-1] for line in (run.stdout + run.stderr).splitlines()
            if line.startswith("Error")}


def test_vendor_files_with_referenced_studies_stay_valid(corpus_dir, tmp_path) -> None:
    # An enhanced MR and dose reports whose Referenced Study Sequence came out empty, or whose
    # Referenced Request Sequence lost its Requested Procedure ID.
    names = ["series/dcm_qa_philips_enh/In/cl/2001_0001.dcm", "rdsr/NM-CT-RDSR-Siemens.dcm",
             "rdsr/MG-RDSR-Giotto-DBT.dcm", "rdsr/DX-RDSR-Canon_CXDI.dcm"]
    source = tmp_path / "src"
    source.mkdir()
    for name in names:
        shutil.copy(corpus_dir / name, source / Path(name).name)
    index = workbench.crawl(source, index=tmp_path / "index", quiet=True)
    result = export(index, tmp_path / "out", key=KEY, quiet=True, verify=False, allow_burned_in=True)
    assert result.exported == len(names) and not result.failed
    by_sop = {pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID: p for p in source.iterdir()}
    anonymizer = Anonymizer(KEY)
    for sop, original in by_sop.items():
        exported = next(p for p in (tmp_path / "out").rglob("*.dcm")
                        if pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID == anonymizer.uid(sop))
        assert _dciodvfy_errors(exported) <= _dciodvfy_errors(original), original.name


def test_a_known_sequence_written_as_un_is_walked() -> None:
    # An explicit VR file whose Referenced Request Sequence was written as UN (implicit VR items
    # inside, PS3.5 6.2.2): read as the sequence it is, its contents are de-identified.
    import struct

    request = Dataset()
    request.RequestingPhysician = "SMITH^ANNA"
    request.RequestedProcedureID = "RP-UN-4711"
    items = io.BytesIO()
    pydicom.dcmwrite(items, request, implicit_vr=True, little_endian=True)
    item = items.getvalue()
    element = struct.pack("<HH2sHL", 0x0040, 0xA370, b"UN", 0, 8 + len(item))
    element += struct.pack("<HHL", 0xFFFE, 0xE000, len(item)) + item
    data = _part10(Dataset()) + element  # (0040,A370) sorts after every element written
    header = read_header(io.BytesIO(data), {}, locate_pixel_data=True)
    assert anonymize_encoded(Anonymizer(KEY), data, header) is None  # pydicom reads UN of known tags
    out = _anonymized_by_pydicom(data, Anonymizer(KEY), header)
    assert b"SMITH" not in out and b"RP-UN-4711" not in out
    assert pydicom.dcmread(io.BytesIO(out)).ReferencedRequestSequence[0].RequestedProcedureID == ""
