"""A crawl killed with SIGKILL at any moment, then run again, indexes every file exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pydicom

import workbench

N_FILES = 2400


def _make_corpus(folder: Path) -> None:
    template = pydicom.dcmread(pydicom.data.get_testdata_file("MR_small.dcm"))
    for i in range(N_FILES):
        series = i // 200
        template.SeriesInstanceUID = f"1.2.826.0.1.3680043.8.498.77.{series}"
        template.SOPInstanceUID = f"1.2.826.0.1.3680043.8.498.77.{series}.{i}"
        template.InstanceNumber = i % 200 + 1
        sub = folder / f"s{series:02d}"
        sub.mkdir(exist_ok=True)
        template.save_as(sub / f"im{i:05d}.dcm")


def _rows_on_disk(index_dir: Path) -> int:
    return sum(pq.read_metadata(p).num_rows for p in (index_dir / "instances").glob("part-*.parquet"))


def _crawl_command(source: Path, index_dir: Path) -> list[str]:
    code = (
        "import sys, workbench; "
        f"workbench.crawl({str(source)!r}, index={str(index_dir)!r}, workers=2, part_rows=100, quiet=True)"
    )
    return [sys.executable, "-c", code]


def _start(source: Path, index_dir: Path, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(_crawl_command(source, index_dir), env=env, start_new_session=True)


def _kill(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def test_killed_crawls_resume_to_exactly_once(tmp_path: Path, run_env: dict[str, str]) -> None:
    source = tmp_path / "src"
    source.mkdir()
    _make_corpus(source)
    index_dir = tmp_path / "index"

    # 1. Kill the first crawl right after it commits its first part: a crawl cut in the middle.
    process = _start(source, index_dir, run_env)
    deadline = time.monotonic() + 120
    while not list(index_dir.glob("instances/part-*.parquet")) and time.monotonic() < deadline:
        assert process.poll() is None, "the crawl ended before committing a part"
        time.sleep(0.005)
    _kill(process)
    assert 0 < _rows_on_disk(index_dir) < N_FILES

    # 2. Change the tree between two killed runs: modify, delete and add files.
    for path in sorted(source.rglob("*.dcm"))[:40]:
        ds = pydicom.dcmread(path)
        ds.PatientName = "MODIFIED^AFTER^KILL"
        ds.save_as(path)
        os.utime(path, ns=(1, 10**18))
    for path in sorted(source.rglob("*.dcm"))[-25:]:
        path.unlink()

    # 3. Kill later and later runs (reading, compacting, aggregating) until one finishes.
    delay = 0.05
    for _attempt in range(60):
        process = _start(source, index_dir, run_env)
        time.sleep(delay)
        if process.poll() is not None:
            assert process.returncode == 0
            break
        _kill(process)
        delay += 0.05
    else:
        raise AssertionError("the crawl never finished")

    # 4. Run once more, as a user would, and check exact-once against the files on disk.
    index = workbench.crawl(source, index=index_dir, quiet=True)
    on_disk = sorted(str(p) for p in source.rglob("*.dcm"))
    instances = index.instances
    assert sorted(instances["path"]) == on_disk
    assert instances["SOPInstanceUID"].is_unique
    expected_uids = {pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID for p in on_disk}
    assert set(instances["SOPInstanceUID"]) == expected_uids
    modified = instances[instances["PatientName"] == "MODIFIED^AFTER^KILL"]
    assert len(modified) == 40
    assert index.errors.empty
    assert index.series["n_instances"].sum() == len(on_disk)
    assert not list(index_dir.rglob("*.tmp"))
