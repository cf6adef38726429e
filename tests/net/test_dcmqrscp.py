"""The PACS verbs against a second implementation: dcmtk's dcmqrscp (not Orthanc), so they rest on
the standard rather than on one server's habits. dcmqrscp returns fewer keys than Orthanc (no
SOP Class UID at instance level, no counts), which the crawl and the retrieve must cope with."""

from __future__ import annotations

import shutil
import subprocess
import time

import pydicom
import pytest
from conftest import TEST_AET, dcmtk, free_port

from workbench.index import crawl
from workbench.index.remote import crawl_pacs
from workbench.net import echo
from workbench.net.retrieval import retrieve

QR_AET = "DCMQRSCP"
_SERIES = ("WB-0001/20240312_CT_ABDOMEN/2_Abdomen_5.0_B30f", "WB-0002/20240506_MR_SCHAEDEL/3_t1_se_sag",
           "WB-0003/20240918_CR_CHEST/1_Chest_PA")


@pytest.fixture(scope="module")
def dcmqrscp(tmp_path_factory, sample_dir):
    """dcmqrscp on a free 127.0.0.1 port, knowing TEST_AET as a move destination, filled by storescu."""
    root = tmp_path_factory.mktemp("dcmqrscp")
    files = root / "files"
    for series in _SERIES:
        shutil.copytree(sample_dir / series, files / series)
    (root / "db").mkdir()
    port, move_port = free_port(), free_port()
    (root / "qr.cfg").write_text(f"""NetworkTCPPort = {port}
MaxPDUSize = 16384
MaxAssociations = 16

HostTable BEGIN
workbench = ({TEST_AET}, 127.0.0.1, {move_port})
HostTable END

VendorTable BEGIN
VendorTable END

AETable BEGIN
{QR_AET} {root / "db"} RW (200, 1024mb) ANY
AETable END
""")
    log = (root / "qr.log").open("w")
    process = subprocess.Popen([dcmtk("dcmqrscp"), "-c", str(root / "qr.cfg")], stdout=log,
                               stderr=subprocess.STDOUT)
    try:
        url = f"dicom://{QR_AET}@127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while not echo(url, calling_aet=TEST_AET, timeout=2)[0].ok:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"dcmqrscp did not start: {(root / 'qr.log').read_text()[-2000:]}")
            time.sleep(0.2)
        subprocess.run([dcmtk("storescu"), "-aet", TEST_AET, "-aec", QR_AET, "+sd", "+r", "127.0.0.1",
                        str(port), str(files)], check=True, capture_output=True)
        yield url, move_port, files
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


def _pixels(paths) -> dict[str, bytes]:
    # force: one sample file is a bare data set, without preamble
    return {str(ds.SOPInstanceUID): ds.PixelData for ds in (pydicom.dcmread(p, force=True) for p in paths)}


def test_crawl_finds_what_a_folder_crawl_finds(dcmqrscp, tmp_path):
    url, _, files = dcmqrscp
    remote = crawl_pacs(url, tmp_path / "pacs", calling_aet=TEST_AET, quiet=True)
    local = crawl(files, tmp_path / "folder", workers=1, quiet=True)
    assert remote.last_crawl["complete"], remote.last_crawl["notes"]
    columns = ["SOPInstanceUID", "SeriesInstanceUID", "StudyInstanceUID", "PatientID", "Modality"]
    ours = remote.instances[columns].sort_values("SOPInstanceUID").reset_index(drop=True)
    theirs = local.instances[columns].sort_values("SOPInstanceUID").reset_index(drop=True)
    assert ours.equals(theirs)


@pytest.mark.parametrize("method", ["get", "move"])
def test_retrieve_everything_byte_identical(method, dcmqrscp, tmp_path):
    url, move_port, files = dcmqrscp
    crawl_pacs(url, tmp_path / "index", calling_aet=TEST_AET, quiet=True)
    result = retrieve(tmp_path / "index", tmp_path / "cache", method=method, calling_aet=TEST_AET,
                      move_port=move_port, quiet=True)
    expected = _pixels(p for p in files.rglob("*") if p.is_file())
    assert (result.received, result.failed) == (len(expected), [])
    assert _pixels((tmp_path / "cache").rglob("*.dcm")) == expected
