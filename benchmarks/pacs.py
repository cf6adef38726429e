"""Benchmark the PACS crawl and retrieve against dcmtk's findscu and getscu, in the same run.

Run by hand, not by CI::

    python benchmarks/pacs.py [--files N] [--workdir DIR] [--keep] [--repeat R]

A local Orthanc (started like the tests' one: 127.0.0.1, free ports, its own storage) is filled
by dcmtk's storescu with the crawl benchmark's CT corpus (N files of 512x512, 20 studies of 2
series). Then, each contender ``--repeat`` times (the median is reported):

- **crawl, instance level**: ``workbench crawl dicom://...`` (the whole command: start-up,
  queries, the Parquet index) against findscu asked the same queries the way a script would:
  one findscu process per level (the study query; every series query on one association; every
  instance query on one association), responses extracted to files (``-X``) and read for the
  UIDs of the next level.
- **retrieve**: ``workbench retrieve --where TRUE --method get`` (whole command: C-GET of every
  series into a cache, written atomically and indexed as it arrives) against getscu fetching
  every study (``-od``, one process per study), both in MB/s of DICOM files written.

dcmtk's tools run with ``TCP_NODELAY=1`` in their environment, their fastest setting: without it
dcmtk leaves Nagle's algorithm on, and each request waits for the PACS's delayed ACK (40 ms on
Linux), which made getscu five times slower here. workbench sets TCP_NODELAY on its sockets.

Targets (issue 6): crawl no slower than 1.5x findscu; retrieve at least 80% of getscu's MB/s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset
from report import Report, machine, version, work_directory

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "net"))
from conftest import ORTHANC_AET, dcmtk, running_orthanc  # noqa: E402 - the tests' Orthanc starter
from crawl import ensure_corpus  # noqa: E402 - the crawl benchmark's CT corpus

AET = "WBBENCH"
# dcmtk's fastest setting (see the module docstring).
DCMTK_ENV = {**os.environ, "TCP_NODELAY": "1"}
CRAWL_TARGET = 1.5
RETRIEVE_TARGET = 0.8


def query_file(path: Path, level: str, **keys: str) -> Path:
    """A C-FIND/C-GET identifier written as a file for dcmtk."""
    ds = Dataset()
    ds.QueryRetrieveLevel = level
    for keyword, value in keys.items():
        setattr(ds, keyword, value or None)
    ds.is_little_endian, ds.is_implicit_VR = True, False
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=False)
    return path


def findscu_level(port: int, queries: list[Path], out: Path) -> list[Dataset]:
    """One findscu process for ``queries`` on one association; the extracted responses, read."""
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    subprocess.run([dcmtk("findscu"), "-S", "-aet", AET, "-aec", ORTHANC_AET, "-X", "-od", str(out),
                    "127.0.0.1", str(port), *map(str, queries)],
                   check=True, capture_output=True, env=DCMTK_ENV)
    return [pydicom.dcmread(p) for p in sorted(out.glob("rsp*.dcm"))]


def findscu_crawl(port: int, work: Path) -> tuple[float, set[str]]:
    """The findscu baseline: study, series and instance levels; seconds and SOP Instance UIDs."""
    start = time.perf_counter()
    studies = findscu_level(port, [query_file(work / "q" / "study.dcm", "STUDY", StudyInstanceUID="",
                                              PatientID="", StudyDate="")], work / "r0")
    series_q = [query_file(work / "q" / f"se{i}.dcm", "SERIES", StudyInstanceUID=str(s.StudyInstanceUID),
                           SeriesInstanceUID="", Modality="", SeriesNumber="")
                for i, s in enumerate(studies)]
    series = findscu_level(port, series_q, work / "r1")
    image_q = [query_file(work / "q" / f"im{i}.dcm", "IMAGE", StudyInstanceUID=str(s.StudyInstanceUID),
                          SeriesInstanceUID=str(s.SeriesInstanceUID), SOPInstanceUID="", SOPClassUID="",
                          InstanceNumber="")
               for i, s in enumerate(series)]
    instances = findscu_level(port, image_q, work / "r2")
    seconds = time.perf_counter() - start
    return seconds, {str(ds.SOPInstanceUID) for ds in instances}


def workbench(*args: str) -> float:
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "workbench", *args], capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"workbench {args[0]} failed: {result.stderr}")
    return seconds


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def getscu_all(port: int, studies: list[str], work: Path, out: Path) -> float:
    """getscu fetching every study, one process per study (dcmtk 3.6.7's getscu crashes on a second
    query file in one run)."""
    queries = [query_file(work / "g" / f"st{i}.dcm", "STUDY", StudyInstanceUID=uid)
               for i, uid in enumerate(studies)]
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    getscu = dcmtk("getscu")
    start = time.perf_counter()
    for query in queries:
        subprocess.run([getscu, "-S", "-aet", AET, "-aec", ORTHANC_AET, "-od", str(out), "127.0.0.1",
                        str(port), str(query)], check=True, capture_output=True, env=DCMTK_ENV)
    return time.perf_counter() - start


def same_pixels(ours: Path, theirs: Path, sample: int = 20) -> bool:
    """Whether a sample of the instances both retrieved have identical pixel data."""
    by_uid = {pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID: p for p in theirs.rglob("*")
              if p.is_file()}
    checked = 0
    for path in sorted(ours.rglob("*.dcm"))[:: max(1, len(by_uid) // sample)]:
        mine = pydicom.dcmread(path)
        if mine.PixelData != pydicom.dcmread(by_uid[mine.SOPInstanceUID]).PixelData:
            return False
        checked += 1
    return checked > 0


def bench(workdir: Path, files: int, repeat: int) -> Report:
    corpus = ensure_corpus(workdir, "ct", files)
    root = workdir / "orthanc"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir()
    report = Report(f"PACS: {files:,} CT instances of 512x512 in a local Orthanc, median of {repeat} runs")
    # No fsync per stored file: filling the PACS is not what is measured.
    options = {"DicomModalities": {"bench": [AET, "127.0.0.1", 11112]}, "SyncStorageArea": False}
    with running_orthanc(root, **options) as server:
        port = str(server.dicom_port)
        start = time.perf_counter()
        subprocess.run([dcmtk("storescu"), "-aec", ORTHANC_AET, "+sd", "+r", "127.0.0.1", port, str(corpus)],
                       check=True, capture_output=True)
        stored = server.rest("/statistics")["CountInstances"]
        report.add("filled by storescu", f"{stored:,} instances in {time.perf_counter() - start:.1f} s")

        base, ours, single, found = [], [], [], set()
        index = workdir / "index"
        for _ in range(repeat):
            seconds, found = findscu_crawl(server.dicom_port, workdir / "findscu")
            base.append(seconds)
            for connections, times in (("2", ours), ("1", single)):
                shutil.rmtree(index, ignore_errors=True)
                times.append(workbench("crawl", server.url, "--index", str(index), "--calling-aet", AET,
                                       "--max-results", "0", "--connections", connections, "--quiet"))
        crawled = index_sop_uids(index)
        base_s, ours_s = statistics.median(base), statistics.median(ours)
        ratio = ours_s / base_s
        same = crawled == found and len(found) == stored
        report.add("findscu, 3 levels (3 processes)", f"{base_s:.2f} s ({len(found):,} instances)")
        report.add("workbench crawl (2 associations): whole command",
                   f"{ours_s:.2f} s ({len(crawled):,} instances)")
        report.add("crawl time, workbench / findscu", f"{ratio:.2f}x", f"<= {CRAWL_TARGET}x",
                   ratio <= CRAWL_TARGET)
        one = statistics.median(single)
        report.add("  the same on 1 association (not a target)", f"{one:.2f} s, {one / base_s:.2f}x findscu")
        report.add("same instances as findscu", "yes" if same else "NO", "equal", same)

        studies = sorted(index_studies(index))
        theirs, mine, mine_single = [], [], []
        cache, fetched = workdir / "cache", workdir / "getscu"
        for _ in range(repeat):
            theirs.append(getscu_all(server.dicom_port, studies, workdir, fetched))
            for connections, times in (("2", mine), ("1", mine_single)):
                again = workdir / "retrieve-index"
                shutil.rmtree(again, ignore_errors=True)
                shutil.copytree(index, again)
                shutil.rmtree(cache, ignore_errors=True)
                times.append(workbench("retrieve", str(again), "--into", str(cache), "--calling-aet", AET,
                                       "--connections", connections, "--quiet"))
        their_mb, my_mb = folder_bytes(fetched) / 1e6, folder_bytes(cache) / 1e6
        their_s, my_s = statistics.median(theirs), statistics.median(mine)
        their_rate, my_rate = their_mb / their_s, my_mb / my_s
        report.add("getscu, every study (1 process each)",
                   f"{their_rate:.0f} MB/s ({their_mb:,.0f} MB in {their_s:.2f} s)")
        report.add("workbench retrieve (C-GET, 2 associations): whole command",
                   f"{my_rate:.0f} MB/s ({my_mb:,.0f} MB in {my_s:.2f} s, indexed)")
        share = my_rate / their_rate
        report.add("retrieve rate, workbench / getscu", f"{share:.0%}", f">= {RETRIEVE_TARGET:.0%}",
                   share >= RETRIEVE_TARGET)
        one_rate = my_mb / statistics.median(mine_single)
        report.add("  the same on 1 association (not a target)",
                   f"{one_rate:.0f} MB/s, {one_rate / their_rate:.0%} of getscu")
        identical = same_pixels(cache, fetched)
        report.add("pixel data identical to getscu's (sample)", "yes" if identical else "NO", "equal",
                   identical)
    return report


def index_sop_uids(index: Path) -> set[str]:
    import pyarrow.dataset as pads

    return set(pads.dataset(index / "instances").to_table(columns=["SOPInstanceUID"])
               .column("SOPInstanceUID").to_pylist())


def index_studies(index: Path) -> set[str]:
    import pyarrow.parquet as pq

    return set(pq.read_table(index / "studies.parquet", columns=["StudyInstanceUID"])
               .column("StudyInstanceUID").to_pylist())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=2000, help="CT instances in the PACS (default 2000)")
    parser.add_argument("--workdir", type=Path, help="keep the corpus here between runs")
    parser.add_argument("--keep", action="store_true", help="keep the temporary work directory")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each contender (default 3)")
    args = parser.parse_args()
    print(machine())
    dcmtk_version = subprocess.run([dcmtk("findscu"), "--version"], capture_output=True, text=True).stdout
    print(f"workbench {version('workbench')}, pynetdicom {version('pynetdicom')}, "
          f"dcmtk {dcmtk_version.split()[2]}")
    with work_directory(args.workdir, "wb-pacs-", args.keep) as workdir:
        report = bench(workdir, args.files, args.repeat)
    report.print()
    print("\noverall:", "FAIL" if report.failed else "PASS")
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
