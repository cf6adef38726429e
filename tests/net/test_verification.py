"""workbench echo against a real Orthanc: verdicts, and the faults a user meets first."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import pydicom
import pytest
from conftest import ORTHANC_AET, TEST_AET, free_port

from workbench.net import echo, parse_address


def test_echo_reports_what_orthanc_offers(orthanc) -> None:
    checks = {c.name: c for c in echo(orthanc.url, calling_aet=TEST_AET)}
    assert checks["association"].ok and checks["C-ECHO"].ok
    for service in ("C-FIND (Study Root)", "C-MOVE (Study Root)", "C-GET (Study Root)"):
        assert checks[service].ok, checks[service]
    assert checks["storage (C-STORE)"].ok, checks["storage (C-STORE)"]


def test_a_wrong_called_ae_title_is_rejected_with_a_reason(orthanc) -> None:
    url = orthanc.url.replace(ORTHANC_AET, "NOT-ORTHANC")
    (check,) = echo(url, calling_aet=TEST_AET)
    assert not check.ok
    assert "rejected" in check.detail and "called AE title" in check.detail
    assert "PACS's own AE title" in check.advice


def test_nothing_listening_ends_in_a_clear_sentence() -> None:
    port = free_port()
    (check,) = echo(f"dicom://ANY@127.0.0.1:{port}", timeout=2)
    assert not check.ok and f"nothing listens on port {port}" in check.detail


def test_a_peer_that_never_answers_times_out_with_a_clear_sentence() -> None:
    with socket.socket() as silent:  # accepts TCP connections (backlog), never speaks DICOM
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        started = time.monotonic()
        (check,) = echo(f"dicom://ANY@127.0.0.1:{silent.getsockname()[1]}", timeout=1)
    assert not check.ok and time.monotonic() - started < 10
    assert "aborted the association" in check.detail or "did not answer" in check.detail


@pytest.mark.parametrize("url", ["dicom://127.0.0.1:104", "http://A@h:1", "dicom://A@h:0",
                                 "dicom://WAY-TOO-LONG-AE-TITLE@h:104", "dicom://A\\B@h:104"])
def test_malformed_addresses_are_refused(url: str) -> None:
    with pytest.raises(ValueError, match="dicom://|port|AE title"):
        parse_address(url)


def test_echo_command_exit_codes(orthanc) -> None:
    ok = subprocess.run([sys.executable, "-m", "workbench", "echo", orthanc.url, "--calling-aet", TEST_AET],
                        capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert "ok    C-ECHO: success" in ok.stdout
    bad = subprocess.run([sys.executable, "-m", "workbench", "echo", f"dicom://X@127.0.0.1:{free_port()}",
                          "--timeout", "2"], capture_output=True, text=True)
    assert bad.returncode == 1 and "nothing listens" in bad.stdout
    assert "Traceback" not in bad.stderr
    usage = subprocess.run([sys.executable, "-m", "workbench", "echo", "pacs.example.org"],
                           capture_output=True, text=True)
    assert usage.returncode == 2 and "dicom://AET@HOST:PORT" in usage.stderr


def test_move_back_to_us_works_when_the_pacs_knows_us(pacs) -> None:
    study = str(pydicom.dcmread(pacs.files / "pydicom" / "CT_small.dcm").StudyInstanceUID)
    checks = echo(pacs.url, calling_aet=TEST_AET, move_port=pacs.move_port, move_study=study)
    move = checks[-1]
    assert move.name == "C-MOVE back to us" and move.ok, move
    assert "1 instance(s) of the study came back" in move.detail


def test_move_back_to_an_unknown_destination_says_what_to_register(pacs, run_env) -> None:
    study = str(pydicom.dcmread(pacs.files / "pydicom" / "CT_small.dcm").StudyInstanceUID)
    port = free_port()
    command = ["echo", pacs.url, "--calling-aet", TEST_AET, "--move-aet", "STRANGER",
               "--move-port", str(port), "--move-study", study]
    result = subprocess.run([sys.executable, "-m", "workbench", *command], capture_output=True, text=True,
                            env=run_env, timeout=60)
    assert result.returncode == 1
    (line,) = [x for x in result.stdout.splitlines() if "C-MOVE back to us" in x]
    assert line.startswith("FAIL")
    assert f"register AE title 'STRANGER' with host 127.0.0.1 and port {port}" in line
