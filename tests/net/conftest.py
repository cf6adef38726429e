"""Real Orthanc PACSs, each started once per session on 127.0.0.1 with free ports and its own storage.

``orthanc`` is an empty PACS the tests send to; ``pacs`` holds a fixed set of real files (the
sample data and pydicom's bundled files), stored by dcmtk's ``storescu`` (an independent peer),
answers C-FIND with at most :data:`PACS_LIMIT` studies or series (so the crawl has to split its
date windows), knows :data:`TEST_AET` as a C-MOVE destination, and serves DICOMweb when the
``orthanc-dicomweb`` plugin is installed.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

ORTHANC_AET = "ORTHANC"
#: The AE title the tests call from; registered on Orthanc as a known modality.
TEST_AET = "WBTEST"
#: Orthanc's LimitFindResults in the ``pacs`` fixture.
PACS_LIMIT = 4
DICOMWEB_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")
_SAMPLE_SERIES = ("WB-0001/20240312_CT_ABDOMEN/1_Topogram", "WB-0001/20240312_CT_ABDOMEN/2_Abdomen_5.0_B30f",
                  "WB-0001/20240312_CT_ABDOMEN/99_Dose_Report", "WB-0002/20240506_MR_SCHAEDEL/3_t1_se_sag",
                  "WB-0003/20240918_CR_CHEST/1_Chest_PA")
_PYDICOM_FILES = ("CT_small.dcm", "MR_small.dcm", "rtplan.dcm", "rtdose.dcm", "waveform_ecg.dcm",
                  "SC_rgb_small_odd.dcm")


@dataclass
class Orthanc:
    dicom_port: int
    http_port: int
    move_port: int
    process: subprocess.Popen | None = None
    files: Path | None = None

    @property
    def url(self) -> str:
        return f"dicom://{ORTHANC_AET}@127.0.0.1:{self.dicom_port}"

    @property
    def dicomweb(self) -> str:
        return f"dicomweb+http://127.0.0.1:{self.http_port}/dicom-web"

    def rest(self, path: str):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}{path}", timeout=10) as reply:
            return json.loads(reply.read())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def dcmtk(tool: str) -> str:
    """The path of a dcmtk tool (pynetdicom installs Python apps of the same names)."""
    for candidate in (f"/usr/bin/{tool}", shutil.which(tool)):
        if candidate and Path(candidate).exists():
            out = subprocess.run([candidate, "--version"], capture_output=True, text=True).stdout
            if "dcmtk" in out.lower():
                return candidate
    pytest.skip(f"dcmtk's {tool} is not installed (bash scripts/test.sh installs it)")


def _executable() -> str:
    found = shutil.which("Orthanc") or next(
        (p for p in ("/usr/sbin/Orthanc", "/usr/bin/Orthanc") if Path(p).exists()), None)
    if found is None:
        pytest.skip("Orthanc is not installed (bash scripts/test.sh installs it)")
    return found


@contextmanager
def running_orthanc(root: Path, ports: tuple[int, int, int] | None = None, **options) -> Iterator[Orthanc]:
    """Orthanc with DICOM and HTTP on 127.0.0.1 only, the called AE title checked, TEST_AET known.

    ``ports`` (DICOM, HTTP, C-MOVE destination) restarts a stopped Orthanc where it was.
    """
    exe = _executable()
    server = Orthanc(*(ports or (free_port(), free_port(), free_port())))
    config = {
        "Name": "workbench-tests",
        "StorageDirectory": str(root / "storage"),
        "IndexDirectory": str(root / "storage"),
        "DicomAet": ORTHANC_AET,
        "DicomPort": server.dicom_port,
        "HttpPort": server.http_port,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "DicomCheckCalledAet": True,
        "DicomModalities": {"workbench": [TEST_AET, "127.0.0.1", server.move_port]},
        "Plugins": [],
        "StableAge": 1,
    } | options
    (root / "orthanc.json").write_text(json.dumps(config))
    log = (root / "orthanc.log").open("w")
    server.process = subprocess.Popen([exe, str(root / "orthanc.json")], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                server.rest("/system")
                break
            except OSError:
                if server.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"Orthanc did not start: {(root / 'orthanc.log').read_text()[-2000:]}"
                    ) from None
                time.sleep(0.2)
        yield server
    finally:
        server.process.terminate()
        try:
            server.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.process.kill()
        log.close()


@pytest.fixture(scope="session")
def orthanc(tmp_path_factory) -> Iterator[Orthanc]:
    """An empty Orthanc to send to (by DICOMweb too when the plugin is installed)."""
    options = {}
    if DICOMWEB_PLUGIN.exists():
        options = {"Plugins": [str(DICOMWEB_PLUGIN)], "DicomWeb": {"Enable": True, "Root": "/dicom-web/"}}
    with running_orthanc(tmp_path_factory.mktemp("orthanc"), **options) as server:
        yield server


@pytest.fixture(scope="session")
def pacs(tmp_path_factory, sample_dir: Path, pydicom_files: Path) -> Iterator[Orthanc]:
    """Orthanc filled by dcmtk's storescu with a fixed set of real files (``pacs.files``)."""
    root = tmp_path_factory.mktemp("pacs")
    files = root / "files"
    for series in _SAMPLE_SERIES:
        shutil.copytree(sample_dir / series, files / series)
    for name in _PYDICOM_FILES:
        (files / "pydicom").mkdir(parents=True, exist_ok=True)
        shutil.copy(pydicom_files / name, files / "pydicom" / name)
    options = {"LimitFindResults": PACS_LIMIT}
    if DICOMWEB_PLUGIN.exists():
        options |= {"Plugins": [str(DICOMWEB_PLUGIN)], "DicomWeb": {"Enable": True, "Root": "/dicom-web/"}}
    with running_orthanc(root, **options) as server:
        store = subprocess.run(
            [dcmtk("storescu"), "-aec", ORTHANC_AET, "-R", "-nh", "+sd", "+r", "127.0.0.1",
             str(server.dicom_port), str(files)], capture_output=True, text=True)
        stored = server.rest("/statistics")["CountInstances"]
        expected = sum(1 for p in files.rglob("*") if p.is_file())
        assert stored == expected, f"storescu stored {stored} of {expected}: {store.stdout}{store.stderr}"
        server.files = files
        yield server


def needs_dicomweb() -> None:
    if not DICOMWEB_PLUGIN.exists():
        pytest.skip("the orthanc-dicomweb plugin is not installed (bash scripts/test.sh installs it)")


@pytest.fixture()
def dicomweb(pacs: Orthanc) -> str:
    """The DICOMweb root of ``pacs``; skipped when the orthanc-dicomweb plugin is not installed."""
    if not DICOMWEB_PLUGIN.exists():
        pytest.skip("the orthanc-dicomweb plugin is not installed (bash scripts/test.sh installs it)")
    return pacs.dicomweb
