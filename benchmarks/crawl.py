"""Benchmark `workbench crawl` against the serial pydicom loop a user would otherwise write.

Run by hand, not by CI::

    python benchmarks/crawl.py [--ct N] [--flat M] [--workdir DIR] [--keep] [--workers W]

Two corpora are generated deterministically (numpy seeded) under the work directory:

- ``ct/``: N CT images of 512x512 int16 (about 512 KiB each) with realistic headers, in a
  PACS-export layout ``ct/<patient>/<study>/<series>/<file>``;
- ``flat/``: M small MR images (64x64) in one flat folder, spread over a few hundred series.

For each corpus the script does one warm-up pass (read the first 8 KiB of every file; the page
cache is not dropped, so both contenders see a warm cache), measures an ``open()+read(8192)``
pass as an I/O upper bound, times the serial baseline (os.walk + ``dcmread(stop_before_pixels=
True)`` + ~70 attributes + ``DataFrame.to_parquet``), then times ``workbench.crawl`` and an
unchanged re-crawl, each in a fresh subprocess whose process tree is sampled for memory.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from multiprocessing import Pool
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import pyarrow.dataset as pads
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, MRImageStorage
from report import Report, machine, version, work_directory
from tqdm import tqdm

SEED = 20240607
CORPUS_VERSION = 1  # bump when the generated files change, so a reused --workdir is rebuilt
UID_ROOT = "1.2.826.0.1.3680043.8.498.7"
REPO = Path(__file__).resolve().parents[1]

# CT corpus shape: patients x studies per patient x series per study; slices spread evenly.
CT_PATIENTS, CT_STUDIES, CT_SERIES = 10, 2, 2
CT_SIZE = 512
# Flat corpus shape: one study per patient, this many series per study, ~200 images per series.
FLAT_SERIES_PER_STUDY, FLAT_IMAGES_PER_SERIES, FLAT_MAX_SERIES = 5, 200, 250
FLAT_SIZE = 64

TARGET_RATIO = 4.0
TARGET_RECRAWL_S = 3.0
TARGET_PEAK_MB = 400.0

# The attributes the serial loop pulls out of every header.
KEYWORDS = [
    # patient
    "PatientName", "PatientID", "PatientBirthDate", "PatientSex", "PatientAge",
    "PatientSize", "PatientWeight",
    # study
    "StudyInstanceUID", "StudyDate", "StudyTime", "StudyID", "AccessionNumber",
    "StudyDescription", "ReferringPhysicianName",
    # series
    "SeriesInstanceUID", "SeriesNumber", "SeriesDescription", "SeriesDate", "SeriesTime",
    "Modality", "BodyPartExamined", "ProtocolName", "FrameOfReferenceUID",
    # instance
    "SOPClassUID", "SOPInstanceUID", "InstanceNumber", "AcquisitionNumber",
    "AcquisitionDate", "AcquisitionTime", "ContentDate", "ContentTime", "ImageType",
    # equipment
    "Manufacturer", "ManufacturerModelName", "StationName", "InstitutionName",
    "DeviceSerialNumber", "SoftwareVersions",
    # image plane
    "ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "SliceThickness",
    "SliceLocation",
    # image pixel
    "Rows", "Columns", "BitsAllocated", "BitsStored", "PixelRepresentation",
    "PhotometricInterpretation", "SamplesPerPixel", "NumberOfFrames", "RescaleIntercept",
    "RescaleSlope", "WindowCenter", "WindowWidth",
    # CT acquisition and dose
    "KVP", "XRayTubeCurrent", "ExposureTime", "Exposure", "ConvolutionKernel",
    "ReconstructionDiameter", "SpiralPitchFactor", "CTDIvol", "GantryDetectorTilt",
    "TableHeight",
    # MR acquisition
    "MagneticFieldStrength", "RepetitionTime", "EchoTime", "FlipAngle", "ScanningSequence",
    "SequenceName",
]  # fmt: skip

# The crawl, run in a fresh interpreter (cwd = repository root, so an uninstalled checkout works).
# The crawl's "work alone" excludes imports, as the baseline's loop time does: the libraries the
# crawl imports on first use (pandas through pyarrow's first conversion, pydicom's UID dictionary for
# sop_class_name) are imported before the clock starts. The whole command counts them.
CRAWL_CHILD = """
import json, sys, time
import pandas, pydicom.uid
import workbench
start = time.perf_counter()
workbench.crawl([sys.argv[1]], index=sys.argv[2], workers=int(sys.argv[3]), quiet=True)
print(json.dumps({"api_seconds": time.perf_counter() - start}))
"""


# --------------------------------------------------------------------------- corpus generation


@dataclass(frozen=True)
class SeriesJob:
    """One series to write: which corpus, where, and which global file indices it holds."""

    kind: str  # "ct" or "flat"
    root: str
    series: int
    first: int  # global index of the series' first file
    names: tuple[str, ...]  # file paths relative to root, one per instance


def uid(kind: str, level: int, *numbers: int) -> str:
    """A deterministic UID: root . corpus . level . numbers (each component without leading 0)."""
    corpus = 1 if kind == "ct" else 2
    return ".".join(str(part) for part in (UID_ROOT, corpus, level, *(n + 1 for n in numbers)))


# Template values; "" marks a value set per patient, study, series or instance.
COMMON_ATTRS: dict[str, object] = {
    "SpecificCharacterSet": "ISO_IR 100",
    "InstanceCreationDate": "",
    "InstanceCreationTime": "",
    "InstanceCreatorUID": UID_ROOT,
    "TimezoneOffsetFromUTC": "+0100",
    "SOPClassUID": "",
    "SOPInstanceUID": "",
    "StudyDate": "",
    "SeriesDate": "",
    "AcquisitionDate": "",
    "ContentDate": "",
    "StudyTime": "083000",
    "SeriesTime": "",
    "AcquisitionTime": "",
    "ContentTime": "",
    "AccessionNumber": "",
    "Modality": "",
    "Manufacturer": "ACME Medical",
    "InstitutionName": "Workbench General Hospital",
    "InstitutionAddress": "1 Imaging Way, Sample Town",
    "ReferringPhysicianName": "Referrer^Rita^^Dr",
    "StationName": "STATION01",
    "StudyDescription": "",
    "SeriesDescription": "",
    "InstitutionalDepartmentName": "Radiology",
    "PerformingPhysicianName": "Performer^Paul",
    "OperatorsName": "Operator^Olga",
    "AdmittingDiagnosesDescription": "Routine",
    "ManufacturerModelName": "",
    "PatientName": "",
    "PatientID": "",
    "IssuerOfPatientID": "WGH",
    "PatientBirthDate": "",
    "PatientSex": "",
    "PatientAge": "",
    "PatientSize": "1.72",
    "PatientWeight": "",
    "PatientComments": "synthetic benchmark data",
    "BodyPartExamined": "",
    "DeviceSerialNumber": "SN-000451",
    "SoftwareVersions": ["VA20A", "SP3"],
    "ProtocolName": "",
    "DateOfLastCalibration": "20240101",
    "TimeOfLastCalibration": "070000",
    "PatientPosition": "HFS",
    "StudyInstanceUID": "",
    "SeriesInstanceUID": "",
    "StudyID": "",
    "SeriesNumber": 1,
    "AcquisitionNumber": 1,
    "InstanceNumber": 1,
    "PatientOrientation": "",
    "ImagePositionPatient": ["0", "0", "0"],
    "ImageOrientationPatient": ["1", "0", "0", "0", "1", "0"],
    "FrameOfReferenceUID": "",
    "PositionReferenceIndicator": "",
    "SliceLocation": "0",
    "SliceThickness": "",
    "SamplesPerPixel": 1,
    "PhotometricInterpretation": "MONOCHROME2",
    "BitsAllocated": 16,
    "BitsStored": 16,
    "HighBit": 15,
    "LossyImageCompression": "00",
    "PerformedProcedureStepStartDate": "",
    "PerformedProcedureStepStartTime": "083000",
    "PerformedProcedureStepID": "PPS1",
    "PerformedProcedureStepDescription": "Routine protocol",
}

CT_ATTRS: dict[str, object] = {
    "SOPClassUID": CTImageStorage,
    "Modality": "CT",
    "ImageType": ["ORIGINAL", "PRIMARY", "AXIAL"],
    "ManufacturerModelName": "Tomograph 128",
    "StudyDescription": "CT CHEST ABDOMEN PELVIS W CONTRAST",
    "BodyPartExamined": "CHEST",
    "ContrastBolusAgent": "Iohexol 350",
    "ContrastBolusRoute": "IV",
    "ContrastBolusVolume": "90",
    "ScanOptions": "HELICAL MODE",
    "AcquisitionType": "SPIRAL",
    "ReconstructionAlgorithm": "ITERATIVE",
    "IrradiationEventUID": "",
    "KVP": "120",
    "DataCollectionDiameter": "500",
    "ReconstructionDiameter": "380",
    "DistanceSourceToDetector": "1085.6",
    "DistanceSourceToPatient": "595",
    "GantryDetectorTilt": "0",
    "TableHeight": "160",
    "RotationDirection": "CW",
    "ExposureTime": "500",
    "XRayTubeCurrent": 0,
    "Exposure": 0,
    "FilterType": "FLAT",
    "GeneratorPower": "60",
    "FocalSpots": ["1.2"],
    "ConvolutionKernel": "",
    "RevolutionTime": 0.5,
    "SingleCollimationWidth": 0.6,
    "TotalCollimationWidth": 38.4,
    "TableSpeed": 46.0,
    "TableFeedPerRotation": 23.0,
    "SpiralPitchFactor": 0.6,
    "CTDIvol": 0.0,
    "ExposureModulationType": "XYZ_EC",
    "DataCollectionCenterPatient": [0.0, -160.0, 0.0],
    "ReconstructionTargetCenterPatient": [0.0, -160.0, 0.0],
    "ImagesInAcquisition": 1,
    "Rows": CT_SIZE,
    "Columns": CT_SIZE,
    "PixelSpacing": ["0.742188", "0.742188"],
    "PixelRepresentation": 1,
    "WindowCenter": ["40", "-600"],
    "WindowWidth": ["400", "1600"],
    "RescaleIntercept": "-1024",
    "RescaleSlope": "1",
    "RescaleType": "HU",
    "WindowCenterWidthExplanation": ["WINDOW1", "WINDOW2"],
}

MR_ATTRS: dict[str, object] = {
    "SOPClassUID": MRImageStorage,
    "Modality": "MR",
    "ImageType": ["ORIGINAL", "PRIMARY", "OTHER", "ND"],
    "ManufacturerModelName": "Magnetron 3T",
    "StudyDescription": "MR BRAIN",
    "BodyPartExamined": "BRAIN",
    "ScanningSequence": ["SE"],
    "SequenceVariant": ["SK", "SP"],
    "ScanOptions": ["PFP"],
    "MRAcquisitionType": "2D",
    "SequenceName": "*tse2d1_15",
    "AngioFlag": "N",
    "RepetitionTime": "4000",
    "EchoTime": "90",
    "NumberOfAverages": "1",
    "ImagingFrequency": "123.2",
    "ImagedNucleus": "1H",
    "EchoNumbers": "1",
    "MagneticFieldStrength": "3",
    "SpacingBetweenSlices": "5.5",
    "NumberOfPhaseEncodingSteps": "230",
    "EchoTrainLength": "15",
    "PercentSampling": "100",
    "PercentPhaseFieldOfView": "100",
    "PixelBandwidth": "200",
    "ReceiveCoilName": "Head_32",
    "TransmitCoilName": "Body",
    "InPlanePhaseEncodingDirection": "ROW",
    "FlipAngle": "150",
    "SAR": "0.9",
    "dBdt": "0",
    "Rows": FLAT_SIZE,
    "Columns": FLAT_SIZE,
    "PixelSpacing": ["3.59375", "3.59375"],
    "PixelRepresentation": 0,
    "WindowCenter": "600",
    "WindowWidth": "1200",
}


def code(value: str, scheme: str, meaning: str) -> Dataset:
    """A code sequence item."""
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, scheme, meaning
    return item


def referenced(sop_class: str, sop_instance: str) -> Dataset:
    """A reference sequence item."""
    item = Dataset()
    item.ReferencedSOPClassUID, item.ReferencedSOPInstanceUID = sop_class, sop_instance
    return item


def build_template(kind: str) -> Dataset:
    """A header template: ~150 elements for CT (sequences, two private blocks), ~110 for MR."""
    ds = Dataset()
    for keyword, value in {**COMMON_ATTRS, **(CT_ATTRS if kind == "ct" else MR_ATTRS)}.items():
        setattr(ds, keyword, value)
    request = Dataset()
    request.RequestedProcedureID, request.ScheduledProcedureStepID = "RP1", "SPS1"
    request.RequestedProcedureDescription = "Routine protocol"
    ds.RequestAttributesSequence = [request]
    pps_class = "1.2.840.10008.3.1.2.3.3"  # Modality Performed Procedure Step
    ds.ReferencedPerformedProcedureStepSequence = [referenced(pps_class, uid(kind, 9, 0))]
    if kind == "ct":
        ds.ProcedureCodeSequence = [code("CTCAP", "99WBH", "CT chest abdomen pelvis contrast")]
        ds.AnatomicRegionSequence = [code("818982008", "SCT", "Thorax and Abdomen and Pelvis")]
        ds.CTDIPhantomTypeCodeSequence = [code("113691", "DCM", "IEC Body Dosimetry Phantom")]
        ds.ReferencedImageSequence = [referenced(CTImageStorage, "") for _ in range(3)]
        vendor = ds.private_block(0x0009, "ACME CT 1.0", create=True)
        for offset, (vr, value) in enumerate(
            [
                ("LO", "RECON_ITER_3"),
                ("SH", "SCAN_A"),
                ("DS", "1.5"),
                ("US", 3),
                ("SL", -42),
                ("FD", 0.125),
                ("LO", ["PROTO", "ADULT", "ROUTINE"]),
                ("OB", bytes(range(32))),
            ],
            start=1,
        ):
            vendor.add_new(offset, vr, value)
        params = ds.private_block(0x0019, "ACME CT PARAMS", create=True)
        params.add_new(0x10, "DS", "0.33")
        params.add_new(0x11, "DS", ["1", "2", "3"])
        params.add_new(0x12, "LO", "DETECTOR_V2")
        params.add_new(0x13, "UL", 123456)
    else:
        ds.ProcedureCodeSequence = [code("MRBR", "99WBH", "MR brain")]
        vendor = ds.private_block(0x0029, "ACME MR 1.0", create=True)
        vendor.add_new(0x01, "LO", "TSE")
        vendor.add_new(0x02, "DS", "0.8")
    return ds


def with_meta(ds: Dataset) -> Dataset:
    """Attach a File Meta Information group (explicit VR little endian)."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ""
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = UID_ROOT + ".1"
    meta.ImplementationVersionName = "WB_BENCH_1"
    ds.file_meta = meta
    return ds


_templates: dict[str, Dataset] = {}


def template(kind: str) -> Dataset:
    """This process' template for a corpus, built once and then mutated in place per file."""
    if kind not in _templates:
        _templates[kind] = with_meta(build_template(kind))
    return _templates[kind]


def ct_pixels(rng: np.random.Generator) -> bytes:
    """A body-like phantom in stored values (HU + 1024) with noise, as int16 bytes."""
    y, x = np.ogrid[-1 : 1 : CT_SIZE * 1j, -1 : 1 : CT_SIZE * 1j]
    body = (x / 0.8) ** 2 + (y / 0.6) ** 2 <= 1
    bone = np.abs((x / 0.3) ** 2 + ((y + 0.35) / 0.12) ** 2 - 1) < 0.3
    hu = np.where(body, 40.0, -1000.0) + np.where(bone, 700.0, 0.0)
    hu += rng.normal(0.0, 12.0, hu.shape)
    return (hu + 1024).astype("<i2").tobytes()


def set_series(ds: Dataset, job: SeriesJob) -> None:
    """Set the patient, study and series values (and pixel data) of one series."""
    ct = job.kind == "ct"
    rng = np.random.default_rng([SEED, 1 if ct else 2, job.series])
    per_study = CT_SERIES if ct else FLAT_SERIES_PER_STUDY
    study, series_in_study = divmod(job.series, per_study)
    patient = study // (CT_STUDIES if ct else 1)
    study_date = f"2024{1 + study % 12:02d}{1 + study % 28:02d}"
    ds.PatientName = f"Synthetic^Patient{patient + 1:04d}"
    ds.PatientID = f"{job.kind.upper()}{patient + 1:06d}"
    ds.PatientBirthDate = f"{1940 + patient % 60}0{1 + patient % 9}15"
    ds.PatientSex = "FM"[patient % 2]
    ds.PatientAge = f"{84 - patient % 60:03d}Y"
    ds.PatientWeight = f"{55 + rng.integers(0, 45)}"
    ds.StudyInstanceUID = uid(job.kind, 1, study)
    ds.FrameOfReferenceUID = uid(job.kind, 4, study)
    ds.StudyID = str(study + 1)
    ds.AccessionNumber = f"A{study + 1:08d}"
    ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = study_date
    ds.InstanceCreationDate = ds.PerformedProcedureStepStartDate = study_date
    ds.SeriesInstanceUID = uid(job.kind, 2, job.series)
    ds.SeriesNumber = series_in_study + 1
    ds.SeriesTime = f"0831{series_in_study:02d}"
    if ct:
        kernel, thickness = (("Br40", "1.0"), ("Br60", "2.0"))[series_in_study % 2]
        ds.SeriesDescription = f"Thorax {thickness} {kernel}"
        ds.ProtocolName = "CAP routine"
        ds.ConvolutionKernel = kernel
        ds.SliceThickness = thickness
        ds.CTDIvol = round(float(rng.uniform(6, 14)), 2)
        ds.ImagesInAcquisition = len(job.names)
        ds.IrradiationEventUID = uid(job.kind, 6, job.series)
        for n, item in enumerate(ds.ReferencedImageSequence):  # the localizers
            item.ReferencedSOPInstanceUID = uid(job.kind, 5, job.series, n)
        ds.PixelData = ct_pixels(rng)
    else:
        descriptions = ("t2_tse_tra", "t1_se_tra", "flair_tra", "pd_tse_tra", "dwi_tra")
        ds.SeriesDescription = ds.ProtocolName = descriptions[series_in_study % 5]
        ds.SliceThickness = "5"
        ds.PixelData = rng.integers(0, 1200, (FLAT_SIZE, FLAT_SIZE), dtype="<u2").tobytes()
    ds["PixelData"].VR = "OW"


def write_series(job: SeriesJob) -> int:
    """Write every file of one series, changing only the per-instance values between files."""
    ds = template(job.kind)
    set_series(ds, job)
    ct = job.kind == "ct"
    for i, name in enumerate(job.names):
        z = f"{-0.7 * i if ct else -5.5 * i:.2f}"
        sop = uid(job.kind, 3, job.first + i)
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = sop
        ds.InstanceNumber = i + 1
        ds.ImagePositionPatient = ["-190", "-190", z]
        ds.SliceLocation = z
        ds.AcquisitionTime = ds.ContentTime = ds.InstanceCreationTime = f"0832{i // 10 % 60:02d}"
        if ct:
            ds.XRayTubeCurrent = 150 + int(80 * math.sin(i / 7))
            ds.Exposure = ds.XRayTubeCurrent // 2
        path = os.path.join(job.root, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        pydicom.dcmwrite(path, ds, enforce_file_format=True)
    return len(job.names)


def ct_jobs(root: Path, n: int) -> list[SeriesJob]:
    """Series of the CT corpus: N files spread evenly over patients x studies x series."""
    n_series = CT_PATIENTS * CT_STUDIES * CT_SERIES
    jobs, first = [], 0
    for s in range(n_series):
        count = n // n_series + (s < n % n_series)
        if count == 0:
            continue
        patient, rest = divmod(s, CT_STUDIES * CT_SERIES)
        folder = f"PA{patient + 1:04d}/ST{rest // CT_SERIES + 1:02d}/SE{rest % CT_SERIES + 1:02d}"
        names = tuple(f"{folder}/IM{i + 1:04d}" for i in range(count))
        jobs.append(SeriesJob("ct", str(root), s, first, names))
        first += count
    return jobs


def flat_jobs(root: Path, m: int) -> list[SeriesJob]:
    """Series of the flat corpus; file names are a seeded permutation, so series interleave."""
    n_series = max(1, min(FLAT_MAX_SERIES, m // FLAT_IMAGES_PER_SERIES))
    order = np.random.default_rng(SEED).permutation(m)
    jobs, first = [], 0
    for s in range(n_series):
        count = m // n_series + (s < m % n_series)
        names = tuple(f"IMG{order[first + i]:06d}.dcm" for i in range(count))
        jobs.append(SeriesJob("flat", str(root), s, first, names))
        first += count
    return jobs


def ensure_corpus(workdir: Path, kind: str, count: int) -> Path:
    """Generate a corpus unless the work directory already holds this exact one."""
    root = workdir / kind
    marker = workdir / f"{kind}.json"
    wanted = {"kind": kind, "files": count, "seed": SEED, "version": CORPUS_VERSION}
    if marker.exists() and root.is_dir() and json.loads(marker.read_text()) == wanted:
        print(f"reusing {kind} corpus: {count} files in {root}")
        return root
    marker.unlink(missing_ok=True)
    shutil.rmtree(root, ignore_errors=True)
    jobs = ct_jobs(root, count) if kind == "ct" else flat_jobs(root, count)
    start = time.perf_counter()
    with (
        Pool(os.cpu_count()) as pool,
        tqdm(total=count, desc=f"generate {kind}", unit="file") as bar,
    ):
        for written in pool.imap_unordered(write_series, jobs):
            bar.update(written)
    seconds = time.perf_counter() - start
    print(f"generated {kind}: {count} files in {seconds:.1f} s ({count / seconds:.0f} files/s)")
    marker.write_text(json.dumps(wanted))
    return root


# --------------------------------------------------------------------------- measurements


def walk(top: Path) -> Iterator[str]:
    """Every file under top, as os.walk finds it."""
    for folder, _, files in os.walk(top):
        for name in files:
            yield os.path.join(folder, name)


def read_heads(paths: list[str]) -> tuple[float, int]:
    """open()+read(8192) every file; return (seconds, total size in bytes)."""
    start, size = time.perf_counter(), 0
    for path in paths:
        with open(path, "rb") as f:
            f.read(8192)
            size += os.fstat(f.fileno()).st_size
    return time.perf_counter() - start, size


# The serial loop a user would write, run as its own script in a fresh interpreter so that it is
# timed the same way as the crawl command (start-up and imports included).
BASELINE_CHILD = """
import json, os, sys, time
start = time.perf_counter()
import pandas as pd
import pydicom
from pydicom.multival import MultiValue

top, out, keywords, subset_file = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), sys.argv[4]


def plain(value):
    if value is None:
        return None
    if isinstance(value, MultiValue):
        return [plain(v) for v in value]
    if isinstance(value, float):
        return float(value)
    if isinstance(value, int):
        return int(value)
    return str(value)


imported = time.perf_counter()
paths = sorted(os.path.join(d, f) for d, _, files in os.walk(top) for f in files)
walked = time.perf_counter()
subset = json.load(open(subset_file)) if subset_file != "-" else paths
rows = []
for path in subset:
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    row = {"path": path}
    row.update((kw, plain(getattr(ds, kw, None))) for kw in keywords)
    row["TransferSyntaxUID"] = str(ds.file_meta.TransferSyntaxUID)
    rows.append(row)
pd.DataFrame(rows).to_parquet(out)
done = time.perf_counter()
print(json.dumps({"import_s": imported - start, "walk_s": walked - imported, "read_s": done - walked}))
"""


@dataclass
class Baseline:
    """The serial loop's result, possibly measured on a subset and extrapolated."""

    files: int
    measured: int
    seconds: float  # whole script, for all files (extrapolated when measured < files)
    work_seconds: float  # the walk and the loop alone, without start-up and imports
    sop_by_path: dict[str, str] = field(repr=False)


def run_baseline(top: Path, out: Path, sample: int) -> Baseline:
    """os.walk + dcmread(stop_before_pixels) + attributes + to_parquet, serially, as a script.

    The script runs in a fresh interpreter and is timed whole, like the crawl command. With more
    files than ``sample``, it reads a fixed random subset; its read + Parquet time is scaled up to
    all files and the rest (start-up, imports, the full walk) is counted once.
    """
    paths = sorted(walk(top))
    subset_file = "-"
    measured = len(paths)
    if sample < len(paths):
        picked = np.random.default_rng(SEED).choice(len(paths), sample, replace=False)
        subset_file = str(out.with_suffix(".subset.json"))
        Path(subset_file).write_text(json.dumps([paths[i] for i in sorted(picked)]))
        measured = sample
    args = [sys.executable, "-c", BASELINE_CHILD, str(top), str(out), json.dumps(KEYWORDS), subset_file]
    start = time.perf_counter()
    result = subprocess.run(args, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - start
    parts = json.loads(result.stdout.strip().splitlines()[-1])
    seconds = wall + parts["read_s"] * (len(paths) / measured - 1)
    work_seconds = parts["walk_s"] + parts["read_s"] * len(paths) / measured
    rows = pd.read_parquet(out, columns=["path", "SOPInstanceUID"])
    sops = dict(zip(rows["path"], rows["SOPInstanceUID"].astype(str)))
    return Baseline(len(paths), measured, seconds, work_seconds, sops)


@dataclass
class Peaks:
    """Peak memory of a process tree, in bytes."""

    rss_sum: int = 0
    rss_max: int = 0
    pss_sum: int = 0

    def sample(self, proc: psutil.Process, pss: bool) -> None:
        """Sample the RSS (and, if pss, the PSS) of proc and all its descendants."""
        try:
            procs = [proc, *proc.children(recursive=True)]
        except psutil.Error:
            return
        rss, proportional = [], 0
        for p in procs:
            try:
                info = p.memory_full_info() if pss else p.memory_info()
            except psutil.Error:
                continue
            rss.append(info.rss)
            proportional += getattr(info, "pss", 0)
        self.rss_sum = max(self.rss_sum, sum(rss))
        self.rss_max = max(self.rss_max, *rss, 0)
        self.pss_sum = max(self.pss_sum, proportional)


@dataclass
class Run:
    """One crawl command: wall time, peak memory of its process tree, and how it ended."""

    seconds: float
    api_seconds: float | None
    peaks: Peaks
    returncode: int
    error: str


def run_crawl(corpus: Path, index: Path, workers: int, log: Path, command: bool = False) -> Run:
    """Run the crawl in a fresh interpreter; sample its process tree's memory.

    With ``command``, the ``workbench crawl`` command as a user types it (timed whole);
    otherwise ``workbench.crawl()`` in a small script that also times the call alone.
    RSS and PSS are sampled every 50 ms.
    """
    if command:
        args = [sys.executable, "-m", "workbench", "crawl", str(corpus), "--index", str(index),
                "--workers", str(workers), "--quiet"]
    else:
        args = [sys.executable, "-c", CRAWL_CHILD, str(corpus), str(index), str(workers)]
    peaks = Peaks()
    with open(log, "w+b") as out:
        start = time.perf_counter()
        child = subprocess.Popen(args, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
        proc = psutil.Process(child.pid)
        while child.poll() is None:
            peaks.sample(proc, pss=True)
            time.sleep(0.05)
        seconds = time.perf_counter() - start
        out.seek(0)
        lines = out.read().decode(errors="replace").splitlines()
    api_seconds, error = None, ""
    if lines and lines[-1].startswith("{"):
        api_seconds = json.loads(lines[-1])["api_seconds"]
    if child.returncode != 0 or (api_seconds is None and not command):
        error = "\n".join(lines[-15:]).strip() or f"exit code {child.returncode}, no output"
    return Run(seconds, api_seconds, peaks, child.returncode, error)


def check_index(index: Path, corpus: Path, files: int, baseline: Baseline) -> tuple[bool, str]:
    """Row count == files, SOPInstanceUIDs unique, and equal to the baseline's on its subset."""
    try:
        table = pads.dataset(index / "instances", format="parquet").to_table(
            columns=["path", "SOPInstanceUID"]
        )
    except Exception as exc:  # noqa: BLE001 - report any failure to read the index
        return False, f"cannot read {index / 'instances'}: {type(exc).__name__}: {exc}"
    paths = [os.path.normpath(os.path.join(corpus, p)) for p in table["path"].to_pylist()]
    sops = table["SOPInstanceUID"].to_pylist()
    by_path = dict(zip(paths, sops, strict=True))
    matched = {by_path.get(p) for p in baseline.sop_by_path}
    expected = set(baseline.sop_by_path.values())
    problems = []
    if table.num_rows != files:
        problems.append(f"{table.num_rows} rows for {files} files")
    if len(set(sops)) != files:
        problems.append(f"{len(set(sops))} distinct SOPInstanceUIDs for {files} files")
    if matched != expected:
        problems.append(f"SOPInstanceUIDs differ from the baseline on {baseline.measured} files")
    if problems:
        return False, "; ".join(problems)
    return True, f"ok: {files:,} rows, UIDs = baseline's ({baseline.measured:,})"


# --------------------------------------------------------------------------- report


def rate(files: int, seconds: float) -> str:
    """'1,234 files/s (5.6 s)'."""
    return f"{files / seconds:,.0f} files/s ({seconds:.2f} s)"


def bench_corpus(kind: str, corpus: Path, workdir: Path, workers: int, sample: int) -> Report:
    """Warm up, then measure the I/O bound, the baseline, the crawl and the unchanged re-crawl."""
    layout = "ct/<patient>/<study>/<series>/<file>" if kind == "ct" else "flat/<file>"
    paths = list(walk(corpus))
    files = len(paths)
    print(f"\n{kind}: warm-up pass (first 8 KiB of every file; page cache not dropped)")
    _, size = read_heads(paths)
    io_s, _ = read_heads(paths)
    report = Report(f"{kind}: {files:,} files, {size / 1e9:.2f} GB, {layout}")
    report.add("I/O bound: open()+read(8192), warm", rate(files, io_s))

    print(f"{kind}: serial baseline" + (f" on {sample} of {files} files" if sample < files else ""))
    baseline = run_baseline(corpus, workdir / f"baseline-{kind}.parquet", sample)
    label = "baseline: serial pydicom loop"
    if baseline.measured < files:
        label += f" ({baseline.measured:,} sampled)"
    report.add(label, rate(files, baseline.seconds))

    index = workdir / f"index-{kind}"
    shutil.rmtree(index, ignore_errors=True)
    print(f"{kind}: workbench.crawl(), {workers} workers")
    api = run_crawl(corpus, index, workers, workdir / f"crawl-api-{kind}.log")
    shutil.rmtree(index, ignore_errors=True)
    print(f"{kind}: workbench crawl (the command), {workers} workers")
    first = run_crawl(corpus, index, workers, workdir / f"crawl-{kind}.log", command=True)
    first.api_seconds = api.api_seconds
    if first.error or api.error:
        failed = first if first.error else api
        print(f"{kind}: crawl failed (exit {failed.returncode}):\n{failed.error}")
        report.add("workbench crawl", f"error, exit {failed.returncode}", "runs", False)
        return report
    check = check_index(index, corpus, files, baseline)
    print(f"{kind}: re-crawl, nothing changed")
    again = run_crawl(corpus, index, workers, workdir / f"recrawl-{kind}.log", command=True)
    if again.error:
        print(f"{kind}: re-crawl failed (exit {again.returncode}):\n{again.error}")
    elif check[0]:
        ok, detail = check_index(index, corpus, files, baseline)
        check = (ok, detail if ok else f"after re-crawl: {detail}")
    add_crawl_rows(report, kind == "flat", baseline, first, again)
    report.add("index vs files and baseline", check[1], "equal", check[0])
    return report


def add_crawl_rows(report: Report, flat: bool, baseline: Baseline, first: Run, again: Run) -> None:
    """Rows for the first crawl and the re-crawl; memory and re-crawl targets apply to flat."""
    mb = 1024 * 1024
    ratio = baseline.seconds / first.seconds
    report.add("workbench crawl: whole command", rate(baseline.files, first.seconds))
    report.add(
        "ratio workbench / baseline",
        f"{ratio:.2f}x",
        f">= {TARGET_RATIO:g}x",
        ratio >= TARGET_RATIO,
    )
    if first.api_seconds is not None:
        work_ratio = baseline.work_seconds / first.api_seconds
        report.add("baseline loop alone (no start-up, imports)", rate(baseline.files, baseline.work_seconds))
        report.add("workbench.crawl() alone (no start-up, imports)", rate(baseline.files, first.api_seconds))
        target = f">= {TARGET_RATIO:g}x"
        report.add("ratio, work alone", f"{work_ratio:.2f}x", target, work_ratio >= TARGET_RATIO)
    # PSS counts a page shared by the forked workers once, divided among them; the sum of
    # RSS counts it once per process, so it overstates what the crawl takes from the machine.
    peak = first.peaks.pss_sum / mb
    report.add(
        "crawl peak PSS, sum over process tree",
        f"{peak:,.0f} MB",
        f"< {TARGET_PEAK_MB:g} MB" if flat else "",
        peak < TARGET_PEAK_MB if flat else None,
    )
    report.add("crawl peak RSS, largest process", f"{first.peaks.rss_max / mb:,.0f} MB")
    report.add("crawl peak RSS, sum over process tree", f"{first.peaks.rss_sum / mb:,.0f} MB")
    target = f"< {TARGET_RECRAWL_S:g} s" if flat else ""
    if again.error:
        report.add(
            "unchanged re-crawl: whole command",
            f"error, exit {again.returncode}",
            target or "runs",
            False,
        )
    else:
        report.add(
            "unchanged re-crawl: whole command",
            f"{again.seconds:.2f} s",
            target,
            again.seconds < TARGET_RECRAWL_S if flat else None,
        )


def main() -> int:
    """Parse arguments, build or reuse the corpora, run the benchmarks and print the report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ct", type=int, default=2000, metavar="N", help="CT files (0 skips)")
    parser.add_argument("--flat", type=int, default=50000, metavar="M", help="flat small files (0 skips)")
    parser.add_argument("--workdir", type=Path, help="reuse/keep corpora here (default: temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary work directory")
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count(),
        metavar="W",
        help="crawler workers (default: cpu count)",
    )
    parser.add_argument(
        "--sample",
        type=int,
        default=5000,
        metavar="K",
        help="baseline reads at most K files, extrapolated (default: 5000)",
    )
    args = parser.parse_args()
    if min(args.ct, args.flat) < 0 or args.sample < 1 or args.workers < 1:
        parser.error("counts must be >= 0, --sample and --workers >= 1")

    with work_directory(args.workdir, "wb-crawl-bench-", keep=args.keep) as workdir:
        print(machine())
        print(
            f"python {platform.python_version()}, pydicom {pydicom.__version__}, "
            f"numpy {np.__version__}, pandas {pd.__version__}, pyarrow {version('pyarrow')}, "
            f"workbench {version('workbench')} (the crawl runs with cwd {REPO})"
        )
        print(f"workdir: {workdir}; crawler workers: {args.workers}")
        reports = []
        corpora = [(kind, n) for kind, n in (("ct", args.ct), ("flat", args.flat)) if n > 0]
        roots = {kind: ensure_corpus(workdir, kind, n) for kind, n in corpora}
        for kind, root in roots.items():
            reports.append(bench_corpus(kind, root, workdir, args.workers, args.sample))
    for report in reports:
        report.print()
    if args.flat and args.flat != 50000:
        print("\nnote: the memory and re-crawl targets are defined for 50,000 flat files.")
    failed = [r.title.split(":")[0] for r in reports if r.failed]
    print(f"\noverall: {'FAIL (' + ', '.join(failed) + ')' if failed else 'PASS'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
