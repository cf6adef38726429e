"""The committed sample DICOM set (data/sample/) and its generator (data/make_sample.py).

These tests read the committed files, so they also fail when the committed copy is out of
date with the generator (regenerate with `python data/make_sample.py`).
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.errors import InvalidDicomError
from pydicom.uid import (
    ComputedRadiographyImageStorage,
    CTImageStorage,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    MRImageStorage,
    RLELossless,
    XRayRadiationDoseSRStorage,
)

ROOT = Path(__file__).resolve().parents[2]
GENERATOR = ROOT / "data" / "make_sample.py"
SAMPLE = ROOT / "data" / "sample"
REGENERATE = f"{Path(sys.executable).name} data/make_sample.py"
TOOL_HINT = (
    "is not on PATH; run the project's test command (bash scripts/test.sh), which installs "
    "dicom3tools (dciodvfy) and dcmtk (dcmdump)"
)

CT_STUDY = SAMPLE / "WB-0001" / "20240312_CT_ABDOMEN"
MR_SERIES = SAMPLE / "WB-0002" / "20240506_MR_SCHAEDEL" / "3_t1_se_sag"
NO_PREAMBLE = SAMPLE / "WB-0003" / "20240918_CR_CHEST" / "1_Chest_PA" / "CR000001"
DOSE_REPORT = CT_STUDY / "99_Dose_Report" / "SR000001.dcm"


def sample_files() -> list[Path]:
    assert SAMPLE.is_dir(), f"{SAMPLE} is missing: run `{REGENERATE}`"
    files = sorted(p for p in SAMPLE.rglob("*") if p.is_file())
    assert files, f"{SAMPLE} is empty: run `{REGENERATE}`"
    return files


def load_series(folder: Path) -> list[pydicom.Dataset]:
    files = [p for p in folder.iterdir() if p.is_file()]
    assert files, f"no files in {folder}"
    datasets = [pydicom.dcmread(p) for p in files]
    for ds, p in zip(datasets, files):
        ds.path = p
    return sorted(datasets, key=lambda ds: int(ds.InstanceNumber))


def series_dir(prefix: str) -> Path:
    matches = [p for p in CT_STUDY.iterdir() if p.name.startswith(prefix)]
    assert len(matches) == 1, f"expected one series folder {prefix}* in {CT_STUDY}"
    return matches[0]


def geometry(ds) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Origin, row direction, column direction, normal, (row spacing, column spacing)."""
    iop = np.array([float(v) for v in ds.ImageOrientationPatient])
    row_dir, col_dir = iop[:3], iop[3:]
    return (
        np.array([float(v) for v in ds.ImagePositionPatient]),
        row_dir,
        col_dir,
        np.cross(row_dir, col_dir),
        np.array([float(v) for v in ds.PixelSpacing]),
    )


def mean_at(ds, point, half: int = 2, max_off_plane: float = 0.01) -> float:
    """Mean rescaled value in a (2*half+1)^2 window centred on the patient point (mm)."""
    origin, row_dir, col_dir, normal, spacing = geometry(ds)
    d = np.asarray(point, dtype=float) - origin
    assert abs(d @ normal) <= max_off_plane, f"{point} is not on the plane of {ds.path}"
    r = int(round(d @ col_dir / spacing[0]))
    c = int(round(d @ row_dir / spacing[1]))
    assert half <= r < ds.Rows - half and half <= c < ds.Columns - half
    window = ds.pixel_array[r - half : r + half + 1, c - half : c + half + 1].astype(float)
    slope = float(getattr(ds, "RescaleSlope", 1))
    intercept = float(getattr(ds, "RescaleIntercept", 0))
    return float(window.mean() * slope + intercept)


def slice_at(series: list, coordinate: float) -> pydicom.Dataset:
    """The slice of an axis-aligned stack whose plane is at `coordinate` (mm) on its axis."""
    _, _, _, normal, _ = geometry(series[0])
    axis = int(np.argmax(np.abs(normal)))
    for ds in series:
        if abs(geometry(ds)[0][axis] - coordinate) < 0.01:
            return ds
    raise AssertionError(f"no slice at {coordinate} mm")


def assert_regular_stack(series: list, step: float) -> None:
    """Same orientation everywhere, positions step by `step` along the normal."""
    iops = {tuple(float(v) for v in ds.ImageOrientationPatient) for ds in series}
    assert len(iops) == 1, f"orientation differs within the series: {iops}"
    _, _, _, normal, _ = geometry(series[0])
    along = np.array([geometry(ds)[0] @ normal for ds in series])
    steps = np.diff(along)
    assert np.allclose(np.abs(steps), step, atol=1e-3), f"uneven slice steps: {steps}"
    assert np.all(np.sign(steps) == np.sign(steps[0])), "instance order is not spatial order"
    origins = np.array([geometry(ds)[0] for ds in series])
    in_plane = origins - np.outer(origins @ normal, normal)
    assert np.allclose(in_plane, in_plane[0], atol=1e-3), "slices are not stacked along the normal"


# ------------------------------------------------------------------------------------------
# Determinism: regenerating gives the committed bytes
# ------------------------------------------------------------------------------------------


def test_regenerating_gives_the_committed_files(tmp_path):
    committed = {p.relative_to(SAMPLE): p for p in sample_files()}
    out = tmp_path / "sample"
    run = subprocess.run(
        [sys.executable, str(GENERATOR), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, f"generator failed:\n{run.stdout}\n{run.stderr}"
    fresh = {p.relative_to(out): p for p in out.rglob("*") if p.is_file()}
    stale = ", ".join(map(str, sorted(set(committed) - set(fresh))))
    missing = ", ".join(map(str, sorted(set(fresh) - set(committed))))
    hint = f"the committed data/sample/ is out of date: run `{REGENERATE}`"
    assert not stale, f"{hint} (files no longer generated: {stale})"
    assert not missing, f"{hint} (files not committed: {missing})"
    differ = [str(rel) for rel in sorted(fresh) if fresh[rel].read_bytes() != committed[rel].read_bytes()]
    assert not differ, f"{hint}, or the generator is not deterministic; differing: {differ[:5]}"


def test_sample_is_small():
    total = sum(p.stat().st_size for p in sample_files())
    assert total < 12_000_000, f"sample set is {total / 1e6:.1f} MB, budget is 12 MB"


# ------------------------------------------------------------------------------------------
# Validity: dciodvfy (dicom3tools) and dcmdump (dcmtk)
# ------------------------------------------------------------------------------------------

EXPECTED_IOD = {
    CTImageStorage: "CTImage",
    MRImageStorage: "MRImage",
    ComputedRadiographyImageStorage: "CRImage",
    XRayRadiationDoseSRStorage: "XRayRadiationDoseSR",
}


def test_every_file_validates_with_dciodvfy():
    tool = shutil.which("dciodvfy")
    assert tool, f"dciodvfy {TOOL_HINT}"
    files = sample_files()

    def check(path: Path) -> str | None:
        run = subprocess.run([tool, str(path)], capture_output=True, text=True, timeout=60)
        lines = (run.stdout + run.stderr).splitlines()
        errors = [line for line in lines if line.startswith("Error")]
        sop_class = pydicom.dcmread(path, force=True, stop_before_pixels=True).SOPClassUID
        if errors:
            return f"{path.relative_to(SAMPLE)}: " + "; ".join(errors)
        if EXPECTED_IOD[sop_class] not in lines:
            return f"{path.relative_to(SAMPLE)}: not checked as {EXPECTED_IOD[sop_class]}: {lines[:3]}"
        return None

    with ThreadPoolExecutor(max_workers=4) as pool:
        problems = [p for p in pool.map(check, files) if p]
    assert not problems, "dciodvfy reports errors:\n" + "\n".join(problems)


def test_every_file_parses_with_dcmdump():
    tool = shutil.which("dcmdump")
    assert tool, f"dcmdump {TOOL_HINT}"

    def check(path: Path) -> str | None:
        # Output is in the files' own character sets (Latin-1, UTF-8): compare bytes.
        run = subprocess.run([tool, "-q", str(path)], capture_output=True, timeout=60)
        if run.returncode != 0 or b"E:" in run.stderr:
            message = run.stderr.decode("utf-8", "replace").strip()
            return f"{path.relative_to(SAMPLE)}: exit {run.returncode} {message}"
        return None

    with ThreadPoolExecutor(max_workers=4) as pool:
        problems = [p for p in pool.map(check, sample_files()) if p]
    assert not problems, "dcmdump failed:\n" + "\n".join(problems)


# ------------------------------------------------------------------------------------------
# Patient 1: CT phantom content and geometry
# ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def axial():
    series = load_series(series_dir("2_"))
    assert len(series) == 30
    return series


@pytest.fixture(scope="module")
def coronal():
    series = load_series(series_dir("3_"))
    assert len(series) == 20
    return series


def test_axial_geometry(axial):
    for ds in axial:
        assert ds.SOPClassUID == CTImageStorage
        assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
        assert list(ds.ImageType)[:3] == ["ORIGINAL", "PRIMARY", "AXIAL"]
        assert [float(v) for v in ds.ImageOrientationPatient] == [1, 0, 0, 0, 1, 0]
        assert (ds.Rows, ds.Columns) == (256, 256)
        assert [float(v) for v in ds.PixelSpacing] == [1.5, 1.5]
        assert float(ds.SliceThickness) == 5.0
        assert float(ds.SliceLocation) == float(ds.ImagePositionPatient[2])
        assert (float(ds.RescaleIntercept), float(ds.RescaleSlope)) == (-1024.0, 1.0)
        assert ds.BodyPartExamined == "ABDOMEN" and ds.PatientPosition in ("HFS", "FFS")
        assert float(ds.GantryDetectorTilt) == 0.0
        for keyword in (
            "KVP",
            "XRayTubeCurrent",
            "ExposureTime",
            "Exposure",
            "CTDIvol",
            "ConvolutionKernel",
            "SpiralPitchFactor",
            "TableHeight",
            "DataCollectionDiameter",
            "ReconstructionDiameter",
            "WindowCenter",
            "WindowWidth",
        ):
            assert keyword in ds, f"{keyword} missing in {ds.path.name}"
    assert_regular_stack(axial, 5.0)
    assert len({ds.SOPInstanceUID for ds in axial}) == 30
    assert len({ds.SeriesInstanceUID for ds in axial}) == 1
    names = [ds.path.name for ds in axial]
    assert sorted(names) != names and sorted(names) != names[::-1], (
        "file names should not sort in slice order"
    )


def test_series_share_study_and_frame_of_reference(axial, coronal):
    localizer = load_series(series_dir("1_"))
    assert len(localizer) == 1 and list(localizer[0].ImageType)[2] == "LOCALIZER"
    assert [float(v) for v in localizer[0].ImageOrientationPatient] == [1, 0, 0, 0, 0, -1]
    everything = localizer + axial + coronal
    assert len({ds.FrameOfReferenceUID for ds in everything}) == 1
    assert len({ds.StudyInstanceUID for ds in everything}) == 1
    assert len({ds.SeriesInstanceUID for ds in everything}) == 3
    assert {str(ds.PatientName) for ds in everything} == {"PHANTOM^ABDOMEN"}
    # UTF-8 (ISO_IR 192) text decodes to the intended characters
    assert {ds.InstitutionName for ds in everything} == {"Klinikum Süd"}


@pytest.mark.parametrize(
    "z, x, y, expected, tissue",
    [
        (50.0, 0.0, -165.0, -1000, "air outside the body"),
        (50.0, 0.0, -102.5, -100, "subcutaneous fat"),
        (50.0, 0.0, 0.0, 40, "soft tissue"),
        (50.0, 80.0, -10.0, -850, "left lung, upper slice"),
        (50.0, -80.0, -10.0, -850, "right lung, upper slice"),
        (45.0, 0.0, 45.0, 700, "vertebral body"),
        (0.0, 0.0, 45.0, 80, "intervertebral disc"),
        (-50.0, 80.0, -10.0, 40, "no lung in a lower slice"),
        (-50.0, -70.0, -5.0, 60, "liver"),
    ],
)
def test_axial_tissue_classes(axial, z, x, y, expected, tissue):
    ds = slice_at(axial, z)
    value = mean_at(ds, (x, y, z))
    assert abs(value - expected) <= 12, f"{tissue}: {value:.0f} HU, expected {expected}"


def test_axial_table_and_noise(axial):
    ds = slice_at(axial, -20.0)
    # The table skin under the back: one pixel row at y = 113.25 mm, 9 pixels wide.
    row = int(round((113.25 - float(ds.ImagePositionPatient[1])) / 1.5))
    skin = ds.pixel_array[row, 123:132].astype(float) - 1024
    assert abs(skin.mean() - 300) <= 15, f"table skin at {skin.mean():.0f} HU"
    # Realistic noise in a homogeneous region, not a flat synthetic image.
    soft = ds.pixel_array[120:136, 120:136].astype(float) - 1024
    assert 3 <= soft.std() <= 15, f"noise sd {soft.std():.1f} HU"
    # The volume is not constant along z: the lung voxel count (above the table, whose
    # foam core is also about -900 HU) changes between slices.
    hu = [d.pixel_array[:190].astype(int) - 1024 for d in axial]
    lung = [int(((h > -920) & (h < -780)).sum()) for h in hu]
    assert len(set(lung)) > 5 and lung[0] > 10 * lung[-1] + 1000, lung


def test_coronal_rle_agrees_with_axial(axial, coronal):
    for ds in coronal:
        assert ds.file_meta.TransferSyntaxUID == RLELossless
        assert [float(v) for v in ds.ImageOrientationPatient] == [1, 0, 0, 0, 0, -1]
    assert_regular_stack(coronal, 10.0)
    # Same patient point, seen by both series.
    for point, expected in [
        ((0.0, 40.0, 45.0), 700),
        ((80.0, -10.0, 50.0), -850),
        ((-70.0, -10.0, -50.0), 60),
    ]:
        x, y, z = point
        for ds in (slice_at(coronal, y), slice_at(axial, z)):
            value = mean_at(ds, point)
            assert abs(value - expected) <= 12, f"{ds.path.name} at {point}: {value:.0f}"


# ------------------------------------------------------------------------------------------
# Patient 1: the CT Radiation Dose SR (TID 10011) against the CT image headers
# ------------------------------------------------------------------------------------------


def sr_code(item) -> tuple[str, str]:
    return str(item.CodeValue), str(item.CodingSchemeDesignator)


def sr_children(item, concept: tuple[str, str]) -> list:
    """The direct content items of `item` whose concept name is `concept` (value, scheme)."""
    return [
        child
        for child in getattr(item, "ContentSequence", [])
        if sr_code(child.ConceptNameCodeSequence[0]) == concept
    ]


def sr_child(item, concept: tuple[str, str]):
    found = sr_children(item, concept)
    assert len(found) == 1, f"expected one {concept} item, found {len(found)}"
    return found[0]


def sr_num(item, concept: tuple[str, str], unit: str) -> float:
    """The value of the NUM child `concept`, which must be in the UCUM unit `unit`."""
    child = sr_child(item, concept)
    assert child.ValueType == "NUM"
    measured = child.MeasuredValueSequence[0]
    assert sr_code(measured.MeasurementUnitsCodeSequence[0]) == (unit, "UCUM"), concept
    return float(measured.NumericValue)


def sr_walk(item):
    for child in getattr(item, "ContentSequence", []):
        yield child
        yield from sr_walk(child)


@pytest.fixture(scope="module")
def dose_report() -> pydicom.Dataset:
    assert DOSE_REPORT.is_file(), f"{DOSE_REPORT} is missing: run `{REGENERATE}`"
    return pydicom.dcmread(DOSE_REPORT)


def test_dose_report_belongs_to_the_ct_study(dose_report, axial, coronal):
    ds = dose_report
    localizer = load_series(series_dir("1_"))
    ct = axial[0]
    assert ds.SOPClassUID == XRayRadiationDoseSRStorage and ds.Modality == "SR"
    assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert (ds.SeriesNumber, ds.SeriesDescription) == (99, "Dose Report")
    assert ds.SeriesInstanceUID not in {s.SeriesInstanceUID for s in localizer + axial + coronal}
    for keyword in (
        "StudyInstanceUID",
        "AccessionNumber",
        "StudyDate",
        "StudyID",
        "PatientName",
        "PatientID",
        "PatientBirthDate",
        "PatientSex",
        "Manufacturer",
        "ManufacturerModelName",
        "StationName",
        "DeviceSerialNumber",
        "InstitutionName",
    ):
        assert ds[keyword].value == ct[keyword].value, keyword
    assert (ds.CompletionFlag, ds.VerificationFlag) == ("COMPLETE", "UNVERIFIED")
    assert "ReferencedPerformedProcedureStepSequence" in ds and "PerformedProcedureCodeSequence" in ds
    # The evidence lists every CT instance of the study, by series.
    (study,) = ds.CurrentRequestedProcedureEvidenceSequence
    assert study.StudyInstanceUID == ct.StudyInstanceUID
    referenced = {
        (series.SeriesInstanceUID, ref.ReferencedSOPInstanceUID, ref.ReferencedSOPClassUID)
        for series in study.ReferencedSeriesSequence
        for ref in series.ReferencedSOPSequence
    }
    expected = {(i.SeriesInstanceUID, i.SOPInstanceUID, i.SOPClassUID) for i in localizer + axial + coronal}
    assert referenced == expected
    # The observer is the CT scanner.
    assert sr_code(sr_child(ds, ("121005", "DCM")).ConceptCodeSequence[0]) == ("121007", "DCM")
    for concept, keyword in [
        ("121013", "StationName"),
        ("121014", "Manufacturer"),
        ("121015", "ManufacturerModelName"),
        ("121016", "DeviceSerialNumber"),
    ]:
        assert sr_child(ds, (concept, "DCM")).TextValue == ct[keyword].value, keyword
    scope = sr_child(ds, ("113705", "DCM"))
    assert sr_code(scope.ConceptCodeSequence[0]) == ("113014", "DCM")  # Study
    assert sr_child(scope, ("110180", "DCM")).UID == ct.StudyInstanceUID


def test_dose_report_is_tid_10011_with_known_codes(dose_report):
    ds = dose_report
    assert sr_code(ds.ConceptNameCodeSequence[0]) == ("113701", "DCM")
    (template,) = ds.ContentTemplateSequence
    assert (template.MappingResource, template.TemplateIdentifier) == ("DCMR", "10011")
    procedure = sr_child(ds, ("121058", "DCM"))
    assert sr_code(procedure.ConceptCodeSequence[0]) == ("77477000", "SCT")  # CT X-Ray
    # Every DCM and SCT code (concept names and coded values) is one pydicom knows.
    from pydicom.sr.codedict import codes

    known = set()
    for scheme in ("DCM", "SCT"):
        collection = getattr(codes, scheme)
        known |= {(c.value, c.scheme_designator) for c in map(collection.__getattr__, collection.dir())}
    used = set()
    for item in sr_walk(ds):
        used.add(sr_code(item.ConceptNameCodeSequence[0]))
        if item.ValueType == "CODE":
            used.add(sr_code(item.ConceptCodeSequence[0]))
        if item.ValueType == "NUM":
            unit = item.MeasuredValueSequence[0].MeasurementUnitsCodeSequence[0]
            assert unit.CodingSchemeDesignator == "UCUM"
    assert not {c for c in used if c[1] not in ("DCM", "SCT")}, used
    assert used <= known, f"codes pydicom does not know: {sorted(used - known)}"


def test_dose_report_values_agree_with_the_ct_headers(dose_report, axial, coronal):
    """CTDIvol, scanning length and DLP of each irradiation event, from the image headers."""
    ds = dose_report
    (topogram,) = load_series(series_dir("1_"))
    events = sr_children(ds, ("113819", "DCM"))  # CT Acquisition
    assert len(events) == 2
    by_type = {sr_code(sr_child(e, ("113820", "DCM")).ConceptCodeSequence[0]): e for e in events}
    localizer_event = by_type[("113805", "DCM")]  # Constant Angle Acquisition
    spiral_event = by_type[("116152004", "SCT")]  # Spiral Acquisition
    assert len({sr_child(e, ("113769", "DCM")).UID for e in events}) == 2  # Irradiation Event UID

    # The spiral: one acquisition behind both the axial series and its coronal reformat.
    for keyword in ("CTDIvol", "KVP", "XRayTubeCurrent", "SpiralPitchFactor", "RevolutionTime"):
        assert len({float(i[keyword].value) for i in axial + coronal}) == 1, keyword
    z = [float(i.ImagePositionPatient[2]) for i in axial]
    expected_length = max(z) - min(z) + float(axial[0].SliceThickness)  # 145 + 5 mm
    parameters = sr_child(spiral_event, ("113822", "DCM"))
    source = sr_child(parameters, ("113831", "DCM"))
    dose = sr_child(spiral_event, ("113829", "DCM"))
    ctdivol = sr_num(dose, ("113830", "DCM"), "mGy")
    length = sr_num(parameters, ("113825", "DCM"), "mm")
    dlp = sr_num(dose, ("113838", "DCM"), "mGy.cm")
    assert ctdivol == float(axial[0].CTDIvol)
    assert length == pytest.approx(expected_length) and length == 150.0
    assert dlp == pytest.approx(ctdivol * length / 10, abs=0.01)
    assert sr_num(parameters, ("113828", "DCM"), "{ratio}") == float(axial[0].SpiralPitchFactor)
    assert sr_num(parameters, ("113826", "DCM"), "mm") == float(axial[0].SingleCollimationWidth)
    assert sr_num(parameters, ("113827", "DCM"), "mm") == float(axial[0].TotalCollimationWidth)
    assert sr_num(source, ("113733", "DCM"), "kV") == float(axial[0].KVP)
    assert sr_num(source, ("113734", "DCM"), "mA") == float(axial[0].XRayTubeCurrent)
    assert sr_num(source, ("113833", "DCM"), "mA") >= float(axial[0].XRayTubeCurrent)
    assert sr_num(source, ("113834", "DCM"), "s") == float(axial[0].RevolutionTime)
    phantom = sr_child(dose, ("113835", "DCM")).ConceptCodeSequence[0]
    assert sr_code(phantom) == sr_code(axial[0].CTDIPhantomTypeCodeSequence[0])

    # The localizer: its length along z is its rows times the row spacing.
    parameters = sr_child(localizer_event, ("113822", "DCM"))
    source = sr_child(parameters, ("113831", "DCM"))
    dose = sr_child(localizer_event, ("113829", "DCM"))
    loc_ctdivol = sr_num(dose, ("113830", "DCM"), "mGy")
    loc_length = sr_num(parameters, ("113825", "DCM"), "mm")
    loc_dlp = sr_num(dose, ("113838", "DCM"), "mGy.cm")
    assert loc_ctdivol == float(topogram.CTDIvol)
    assert loc_length == pytest.approx(topogram.Rows * float(topogram.PixelSpacing[0]))
    assert loc_dlp == pytest.approx(loc_ctdivol * loc_length / 10, abs=0.01)
    assert sr_num(parameters, ("113824", "DCM"), "s") == float(topogram.ExposureTime) / 1000
    assert sr_num(source, ("113733", "DCM"), "kV") == float(topogram.KVP)
    assert sr_num(source, ("113734", "DCM"), "mA") == float(topogram.XRayTubeCurrent)
    assert not sr_children(parameters, ("113828", "DCM")), "a topogram has no pitch"

    # Accumulated: two events, the total DLP is their sum.
    accumulated = sr_child(ds, ("113811", "DCM"))
    assert sr_num(accumulated, ("113812", "DCM"), "{events}") == 2
    total = sr_num(accumulated, ("113813", "DCM"), "mGy.cm")
    assert total == pytest.approx(dlp + loc_dlp, abs=0.01)
    # The values data/README.md states.
    assert (ctdivol, length, dlp, total) == (9.81, 150.0, 147.15, 151.83)
    assert (loc_ctdivol, loc_length, loc_dlp) == (0.12, 390.0, 4.68)
    # The irradiation spans the topogram start to the spiral end, on the study date.
    start = sr_child(ds, ("113809", "DCM")).DateTime
    end = sr_child(ds, ("113810", "DCM")).DateTime
    assert start.startswith(ds.StudyDate) and start < end
    assert start[8:14] == str(topogram.AcquisitionTime)[:6]


# ------------------------------------------------------------------------------------------
# Patient 2: MR, Implicit VR Little Endian, Latin-1
# ------------------------------------------------------------------------------------------


def test_mr_is_implicit_vr_little_endian_latin1():
    series = load_series(MR_SERIES)
    assert len(series) == 20
    for ds in series:
        assert ds.SOPClassUID == MRImageStorage
        assert ds.file_meta.TransferSyntaxUID == ImplicitVRLittleEndian
        assert ds.original_encoding == (True, True)
        assert ds.SpecificCharacterSet == "ISO_IR 100"
        assert str(ds.PatientName) == "MÜLLER^JOSÉ"
        for keyword in (
            "MagneticFieldStrength",
            "RepetitionTime",
            "EchoTime",
            "FlipAngle",
            "SequenceName",
            "ScanningSequence",
            "SequenceVariant",
            "MRAcquisitionType",
            "ImagingFrequency",
            "EchoNumbers",
        ):
            assert keyword in ds, f"{keyword} missing in {ds.path.name}"
    assert_regular_stack(series, 5.0)
    assert [float(v) for v in series[0].ImageOrientationPatient] == [0, 1, 0, 0, 0, -1]

    raw = series[0].path.read_bytes()
    assert raw[128:132] == b"DICM"
    # Skip the File Meta group (its length is in (0002,0000)); the data set that follows
    # has no VR letters after each tag: tag (4 bytes) then a 4-byte length.
    meta_len = struct.unpack("<I", raw[140:144])[0]
    body = raw[144 + meta_len :]
    group, element, length = struct.unpack("<HHI", body[:8])
    assert (group, element) == (0x0008, 0x0005)  # SpecificCharacterSet first
    assert body[8 : 8 + length].rstrip(b" ") == b"ISO_IR 100"
    assert b"M\xdcLLER^JOS\xc9" in raw, "PatientName is not Latin-1 encoded"

    mid = series[9]  # x = -2.5 mm, near the midline, between the ventricles
    x = float(mid.ImagePositionPatient[0])
    assert 600 <= mean_at(mid, (x, 0.0, 50.0)) <= 760, "white matter"
    assert mean_at(mid, (x, -110.0, 120.0)) <= 40, "air around the head"


# ------------------------------------------------------------------------------------------
# Patient 3: CR without preamble
# ------------------------------------------------------------------------------------------


def test_cr_has_no_preamble_and_no_file_meta():
    raw = NO_PREAMBLE.read_bytes()
    assert raw[128:132] != b"DICM" and raw[:4] != b"DICM"
    group, element = struct.unpack("<HH", raw[:4])
    assert group == 0x0008, f"expected the data set to start at group 0008, got {group:04X}"
    assert not raw[4:6].isalpha(), "the data set is expected in Implicit VR"
    with pytest.raises(InvalidDicomError):
        pydicom.dcmread(NO_PREAMBLE)
    ds = pydicom.dcmread(NO_PREAMBLE, force=True)
    assert "TransferSyntaxUID" not in ds.file_meta
    assert ds.SOPClassUID == ComputedRadiographyImageStorage
    assert ds.PhotometricInterpretation == "MONOCHROME1"
    assert ds.PatientID == "WB-0003"
    pixels = np.frombuffer(ds.PixelData, dtype="<u2").reshape(ds.Rows, ds.Columns)
    # MONOCHROME1, stored values follow detector exposure: air (high) > lung > spine.
    air, lung, spine = pixels[200, 5], pixels[100, 90], pixels[290, 170]
    assert air > lung > spine, (air, lung, spine)
