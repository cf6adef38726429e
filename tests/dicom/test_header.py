"""The fast header reader on encodings built byte by byte, and on real files."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from pydicom.datadict import DicomDictionary, dictionary_VR
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

from workbench.dicom.header import HeaderError, read_header


def wanted(*tags: int) -> dict[int, str]:
    """The tags to read, with their dictionary VR as the crawler passes them (UN when unknown)."""
    return {tag: dictionary_VR(tag) if tag in DicomDictionary else "UN" for tag in tags}


PATIENT_NAME = 0x00100010
PATIENT_ID = 0x00100020
ROWS = 0x00280010
STUDY_UID = 0x0020000D


def _dataset() -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ds.SOPInstanceUID = "1.2.3.4"
    ds.PatientName = "DOE^JANE"
    ds.PatientID = "P1"
    ds.StudyInstanceUID = "1.2.3"
    ds.Rows = 512
    return ds


def _encode(ds: Dataset, syntax: str, preamble: bool = True) -> bytes:
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = syntax
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=preamble, implicit_vr=None)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "syntax",
    [ExplicitVRLittleEndian, ImplicitVRLittleEndian, ExplicitVRBigEndian, DeflatedExplicitVRLittleEndian],
)
def test_reads_every_uncompressed_encoding(syntax: str) -> None:
    data = _encode(_dataset(), syntax)
    header = read_header(io.BytesIO(data), wanted(PATIENT_NAME, ROWS))
    assert header.transfer_syntax_uid == syntax
    assert header.elements[PATIENT_NAME][1].rstrip(b" ") == b"DOE^JANE"
    fmt = ">H" if syntax == ExplicitVRBigEndian else "<H"
    assert struct.unpack(fmt, header.elements[ROWS][1])[0] == 512
    assert header.implicit_vr == (syntax == ImplicitVRLittleEndian)
    assert header.part10


@pytest.mark.parametrize("implicit", [True, False])
def test_reads_a_bare_data_set_without_preamble(implicit: bool) -> None:
    buffer = io.BytesIO()
    ds = _dataset()
    ds.save_as(buffer, implicit_vr=implicit, little_endian=True)
    header = read_header(io.BytesIO(buffer.getvalue()), wanted(PATIENT_ID))
    assert not header.part10
    assert header.transfer_syntax_uid is None
    assert header.implicit_vr == implicit
    assert header.elements[PATIENT_ID][1].rstrip(b" ") == b"P1"


def test_stops_before_tags_it_does_not_need() -> None:
    data = _encode(_dataset(), ExplicitVRLittleEndian)
    # Cut the file right after PatientID: reading only up to it must not notice the cut.
    cut = data.index(b"P1") + 2
    header = read_header(io.BytesIO(data[:cut]), wanted(PATIENT_ID))
    assert header.elements[PATIENT_ID][1] == b"P1"
    with pytest.raises(HeaderError) as excinfo:
        read_header(io.BytesIO(data[: cut - 1]), wanted(PATIENT_ID))
    assert excinfo.value.kind == "truncated"


def test_skips_nested_undefined_length_sequences() -> None:
    ds = _dataset()
    inner = Dataset()
    inner.CodeValue = "X"
    inner.CodeMeaning = "nested"
    item = Dataset()
    item.ConceptNameCodeSequence = [inner]
    ds.ContentSequence = [item, item]  # (0040,A730) after the patient module
    ds.PatientComments = "after"  # (0010,4000)
    ds["ContentSequence"].is_undefined_length = True
    ds.ContentSequence[0].is_undefined_length_sequence_item = True
    data = _encode(ds, ExplicitVRLittleEndian)
    header = read_header(io.BytesIO(data), wanted(0x00104000, 0x0040A730, 0x00400000))
    assert header.elements[0x00104000][1].rstrip() == b"after"
    assert 0x0040A730 in header.elements


def test_invalid_vr_is_reported() -> None:
    data = bytearray(_encode(_dataset(), ExplicitVRLittleEndian))
    at = data.index(b"PN")
    data[at:at + 2] = b"ZZ"
    with pytest.raises(HeaderError) as excinfo:
        read_header(io.BytesIO(bytes(data)), wanted(PATIENT_NAME, ROWS))
    assert excinfo.value.kind == "bad_vr"
    assert "(0010,0010)" in str(excinfo.value)


def test_undefined_length_on_a_text_element_is_reported() -> None:
    data = bytearray(_encode(_dataset(), ExplicitVRLittleEndian))
    at = data.index(b"\x10\x00\x20\x00LO")  # PatientID: make it a long-form element of undefined length
    data[at + 4:at + 8] = b"UT\x00\x00"
    data[at + 8:at + 8] = b"\xff\xff\xff\xff"
    with pytest.raises(HeaderError) as excinfo:
        read_header(io.BytesIO(bytes(data)), wanted(PATIENT_NAME, ROWS))
    assert excinfo.value.kind == "bad_length"


@pytest.mark.parametrize(
    ("content", "kind"),
    [
        (b"", "empty"),
        (b"hello, this is a text file and not DICOM at all\n" * 4, "not_dicom"),
        (b"\x00" * 128 + b"NOPE" + b"\x00" * 64, "not_dicom"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 200, "not_dicom"),
    ],
)
def test_non_dicom_content_is_classified(content: bytes, kind: str) -> None:
    with pytest.raises(HeaderError) as excinfo:
        read_header(io.BytesIO(content), wanted(PATIENT_NAME))
    assert excinfo.value.kind == kind


def test_truncated_inside_file_meta() -> None:
    data = _encode(_dataset(), ExplicitVRLittleEndian)
    with pytest.raises(HeaderError) as excinfo:
        read_header(io.BytesIO(data[:150]), wanted(PATIENT_NAME))
    assert excinfo.value.kind == "truncated"


def test_deflated_data_that_does_not_inflate() -> None:
    data = _encode(_dataset(), DeflatedExplicitVRLittleEndian)
    meta_end = 132 + 12 + struct.unpack("<L", data[140:144])[0]
    broken = data[:meta_end] + b"\xff" * 40
    with pytest.raises(HeaderError) as excinfo:
        read_header(io.BytesIO(broken), wanted(PATIENT_NAME))
    assert excinfo.value.kind == "truncated"
    assert zlib.decompress(data[meta_end:], -zlib.MAX_WBITS)  # the intact one does inflate


def test_follows_the_data_when_the_transfer_syntax_lies(pydicom_files) -> None:
    # SC_rgb_jpeg.dcm declares explicit VR but its data set is implicit VR (pydicom warns the same).
    with open(pydicom_files / "SC_rgb_jpeg.dcm", "rb") as fp:
        header = read_header(fp, wanted(0x00080018))
    assert header.implicit_vr
    assert header.elements[0x00080018][1].rstrip(b"\x00").startswith(b"1.2.826.0.1.3680043")
