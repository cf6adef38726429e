"""The ``workbench`` command as a user runs it: exit codes, messages, output."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys

import pandas as pd
import pydicom
import pytest


def run(*args: str, env: dict[str, str], prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*prefix, sys.executable, "-m", "workbench", *args], capture_output=True, text=True, env=env,
        timeout=300,
    )


def _no_traceback(result: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout


def test_crawl_status_and_sql(sample_dir, tmp_path, run_env) -> None:
    index = str(tmp_path / "index")
    result = run("crawl", str(sample_dir), "--index", index, "--quiet", env=run_env)
    assert result.returncode == 0, result.stderr
    n_files = sum(1 for p in sample_dir.rglob("*") if p.is_file())
    assert f"crawled {n_files} files" in result.stdout

    status = run("status", index, env=run_env)
    assert status.returncode == 0
    assert f"{n_files} instances" in status.stdout
    assert "duplicate SOPInstanceUIDs: 0" in status.stdout
    assert "CT" in status.stdout and "MR" in status.stdout

    sql = run("sql", index, "SELECT Modality, count(*) AS n FROM instances GROUP BY 1 ORDER BY 1", "--csv",
              env=run_env)
    assert sql.returncode == 0
    table = pd.read_csv(io.StringIO(sql.stdout))
    assert table["n"].sum() == n_files
    assert {"CT", "MR"} <= set(table["Modality"])


def test_failed_inputs_exit_1_and_are_listed(tmp_path, run_env) -> None:
    source = tmp_path / "src"
    source.mkdir()
    shutil.copy(pydicom.data.get_testdata_file("CT_small.dcm"), source / "ok.dcm")
    (source / "broken.dcm").write_bytes(b"DICM")
    result = run("crawl", str(source), "--index", str(tmp_path / "index"), env=run_env)
    assert result.returncode == 1
    assert f"{source / 'broken.dcm'}: not_dicom:" in result.stderr
    _no_traceback(result)


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["sql", "{index}", "SELEC nonsense"], 2, "the query failed"),
        (["crawl", "{src}", "--index", "{tmp}/i2", "--tags", "NoSuchKeyword"], 2, "not a DICOM keyword"),
        (["status", "{tmp}/nowhere"], 1, "not a workbench index"),
        (["crawl", "--index", "{tmp}/i3"], 2, "the following arguments are required"),
    ],
)
def test_usage_errors_are_one_sentence(sample_index, tmp_path, run_env, args, code, message) -> None:
    args = [a.format(index=sample_index.directory, tmp=tmp_path, src=tmp_path) for a in args]
    result = run(*args, env=run_env)
    assert result.returncode == code
    assert message in result.stderr
    _no_traceback(result)


def test_a_missing_source_is_a_failed_input(tmp_path, run_env) -> None:
    result = run("crawl", str(tmp_path / "does-not-exist"), "--index", str(tmp_path / "index"), env=run_env)
    assert result.returncode == 1
    assert "missing: does not exist" in result.stderr
    _no_traceback(result)


def test_unreadable_files_are_recorded(tmp_path, run_env) -> None:
    # Permissions do not stop root; as root the crawl runs without the capabilities that bypass them.
    prefix: tuple[str, ...] = ()
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        assert setpriv, "setpriv (util-linux) is needed to test permissions as root"
        prefix = (setpriv, "--bounding-set", "-dac_override,-dac_read_search")
    source = tmp_path / "src"
    source.mkdir()
    shutil.copy(pydicom.data.get_testdata_file("CT_small.dcm"), source / "readable.dcm")
    shutil.copy(pydicom.data.get_testdata_file("MR_small.dcm"), source / "locked.dcm")
    (source / "locked_dir").mkdir()
    shutil.copy(pydicom.data.get_testdata_file("MR_small.dcm"), source / "locked_dir" / "inside.dcm")
    os.chmod(source / "locked.dcm", 0o000)
    os.chmod(source / "locked_dir", 0o000)
    try:
        result = run("crawl", str(source), "--index", str(tmp_path / "index"), "--quiet",
                     env=run_env, prefix=prefix)
    finally:
        os.chmod(source / "locked_dir", 0o755)
    assert result.returncode == 1, result.stderr
    assert f"{source / 'locked.dcm'}: unreadable: cannot be read: Permission denied" in result.stderr
    assert f"{source / 'locked_dir'}: unreadable:" in result.stderr
    assert "crawled 2 files" in result.stdout  # readable.dcm and locked.dcm were seen
    _no_traceback(result)


def test_demo_runs_on_the_sample_data(tmp_path, run_env) -> None:
    result = run("demo", "--out", str(tmp_path / "demo"), "--quiet", env=run_env)
    assert result.returncode == 0, result.stderr
    assert "series:" in result.stdout and "AXIAL" in result.stdout
    assert (tmp_path / "demo" / "index" / "series.parquet").exists()
    # It ends with a verified anonymized copy of the sample (issue 5).
    assert "verified: no identifying value left" in result.stdout
    assert len(list((tmp_path / "demo" / "anonymized").rglob("*.dcm"))) > 10


def test_output_cut_short_by_its_reader_is_no_traceback(sample_index, run_env) -> None:
    # `workbench sql ... | head -c 10`: the pipe closes long before the megabytes of output are written
    query = "SELECT a.* FROM instances a, instances b"
    command = [sys.executable, "-m", "workbench", "sql", str(sample_index.directory), query, "--csv"]
    reader = subprocess.Popen(["head", "-c", "10"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    result = subprocess.run(command, stdout=reader.stdin, stderr=subprocess.PIPE, text=True, env=run_env,
                            timeout=120)
    reader.stdin.close()
    reader.wait()
    assert result.returncode == 0
    assert "Traceback" not in result.stderr and "BrokenPipe" not in result.stderr
