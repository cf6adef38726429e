"""Retrieve from a real Orthanc by C-GET, C-MOVE and WADO-RS: byte-identical pixel data, resumable."""

from __future__ import annotations

import subprocess

import pydicom
import pytest
from conftest import ORTHANC_AET, PACS_LIMIT, TEST_AET, dcmtk, free_port, running_orthanc

from workbench.index.remote import crawl_pacs
from workbench.net.association import PacsError
from workbench.net.retrieval import _Cache, retrieve

CT_SERIES = "WB-0001/20240312_CT_ABDOMEN/2_Abdomen_5.0_B30f"


@pytest.fixture()
def pacs_index(pacs, tmp_path):
    crawl_pacs(pacs.url, tmp_path / "index", calling_aet=TEST_AET, max_results=None, quiet=True)
    return tmp_path / "index"


def _pixels_by_uid(paths) -> dict[str, bytes]:
    found = {}
    for path in paths:
        ds = pydicom.dcmread(path)
        found[str(ds.SOPInstanceUID)] = ds.PixelData
    return found


@pytest.mark.parametrize("method", ["get", "move"])
def test_retrieve_a_series_byte_identical(method, pacs, pacs_index, tmp_path):
    originals = _pixels_by_uid(sorted((pacs.files / CT_SERIES).iterdir()))
    series_uid = str(pydicom.dcmread(next((pacs.files / CT_SERIES).iterdir())).SeriesInstanceUID)
    result = retrieve(pacs_index, tmp_path / "cache", where=f"SeriesInstanceUID = '{series_uid}'",
                      method=method, calling_aet=TEST_AET, move_port=pacs.move_port, quiet=True)
    assert result.failed == []
    assert (result.selected, result.received, result.indexed) == (30, 30, 30)
    from workbench.index import open_index

    index = open_index(pacs_index)
    rows = index.sql(f"SELECT path, source FROM instances WHERE SeriesInstanceUID = '{series_uid}'")
    assert rows["path"].notna().all() and set(rows["source"]) == {pacs.url}
    assert _pixels_by_uid(rows["path"]) == originals
    assert len(index.instances) == len(index.instances["SOPInstanceUID"].unique())
    again = retrieve(pacs_index, tmp_path / "cache", where=f"SeriesInstanceUID = '{series_uid}'",
                     method=method, calling_aet=TEST_AET, move_port=pacs.move_port, quiet=True)
    assert (again.already, again.received) == (30, 0)


def test_retrieve_part_then_the_rest(pacs, pacs_index, tmp_path):
    first = retrieve(pacs_index, tmp_path / "cache", where="Modality = 'CT' AND InstanceNumber <= 10",
                     calling_aet=TEST_AET, quiet=True)
    assert first.received == first.selected > 0 and first.failed == []
    rest = retrieve(pacs_index, tmp_path / "cache", where="Modality = 'CT'", calling_aet=TEST_AET, quiet=True)
    assert rest.already == first.selected
    assert rest.received == rest.selected - first.selected > 0
    from workbench.index import open_index

    index = open_index(pacs_index)
    missing = index.sql("SELECT count(*) AS n FROM instances WHERE Modality = 'CT' AND path IS NULL")
    assert missing["n"][0] == 0
    assert index.instances["SOPInstanceUID"].is_unique


def test_retrieve_by_wado(pacs, dicomweb, tmp_path):
    crawl_pacs(dicomweb, tmp_path / "index", max_results=PACS_LIMIT, quiet=True)
    series_uid = str(pydicom.dcmread(next((pacs.files / CT_SERIES).iterdir())).SeriesInstanceUID)
    result = retrieve(tmp_path / "index", tmp_path / "cache", where=f"SeriesInstanceUID = '{series_uid}'",
                      quiet=True)
    assert (result.received, result.indexed, result.failed) == (30, 30, [])
    cached = _pixels_by_uid((tmp_path / "cache").rglob("*.dcm"))
    assert cached == _pixels_by_uid(sorted((pacs.files / CT_SERIES).iterdir()))


def test_unknown_move_destination_says_what_to_register(pacs, pacs_index, tmp_path):
    # Orthanc answers 0xC000 rather than 0xA801 (Move Destination Unknown)
    with pytest.raises(PacsError, match="move destination") as caught:
        retrieve(pacs_index, tmp_path / "cache", method="move", calling_aet=TEST_AET, move_aet="STRANGER",
                 move_port=free_port(), quiet=True)
    assert "register AE title 'STRANGER'" in caught.value.advice


def test_pacs_dying_mid_retrieve_keeps_what_arrived(pacs, tmp_path, monkeypatch):
    root = tmp_path / "dying"
    root.mkdir()
    with running_orthanc(root) as server:
        subprocess.run([dcmtk("storescu"), "-aec", ORTHANC_AET, "+sd", "127.0.0.1", str(server.dicom_port),
                        str(pacs.files / CT_SERIES)], check=True, capture_output=True)
        crawl_pacs(server.url, tmp_path / "index", calling_aet=TEST_AET, quiet=True)
        ports = (server.dicom_port, server.http_port, server.move_port)
        store = _Cache.store

        def store_then_die(cache, *args):
            store(cache, *args)
            if len(cache.arrived) + cache.committed == 7:
                server.process.kill()  # the PACS dies after sending 7 instances
                server.process.wait()

        monkeypatch.setattr(_Cache, "store", store_then_die)
        with pytest.raises(PacsError, match="stopped answering|cannot|refused|aborted"):
            retrieve(tmp_path / "index", tmp_path / "cache", calling_aet=TEST_AET, timeout=5, quiet=True)
        monkeypatch.undo()
    from workbench.index import open_index

    kept = open_index(tmp_path / "index").sql("SELECT count(*) AS n FROM instances WHERE path IS NOT NULL")
    assert kept["n"][0] >= 7
    with running_orthanc(root, ports=ports):
        rest = retrieve(tmp_path / "index", tmp_path / "cache", calling_aet=TEST_AET, quiet=True)
    assert rest.already >= 7 and rest.already + rest.received == 30 and rest.failed == []
    index = open_index(tmp_path / "index")
    assert index.sql("SELECT count(*) AS n FROM instances WHERE path IS NULL")["n"][0] == 0
    assert len(index.instances) == 30


def test_the_move_storage_scp_accepts_the_pacs_alone(pydicom_files, tmp_path):
    from workbench.net.retrieval import storage_scp

    port = free_port()
    stored = []

    def keep(event) -> int:
        stored.append(event.request.AffectedSOPInstanceUID)
        return 0x0000

    ct = str(pydicom_files / "CT_small.dcm")

    def store_as(calling: str) -> subprocess.CompletedProcess:
        command = [dcmtk("storescu"), "-aet", calling, "-aec", "WBTEST", "127.0.0.1", str(port), ct]
        return subprocess.run(command, capture_output=True, text=True)

    with storage_scp("WBTEST", "127.0.0.1", port, "THEPACS", keep, timeout=5):
        stranger, pacs = store_as("STRANGER"), store_as("THEPACS")
    assert stranger.returncode != 0 and "Rejected" in stranger.stderr + stranger.stdout
    assert pacs.returncode == 0, pacs.stderr
    assert stored == [pydicom.dcmread(ct).SOPInstanceUID]
