"""``workbench dose`` as a user runs it, on the sample CT and its dose report."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pydicom
import pytest
from PIL import Image

from workbench.dose.drl import example_drl_path
from workbench.dose.ssde import conversion_factor, water_equivalent_diameters
from workbench.volume import load_series


def run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "workbench", "dose", *args], capture_output=True, text=True,
                          env=env, timeout=600)


def test_dose_tables_ssde_drl_and_charts(sample_index, sample_dir, tmp_path, run_env) -> None:
    out = tmp_path / "dose"
    result = run(str(sample_index.directory), "--out", str(out), "--ssde", "--drl", str(example_drl_path()),
                 "--quiet", env=run_env)
    assert result.returncode == 0, result.stderr
    events = pd.read_parquet(out / "dose_events.parquet")
    studies = pd.read_parquet(out / "dose_studies.parquet")
    assert len(studies) == 1 and len(events) == 2
    # The report's own values, read independently with pydicom.
    report = pydicom.dcmread(next(sample_dir.rglob("99_Dose_Report/*.dcm")))
    numbers = {}

    def walk(items):
        for item in items:
            if item.ValueType == "NUM":
                code = item.ConceptNameCodeSequence[0].CodeValue
                numbers.setdefault(code, []).append(float(item.MeasuredValueSequence[0].NumericValue))
            walk(item.get("ContentSequence", []))

    walk(report.ContentSequence)
    assert studies.iloc[0]["dlp_total_mgycm"] == pytest.approx(numbers["113813"][0])
    assert sorted(events["dlp_mgycm"]) == pytest.approx(sorted(numbers["113838"]))
    assert studies.iloc[0]["dlp_sum_mgycm"] == pytest.approx(sum(numbers["113838"]))
    # SSDE of the spiral event, computed here from the images with the same AAPM pieces.
    spiral = events[events["acquisition_type"] == "Spiral Acquisition"].iloc[0]
    volume = load_series(sample_index, spiral["ssde_series_uid"])
    mean_dw = float(np.nanmean(water_equivalent_diameters(volume)))
    assert spiral["dw_mean_mm"] == pytest.approx(mean_dw)
    assert spiral["ssde_mgy"] == pytest.approx(conversion_factor(mean_dw, "32") * spiral["ctdivol_mgy"])
    assert 200 < mean_dw < 350
    localizer = events[events["acquisition_type"] == "Constant Angle Acquisition"].iloc[0]
    assert pd.isna(localizer["ssde_mgy"])
    assert (out / "drl_summary.parquet").exists() and "above_drl" in events
    for chart in ("ctdivol_by_station.png", "ssde_vs_ctdivol.png"):
        assert Image.open(out / chart).size[0] > 100
    header = pd.read_parquet(out / "header_dose.parquet")
    assert header["ctdivol_mean_mgy"].max() == pytest.approx(spiral["ctdivol_mgy"])
    assert "2 irradiation events" in result.stdout and "SSDE for 1 CT events" in result.stdout


def test_a_bad_drl_table_is_a_usage_error(sample_index, tmp_path, run_env) -> None:
    bad = tmp_path / "drl.csv"
    bad.write_text("modality,match_on,pattern,level,quantity,value,unit,source\nCT,acquisition_protocol,.*,event,"
                   "ctdivol_mgy,10,mGy,\n")
    result = run(str(sample_index.directory), "--out", str(tmp_path / "out"), "--drl", str(bad), env=run_env)
    assert result.returncode == 2 and "source" in result.stderr and "Traceback" not in result.stderr


def test_ssde_from_the_localizer_when_no_axial_images_are_there(sample_dir, tmp_path) -> None:
    import shutil

    import workbench
    from workbench.dose.audit import run_audit
    from workbench.dose.ssde import localizer_effective_diameter

    source = tmp_path / "src"
    shutil.copytree(sample_dir / "WB-0001", source)
    for folder in ("2_Abdomen_5.0_B30f", "3_Abdomen_COR_5.0_B30f"):
        shutil.rmtree(next(source.rglob(folder)))
    index = workbench.crawl(source, index=tmp_path / "index", quiet=True)
    events = run_audit(index, tmp_path / "out", ssde=True).tables.events
    spiral = events[events["acquisition_type"] == "Spiral Acquisition"].iloc[0]
    assert spiral["ssde_method"] == "effective diameter (localizer width)"
    localizer_uid = index.series.query("Modality == 'CT'")["SeriesInstanceUID"].iloc[0]
    diameter = localizer_effective_diameter(load_series(index, localizer_uid))
    assert spiral["dw_mean_mm"] == pytest.approx(diameter)
    assert spiral["ssde_mgy"] == pytest.approx(conversion_factor(diameter, "32") * spiral["ctdivol_mgy"])
