"""The Retain Safe Private Option (PS3.15 E.3.10): only the private elements named safe stay."""

from __future__ import annotations

import io

import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid

from workbench.deid.anonymize import Anonymizer

KEY = b"k" * 32


def _read_back(implicit: bool) -> Dataset:
    """A data set with two private blocks, as read from bytes (raw, unconverted elements)."""
    ds = Dataset()
    ds.PatientName, ds.PatientID = "Doe^Jane", "ID-4711"
    ds.SOPClassUID, ds.SOPInstanceUID = pydicom.uid.CTImageStorage, generate_uid()
    ds.add_new(0x00090010, "LO", "ACME 1.1")
    ds.add_new(0x00091010, "LO", "kV 120")  # named safe
    ds.add_new(0x00091011, "LO", "Doe^Jane")  # same block, not named
    item = Dataset()
    item.ReferringPhysicianName = "Smith^John"
    ds.add_new(0x00091012, "SQ", [item])  # named safe: kept, its content de-identified
    ds.add_new(0x00110010, "LO", "OTHER")
    ds.add_new(0x00111010, "LO", "kV 120")  # the same element byte, another creator
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian
    buffer = io.BytesIO()
    ds.save_as(buffer, implicit_vr=implicit, little_endian=True)
    return pydicom.dcmread(io.BytesIO(buffer.getvalue()), force=True)


def _text(value: str | bytes) -> str:
    return (value.decode("ascii") if isinstance(value, bytes) else value).strip()


@pytest.mark.parametrize("implicit", [False, True], ids=["explicit VR", "implicit VR"])
def test_only_named_safe_private_elements_stay(implicit: bool) -> None:
    ds = _read_back(implicit)
    safe = [("ACME 1.1", 0x10), ("ACME 1.1", 0x12)]
    Anonymizer(KEY, ["retain_safe_private"], safe_private=safe).anonymize(ds)
    assert _text(ds[0x00090010].value) == "ACME 1.1"
    assert _text(ds[0x00091010].value) == "kV 120"  # UN in implicit VR: no dictionary knows it
    assert 0x00091011 not in ds
    assert 0x00110010 not in ds and 0x00111010 not in ds
    item = ds[0x00091012].value[0]
    assert "Smith" not in str(item.get("ReferringPhysicianName", ""))


def test_without_the_option_every_private_element_goes() -> None:
    ds = _read_back(implicit=False)
    Anonymizer(KEY, safe_private=[("ACME 1.1", 0x10)]).anonymize(ds)
    assert not [elem for elem in ds if elem.tag.is_private]
