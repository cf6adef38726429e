"""An anonymized export killed with SIGKILL, then run again, holds every file exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pydicom

import workbench

N_FILES = 600


def test_a_killed_export_resumes_to_exactly_once(tmp_path: Path, run_env: dict[str, str]) -> None:
    source = tmp_path / "src"
    source.mkdir()
    template = pydicom.dcmread(pydicom.data.get_testdata_file("MR_small.dcm"))
    for number in range(N_FILES):
        template.PatientID = f"PAT-{number % 7:03d}"
        template.SeriesInstanceUID = f"1.2.826.0.1.3680043.8.498.55.{number % 7}"
        template.SOPInstanceUID = f"1.2.826.0.1.3680043.8.498.55.{number % 7}.{number}"
        template.save_as(source / f"{number:04d}.dcm")
    index = workbench.crawl(source, index=tmp_path / "index", quiet=True)
    out = tmp_path / "export"
    command = [sys.executable, "-m", "workbench", "anonymize", str(index.directory), "--out", str(out),
               "--quiet", "--no-verify"]
    process = subprocess.Popen(command, env=run_env, start_new_session=True)
    deadline = time.monotonic() + 120
    while len(list(out.rglob("*.dcm"))) < 20 and time.monotonic() < deadline:
        assert process.poll() is None, "the export ended before it could be killed"
        time.sleep(0.01)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    partial = len(list(out.rglob("*.dcm")))
    assert 0 < partial < N_FILES

    finished = subprocess.run(command, env=run_env, capture_output=True, text=True, timeout=600)
    assert finished.returncode == 0, finished.stderr
    files = sorted(out.rglob("*.dcm"))
    assert len(files) == N_FILES
    uids = {pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID for p in files}
    assert len(uids) == N_FILES
    assert not list(out.rglob("*.tmp"))
    manifest = (out / "manifest.csv").read_text().splitlines()
    assert len(manifest) == N_FILES + 1
