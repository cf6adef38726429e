"""load_series on real and deliberately tricky series, checked against pydicom and dcm2niix."""

from __future__ import annotations

import shutil
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from pydicom.pixels import apply_modality_lut

import workbench
from workbench.volume import SeriesGeometryError, SeriesWarning, inspect_series, load_series

AXIAL = "2_Abdomen_5.0_B30f"


def _axial_files(sample_dir: Path) -> list[Path]:
    return sorted((sample_dir / "WB-0001").rglob(f"{AXIAL}/*.dcm"))


def _reference_volume(paths: list[Path]) -> tuple[np.ndarray, list[pydicom.Dataset]]:
    """The volume as pydicom sees it, sorted by position along the normal: the independent answer."""
    datasets = [pydicom.dcmread(p) for p in paths]
    normal = np.cross(*np.reshape(np.array(datasets[0].ImageOrientationPatient, float), (2, 3)))
    datasets.sort(key=lambda ds: float(np.dot(normal, np.array(ds.ImagePositionPatient, float))))
    return np.stack([apply_modality_lut(ds.pixel_array, ds) for ds in datasets]), datasets


def test_sample_ct_voxels_and_geometry_match_pydicom(sample_index, sample_dir) -> None:
    series = sample_index.series.query("Modality == 'CT' and plane == 'AXIAL'").iloc[0]
    image = load_series(sample_index, series["SeriesInstanceUID"])
    expected, datasets = _reference_volume(_axial_files(sample_dir))
    assert image.GetPixelID() == sitk.sitkInt16
    np.testing.assert_array_equal(sitk.GetArrayFromImage(image), expected)
    assert image.GetOrigin() == pytest.approx([float(v) for v in datasets[0].ImagePositionPatient])
    positions = np.array([ds.ImagePositionPatient for ds in datasets], float)
    assert image.GetSpacing()[2] == pytest.approx(float(np.median(np.diff(positions[:, 2]))))
    assert image.GetSpacing()[:2] == pytest.approx([float(v) for v in datasets[0].PixelSpacing][::-1])
    # The body phantom holds water, fat, bone, lung and air at their HU.
    values = sitk.GetArrayFromImage(image)
    assert values.min() <= -950 and values.max() >= 600


def test_file_names_do_not_decide_the_order(sample_dir, tmp_path) -> None:
    files = _axial_files(sample_dir)
    for number, path in enumerate(reversed(files)):
        shutil.copy(path, tmp_path / f"{number:03d}.dcm")  # names now sort against the positions
    image = load_series(sorted(tmp_path.glob("*.dcm")))
    expected, _ = _reference_volume(files)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(image), expected)


def _write_series(datasets: list[pydicom.Dataset], folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for number, ds in enumerate(datasets):
        ds.SOPInstanceUID = pydicom.uid.generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        path = folder / f"im{number:03d}.dcm"
        ds.save_as(path)
        paths.append(path)
    return paths


def test_a_localizer_inside_the_series_is_kept_out(sample_dir, tmp_path) -> None:
    files = _axial_files(sample_dir)
    datasets = [pydicom.dcmread(p) for p in files]
    localizer = pydicom.dcmread(next((sample_dir / "WB-0001").rglob("1_Topogram/*.dcm")))
    localizer.SeriesInstanceUID = datasets[0].SeriesInstanceUID
    paths = _write_series(datasets + [localizer], tmp_path / "mixed")
    with pytest.warns(SeriesWarning, match="another orientation"):
        image = load_series(paths)
    assert image.GetSize()[2] == len(files)
    assert inspect_series(paths).excluded[0][0].path == str(paths[-1])


def test_a_missing_slice_is_refused_or_resampled(sample_dir, tmp_path) -> None:
    files = _axial_files(sample_dir)
    expected, datasets = _reference_volume(files)
    gone = len(datasets) // 2
    paths = _write_series(datasets[:gone] + datasets[gone + 1:], tmp_path / "gap")
    with pytest.raises(SeriesGeometryError, match="not evenly spaced.*10 mm"):
        load_series(paths)
    image = load_series(paths, on_irregular="resample")
    values = sitk.GetArrayFromImage(image)
    assert values.shape[0] == len(datasets)
    np.testing.assert_allclose(values[gone], (expected[gone - 1] + expected[gone + 1]) / 2, atol=0.5)
    np.testing.assert_array_equal(values[gone + 1], expected[gone + 1])


def test_two_interleaved_echoes_are_two_volumes(sample_dir, tmp_path) -> None:
    mr_files = sorted((sample_dir / "WB-0002").rglob("MR*"))
    first = [pydicom.dcmread(p) for p in mr_files]
    second = [pydicom.dcmread(p) for p in mr_files]
    for ds in second:
        ds.EchoNumbers = 2
        ds.EchoTime = 2 * float(ds.EchoTime)
        ds.PixelData = (ds.pixel_array // 2).astype(ds.pixel_array.dtype).tobytes()
    interleaved = [ds for pair in zip(first, second) for ds in pair]
    paths = _write_series(interleaved, tmp_path / "echoes")
    with pytest.raises(SeriesGeometryError, match="2 volumes"):
        load_series(paths)
    echo1 = sitk.GetArrayFromImage(load_series(paths, volume=0))
    echo2 = sitk.GetArrayFromImage(load_series(paths, volume=1))
    np.testing.assert_array_equal(echo2, echo1 // 2)
    assert "echo 2" in inspect_series(paths).describe()


def _rotated(datasets: list[pydicom.Dataset], degrees: float) -> None:
    """Give the stack an oblique orientation about the patient's left-right axis, keeping it a stack."""
    angle = np.radians(degrees)
    rotation = np.array([[1, 0, 0], [0, np.cos(angle), -np.sin(angle)], [0, np.sin(angle), np.cos(angle)]])
    origin = np.array(datasets[0].ImagePositionPatient, float)
    for ds in datasets:
        iop = np.array(ds.ImageOrientationPatient, float).reshape(2, 3)
        ds.ImageOrientationPatient = [f"{v:.8f}" for v in (iop @ rotation.T).ravel()]
        position = origin + rotation @ (np.array(ds.ImagePositionPatient, float) - origin)
        ds.ImagePositionPatient = [f"{v:.6f}" for v in position]


def _dcm2niix(folder: Path, out: Path) -> sitk.Image:
    tool = shutil.which("dcm2niix")
    assert tool, "dcm2niix is needed: the project's test command (bash scripts/test.sh) installs it"
    out.mkdir()
    subprocess.run([tool, "-z", "n", "-f", "ref", "-o", str(out), str(folder)], check=True,
                   capture_output=True)
    niftis = sorted(out.glob("*.nii"))
    return sitk.ReadImage(str(niftis[-1]))


def _same_geometry(ours: sitk.Image, reference: sitk.Image) -> None:
    orientation = sitk.DICOMOrientImageFilter.GetOrientationFromDirectionCosines(ours.GetDirection())
    reference = sitk.DICOMOrient(reference, orientation)
    assert ours.GetSize() == reference.GetSize()
    np.testing.assert_allclose(ours.GetOrigin(), reference.GetOrigin(), atol=1e-3)
    np.testing.assert_allclose(ours.GetSpacing(), reference.GetSpacing(), atol=1e-3)
    np.testing.assert_allclose(ours.GetDirection(), reference.GetDirection(), atol=1e-4)
    return reference


def test_an_oblique_stack_matches_dcm2niix(sample_dir, tmp_path) -> None:
    datasets = [pydicom.dcmread(p) for p in _axial_files(sample_dir)]
    _rotated(datasets, 20.0)
    paths = _write_series(datasets, tmp_path / "oblique")
    ours = load_series(paths)
    reference = _same_geometry(ours, _dcm2niix(tmp_path / "oblique", tmp_path / "nii"))
    np.testing.assert_array_equal(sitk.GetArrayFromImage(ours), sitk.GetArrayFromImage(reference))


def test_a_tilted_stack_is_corrected_or_kept(sample_dir, tmp_path) -> None:
    datasets = [pydicom.dcmread(p) for p in _axial_files(sample_dir)]
    tilt = 15.0
    origin = np.array(datasets[0].ImagePositionPatient, float)
    for ds in datasets:
        position = np.array(ds.ImagePositionPatient, float)
        # The gantry tilts about the left-right axis: each slice moves along y as z advances.
        position[1] = origin[1] + (position[2] - origin[2]) * np.tan(np.radians(tilt))
        ds.ImagePositionPatient = [f"{v:.6f}" for v in position]
        ds.GantryDetectorTilt = -tilt  # the sign dcm2niix reads for this direction of shift
    paths = _write_series(datasets, tmp_path / "tilted")
    plan = inspect_series(paths)
    assert plan.volumes[0].tilted
    assert plan.volumes[0].tilt_degrees == pytest.approx(tilt, abs=0.01)

    kept = load_series(paths, tilt="keep")
    third_axis = np.array(kept.GetDirection()).reshape(3, 3)[:, 2]
    assert np.degrees(np.arccos(third_axis[2])) == pytest.approx(tilt, abs=0.01)

    corrected = load_series(paths)
    assert np.allclose(np.array(corrected.GetDirection()).reshape(3, 3), np.eye(3))
    # Every voxel of the corrected volume sits where the tilted slices put it: sample the kept
    # (sheared) image at the corrected voxels' physical points and compare, away from the edges.
    values = sitk.GetArrayFromImage(corrected)
    kept_values = sitk.GetArrayFromImage(kept).astype(np.float32)
    size = corrected.GetSize()
    rng = np.random.default_rng(0)
    for _ in range(200):
        i, j, k = (int(rng.integers(40, size[0] - 40)), int(rng.integers(60, size[1] - 60)),
                   int(rng.integers(0, size[2])))
        point = corrected.TransformIndexToPhysicalPoint((i, j, k))
        continuous = kept.TransformPhysicalPointToContinuousIndex(point)
        assert continuous[2] == pytest.approx(k, abs=1e-3)
        c, r = continuous[0], continuous[1]
        r0, c0 = int(np.floor(r)), int(np.floor(c))
        fr, fc = r - r0, c - c0
        expected = ((1 - fr) * (1 - fc) * kept_values[k, r0, c0] + (1 - fr) * fc * kept_values[k, r0, c0 + 1]
                    + fr * (1 - fc) * kept_values[k, r0 + 1, c0] + fr * fc * kept_values[k, r0 + 1, c0 + 1])
        assert values[k, j, i] == pytest.approx(expected, abs=0.5)
    # dcm2niix corrects the same tilt ("ref_Tilt_1.nii"). It widens the field of view by the total
    # shift and leaves its origin where the unwidened grid started, so its volume sits that many rows
    # away from where the DICOM positions put it (checked above for ours, voxel by voxel). Its
    # voxels, shifted back by exactly its widening, are ours: the shear itself agrees.
    _dcm2niix(tmp_path / "tilted", tmp_path / "nii")
    reference = sitk.ReadImage(str(tmp_path / "nii" / "ref_Tilt_1.nii"))
    orientation = sitk.DICOMOrientImageFilter.GetOrientationFromDirectionCosines(corrected.GetDirection())
    reference = sitk.DICOMOrient(reference, orientation)
    np.testing.assert_allclose(reference.GetDirection(), corrected.GetDirection(), atol=1e-4)
    np.testing.assert_allclose(reference.GetSpacing(), corrected.GetSpacing(), atol=1e-3)
    widening = (reference.GetSize()[1] - corrected.GetSize()[1]) * corrected.GetSpacing()[1]
    total_shift = (size[2] - 1) * corrected.GetSpacing()[2] * np.tan(np.radians(tilt))
    assert widening == pytest.approx(total_shift, abs=2)
    shifted = sitk.Resample(reference, corrected, sitk.TranslationTransform(3, (0, widening, 0)),
                            sitk.sitkLinear, -5000.0)
    theirs = sitk.GetArrayFromImage(shifted)[:, 60:-60, 40:-40]
    mine = values[:, 60:-60, 40:-40]
    assert (theirs > -5000).all()
    assert np.median(np.abs(mine - theirs)) <= 1.0 and np.mean(np.abs(mine - theirs)) <= 5.0


def test_a_non_image_is_refused_with_its_kind(pydicom_files) -> None:
    with pytest.raises(SeriesGeometryError, match="is not an image .RT Plan Storage"):
        load_series([pydicom_files / "rtplan.dcm"])


def test_frames_of_different_sizes_are_refused(sample_dir, tmp_path) -> None:
    datasets = [pydicom.dcmread(p) for p in _axial_files(sample_dir)]
    small = datasets[3]
    small.PixelData = small.pixel_array[:128, :128].copy().tobytes()
    small.Rows, small.Columns = 128, 128
    paths = _write_series(datasets, tmp_path / "sizes")
    with pytest.raises(SeriesGeometryError, match="different sizes"):
        load_series(paths)


def test_compressed_and_colour_files_decode_like_pydicom(pydicom_files, sample_dir) -> None:
    for name in ("MR_small_RLE.dcm", "MR_small_jp2klossless.dcm", "MR_small_jpeg_ls_lossless.dcm",
                 "JPEGLSNearLossless_16.dcm", "JPEG2000.dcm", "SC_rgb_small_odd_jpeg.dcm", "image_dfl.dcm"):
        path = pydicom_files / name
        ds = pydicom.dcmread(path)
        image = load_series([path])
        expected = apply_modality_lut(ds.pixel_array, ds)
        np.testing.assert_array_equal(sitk.GetArrayFromImage(image)[0], expected)
    coronal = sorted((sample_dir / "WB-0001").rglob("3_Abdomen_COR*/*.dcm"))
    assert pydicom.dcmread(coronal[0]).file_meta.TransferSyntaxUID == pydicom.uid.RLELossless
    expected, _ = _reference_volume(coronal)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(load_series(coronal)), expected)
    for name in ("SC_rgb_rle_2frame.dcm", "SC_rgb_jpeg_dcmtk.dcm", "SC_rgb_rle.dcm", "SC_rgb_jpeg_gdcm.dcm"):
        colour = load_series([pydicom_files / name])
        assert colour.GetNumberOfComponentsPerPixel() == 3
        rgb = pydicom.dcmread(pydicom_files / name).pixel_array  # pydicom converts YBR to RGB
        expected = rgb if rgb.ndim == 4 else rgb[np.newaxis]
        np.testing.assert_array_equal(sitk.GetArrayFromImage(colour), expected)


# --- the shared corpus: real scanner series against dcm2niix's reference output -------------------

SERIES = "series"
# (input folder, load options, reference NIfTI, how the voxels compare)
CORPUS_CASES = [
    ("dcm_qa_decubitus/In/HFDL", {}, "dcm_qa_decubitus/Ref_local/t1_fl2d_sag_20220407152351.nii", "equal"),
    ("dcm_qa_ge/In/05_3D_Ax_T1_MP_RAGE_R22", {}, "dcm_qa_ge/Ref_local/3D_Ax_T1_MP-RAGE_R22_5.nii", "equal"),
    ("dcm_qa_ge/In/01_Ax_DWI_TENSOR_R2", {"as_4d": True}, "dcm_qa_ge/Ref/Ax_DWI_TENSOR_R2_1.nii", "equal"),
    ("dcm_qa_sag/In/2_gre_field_mapping", {}, "dcm_qa_sag/Ref/2_gre_field_mapping_PMUlog.nii", "equal"),
    ("dcm_qa_enh/In/Siemens/XA10", {"as_4d": True}, "dcm_qa_enh/Ref/Siemens_REST1_w_SMS_PF7-8_6.nii",
     "equal"),
    # Philips: dcm2niix applies Philips' private "precise" scale (2005,100E) by default; we apply the
    # standard Rescale Slope/Intercept (PS3.3 C.11.1.1.2). The two differ by a linear map per volume.
    ("dcm_qa_enh/In/Philips", {"volume": 1}, "dcm_qa_enh/Ref/Philips_WIP_B0_NS_801_e1.nii", "linear"),
    ("dcm_qa_enh/In/Philips", {"volume": 0}, "dcm_qa_enh/Ref/Philips_WIP_B0_NS_801_e2_fieldmaphz.nii",
     "linear"),
] + [
    (f"dcm_qa_philips_enh/In/{kind}/", {"volume": number},
     f"dcm_qa_philips_enh/Ref/2001_WIP_fcMRI_Field_Mapping_{kind}_{name}.nii", "linear")
    for kind in ("cl", "enh") for number, name in enumerate(("e1", "e1_ph", "e2", "e2_ph"))
]


@pytest.fixture(scope="module")
def corpus_index(corpus_dir, tmp_path_factory):
    return workbench.crawl(corpus_dir / SERIES, index=tmp_path_factory.mktemp("series") / "index", quiet=True)


@pytest.mark.parametrize(("folder", "options", "reference", "comparison"), CORPUS_CASES,
                         ids=[f"{c[0]}-{c[2].rsplit('/', 1)[-1]}" for c in CORPUS_CASES])
def test_corpus_series_match_dcm2niix(
    corpus_dir, corpus_index, folder, options, reference, comparison
) -> None:
    instances = corpus_index.instances
    selection = instances[instances["path"].str.contains(f"/{SERIES}/{folder}", regex=False)]
    with warnings.catch_warnings():
        warnings.simplefilter("error", SeriesWarning)
        ours = load_series(selection, **options)
    ref = sitk.ReadImage(str(corpus_dir / SERIES / reference))
    dimension = ours.GetDimension()
    assert dimension == ref.GetDimension()
    direction3 = np.array(ours.GetDirection()).reshape(dimension, dimension)[:3, :3]
    orientation = sitk.DICOMOrientImageFilter.GetOrientationFromDirectionCosines(tuple(direction3.ravel()))
    if dimension == 4:
        ours_volumes = [ours[:, :, :, t] for t in range(ours.GetSize()[3])]
        ref_volumes = [sitk.DICOMOrient(ref[:, :, :, t], orientation) for t in range(ref.GetSize()[3])]
    else:
        ours_volumes, ref_volumes = [ours], [sitk.DICOMOrient(ref, orientation)]
    assert len(ours_volumes) == len(ref_volumes)
    for mine, theirs in zip(ours_volumes, ref_volumes):
        assert mine.GetSize() == theirs.GetSize()
        np.testing.assert_allclose(mine.GetOrigin(), theirs.GetOrigin(), atol=1e-3)
        np.testing.assert_allclose(mine.GetSpacing(), theirs.GetSpacing(), atol=1e-3)
        np.testing.assert_allclose(mine.GetDirection(), theirs.GetDirection(), atol=1e-4)
        a = sitk.GetArrayFromImage(mine).astype(np.float64)
        b = sitk.GetArrayFromImage(theirs).astype(np.float64)
        if comparison == "equal":
            np.testing.assert_array_equal(a, b)
        else:
            slope, intercept = np.polyfit(b.ravel(), a.ravel(), 1)
            residual = np.abs(a - (slope * b + intercept)).max()
            assert residual <= 1e-4 * (np.ptp(a) or 1.0), (slope, intercept, residual)


def test_corpus_refusals_say_why(corpus_index) -> None:
    instances = corpus_index.instances
    mosaic = instances[instances["path"].str.contains("2_fmri_SagAP")]
    with pytest.raises(SeriesGeometryError, match="MOSAIC"):
        load_series(mosaic)
    both = instances[instances["path"].str.contains("dcm_qa_philips_enh")]
    with pytest.raises(SeriesGeometryError, match="multi-frame and single-frame"):
        load_series(both)
    with pytest.raises(SeriesGeometryError, match="4 volumes"):
        load_series(instances[instances["path"].str.contains("dcm_qa_philips_enh/In/cl/")])
