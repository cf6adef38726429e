"""``workbench volume`` and ``workbench render`` as a user runs them."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import SimpleITK as sitk
from PIL import Image

from workbench.volume import load_series


def run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "workbench", *args], capture_output=True, text=True,
                          env=env, timeout=300)


@pytest.fixture(scope="module")
def ct_uid(sample_index) -> str:
    return sample_index.series.query("Modality == 'CT' and plane == 'AXIAL'")["SeriesInstanceUID"].iloc[0]


@pytest.mark.parametrize("suffix", [".nii.gz", ".nrrd", ".mha"])
def test_volume_writes_the_series_with_its_geometry(sample_index, ct_uid, tmp_path, run_env, suffix) -> None:
    out = tmp_path / f"ct{suffix}"
    result = run("volume", str(sample_index.directory), ct_uid, "--out", str(out), env=run_env)
    assert result.returncode == 0, result.stderr
    written = sitk.ReadImage(str(out))
    loaded = load_series(sample_index, ct_uid)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(written), sitk.GetArrayFromImage(loaded))
    np.testing.assert_allclose(written.GetOrigin(), loaded.GetOrigin(), atol=1e-3)
    np.testing.assert_allclose(written.GetSpacing(), loaded.GetSpacing(), atol=1e-4)
    np.testing.assert_allclose(written.GetDirection(), loaded.GetDirection(), atol=1e-5)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_render_a_sagittal_mip_through_the_spine(sample_index, ct_uid, tmp_path, run_env) -> None:
    out = tmp_path / "mip.png"
    result = run("render", str(sample_index.directory), ct_uid, "--plane", "sagittal", "--mode", "mip",
                 "--slab", "20", "--window", "bone", "--out", str(out), env=run_env)
    assert result.returncode == 0, result.stderr
    picture = np.asarray(Image.open(out))
    volume = load_series(sample_index, ct_uid)
    # Square display pixels: the picture's aspect is the volume's physical extent (y by z).
    width_mm = volume.GetSize()[1] * volume.GetSpacing()[1]
    height_mm = volume.GetSize()[2] * volume.GetSpacing()[2]
    assert picture.shape[1] / picture.shape[0] == pytest.approx(width_mm / height_mm, rel=0.05)
    assert picture.max() >= 200 and picture.min() == 0  # the spine is bright, air is black


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--plane", "diagonal"], 2, "--plane must be"),
        (["--window", "nonsense"], 2, "nonsense"),
        (["--plane", "0,0,0"], 2, "0"),
    ],
)
def test_render_usage_errors(sample_index, ct_uid, tmp_path, run_env, args, code, message) -> None:
    result = run("render", str(sample_index.directory), ct_uid, *args, "--out", str(tmp_path / "x.png"),
                 env=run_env)
    assert result.returncode == code, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_a_missing_series_is_a_one_line_error(sample_index, tmp_path, run_env) -> None:
    result = run("volume", str(sample_index.directory), "1.2.3.4", "--out", str(tmp_path / "x.nii.gz"),
                 env=run_env)
    assert result.returncode == 1
    assert "has no series 1.2.3.4" in result.stderr and "Traceback" not in result.stderr
