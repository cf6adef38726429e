"""encode_part10 against pydicom: what it writes reads back as the data set it was given."""

from __future__ import annotations

import io

import pydicom
import pytest
from pydicom.data import get_testdata_file

from workbench.dicom.writer import encode_part10

# Bundled with pydicom (no download): implicit and explicit VR, sequences, no file meta, UTF-8 and
# ISO 2022 (Japanese) character sets.
FILES = ["CT_small.dcm", "MR_small.dcm", "rtplan.dcm", "ExplVR_LitEndNoMeta.dcm", "SC_rgb_small_odd.dcm",
         "J2K_pixelrep_mismatch.dcm"]


def _read(data: bytes) -> pydicom.Dataset:
    return pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True, force=True)


def _values(ds: pydicom.Dataset) -> dict:
    return {elem.tag: (elem.VR, [_values(i) for i in elem.value] if elem.VR == "SQ" else elem.value)
            for elem in ds if elem.tag.group != 0x7FE0 and elem.tag.element != 0}


@pytest.mark.parametrize("name", FILES)
def test_changed_and_untouched_values_read_back(name: str) -> None:
    ds = pydicom.dcmread(get_testdata_file(name), stop_before_pixels=True, force=True)
    if "TransferSyntaxUID" not in ds.file_meta:
        ds.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
        ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    syntax = ds.file_meta.TransferSyntaxUID
    uncompressed = syntax in (pydicom.uid.ImplicitVRLittleEndian, pydicom.uid.ExplicitVRLittleEndian)
    # Changed the way the anonymizer changes them: str, multi-valued str, odd lengths, non-ASCII.
    ds.StudyInstanceUID = "2.25.1234"  # odd length: padded with NUL
    ds.ImageType = ["DERIVED", "SECONDARY", "X"]
    ds.StudyDate = "19000101"
    ds.StudyDescription = "ANONYMIZED"
    ds.PatientName = "P1234"
    charset = str(ds.get("SpecificCharacterSet", ""))
    ds.InstitutionName = "\u5c71\u7530" if "IR 87" in charset else "Kl\u00ednik" if charset else "Clinic"
    ds.AccessionNumber = ""
    expected = _values(ds)
    written = encode_part10(ds)
    assert written[128:132] == b"DICM"
    back = _read(written)
    # Written as explicit VR little endian; an encapsulated syntax is kept for its pixel data.
    written_syntax = pydicom.uid.ExplicitVRLittleEndian if uncompressed else syntax
    assert back.file_meta.TransferSyntaxUID == written_syntax
    assert _values(back) == expected
    assert b"\x20\x00\x0d\x00UI\x0a\x002.25.1234\x00" in written  # (0020,000D): padded with NUL
    assert b"DERIVED\\SECONDARY\\X " in written  # multiple values, padded with a space
