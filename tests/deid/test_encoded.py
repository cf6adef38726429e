"""The encoded-bytes anonymizer against the pydicom one: the same file, byte for byte."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pydicom
import pytest

from workbench.deid.anonymize import Anonymizer
from workbench.deid.encoded import anonymize_encoded
from workbench.deid.exporter import _anonymized_by_pydicom
from workbench.deid.profile import CLEAN_PIXEL_DATA_CODE, OPTION_CODES, PROFILE_CODE
from workbench.dicom.header import HeaderError, read_header

sys.path.insert(0, str(Path(__file__).parent))
from phi_planting import ACCESSION, PATIENT_NAME, make_planted_patient, part10  # noqa: E402

KEY = bytes(range(32))
PYDICOM_DATA = Path(pydicom.__file__).parent / "data"  # the bundled files only (no downloads)


def get_testdata_file(name: str) -> Path:
    return PYDICOM_DATA / "test_files" / name
OPTION_SETS = [
    (),
    ("retain_modified_dates", "clean_descriptors", "clean_structured_content"),
    ("retain_uids", "retain_device_identity", "retain_patient_characteristics", "clean_graphics"),
    ("retain_full_dates", "retain_institution_identity"),
]


def _both(path: Path, options: tuple[str, ...]) -> tuple[bytes | None, bytes | None] | None:
    """(encoded path's file, pydicom path's file) for a little endian file, (None, None) when
    the encoded path leaves it to pydicom; None for other files."""
    data = path.read_bytes()
    try:
        header = read_header(io.BytesIO(data), {0x00280100: "US"}, locate_pixel_data=True)
    except HeaderError:
        return None
    if header.deflated or not header.little_endian:
        return None
    anonymizer = Anonymizer(KEY, options)
    fast = anonymize_encoded(anonymizer, data, header)
    if fast is None:
        return None, None
    return bytes(fast), _anonymized_by_pydicom(data, Anonymizer(KEY, options), header)


def _compare(files: list[Path], options: tuple[str, ...]) -> tuple[int, list[str]]:
    """How many files took the encoded path, and those whose bytes differ from pydicom's."""
    taken, differing = 0, []
    for path in files:
        pair = _both(path, options)
        if pair is None or pair[0] is None:
            continue
        taken += 1
        if pair[0] != pair[1]:
            differing.append(path.name)
    return taken, differing


@pytest.fixture(scope="module")
def planted_files(tmp_path_factory) -> list[Path]:
    patient = make_planted_patient(tmp_path_factory.mktemp("encoded") / "src")
    return [*patient.ct_files, patient.sr_file]


@pytest.mark.parametrize("options", OPTION_SETS, ids=lambda o: "+".join(o) or "basic")
def test_planted_phi_files_come_out_identical(planted_files, options) -> None:
    taken, differing = _compare(planted_files, options)
    assert taken == len(planted_files)  # plain files, every one by the encoded path
    assert differing == []


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("options", OPTION_SETS, ids=lambda o: "+".join(o) or "basic")
def test_pydicom_test_files_come_out_identical(options) -> None:
    files = sorted(p for p in (PYDICOM_DATA / "test_files").iterdir() if p.suffix == ".dcm")
    files += sorted((PYDICOM_DATA / "charset_files").glob("*.dcm"))
    taken, differing = _compare(files, options)
    assert taken > 50
    assert differing == []


@pytest.mark.filterwarnings("ignore")
def test_vendor_corpus_comes_out_identical(corpus_dir) -> None:
    files = sorted(p for p in corpus_dir.rglob("*") if p.is_file() and p.suffix in ("", ".dcm"))
    taken, differing = _compare(files, OPTION_SETS[1])  # the options that change the most
    assert taken > len(files) // 2
    assert differing == []


@pytest.mark.filterwarnings("ignore")
def test_files_the_encoded_path_cannot_reproduce_are_left_to_pydicom() -> None:
    anonymizer = Anonymizer(KEY)
    charsets = PYDICOM_DATA / "charset_files"
    # Japanese (ISO 2022 escapes) and Greek names: pydicom decodes those character sets.
    big_endian = get_testdata_file("MR_small_bigendian.dcm")
    for path in (charsets / "chrH31.dcm", charsets / "chrGreek.dcm", big_endian):
        data = path.read_bytes()
        header = read_header(io.BytesIO(data), {}, locate_pixel_data=True)
        assert anonymize_encoded(anonymizer, data, header) is None, path.name
    # Latin-1 (French, German) and UTF-8 names are read here (and compared above).
    for name in ("chrFren.dcm", "chrGerm.dcm", "chrX1.dcm"):
        data = (charsets / name).read_bytes()
        header = read_header(io.BytesIO(data), {}, locate_pixel_data=True)
        assert anonymize_encoded(anonymizer, data, header) is not None, name


@pytest.mark.parametrize(("charset", "codec"), [("ISO_IR 100", "latin_1"), ("ISO_IR 192", "utf_8")])
def test_names_outside_ascii_are_cleaned_from_text_in_their_character_set(charset, codec) -> None:
    ds = _small(SpecificCharacterSet=charset, StudyDescription="CT für José Müller, Notaufnahme")
    ds.PatientName = "MÜLLER^JOSÉ"
    outputs = _anonymized_both(part10(ds), ("clean_descriptors",))
    assert len(outputs) == 2 and outputs[0] == outputs[1]
    out = pydicom.dcmread(io.BytesIO(outputs[0]))
    assert out.StudyDescription == "CT für *, Notaufnahme"
    assert "Müller".encode(codec) not in outputs[0] and "MÜLLER".encode(codec) not in outputs[0]


def _planted_dataset() -> pydicom.Dataset:
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    ds.PatientName = PATIENT_NAME
    ds.AccessionNumber = ACCESSION
    ds.StudyDescription = f"CT abdomen, accession {ACCESSION}"
    ds.AdmittingDiagnosesDescription = [f"PAIN ({ACCESSION})", "HOSPITALSON FELL"]
    return ds


@pytest.mark.parametrize("path", ["pydicom", "encoded"])
def test_descriptions_are_cleaned_of_identifiers_the_walk_removed_before(path, tmp_path) -> None:
    # AccessionNumber (0008,0050) is emptied before StudyDescription (0008,1030) is cleaned:
    # the identifying strings must come from the data set as it was.
    ds = _planted_dataset()
    anonymizer = Anonymizer(KEY, ["clean_descriptors"])
    if path == "pydicom":
        out = anonymizer.anonymize(ds)
    else:
        source = tmp_path / "in.dcm"
        ds.save_as(source)
        data = source.read_bytes()
        header = read_header(io.BytesIO(data), {}, locate_pixel_data=True)
        out = pydicom.dcmread(io.BytesIO(bytes(anonymize_encoded(anonymizer, data, header))), force=True)
    assert out.StudyDescription == "CT abdomen, accession *"
    # A multi-valued description is cleaned value by value (it stays two values).
    assert list(out.AdmittingDiagnosesDescription) == ["PAIN (*)", "* FELL"]


@pytest.mark.filterwarnings("ignore")
def test_clean_graphics_removes_overlay_bitmaps_in_both_paths() -> None:
    path = get_testdata_file("examples_overlay.dcm")
    fast, reference = _both(path, ("clean_graphics",))
    assert fast == reference
    out = pydicom.dcmread(io.BytesIO(reference))
    assert 0x60003000 not in out  # no overlay bitmap is known to hold no burned-in text
    assert 0x60000010 in out  # the overlay's description stays


def test_deidentification_codes_are_those_of_the_dcm_scheme() -> None:
    from pydicom.sr.codedict import codes

    keywords = {
        "retain_safe_private": "RetainSafePrivateOption", "retain_uids": "RetainUidsOption",
        "retain_device_identity": "RetainDeviceIdentityOption",
        "retain_institution_identity": "RetainInstitutionIdentityOption",
        "retain_patient_characteristics": "RetainPatientCharacteristicsOption",
        "retain_full_dates": "RetainLongitudinalTemporalInformationFullDatesOption",
        "retain_modified_dates": "RetainLongitudinalTemporalInformationModifiedDatesOption",
        "clean_descriptors": "CleanDescriptorsOption",
        "clean_structured_content": "CleanStructuredContentOption", "clean_graphics": "CleanGraphicsOption",
    }
    assert set(keywords) == set(OPTION_CODES)
    pairs = [(OPTION_CODES[name], keyword) for name, keyword in keywords.items()]
    pairs += [(PROFILE_CODE, "BasicApplicationConfidentialityProfile")]
    pairs += [(CLEAN_PIXEL_DATA_CODE, "CleanPixelDataOption")]
    for (value, meaning), keyword in pairs:
        code = getattr(codes.DCM, keyword)
        assert (value, meaning) == (code.value, code.meaning)


@pytest.mark.filterwarnings("ignore")
def test_an_export_of_files_in_every_encoding_is_complete_and_clean(tmp_path) -> None:
    import shutil

    import workbench
    from workbench.deid.exporter import export

    source = tmp_path / "src"
    source.mkdir()
    charsets = PYDICOM_DATA / "charset_files"
    # French (read here) and Japanese (by pydicom) names, big endian and deflated (pydicom), and
    # one plain file. The secondary captures are allowed (they are held back by default).
    for path in (charsets / "chrFren.dcm", charsets / "chrH31.dcm", get_testdata_file("image_dfl.dcm"),
                 get_testdata_file("SC_rgb_small_odd_big_endian.dcm"), get_testdata_file("CT_small.dcm")):
        shutil.copy(path, source / path.name)
    names = {path.name: str(pydicom.dcmread(path).PatientName) for path in source.iterdir()}
    index = workbench.crawl(source, index=tmp_path / "index", quiet=True)
    result = export(index, tmp_path / "out", key=KEY, workers=1, quiet=True, allow_burned_in=True)
    assert (result.exported, result.failed, result.findings) == (5, [], [])
    assert result.verified
    for path in (tmp_path / "out").rglob("*.dcm"):
        ds = pydicom.dcmread(path)
        assert str(ds.PatientName) not in names.values()
        assert ds.PatientIdentityRemoved == "YES"


def _small(**elements) -> pydicom.Dataset:
    ds = pydicom.Dataset()
    ds.SOPClassUID, ds.SOPInstanceUID = "1.2.840.10008.5.1.4.1.1.2", "1.2.826.0.1.3680043.8.498.1"
    ds.PatientName, ds.PatientID = "DOE^JOHN", "MRN12345"
    for keyword, value in elements.items():
        setattr(ds, keyword, value)
    return ds


def _anonymized_both(data: bytes, options: tuple[str, ...] = ()) -> list[bytes]:
    header = read_header(io.BytesIO(data), {0x00280100: "US"}, locate_pixel_data=True)
    encoded = anonymize_encoded(Anonymizer(KEY, options), data, header)
    outputs = [_anonymized_by_pydicom(data, Anonymizer(KEY, options), header)]
    return outputs + ([bytes(encoded)] if encoded is not None else [])


def test_an_element_running_past_its_item_is_left_to_pydicom_and_leaks_nothing() -> None:
    # An element inside an item whose length runs over the top-level PatientName and PatientID
    # must not swallow them into a kept value: pydicom reads the sequence by its length.
    import struct

    data = part10(_small())
    at = data.index(b"\x10\x00\x10\x00PN")
    value = b"1.2.840.10008.5.1.4.1.1.2\x00"
    element = struct.pack("<HH2sH", 0x0008, 0x1150, b"UI", len(value) + 32) + value
    item = struct.pack("<HHL", 0xFFFE, 0xE000, len(element)) + element
    sequence = struct.pack("<HH2sHL", 0x0008, 0x1140, b"SQ", 0, len(item)) + item
    broken = data[:at] + sequence + data[at:]
    header = read_header(io.BytesIO(broken), {}, locate_pixel_data=True)
    assert anonymize_encoded(Anonymizer(KEY), broken, header) is None
    for out in _anonymized_both(broken):
        assert b"DOE^JOHN" not in out and b"MRN12345" not in out


@pytest.mark.parametrize("options", [("retain_uids",), ("retain_institution_identity",)])
def test_the_items_of_a_kept_sequence_are_de_identified_too(options) -> None:
    inner = pydicom.Dataset()
    inner.ReferencedSOPClassUID, inner.ReferencedSOPInstanceUID = "1.2.840.10008.5.1.4.1.1.2", "1.2.3.4"
    inner.CodeValue, inner.CodingSchemeDesignator, inner.CodeMeaning = "H1", "99LOCAL", "Sankt Georg"
    inner.PerformingPhysicianName = "DOCTORSON^FRIEDRICH"
    inner.add_new(0x00110010, "LO", "ACME 1.0")
    inner.add_new(0x00111001, "PN", "DOE^JOHN")
    ds = _small(ReferencedImageSequence=[inner], InstitutionCodeSequence=[inner])
    outputs = _anonymized_both(part10(ds), options)
    assert len(outputs) == 2 and outputs[0] == outputs[1]
    out = pydicom.dcmread(io.BytesIO(outputs[0]))
    kept = out.ReferencedImageSequence if "retain_uids" in options else out.InstitutionCodeSequence
    assert len(kept) == 1 and kept[0].CodeValue == "H1"
    assert b"DOE^JOHN" not in outputs[0] and b"DOCTORSON" not in outputs[0] and b"ACME" not in outputs[0]


def test_the_file_meta_loses_the_devices_and_private_information() -> None:
    data = part10(_small())
    ds = pydicom.dcmread(io.BytesIO(data))
    ds.file_meta.SourceApplicationEntityTitle = "CTROOM-ALPHA-07"
    ds.file_meta.PrivateInformationCreatorUID = "1.2.826.0.1.3680043.8.498.9"
    ds.file_meta.PrivateInformation = b"DOE^JOHN"
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    outputs = _anonymized_both(buffer.getvalue())
    assert len(outputs) == 2 and outputs[0] == outputs[1]
    assert b"CTROOM" not in outputs[0] and b"DOE^JOHN" not in outputs[0]
    meta = pydicom.dcmread(io.BytesIO(outputs[0])).file_meta
    assert "SourceApplicationEntityTitle" not in meta and "PrivateInformation" not in meta


def test_float_pixel_data_is_exported_by_both_paths() -> None:
    ds = _small(Rows=2, Columns=2, SamplesPerPixel=1, BitsAllocated=32, FloatPixelData=bytes(range(16)))
    outputs = _anonymized_both(part10(ds))
    assert len(outputs) == 2 and outputs[0] == outputs[1]
    assert pydicom.dcmread(io.BytesIO(outputs[0])).FloatPixelData == bytes(range(16))


@pytest.mark.parametrize("case", ["leading space in the character set", "pseudonym outside Latin-1",
                                  "accented text in a CS element", "name with an empty last group"])
def test_what_the_encoded_path_reads_differently_goes_to_pydicom_or_agrees(case) -> None:
    ds = _small(SpecificCharacterSet="ISO_IR 100", StudyDescription="CT für José Müller")
    ds.PatientName = "MÜLLER^JOSÉ"
    pseudonym = None
    if case == "leading space in the character set":
        ds.SpecificCharacterSet = "  ISO_IR 192"  # pydicom does not trim it: not UTF-8 for pydicom
    elif case == "pseudonym outside Latin-1":
        pseudonym = lambda patient_id, name: "ŁUKASZ"  # noqa: E731
    elif case == "accented text in a CS element":
        ds.ReasonForTheAttributeModification = "MÜLLER"  # CS: pydicom reads no character set in it
    else:
        ds.PatientName = "MÜLLER^JOSÉ="
    data = part10(ds)
    header = read_header(io.BytesIO(data), {}, locate_pixel_data=True)
    options = ("clean_descriptors",)
    encoded = anonymize_encoded(Anonymizer(KEY, options, patient_pseudonym=pseudonym), data, header)
    reference = _anonymized_by_pydicom(data, Anonymizer(KEY, options, patient_pseudonym=pseudonym), header)
    if case == "name with an empty last group":
        assert encoded is not None and bytes(encoded) == reference
    else:
        assert encoded is None


def test_safe_private_pairs_are_checked() -> None:
    for bad in [("", 0x10), ("ACME 1.1", 0x1010), ("ACME 1.1", 0x05)]:
        with pytest.raises(ValueError, match="is not \\(private creator, element byte"):
            Anonymizer(KEY, ["retain_safe_private"], safe_private=[bad])
