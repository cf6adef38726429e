"""Crawling folders and zip archives: tables, bad input, incremental updates, options."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import pytest

import workbench
from workbench.index.store import IndexLockedError, IndexStore


def _dicom_files(folder: Path) -> dict[str, pydicom.Dataset]:
    """Every file under ``folder`` read by pydicom: the independent count."""
    out = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            out[str(path)] = pydicom.dcmread(path, stop_before_pixels=True, force=True)
    return out


def test_sample_data_is_indexed_completely(sample_dir, sample_index) -> None:
    expected = _dicom_files(sample_dir)
    instances = sample_index.instances
    assert sorted(instances["path"]) == sorted(expected)
    assert set(instances["SOPInstanceUID"]) == {ds.SOPInstanceUID for ds in expected.values()}
    assert sample_index.errors.empty
    series = sample_index.series
    by_uid = {}
    for ds in expected.values():
        by_uid[ds.SeriesInstanceUID] = by_uid.get(ds.SeriesInstanceUID, 0) + 1
    assert dict(zip(series["SeriesInstanceUID"], series["n_instances"])) == by_uid
    studies = sample_index.studies
    assert set(studies["StudyInstanceUID"]) == {ds.StudyInstanceUID for ds in expected.values()}
    assert studies["n_instances"].sum() == len(expected)
    assert len(set(instances["PatientID"])) >= 2


def test_series_geometry_facts_match_the_positions(sample_dir, sample_index) -> None:
    series = sample_index.series.set_index("SeriesInstanceUID")
    files = _dicom_files(sample_dir)
    stacks: dict[str, list] = {}
    for ds in files.values():
        if "ImagePositionPatient" in ds:
            stacks.setdefault(ds.SeriesInstanceUID, []).append(ds)
    checked = 0
    for uid, datasets in stacks.items():
        row = series.loc[uid]
        iop = np.array(datasets[0].ImageOrientationPatient, dtype=float)
        normal = np.cross(iop[:3], iop[3:])
        along = np.sort([np.dot(normal, np.array(ds.ImagePositionPatient, dtype=float)) for ds in datasets])
        assert row["n_positions"] == len(set(np.round(along, 3)))
        if len(datasets) > 2:
            gaps = np.diff(along)
            assert row["slice_spacing"] == pytest.approx(float(np.median(gaps)), abs=1e-3)
            assert row["spacing_uniform"] == bool(np.allclose(gaps, gaps[0], atol=0.01))
            checked += 1
    assert checked >= 2
    planes = set(series["plane"].dropna())
    assert "AXIAL" in planes and len(planes) >= 2


def test_a_missing_slice_shows_as_uneven_spacing(sample_copy, tmp_path) -> None:
    first = workbench.crawl(sample_copy, index=tmp_path / "index", quiet=True)
    axial = first.series.query("Modality == 'CT' and plane == 'AXIAL' and n_instances > 5").iloc[0]
    assert axial["spacing_uniform"]
    paths = first.sql(
        "SELECT path FROM instances WHERE SeriesInstanceUID = "
        f"'{axial['SeriesInstanceUID']}' ORDER BY ImagePositionPatient[3]"
    )["path"]
    os.remove(paths.iloc[len(paths) // 2])
    again = workbench.crawl(sample_copy, index=tmp_path / "index", quiet=True)
    row = again.series.set_index("SeriesInstanceUID").loc[axial["SeriesInstanceUID"]]
    assert row["n_instances"] == axial["n_instances"] - 1
    assert not row["spacing_uniform"]
    assert row["slice_spacing_max"] == pytest.approx(2 * axial["slice_spacing"])


def _bad_inputs(root: Path, pydicom_files: Path) -> dict[str, str]:
    """A folder of every kind of bad input; returns file name -> expected error class."""
    good = Path(pydicom.data.get_testdata_file("CT_small.dcm")).read_bytes()
    (root / "good.dcm").write_bytes(good)
    (root / "zero.dcm").write_bytes(b"")
    (root / "truncated.dcm").write_bytes(good[:405])  # cut inside an element of the header
    (root / "notes.txt").write_text("not DICOM at all\n" * 20)
    bad_vr = bytearray(good)
    at = bad_vr.index(b"\x10\x00\x10\x00PN")
    bad_vr[at + 4:at + 6] = b"Q!"
    (root / "bad_vr.dcm").write_bytes(bytes(bad_vr))
    odd = bytearray(good)
    at = odd.index(b"\x10\x00\x20\x00LO")
    odd[at + 4:at + 8] = b"UT\x00\x00"
    odd[at + 8:at + 8] = b"\xff\xff\xff\xff"
    (root / "undefined_length.dcm").write_bytes(bytes(odd))
    shutil.copy(pydicom_files / "dicomdirtests" / "DICOMDIR", root / "DICOMDIR")
    shutil.copy(root / "good.dcm", root / "same_uid_copy.dcm")
    (root / "loop").mkdir()
    os.symlink("..", root / "loop" / "up")
    os.symlink("self_link", root / "self_link")
    os.symlink("nowhere.dcm", root / "broken_link.dcm")
    # A data set without preamble or file meta is DICOM all the same: indexed, flagged part10=False.
    ds = pydicom.dcmread(pydicom.data.get_testdata_file("CT_small.dcm"))
    ds.SOPInstanceUID = "1.2.826.0.1.3680043.8.498.1"
    del ds.file_meta
    ds.preamble = None
    ds.save_as(root / "no_preamble.dcm", implicit_vr=True, little_endian=True)
    return {
        "zero.dcm": "empty",
        "truncated.dcm": "truncated",
        "notes.txt": "not_dicom",
        "bad_vr.dcm": "bad_vr",
        "undefined_length.dcm": "bad_length",
        "DICOMDIR": "dicomdir",
        "up": "symlink_loop",
        "self_link": "symlink_loop",
        "broken_link.dcm": "broken_link",
    }


def test_every_kind_of_bad_input_is_recorded_and_the_crawl_goes_on(tmp_path, pydicom_files) -> None:
    source = tmp_path / "src"
    source.mkdir()
    expected = _bad_inputs(source, pydicom_files)
    index = workbench.crawl(source, index=tmp_path / "index", quiet=True)
    errors = index.errors
    found = {Path(p).name: e for p, e in zip(errors["path"], errors["error"])}
    assert found == expected
    assert all(isinstance(m, str) and m for m in errors["message"])
    instances = index.instances
    assert sorted(Path(p).name for p in instances["path"]) == [
        "good.dcm", "no_preamble.dcm", "same_uid_copy.dcm"
    ]
    no_preamble = instances[instances["path"].str.endswith("no_preamble.dcm")].iloc[0]
    assert not no_preamble["part10"] and no_preamble["Modality"] == "CT"
    duplicates = index.duplicates()
    assert sorted(Path(p).name for p in duplicates["path"]) == ["good.dcm", "same_uid_copy.dcm"]
    status = index.status()
    assert status["duplicates"] == 1
    assert index.last_crawl["failed"] == len(expected) - 1  # a DICOMDIR is not a failure


def test_incremental_add_modify_delete(sample_copy, tmp_path, pydicom_files) -> None:
    index_dir = tmp_path / "index"
    first = workbench.crawl(sample_copy, index=index_dir, quiet=True)
    n = len(first.instances)
    assert first.last_crawl["files_read"] == n

    again = workbench.crawl(sample_copy, index=index_dir, quiet=True)
    assert again.last_crawl["files_read"] == 0
    assert again.last_crawl["files_unchanged"] == n

    files = sorted(p for p in sample_copy.rglob("*") if p.is_file())
    deleted, modified = files[0], files[1]
    deleted.unlink()
    ds = pydicom.dcmread(modified)
    ds.PatientName = "CHANGED^NAME"
    ds.save_as(modified)
    os.utime(modified, ns=(1, 10**18))  # a different mtime even on a coarse clock
    shutil.copy(pydicom_files / "MR_small.dcm", sample_copy / "added.dcm")

    third = workbench.crawl(sample_copy, index=index_dir, quiet=True)
    stats = third.last_crawl
    assert stats["files_read"] == 2
    assert stats["rows_removed"] == 2  # the deleted file's row and the modified file's old row
    instances = third.instances
    assert len(instances) == n
    assert instances["path"].is_unique
    assert str(deleted) not in set(instances["path"])
    row = instances[instances["path"] == str(modified)].iloc[0]
    assert row["PatientName"] == "CHANGED^NAME"
    assert str(sample_copy / "added.dcm") in set(instances["path"])
    assert third.series["n_instances"].sum() == n

    rescanned = workbench.crawl(sample_copy, index=index_dir, rescan=True, quiet=True)
    assert rescanned.last_crawl["files_read"] == n
    assert len(rescanned.instances) == n and rescanned.instances["path"].is_unique


def test_zip_archive_members_are_indexed(sample_dir, sample_index, tmp_path) -> None:
    archive = tmp_path / "export.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(sample_dir.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(sample_dir).as_posix())
        zf.writestr("README.txt", "not DICOM")
    index = workbench.crawl(archive, index=tmp_path / "index", quiet=True)
    instances = index.instances
    assert set(instances["path"]) == {str(archive)}
    assert set(instances["SOPInstanceUID"]) == set(sample_index.instances["SOPInstanceUID"])
    assert set(index.errors["member"]) == {"README.txt"}
    assert set(index.errors["error"]) == {"not_dicom"}

    unchanged = workbench.crawl(archive, index=tmp_path / "index", quiet=True)
    assert unchanged.last_crawl["files_read"] == 0

    with zipfile.ZipFile(archive, "a") as zf:
        zf.write(pydicom.data.get_testdata_file("MR_small.dcm"), "extra/MR_small.dcm")
    os.utime(archive, ns=(1, 10**18))
    changed = workbench.crawl(archive, index=tmp_path / "index", quiet=True)
    assert len(changed.instances) == len(instances) + 1
    assert changed.instances["member"].is_unique


def test_extra_tags_and_full_header(pydicom_files, tmp_path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    for name in ("CT_small.dcm", "MR_small.dcm"):
        shutil.copy(pydicom_files / name, source / name)
    index_dir = tmp_path / "index"
    workbench.crawl(source, index=index_dir, quiet=True)
    index = workbench.crawl(
        source, index=index_dir, tags=["InstanceCreationDate", "SmallestImagePixelValue"],
        full_header=True, quiet=True,
    )
    assert index.last_crawl["rescan"]
    assert index.last_crawl["files_read"] == 2
    for row in index.instances.itertuples():
        ds = pydicom.dcmread(row.path)
        expected_date = dt.datetime.strptime(ds.InstanceCreationDate, "%Y%m%d").date()
        assert row.InstanceCreationDate == expected_date
        smallest = ds.get("SmallestImagePixelValue")
        assert (row.SmallestImagePixelValue is pd.NA) if smallest is None else (
            row.SmallestImagePixelValue == smallest
        )
        header = json.loads(row.header_json)
        assert header["00100010"]["Value"][0]["Alphabetic"] == str(ds.PatientName)
        assert "7FE00010" not in header
    # The tags stay with the index: a later crawl without --tags keeps the columns.
    later = workbench.crawl(source, index=index_dir, quiet=True)
    assert later.last_crawl["files_read"] == 0
    assert "SmallestImagePixelValue" in later.instances.columns
    with pytest.raises(ValueError, match="NotAKeyword"):
        workbench.crawl(source, index=index_dir, tags=["NotAKeyword"], quiet=True)
    with pytest.raises(ValueError, match="sequence"):
        workbench.crawl(source, index=index_dir, tags=["ReferencedImageSequence"], quiet=True)


def test_several_sources_share_one_index(sample_dir, pydicom_files, tmp_path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(pydicom_files / "CT_small.dcm", other / "ct.dcm")
    index_dir = tmp_path / "index"
    workbench.crawl(sample_dir, index=index_dir, quiet=True)
    n = len(workbench.open_index(index_dir).instances)
    index = workbench.crawl(other, index=index_dir, quiet=True)
    assert len(index.instances) == n + 1  # crawling one source never drops another's rows
    assert set(index.manifest["sources"]) == {str(sample_dir), str(other)}


def test_one_crawl_at_a_time(tmp_path, sample_dir) -> None:
    store = IndexStore(tmp_path / "index")
    with store.lock(), pytest.raises(IndexLockedError, match="another crawl"):
        workbench.crawl(sample_dir, index=tmp_path / "index", quiet=True)


def test_sql_views_and_open_index(sample_index) -> None:
    index = workbench.open_index(sample_index.directory)
    counts = index.sql("SELECT Modality, count(*) AS n FROM instances GROUP BY 1 ORDER BY 1")
    assert counts["n"].sum() == len(index.instances)
    joined = index.sql(
        "SELECT s.StudyInstanceUID, count(*) AS n FROM series s JOIN studies t USING (StudyInstanceUID) "
        "GROUP BY 1"
    )
    assert joined["n"].sum() == len(index.series)
    assert index.sql("SELECT count(*) AS n FROM errors")["n"][0] == 0
    with pytest.raises(FileNotFoundError, match="not a workbench index"):
        workbench.open_index(sample_index.directory / "instances")
