"""Every column, on every real file we have, against pydicom's own parse of the same file."""

from __future__ import annotations

import datetime as dt
import math
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pydicom
import pytest
from pydicom.datadict import dictionary_VR, tag_for_keyword

import workbench
from workbench.index.columns import DICOM_COLUMNS, INSTANCE_COLUMNS, markdown_reference

sys.path.insert(0, str(Path(__file__).parent))
from pydicom_reference import reference_value  # noqa: E402

# Deliberate differences from pydicom, each stated: (file name, column) -> why.
DELIBERATE = {
    # pydicom leaves the ACR-NEMA time form "14:04:38" unparsed; PS3.5 6.2 notes that form for
    # older files and the index reads it.
    ("ExplVR_BigEnd.dcm", "StudyTime"): dt.time(14, 4, 38),
}


def _same(ours, ref) -> bool:
    if isinstance(ours, float) and isinstance(ref, float):
        return math.isclose(ours, ref, rel_tol=1e-12) or (math.isnan(ours) and math.isnan(ref))
    return ours == ref


def _compare(index: workbench.Index) -> tuple[int, list]:
    rows = index.store.read_table("instances").to_pylist()
    mismatches = []
    for row in rows:
        dataset = pydicom.dcmread(row["path"], stop_before_pixels=True, force=True)
        name = Path(row["path"]).name
        for column in DICOM_COLUMNS:
            ours = row[column.name]
            ref = reference_value(dataset, column.name, column.kind)
            if column.name in ("SOPInstanceUID", "SOPClassUID") and ref is None:
                continue  # taken from the file meta when the data set lacks it
            if (name, column.name) in DELIBERATE:
                ref = DELIBERATE[(name, column.name)]
            if not _same(ours, ref):
                mismatches.append((name, column.name, ours, ref))
    return len(rows), mismatches


@pytest.fixture(scope="module")
def pydicom_index(pydicom_files, tmp_path_factory):
    return workbench.crawl(pydicom_files, index=tmp_path_factory.mktemp("pd") / "index", quiet=True)


def test_every_column_matches_pydicom_on_pydicom_test_files(pydicom_index) -> None:
    count, mismatches = _compare(pydicom_index)
    assert count > 100
    assert mismatches == []


def test_every_column_matches_pydicom_on_the_shared_corpus(corpus_dir, tmp_path) -> None:
    index = workbench.crawl(corpus_dir, index=tmp_path / "index", quiet=True)
    count, mismatches = _compare(index)
    assert count >= 400
    assert mismatches == []


def test_column_types_are_real_types(pydicom_index) -> None:
    schema = pq.read_schema(next((pydicom_index.directory / "instances").glob("*.parquet")))
    assert schema.field("StudyDate").type == pa.date32()
    assert schema.field("StudyTime").type == pa.time64("us")
    assert schema.field("AcquisitionDateTime").type == pa.timestamp("us")
    assert schema.field("SliceThickness").type == pa.float64()
    assert schema.field("Rows").type == pa.int64()
    assert schema.field("ImagePositionPatient").type == pa.list_(pa.float64())
    assert schema.field("PatientName").type == pa.string()
    frame = pydicom_index.instances
    ct = frame[frame["path"].str.endswith("/CT_small.dcm")].iloc[0]
    assert ct["StudyDate"] == dt.date(2004, 1, 19)
    assert ct["Rows"] == 128 and str(frame["Rows"].dtype) == "Int64"
    assert list(ct["ImagePositionPatient"]) == [-158.135803, -179.035797, -75.699997]
    assert ct["sop_class_name"] == "CT Image Storage"
    assert ct["TransferSyntaxUID"] == "1.2.840.10008.1.2.1"
    assert ct["part10"]


def _patch_value(data: bytes, tag_vr: bytes, new: bytes) -> bytes:
    """Overwrite the value of the explicit-VR element starting with ``tag_vr``, keeping its length."""
    at = data.index(tag_vr)
    length = int.from_bytes(data[at + 6:at + 8], "little")
    return data[:at + 8] + new.ljust(length)[:length] + data[at + 8 + length:]


def test_a_value_that_does_not_parse_becomes_null(tmp_path) -> None:
    data = Path(pydicom.data.get_testdata_file("CT_small.dcm")).read_bytes()
    data = _patch_value(data, b"\x18\x00\x50\x00DS", b"abc")  # SliceThickness
    data = _patch_value(data, b"\x08\x00\x20\x00DA", b"20241345")  # StudyDate
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "bad_values.dcm").write_bytes(data)
    index = workbench.crawl(tmp_path / "src", index=tmp_path / "index", quiet=True)
    row = index.instances.iloc[0]
    assert math.isnan(row["SliceThickness"])
    assert row["StudyDate"] is None
    assert row["Rows"] == 128
    assert index.errors.empty


def test_the_column_list_is_the_one_definition() -> None:
    names = [c.name for c in INSTANCE_COLUMNS]
    assert len(names) == len(set(names))
    assert len(DICOM_COLUMNS) >= 60
    for column in DICOM_COLUMNS:
        # Tags and VRs are written out in the column list; they must be the standard's.
        assert column.tag == tag_for_keyword(column.name), column.name
        assert column.vr == dictionary_VR(column.tag).split(" or ")[0], column.name
    for required in ("CTDIvol", "KVP", "XRayTubeCurrent", "Exposure", "ImageOrientationPatient"):
        assert required in names
    assert "| `CTDIvol` | (0018,9345) | FD | double | instance |" in markdown_reference()
