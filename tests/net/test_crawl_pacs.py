"""Crawl a real Orthanc over C-FIND and QIDO-RS: the same index as a folder crawl of the same files."""

from __future__ import annotations

import datetime as dt
import subprocess

import pandas as pd
import pydicom
import pytest
from conftest import ORTHANC_AET, PACS_LIMIT, TEST_AET, dcmtk, free_port, running_orthanc

from workbench.index import crawl
from workbench.index.remote import Window, crawl_pacs
from workbench.net.association import PacsError

COMPARED = ["SOPInstanceUID", "SeriesInstanceUID", "StudyInstanceUID", "PatientID", "PatientName",
            "StudyDate", "Modality", "SeriesNumber", "InstanceNumber", "SOPClassUID", "sop_class_name"]


@pytest.fixture(scope="module")
def folder_index(pacs, tmp_path_factory):
    return crawl(pacs.files, tmp_path_factory.mktemp("folder") / "index", workers=1, quiet=True)


def _sorted(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    return frame[columns].sort_values("SOPInstanceUID").reset_index(drop=True)


@pytest.mark.parametrize("kind", ["dimse", "dicomweb"])
def test_pacs_crawl_matches_folder_crawl(kind, pacs, folder_index, tmp_path, request):
    # DIMSE: Orthanc says when it stops at its limit (status Cancel); DICOMweb: pages of PACS_LIMIT
    url = pacs.url if kind == "dimse" else request.getfixturevalue("dicomweb")
    limit = None if kind == "dimse" else PACS_LIMIT
    index = crawl_pacs(url, tmp_path / "index", calling_aet=TEST_AET, max_results=limit, quiet=True)
    assert index.last_crawl["complete"], index.last_crawl["notes"]
    remote = index.instances
    assert remote["path"].isna().all()
    assert set(remote["source"]) == {url}
    pd.testing.assert_frame_equal(_sorted(remote, COMPARED), _sorted(folder_index.instances, COMPARED),
                                  check_dtype=False)
    for table in ("series", "studies"):
        key = "SeriesInstanceUID" if table == "series" else "StudyInstanceUID"
        ours = getattr(index, table).set_index(key)
        theirs = getattr(folder_index, table).set_index(ours.index.name)
        assert ours["n_instances"].sort_index().equals(theirs["n_instances"].sort_index())
    queries = index.sql("SELECT * FROM queries")
    assert len(queries) == index.last_crawl["queries"]
    assert (queries["status"] == "ok").all()
    if kind == "dimse":
        # more studies than the PACS's limit: the first window was capped and split
        studies = queries[queries["level"] == "STUDY"]
        assert studies["cap_hit"].iloc[0] and studies["split"].iloc[0]
        assert not studies.loc[~studies["split"], "cap_hit"].any()


def test_recrawl_updates_without_duplicates(pacs, tmp_path):
    target = tmp_path / "index"
    first = crawl_pacs(pacs.url, target, calling_aet=TEST_AET, max_results=None, quiet=True)
    n = len(first.instances)
    again = crawl_pacs(pacs.url, target, calling_aet=TEST_AET, max_results=None, quiet=True)
    assert len(again.instances) == n
    assert again.instances["SOPInstanceUID"].is_unique
    assert again.last_crawl["instances_added"] == 0
    logged = len(again.sql("SELECT * FROM queries"))
    assert logged == first.last_crawl["queries"] + again.last_crawl["queries"]


def test_date_window_and_modality_filter(pacs, folder_index, tmp_path):
    index = crawl_pacs(pacs.url, tmp_path / "index", calling_aet=TEST_AET, max_results=None,
                       since=dt.date(2024, 1, 1), until=dt.date(2024, 12, 31), modalities=["CT"], quiet=True)
    folder = folder_index.sql("SELECT SOPInstanceUID FROM instances WHERE StudyDate >= DATE '2024-01-01' "
                              "AND Modality = 'CT'")
    assert set(index.instances["SOPInstanceUID"]) == set(folder["SOPInstanceUID"])
    assert len(folder) > 0


@pytest.fixture(scope="module")
def capped_pacs(pacs, tmp_path_factory):
    """An Orthanc that answers instance queries with at most 10 results, holding a 30-image series."""
    root = tmp_path_factory.mktemp("capped")
    with running_orthanc(root, LimitFindInstances=10) as server:
        series = pacs.files / "WB-0001/20240312_CT_ABDOMEN/2_Abdomen_5.0_B30f"
        subprocess.run([dcmtk("storescu"), "-aec", ORTHANC_AET, "+sd", "127.0.0.1", str(server.dicom_port),
                        str(series)], check=True, capture_output=True)
        yield server


def test_capped_instance_query_is_reported(capped_pacs, tmp_path):
    index = crawl_pacs(capped_pacs.url, tmp_path / "index", calling_aet=TEST_AET, max_results=None,
                       quiet=True)
    notes = index.last_crawl["notes"]
    assert not index.last_crawl["complete"]
    assert any("the PACS counts 30 instances, the queries returned 10" in n for n in notes)
    assert index.queries.query("level == 'IMAGE'")["cap_hit"].all()


def test_window_split_covers_the_range():
    window = Window(dt.date(2024, 1, 1), dt.date(2024, 1, 4))
    halves = window.split()
    assert halves == [Window(dt.date(2024, 1, 1), dt.date(2024, 1, 2)),
                      Window(dt.date(2024, 1, 3), dt.date(2024, 1, 4))]
    day = Window(dt.date(2024, 1, 1), dt.date(2024, 1, 1))
    assert day.keys() == {"StudyDate": "20240101"}
    first, second = day.split()
    assert first.keys() == {"StudyDate": "20240101", "StudyTime": "000000-115959.999999"}
    assert second.keys() == {"StudyDate": "20240101", "StudyTime": "120000-235959.999999"}
    assert Window(dt.date(2024, 1, 1), dt.date(2024, 1, 1), (5, 5)).split() == []
    open_start, open_end, undated = Window().split()
    assert open_start.keys()["StudyDate"].startswith("-") and open_end.keys()["StudyDate"].endswith("-")
    assert undated == Window(undated=True) and undated.keys() == {"StudyDate": '""'} and undated.split() == []
    assert Window(None, dt.date(1899, 1, 1)).split() == []  # nothing to halve: no endless splitting


def test_wrong_called_aet_is_a_clear_error(pacs, tmp_path):
    with pytest.raises(PacsError, match="called AE title not recognised"):
        crawl_pacs(pacs.url.replace("ORTHANC@", "NOTORTHANC@"), tmp_path / "index", calling_aet=TEST_AET,
                   quiet=True)


_REFUSE_ONE_STUDY = """
function IncomingFindRequestFilter(query, origin)
  if query['0008,0052'] == 'SERIES' and query['0020,000d'] == '%s' then
    error('this query fails on purpose')
  end
  return query
end
"""


def test_a_failing_query_is_retried_then_reported_and_the_rest_kept(pacs, tmp_path):
    failing = pydicom.dcmread(pacs.files / "pydicom" / "CT_small.dcm", stop_before_pixels=True)
    others = pydicom.dcmread(pacs.files / "pydicom" / "MR_small.dcm", stop_before_pixels=True)
    root = tmp_path / "orthanc"
    root.mkdir()
    (root / "refuse.lua").write_text(_REFUSE_ONE_STUDY % failing.StudyInstanceUID)
    with running_orthanc(root, LuaScripts=[str(root / "refuse.lua")]) as server:
        files = [str(pacs.files / "pydicom" / name) for name in ("CT_small.dcm", "MR_small.dcm")]
        subprocess.run([dcmtk("storescu"), "-aec", ORTHANC_AET, "127.0.0.1", str(server.dicom_port), *files],
                       check=True, capture_output=True)
        index = crawl_pacs(server.url, tmp_path / "index", calling_aet=TEST_AET, backoff=0.05, quiet=True)
    assert list(index.instances["SOPInstanceUID"]) == [others.SOPInstanceUID]
    assert not index.last_crawl["complete"] and index.last_crawl["failed"] == 1
    failed = index.queries.query("status == 'failed'")
    assert len(failed) == 1 and failed["attempts"].iloc[0] == 3 and failed["level"].iloc[0] == "SERIES"
    (error,) = index.errors.to_dict("records")
    assert error["error"] == "query_failed" and failing.StudyInstanceUID in error["member"]


def test_a_crawl_stopped_midway_resumes_where_it_stopped(pacs, folder_index, tmp_path, monkeypatch):
    import workbench.index.remote as remote

    monkeypatch.setattr(remote, "PART_ROWS", 1)  # commit after every study
    add = remote._Writer.add
    calls = []

    def add_then_die(writer, study_uid, rows, whole):
        add(writer, study_uid, rows, whole)
        calls.append(study_uid)
        if len(calls) == 3:
            raise KeyboardInterrupt  # what a kill leaves: the parts and checkpoint written so far

    monkeypatch.setattr(remote._Writer, "add", add_then_die)
    with pytest.raises(KeyboardInterrupt):
        crawl_pacs(pacs.url, tmp_path / "index", calling_aet=TEST_AET, max_results=None, quiet=True)
    monkeypatch.setattr(remote._Writer, "add", add)
    index = crawl_pacs(pacs.url, tmp_path / "index", calling_aet=TEST_AET, max_results=None, quiet=True)
    assert "resumed: 3 studies were crawled by the run that stopped" in index.last_crawl["notes"]
    assert index.instances["SOPInstanceUID"].is_unique
    assert set(index.instances["SOPInstanceUID"]) == set(folder_index.instances["SOPInstanceUID"])
    assert not list((tmp_path / "index").glob(".pacs-crawl-*"))


def test_dicomweb_credentials_stay_out_of_the_index_and_messages(dicomweb, tmp_path):
    from workbench.net.dicomweb import parse_dicomweb

    secret = "s3cr3t-pass"
    address = parse_dicomweb(dicomweb.replace("http://", f"http://alice:{secret}@"))
    assert (address.username, address.password) == ("alice", secret)
    assert secret not in str(address) and secret not in repr(address)
    index = crawl_pacs(dicomweb.replace("http://", f"http://alice:{secret}@"), tmp_path / "index",
                       max_results=PACS_LIMIT, quiet=True)
    assert set(index.instances["source"]) == {dicomweb}
    for path in (tmp_path / "index").rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path
    with pytest.raises(PacsError) as caught:
        crawl_pacs(f"dicomweb+http://bob:{secret}@127.0.0.1:{free_port()}/dicom-web", tmp_path / "other",
                   quiet=True, retries=0)
    assert secret not in str(caught.value)
