"""workbench.net.storage against a real Orthanc, checked through Orthanc's REST API."""

from __future__ import annotations

import io
import json
import urllib.request
from pathlib import Path

import pydicom
import pytest
from conftest import ORTHANC_AET, TEST_AET, needs_dicomweb

from workbench.net import PacsError, send


def _lookup(orthanc, sop_instance_uid: str) -> list[dict]:
    request = urllib.request.Request(f"http://127.0.0.1:{orthanc.http_port}/tools/lookup",
                                     data=sop_instance_uid.encode(), method="POST")
    with urllib.request.urlopen(request, timeout=10) as reply:
        return [hit for hit in json.loads(reply.read()) if hit["Type"] == "Instance"]


def _stored_file(orthanc, orthanc_id: str) -> pydicom.Dataset:
    with urllib.request.urlopen(f"http://127.0.0.1:{orthanc.http_port}/instances/{orthanc_id}/file",
                                timeout=10) as reply:
        return pydicom.dcmread(io.BytesIO(reply.read()))


def test_images_and_a_dose_report_arrive_intact(orthanc, sample_dir: Path, tmp_path: Path) -> None:
    images = sorted(sample_dir.rglob("*.dcm"))[:3]
    report = next(sample_dir.rglob("SR*.dcm"))
    junk = tmp_path / "notes.txt"
    junk.write_text("not DICOM")
    result = send([*images, report, junk], orthanc.url, calling_aet=TEST_AET, quiet=True)
    assert result.sent == 4
    assert [(where, reason.split(":")[0]) for where, reason in result.failed] == [(str(junk), "not sendable")]
    for path in [*images, report]:
        source = pydicom.dcmread(path)
        (hit,) = _lookup(orthanc, source.SOPInstanceUID)
        stored = _stored_file(orthanc, hit["ID"])
        assert stored.SOPClassUID == source.SOPClassUID
        if "PixelData" in source:
            assert stored.PixelData == source.PixelData


def test_a_data_set_in_memory_is_sent_too(orthanc, pydicom_files: Path) -> None:
    ds = pydicom.dcmread(pydicom_files / "MR_small.dcm")
    result = send([ds], orthanc.url, calling_aet=TEST_AET, quiet=True)
    assert (result.sent, result.failed) == (1, [])
    assert _lookup(orthanc, ds.SOPInstanceUID)


def test_a_wrong_called_ae_title_raises_a_clear_error(orthanc, sample_dir: Path) -> None:
    url = orthanc.url.replace(ORTHANC_AET, "ELSEWHERE")
    with pytest.raises(PacsError, match="rejected the association.*called AE title"):
        send(sorted(sample_dir.rglob("*.dcm"))[:1], url, calling_aet=TEST_AET, quiet=True)


def test_stow_rs_stores_files_and_lists_what_failed(orthanc, pydicom_files: Path, tmp_path: Path) -> None:
    needs_dicomweb()
    files = [pydicom_files / "rtplan.dcm", pydicom_files / "waveform_ecg.dcm"]
    junk = tmp_path / "notes.txt"
    junk.write_text("not DICOM")
    result = send([*files, junk], orthanc.dicomweb, quiet=True)
    assert result.sent == 2
    assert [where for where, _ in result.failed] == [str(junk)]
    for path in files:
        source = pydicom.dcmread(path)
        (hit,) = _lookup(orthanc, source.SOPInstanceUID)
        assert _stored_file(orthanc, hit["ID"]).SOPClassUID == source.SOPClassUID


def test_a_class_in_two_transfer_syntaxes_is_sent_as_stored(orthanc, sample_dir: Path) -> None:
    # the sample's coronal CT series is RLE Lossless, the axial one uncompressed: both CT Image Storage
    rle = sorted((sample_dir / "WB-0001/20240312_CT_ABDOMEN/3_Abdomen_COR_5.0_B30f").iterdir())[:2]
    plain = sorted((sample_dir / "WB-0001/20240312_CT_ABDOMEN/2_Abdomen_5.0_B30f").iterdir())[5:7]
    result = send([*rle, *plain], orthanc.url, calling_aet=TEST_AET, quiet=True)
    assert (result.sent, result.failed) == (4, [])
    for path in [*rle, *plain]:
        source = pydicom.dcmread(path)
        (hit,) = _lookup(orthanc, source.SOPInstanceUID)
        stored = _stored_file(orthanc, hit["ID"])
        assert stored.file_meta.TransferSyntaxUID == source.file_meta.TransferSyntaxUID
        assert stored.PixelData == source.PixelData
