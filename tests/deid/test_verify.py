"""The independent PHI check of an export (issue 5, point 5): ``workbench.deid.verify``.

The identifying values come from a crawl of the sample data; what they should be is read from
the files with pydicom, independently of the crawler. The planted cases start from files this
module scrubs by hand (every identifying value replaced with a dummy, pixel data kept), checks
that they are clean, then puts back ONE original value where anonymizers typically miss it.
"""

from __future__ import annotations

import json
import re
import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.uid import DeflatedExplicitVRLittleEndian

import workbench
from workbench.deid import verify
from workbench.deid.verify import Finding, PhiValue, format_findings, mask, phi_values, verify_export

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"
CT = SAMPLE / "WB-0001" / "20240312_CT_ABDOMEN" / "1_Topogram" / "IM-0001-0001.dcm"  # explicit VR, UTF-8
MR = SAMPLE / "WB-0002" / "20240506_MR_SCHAEDEL" / "3_t1_se_sag" / "MR000001"  # implicit VR, Latin-1
CR = SAMPLE / "WB-0003" / "20240918_CR_CHEST" / "1_Chest_PA" / "CR000001"  # no preamble, no meta

#: The kinds a copy of the original files must show, whatever the look.
KINDS = {
    "PatientName", "PatientID", "AccessionNumber", "ReferringPhysicianName", "InstitutionName",
    "InstitutionalDepartmentName", "StationName", "DeviceSerialNumber", "PatientBirthDate", "StudyDate",
    "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "FrameOfReferenceUID",
}


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory):
    return workbench.crawl([SAMPLE], index=tmp_path_factory.mktemp("verify") / "index", quiet=True)


@pytest.fixture(scope="module")
def phi(index) -> list[PhiValue]:
    return phi_values(index)


def read(path: Path) -> Dataset:
    return pydicom.dcmread(path, force=True)


def sample_files() -> list[Path]:
    return sorted(p for p in SAMPLE.rglob("*") if p.is_file())


def scrub(ds: Dataset, n: int) -> Dataset:
    """Every identifying value of a sample file replaced by hand with a dummy."""
    dummies = {
        "PatientName": "SUBJECT^ONE", "PatientID": "SUBJ-01", "PatientBirthDate": "19000101",
        "AccessionNumber": "ACC000", "InstitutionName": "Research Site", "InstitutionAddress": "",
        "ReferringPhysicianName": "", "StationName": "STATION", "InstitutionalDepartmentName": "Dept",
        "DeviceSerialNumber": "SN000", "StudyID": "S1", "InstanceCreationDate": "20000101",
        "StudyDate": "20000101", "SeriesDate": "20000101", "AcquisitionDate": "20000101",
        "ContentDate": "20000101", "SOPInstanceUID": f"2.25.{n}1", "StudyInstanceUID": f"2.25.{n}2",
        "SeriesInstanceUID": f"2.25.{n}3", "FrameOfReferenceUID": f"2.25.{n}4",
    }
    for keyword, dummy in dummies.items():
        if keyword in ds:
            setattr(ds, keyword, dummy)
    if "MediaStorageSOPInstanceUID" in getattr(ds, "file_meta", Dataset()):
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    return ds


def where_kind(findings: list[Finding]) -> list[tuple[str, str]]:
    return [(f.where, f.kind) for f in findings]


# --- phi_values -----------------------------------------------------------------------------------------

def test_phi_values_holds_the_identifying_values_read_from_the_files(phi: list[PhiValue]) -> None:
    kind_of = {v.value: v.kind for v in phi}
    seen_sop = set()
    for path in sample_files():
        ds = read(path)
        for keyword in ("PatientName", "PatientID", "AccessionNumber", "ReferringPhysicianName",
                        "InstitutionName", "StationName", "DeviceSerialNumber", "StudyInstanceUID",
                        "SeriesInstanceUID", "SOPInstanceUID", "FrameOfReferenceUID"):
            if keyword in ds:
                assert kind_of.get(str(ds[keyword].value)) == keyword, (path.name, keyword)
        assert kind_of[ds.PatientBirthDate] == "PatientBirthDate"
        assert kind_of[ds.StudyDate] == "StudyDate"  # SeriesDate, ContentDate... are the same value
        seen_sop.add(ds.SOPInstanceUID)
    assert len(seen_sop) == len(sample_files())
    assert sum(v.kind == "SOPInstanceUID" for v in phi) == len(sample_files())
    pairs = {(v.kind, v.value) for v in phi}
    # The MR patient's name (Latin-1 in the file), its components and other spellings.
    assert str(read(MR).PatientName) == "MÜLLER^JOSÉ"
    assert {("PatientName", "MÜLLER^JOSÉ"), ("PatientName", "MÜLLER"), ("PatientName", "JOSÉ"),
            ("PatientName", "JOSÉ MÜLLER"), ("PatientName", "MÜLLER, JOSÉ")} <= pairs
    assert ("ReferringPhysicianName", "BÖHM^ANNA^^DR.") in pairs
    assert ("StudyID", "4711") in pairs
    # Too generic to mean anything: StudyID "1"; body parts as name components (the whole names stay).
    values = {v.value for v in phi}
    assert "1" not in values
    assert {"PHANTOM^ABDOMEN", "PHANTOM^CHEST"} <= values
    assert not {"ABDOMEN", "CHEST", "PHANTOM"} & values


def test_phi_values_selection_options_and_errors(index, phi: list[PhiValue]) -> None:
    mr_study = read(MR).StudyInstanceUID
    mr = phi_values(index, [mr_study])
    values = {v.value for v in mr}
    assert {"WB-0002", "MÜLLER^JOSÉ", "20240506", "19850723", mr_study} <= values
    assert not {"WB-0001", "WB-0003", "PHANTOM^ABDOMEN", "20240312"} & values
    assert set(phi_values(index.instances, [mr_study])) == set(mr)  # a slice of the table works too
    no_dates = phi_values(index, dates=False)
    assert not [v for v in no_dates if v.kind.endswith("Date")]
    assert "MÜLLER^JOSÉ" in {v.value for v in no_dates}
    no_uids = phi_values(index, uids=False)
    assert not [v for v in no_uids if v.kind.endswith("UID")]
    assert "20240506" in {v.value for v in no_uids}
    with pytest.raises(ValueError, match="1.2.3.999"):
        phi_values(index, ["1.2.3.999"])
    with pytest.raises(ValueError, match="WB-0002"):
        phi_values(index, ["WB-0002"])
    with pytest.raises(ValueError):
        PhiValue("PatientID", " ")
    assert "MÜLLER" not in repr(mr) and mask("MÜLLER^JOSÉ") == "MÜ***(11)"


# --- a copy of the originals ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("copy") / "export"
    shutil.copytree(SAMPLE, target)
    return target


def test_copy_of_the_originals_is_caught_by_the_elements_and_by_the_bytes(copy: Path, phi) -> None:
    elements = verify_export(copy, phi, looks=("elements",))
    assert KINDS | {"StudyID"} <= {f.kind for f in elements}
    assert len({f.path for f in elements}) == len(sample_files())  # every file
    assert ("(0010,0010) PatientName", "PatientName") in where_kind(elements)
    assert ("(0002,0003) MediaStorageSOPInstanceUID", "SOPInstanceUID") in where_kind(elements)  # file meta
    assert ("(0008,0023) ContentDate", "StudyDate") in where_kind(elements)

    found_bytes = verify_export(copy, phi, looks=("bytes",))
    assert all(f.where.startswith("bytes at ") for f in found_bytes)
    assert KINDS <= {f.kind for f in found_bytes}
    assert "StudyID" not in {f.kind for f in found_bytes}  # "4711" is under 5 bytes: elements only
    assert len({f.path for f in found_bytes}) == len(sample_files())

    # All looks together: a value the elements look reports is not reported again by the bytes look.
    both = verify_export(copy, phi)
    assert not [f for f in both if f.where.startswith("bytes at ")]
    assert {(f.where, f.kind) for f in both if f.where == "folder name"} == {
        ("folder name", "PatientID"), ("folder name", "StudyDate")}  # WB-0001/, 20240312_CT_ABDOMEN/


def test_a_process_pool_gives_the_same_findings(copy: Path, phi, monkeypatch: pytest.MonkeyPatch) -> None:
    serial = verify_export(copy, phi, workers=1)
    monkeypatch.setattr(verify, "_FILES_PER_WORKER", 8)  # a pool for the sample's files
    assert verify_export(copy, phi, workers=2) == serial


def test_a_file_named_after_the_patient_id(phi, tmp_path: Path) -> None:
    export = tmp_path / "export"
    export.mkdir()
    shutil.copy(CR, export / "WB-0003.dcm")
    assert verify_export(export, phi, looks=("names",)) == [
        Finding(f"{mask('WB-0003')}.dcm", "file name", "PatientID", mask("WB-0003"))]


def test_findings_are_masked(copy: Path, phi) -> None:
    findings = verify_export(copy, phi)
    text = format_findings(findings)
    assert len(text.splitlines()) == len(findings) > 1000
    for value in phi:  # as a word of its own ("ANNA" is in "ReferringPhysicianName")
        word = rf"(?<![^\W_]){re.escape(value.value)}(?![^\W_])"
        assert not re.search(word, text, re.IGNORECASE), value.kind
    assert "WB-0001" not in text and "20240312" not in text  # in folder names of the paths too


# --- clean files, then one planted value at a time ---------------------------------------------------------

@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The three kinds of sample file, scrubbed: CT (explicit VR), MR (implicit VR, Latin-1), CR (bare)."""
    folder = tmp_path_factory.mktemp("clean")
    out = {}
    for n, (name, source) in enumerate((("ct", CT), ("mr", MR), ("cr", CR)), 1):
        out[name] = folder / f"{name}.dcm"
        scrub(read(source), n).save_as(out[name])
    return out


def test_clean_files_give_no_finding(clean: dict[str, Path], phi, tmp_path: Path) -> None:
    export = tmp_path / "export"
    export.mkdir()
    for path in clean.values():
        shutil.copy(path, export / path.name)
    (export / "manifest.csv").write_text("file,modality\nct.dcm,CT\nmr.dcm,MR\ncr.dcm,CR\n")
    ct = (export / "ct.dcm").read_bytes()
    assert len(ct) > 130_000 and "PixelData" in read(export / "ct.dcm")
    # What stays in a good export and must not look like PHI: body part, a code meaning with
    # "Phantom" (the sample patients are PHANTOM^ABDOMEN and PHANTOM^CHEST), the pixel data.
    assert b"ABDOMEN" in ct and b"Phantom" in ct and b"CHEST" in (export / "cr.dcm").read_bytes()
    assert verify_export(export, phi) == []
    for look in ("names", "bytes", "elements"):
        assert verify_export(export, phi, looks=(look,)) == []


def _private_tag(ds: Dataset) -> None:
    ds.private_block(0x0009, "ACME 1.0", create=True).add_new(0x01, "LO", "WB-0002")


def _private_sequence(ds: Dataset) -> None:
    item = Dataset()
    item.PatientName = "MÜLLER^JOSÉ"
    ds.private_block(0x0011, "ACME 1.0", create=True).add_new(0x10, "SQ", [Dataset(), item])


def _nested(ds: Dataset) -> None:
    deepest = Dataset()
    deepest.AccessionNumber = "WBA24050617"
    middle = Dataset()
    middle.ProtocolContextSequence = [deepest]
    top = Dataset()
    top.ScheduledProtocolCodeSequence = [middle]
    ds.RequestAttributesSequence = [top]


def _sr_text(ds: Dataset) -> None:
    items = []
    for text in ("No acute finding.", "Müller, José"):
        item = Dataset()
        item.RelationshipType, item.ValueType, item.TextValue = "CONTAINS", "TEXT", text
        items.append(item)
    ds.ContentSequence = items


def _given_family(ds: Dataset) -> None:
    ds.OtherPatientNames = "José Müller"


def _utf8_name(ds: Dataset) -> None:
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.PatientName = "MÜLLER^JOSÉ"


def _uid_root(ds: Dataset) -> None:
    reference = Dataset()
    reference.ReferencedSOPClassUID = ds.SOPClassUID
    reference.ReferencedSOPInstanceUID = read(MR).SOPInstanceUID + ".1"  # a "new" UID under the old one
    ds.ReferencedImageSequence = [reference]


def _date_time(ds: Dataset) -> None:
    ds.AcquisitionDateTime = "20240506152004.000000"


PLANTED: dict[str, tuple[str, Callable[[Dataset], None], str, str]] = {
    # case: (file, plant, where, kind)
    "private tag, implicit VR": ("mr", _private_tag, "(0009,1001) private", "PatientID"),
    "private sequence, implicit VR (UN)": (
        "mr", _private_sequence, "(0010,0010) PatientName in item 2 of (0011,1010) private", "PatientName"),
    "private sequence, explicit VR": (
        "ct", _private_sequence, "(0010,0010) PatientName in item 2 of (0011,1010) private", "PatientName"),
    "nested 3 deep": (
        "mr", _nested, "(0008,0050) AccessionNumber in item 1 of (0040,0440) ProtocolContextSequence"
        " in item 1 of (0040,0008) ScheduledProtocolCodeSequence in item 1 of (0040,0275)"
        " RequestAttributesSequence", "AccessionNumber"),
    "SR text value": (
        "mr", _sr_text, "(0040,A160) TextValue in item 2 of (0040,A730) ContentSequence", "PatientName"),
    "given family order": ("mr", _given_family, "(0010,1001) OtherPatientNames", "PatientName"),
    "UTF-8 accented name": ("mr", _utf8_name, "(0010,0010) PatientName", "PatientName"),
    "old UID as root of a new one": (
        "mr", _uid_root, "(0008,1155) ReferencedSOPInstanceUID in item 1 of (0008,1140)"
        " ReferencedImageSequence", "SOPInstanceUID"),
    "date in a date-time": ("cr", _date_time, "(0008,002A) AcquisitionDateTime", "StudyDate"),
}


@pytest.mark.parametrize("case", list(PLANTED))
def test_one_planted_value_is_found_where_it_is(case: str, clean, phi, tmp_path: Path) -> None:
    name, plant, where, kind = PLANTED[case]
    export = tmp_path / "export"
    export.mkdir()
    ds = read(clean[name])
    plant(ds)
    ds.save_as(export / "x.dcm")
    assert where_kind(verify_export(export, phi)) == [(where, kind)]


def test_utf8_name_is_found_by_the_bytes_look_too(clean, phi, tmp_path: Path) -> None:
    ds = read(clean["mr"])
    _utf8_name(ds)
    ds.save_as(tmp_path / "x.dcm")
    data = (tmp_path / "x.dcm").read_bytes()
    assert "MÜLLER^JOSÉ".encode() in data and "MÜLLER".encode("latin-1") not in data
    assert where_kind(verify_export(tmp_path / "x.dcm", phi, looks=("bytes",))) == [
        (f"bytes at {data.index('MÜLLER^JOSÉ'.encode())}", "PatientName")]


SPELLINGS = ["José Müller", "MÜLLER, JOSÉ", "Jose Muller", "JOSE MUELLER", "müller josé"]


@pytest.mark.parametrize("text", SPELLINGS)
def test_spellings_of_a_name_in_free_text(text: str, clean, tmp_path: Path) -> None:
    """Given only the name as stored, the bytes look finds other orders, cases and transliterations."""
    ds = read(clean["ct"])  # UTF-8
    ds.ImageComments = f"Called {text}'s GP"
    ds.save_as(tmp_path / "x.dcm")
    found = verify_export(tmp_path / "x.dcm", [PhiValue("PatientName", "MÜLLER^JOSÉ")])
    assert [f.where.split(" in ")[-1] for f in found] == ["(0020,4000) ImageComments"]
    assert found[0].where.startswith("bytes at ")


def test_a_json_escaped_name(tmp_path: Path) -> None:
    text = json.dumps({"note": "Dr. Böhm called"})
    (tmp_path / "notes.json").write_text(text)
    assert "Böhm" not in text  # B\u00f6hm
    found = verify_export(tmp_path, [PhiValue("ReferringPhysicianName", "BÖHM^ANNA^^DR."),
                                     PhiValue("ReferringPhysicianName", "BÖHM")])
    assert where_kind(found) == [(f"bytes at {text.index('B')} (line 1)", "ReferringPhysicianName")]


def _comment(clean: dict[str, Path], export: Path, *, deflate: bool = False) -> bytes:
    ds = read(clean["ct"])
    ds.ImageComments = "Patient WB-0001 moved during the scan, repeated"
    if deflate:
        ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    export.mkdir()
    ds.save_as(export / "x.dcm", enforce_file_format=True)
    return (export / "x.dcm").read_bytes()


def test_a_value_inside_free_text_is_found_by_the_bytes_look(clean, phi, tmp_path: Path) -> None:
    data = _comment(clean, tmp_path / "export")
    offset = data.index(b"WB-0001")
    assert verify_export(tmp_path / "export", phi, looks=("elements",)) == []  # not a whole value
    assert where_kind(verify_export(tmp_path / "export", phi)) == [
        (f"bytes at {offset} in (0020,4000) ImageComments", "PatientID")]


def test_a_deflated_data_set_is_inflated_for_the_bytes_look(clean, phi, tmp_path: Path) -> None:
    data = _comment(clean, tmp_path / "export", deflate=True)
    assert b"WB-0001" not in data
    findings = verify_export(tmp_path / "export", phi)
    assert len(findings) == 1 and findings[0].kind == "PatientID"
    assert findings[0].where.endswith("of the inflated data set in (0020,4000) ImageComments")


def test_a_folder_named_after_the_patient(clean, phi, tmp_path: Path) -> None:
    folder = tmp_path / "export" / "WB-0002"
    folder.mkdir(parents=True)
    shutil.copy(clean["mr"], folder / "x.dcm")
    assert verify_export(tmp_path / "export", phi) == [
        Finding(mask("WB-0002"), "folder name", "PatientID", mask("WB-0002"))]


def test_a_value_in_the_manifest(clean, phi, tmp_path: Path) -> None:
    export = tmp_path / "export"
    export.mkdir()
    shutil.copy(clean["mr"], export / "x.dcm")
    text = "file,patient\nx.dcm,P0001\ny.dcm,WBA24050617\n"
    (export / "manifest.csv").write_text(text)
    assert verify_export(export, phi) == [
        Finding("manifest.csv", f"bytes at {text.index('WBA')} (line 3)", "AccessionNumber",
                mask("WBA24050617"))]
    (export / "manifest.csv").unlink()
    pq.write_table(pa.table({"file": ["x.dcm", "y.dcm"], "patient": ["P0001", "MÜLLER^JOSÉ"]}),
                   export / "manifest.parquet")
    assert where_kind(verify_export(export, phi)) == [("column patient row 1", "PatientName")]


def test_a_zip_export_is_verified_member_by_member(clean, phi, tmp_path: Path) -> None:
    ds = read(clean["mr"])
    _private_tag(ds)
    ds.save_as(tmp_path / "x.dcm")
    with zipfile.ZipFile(tmp_path / "export.zip", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.write(tmp_path / "x.dcm", "P1/x.dcm")
        archive.write(clean["ct"], "WB-0002/ct.dcm")
    assert verify_export(tmp_path / "export.zip", phi) == [
        Finding("P1/x.dcm", "(0009,1001) private", "PatientID", mask("WB-0002")),
        Finding(mask("WB-0002"), "folder name", "PatientID", mask("WB-0002")),
    ]


def test_bad_arguments(phi, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        verify_export(tmp_path / "missing", phi)
    with pytest.raises(ValueError, match="0"):
        verify_export(tmp_path, phi, workers=0)
    with pytest.raises(ValueError, match="eyes"):
        verify_export(tmp_path, phi, looks=("eyes",))


def test_the_byte_search_over_stretches_finds_what_one_pass_over_everything_finds() -> None:
    import random

    phi = [PhiValue("PatientName", "MÜLLER^JOSÉ"), PhiValue("PatientID", "MRN-4711"),
           PhiValue("StudyDate", "20240312"), PhiValue("AccessionNumber", "ACC77"),
           PhiValue("StudyInstanceUID", "1.2.826.0.1.3680043.8.498.12345"),
           PhiValue("InstitutionName", "SANKT GEORG")]
    matcher = verify._Matcher(phi)
    forms = [b"M\xdcLLER", b"m\xc3\xbcller", b"Jos\xe9", b"mrn-4711", b"MRN-4711", b"20240312", b"2024-03-12",
             b"ACC77", b"1.2.826.0.1.3680043.8.498.12345", b"1.2.826.0.1.3680043.8.498.12345.7",
             b"91.2.826.0.1.3680043.8.498.12345", b"sankt georg", b"SANKT GEORGE", b"x20240312", b"020240312"]
    rng = random.Random(7)

    def one_pass(data: bytes) -> list[tuple[int, PhiValue]]:  # the search before stretches
        lowered, found = data.lower(), []
        for match in matcher.bytes_re.finditer(lowered):
            hit = matcher.byte_map.get(match.group())
            value, category = hit if hit else (matcher.uid(match.group().decode()), "uid")
            start = match.start()
            if value is not None and (start == 0 or lowered[start - 1] not in verify._BYTES_BEHIND[category]):
                found.append((start, value))
        return found

    total = 0
    for _ in range(200):
        pieces = []
        for _ in range(rng.randrange(1, 12)):
            # noise of every byte value, or of bytes values are made of, with forms between
            alphabet = bytes(range(256)) if rng.random() < 0.5 else b"abcmrn0123456789.-^ "
            pieces.append(bytes(rng.choice(alphabet) for _ in range(rng.randrange(0, 600))))
            pieces.append(rng.choice(forms))
        data = b"".join(pieces[rng.randrange(2):])  # sometimes a form at the very start
        expected = one_pass(data)
        assert list(matcher.search_bytes(data)) == expected
        total += len(expected)
    assert total > 300  # the forms were found, not only agreed upon


@pytest.mark.parametrize(("scheme", "where", "found"), [
    ("DCM", "meaning", False),  # a standard term: "Observer" is vocabulary there
    ("99LOCAL", "meaning", True),  # a hospital's own codes may name its people
    ("DCM", "comments", True),  # the same word in free text
])
def test_names_inside_the_meanings_of_standard_codes_are_vocabulary(tmp_path, scheme, where, found) -> None:
    ds = pydicom.dcmread(CT, force=True)
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator = "121008", scheme
    code.CodeMeaning = "Person Observer Name" if where == "meaning" else "Person Name"
    item = Dataset()
    item.ConceptNameCodeSequence = [code]
    ds.ContentSequence = [item]
    if where == "comments":
        ds.ImageComments = "seen by the observer on duty"
    ds.save_as(tmp_path / "x.dcm")
    findings = verify_export(tmp_path, [PhiValue("ReferringPhysicianName", "OBSERVER")])
    assert bool(findings) is found
    if found:
        assert all("OBSERVER" not in str(f) for f in findings)  # masked


def test_the_elements_look_walks_the_sequences_of_a_big_endian_file(tmp_path) -> None:
    from pydicom.uid import ExplicitVRBigEndian

    ds = Dataset()
    ds.SOPClassUID, ds.SOPInstanceUID = "1.2.840.10008.5.1.4.1.1.88.67", "2.25.1234"
    item = Dataset()
    item.PersonName = "HOSPITALSON^WILHELMINA"
    ds.ContentSequence = [item]
    ds.file_meta = pydicom.dataset.FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRBigEndian
    ds.save_as(tmp_path / "x.dcm", little_endian=False, implicit_vr=False, enforce_file_format=True)
    findings = verify_export(tmp_path, [PhiValue("PatientName", "HOSPITALSON^WILHELMINA")])
    assert [f.where for f in findings] == ["(0040,A123) PersonName in item 1 of (0040,A730) ContentSequence"]
