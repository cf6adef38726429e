"""``workbench crawl dicom://...`` and ``workbench retrieve`` as a user runs them."""

from __future__ import annotations

import subprocess
import sys

from conftest import TEST_AET, free_port


def run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "workbench", *args], capture_output=True, text=True, env=env,
                          timeout=300)


def test_crawl_a_pacs_then_retrieve_one_study(pacs, tmp_path, run_env):
    index = str(tmp_path / "index")
    crawled = run("crawl", pacs.url, "--index", index, "--calling-aet", TEST_AET, "--max-results", "0",
                  "--quiet", env=run_env)
    assert crawled.returncode == 0, crawled.stderr
    n_files = sum(1 for p in pacs.files.rglob("*") if p.is_file())
    assert f"{n_files} instances" in crawled.stdout and "complete" in crawled.stdout
    status = run("status", index, env=run_env)
    assert status.returncode == 0 and f"of {pacs.url}: " in status.stdout and ", complete, " in status.stdout
    queries = run("sql", index, "SELECT count(*) AS n FROM queries WHERE status = 'ok'", "--csv", env=run_env)
    assert queries.returncode == 0 and int(queries.stdout.split()[-1]) > 0

    study = run("sql", index, "SELECT StudyInstanceUID, n_instances FROM studies "
                "WHERE ModalitiesInStudy = 'MR' ORDER BY n_instances DESC LIMIT 1", "--csv", env=run_env)
    uid, count = study.stdout.split()[-1].split(",")
    got = run("retrieve", index, "--where", f"StudyInstanceUID = '{uid}'", "--into", str(tmp_path / "cache"),
              "--calling-aet", TEST_AET, "--quiet", env=run_env)
    assert got.returncode == 0, got.stderr
    assert f"retrieved {count} of {count} selected instances" in got.stdout
    assert sum(1 for _ in (tmp_path / "cache").rglob("*.dcm")) == int(count)


def test_unreachable_pacs_is_one_sentence_and_exit_1(tmp_path, run_env):
    result = run("crawl", f"dicom://NOBODY@127.0.0.1:{free_port()}", "--index", str(tmp_path / "index"),
                 "--timeout", "3", env=run_env)
    assert result.returncode == 1
    assert "refused the connection: nothing listens on port" in result.stderr
    assert "Traceback" not in result.stderr


def test_malformed_address_is_a_usage_error(tmp_path, run_env):
    result = run("crawl", "dicom://127.0.0.1", "--index", str(tmp_path / "index"), env=run_env)
    assert result.returncode == 2
    assert "dicom://AET@HOST:PORT" in result.stderr and "Traceback" not in result.stderr


def test_bad_where_is_a_usage_error(sample_index, tmp_path, run_env):
    result = run("retrieve", str(sample_index.directory), "--where", "NoSuchColumn = 1", "--into",
                 str(tmp_path / "cache"), env=run_env)
    assert result.returncode == 2 and "is not a valid condition" in result.stderr
