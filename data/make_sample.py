#!/usr/bin/env python3
"""Write the workbench sample DICOM set (synthetic phantoms, three patients).

    python data/make_sample.py            # writes data/sample/ next to this script
    python data/make_sample.py --out DIR  # writes the same files into DIR

The output is deterministic: the same pydicom/numpy code gives byte-identical files on
every run and every platform. There is no clock and no unseeded randomness:
UIDs are 2.25.<name-based UUID> of fixed strings, dates and times are fixed, noise comes from a
seeded legacy ``numpy.random.RandomState`` (its stream is frozen by numpy's policy),
and all pixel arithmetic is integer or plain IEEE (+ - * / sqrt, no transcendental
functions), so the result does not depend on the platform's maths library.

See data/README.md for what is in the set and which oddities it carries on purpose.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import uuid
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.filewriter import dcmwrite
from pydicom.uid import (
    UID,
    ComputedRadiographyImageStorage,
    CTImageStorage,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    MRImageStorage,
    RLELossless,
    XRayRadiationDoseSRStorage,
)

VERSION = "1"  # bump when the content changes on purpose (it seeds every UID)
HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "sample"

IMPLEMENTATION_VERSION_NAME = "WB_SAMPLE_" + VERSION

# Tissue classes of the CT body phantom, in HU.
HU_AIR = -1000
HU_LUNG = -850
HU_FAT = -100
HU_SOFT = 40
HU_LIVER = 60
HU_DISC = 80
HU_CANAL = 20
HU_TABLE_SKIN = 300
HU_TABLE_FOAM = -900
HU_BONE = 700  # trabecular vertebral body
HU_CORTEX = 1000  # cortical shell and posterior arch

CT_INTERCEPT = -1024


UUID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:workbench:sample-data")


def uid(*parts: object) -> UID:
    """A fixed UID derived from `parts`: 2.25.<name-based UUID (version 5)>, PS3.5 B.2.

    (pydicom's generate_uid(prefix=None) ignores entropy_srcs and returns a random UUID.)"""
    text = "|".join([VERSION, *map(str, parts)])
    return UID(f"2.25.{uuid.uuid5(UUID_NAMESPACE, text).int}")


def ds_str(value: float) -> str:
    """A DS string (at most 16 characters) that does not depend on float repr details."""
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    if text in ("-0", ""):
        text = "0"
    if len(text) > 16:
        raise ValueError(f"DS value too long: {text}")
    return text


def int_noise(seed: int, shape: tuple[int, ...], half_width: int) -> np.ndarray:
    """Integer, roughly Gaussian noise: a sum of 4 uniform integers in [-w, w].

    Standard deviation is about sqrt(4 * ((2w+1)^2 - 1) / 12)."""
    rng = np.random.RandomState(seed)
    return rng.randint(-half_width, half_width + 1, size=(4, *shape)).sum(axis=0)


def inside(x, y, cx: float, cy: float, ax: float, ay: float):
    """Points inside the ellipse centred (cx, cy) with semi-axes (ax, ay)."""
    u = (x - cx) / ax
    v = (y - cy) / ay
    return u * u + v * v <= 1.0


def inside3(x, y, z, c: tuple, a: tuple):
    """Points inside the ellipsoid centred `c` with semi-axes `a`."""
    u = (x - c[0]) / a[0]
    v = (y - c[1]) / a[1]
    w = (z - c[2]) / a[2]
    return u * u + v * v + w * w <= 1.0


# --------------------------------------------------------------------------------------
# CT body phantom (patient coordinates, LPS, mm). Body centred on x = 0, y = 0; supine, so
# the back and the table are at +y (bottom of an axial image). z increases to the head.
# --------------------------------------------------------------------------------------


def clip01(v):
    return np.clip(v, 0.0, 1.0)


def lung_scale(z):
    """Size of the lungs (0..1) at height z: domed bases from z = -20 (full size from
    z = 40), domed apices up to z = 180."""
    return np.sqrt(clip01((z + 20.0) / 60.0) * clip01((180.0 - z) / 30.0))


def liver_scale(z):
    """Size of the liver (0..1): it grows below the lung bases."""
    return clip01((30.0 - z) / 40.0) * clip01((z + 200.0) / 60.0)


def is_disc(z):
    """Intervertebral discs: 5 mm every 30 mm."""
    return np.mod(z, 30.0) < 5.0


def body_hu(x, y, z, table: bool = True) -> np.ndarray:
    """HU of the body phantom at the points (x, y, z) (arrays that broadcast together)."""
    x, y, z = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (x, y, z)))
    hu = np.full(x.shape, HU_AIR, dtype=np.int32)

    if table:
        # Curved carbon-fibre cradle: 3 mm skins around an 8 mm foam core.
        top = 112.0 - 0.00035 * x * x
        d = y - top
        wide = np.abs(x) <= 180.0
        hu[wide & (d >= 0) & (d < 14.0)] = HU_TABLE_SKIN
        hu[wide & (d >= 3.0) & (d < 11.0)] = HU_TABLE_FOAM

    a = 160.0 - 0.08 * z  # the trunk is a little wider towards the pelvis
    b = 110.0
    hu[inside(x, y, 0.0, 0.0, a, b)] = HU_FAT
    hu[inside(x, y, 0.0, 0.0, a - 15.0, b - 15.0)] = HU_SOFT

    s = liver_scale(z)
    present = s > 0.05
    s = np.where(present, s, 1.0)
    hu[present & inside(x, y, -70.0, -5.0, 60.0 * s, 55.0 * s)] = HU_LIVER

    s = lung_scale(z)
    present = s > 0.05
    s = np.where(present, s, 1.0)
    for cx in (-80.0, 80.0):
        hu[present & inside(x, y, cx, -10.0, 50.0 * s, 60.0 * s)] = HU_LUNG

    # Spine: vertebral body (cortex + trabecular bone) or disc, canal, arch, spinous process.
    disc = is_disc(z)
    vertebra = inside(x, y, 0.0, 45.0, 18.0, 18.0)
    hu[vertebra & disc] = HU_DISC
    hu[vertebra & ~disc] = HU_CORTEX
    hu[inside(x, y, 0.0, 45.0, 15.0, 15.0) & ~disc] = HU_BONE
    hu[inside(x, y, 0.0, 72.0, 12.0, 12.0)] = HU_CORTEX
    hu[inside(x, y, 0.0, 72.0, 8.0, 8.0)] = HU_CANAL
    hu[inside(x, y, 0.0, 86.0, 5.0, 6.0)] = HU_CORTEX
    return hu


def supersampled(fn, x: np.ndarray, y: np.ndarray, step_x: float, step_y: float):
    """Mean of `fn` over 2x2 sub-pixel samples (partial volume at the edges), integer."""
    total = None
    for dx in (-0.25, 0.25):
        for dy in (-0.25, 0.25):
            v = fn(x + dx * step_x, y + dy * step_y)
            total = v if total is None else total + v
    return np.floor_divide(total, 4)


def ct_stored(hu: np.ndarray, seed: int) -> np.ndarray:
    """HU -> stored values (intercept -1024, 12 bits) with CT-like noise (sd ~7.5 HU)."""
    v = hu + int_noise(seed, hu.shape, 6) - CT_INTERCEPT
    return np.clip(v, 0, 4095).astype(np.uint16)


def projection(x: np.ndarray, zs: np.ndarray, ys: np.ndarray, table: bool) -> np.ndarray:
    """Line integrals along y of the attenuation (HU + 1000, water = 1000) for each (z, x);
    integer sums, so exactly reproducible. Result shape (len(zs), len(x))."""
    out = np.zeros((len(zs), len(x)), dtype=np.int64)
    chunk = 16
    for i in range(0, len(zs), chunk):
        z = zs[i : i + chunk, None, None]
        mu = body_hu(x[None, None, :], ys[None, :, None], z, table=table) - HU_AIR
        out[i : i + chunk] = mu.sum(axis=1, dtype=np.int64)
    return out


# --------------------------------------------------------------------------------------
# MR head phantom (T1-weighted look; arbitrary units).
# --------------------------------------------------------------------------------------

MR_FAT, MR_BONE, MR_CSF, MR_GM, MR_WM, MR_MUSCLE, MR_VITREOUS = 850, 60, 180, 480, 680, 380, 120


def head_signal(x: float, y: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Signal of the head phantom on the sagittal plane at x (scalar)."""
    y, z = np.broadcast_arrays(y, z)
    sig = np.zeros(y.shape, dtype=np.int32)
    c = (0.0, 0.0, 10.0)
    # Neck below the skull.
    neck = z < -40.0
    sig[neck & inside(x, y - 10.0, 0.0, 0.0, 55.0, 65.0)] = MR_FAT
    sig[neck & inside(x, y - 10.0, 0.0, 0.0, 50.0, 60.0)] = MR_MUSCLE
    # Scalp, skull, then the intracranial content above the skull base.
    sig[inside3(x, y, z, c, (75.0, 95.0, 105.0))] = MR_FAT
    sig[inside3(x, y, z, c, (70.0, 90.0, 100.0))] = MR_BONE
    cranial = z > -35.0
    sig[cranial & inside3(x, y, z, c, (64.0, 84.0, 94.0))] = MR_CSF
    sig[cranial & inside3(x, y, z, c, (62.0, 82.0, 92.0))] = MR_GM
    sig[cranial & inside3(x, y, z, c, (56.0, 76.0, 86.0))] = MR_WM
    sig[~cranial & inside3(x, y, z, c, (64.0, 84.0, 94.0))] = MR_MUSCLE
    for vx in (-10.0, 10.0):
        sig[inside3(x, y, z, (vx, -5.0, 20.0), (6.0, 25.0, 12.0))] = MR_CSF
    sig[inside3(x, y, z, (0.0, 15.0, -45.0), (12.0, 14.0, 35.0))] = MR_WM  # brainstem
    sig[inside3(x, y, z, (0.0, -60.0, -35.0), (15.0, 15.0, 12.0))] = 0  # sinus air
    for ex in (-32.0, 32.0):
        sig[inside3(x, y, z, (ex, -72.0, -10.0), (16.0, 16.0, 16.0))] = MR_FAT  # orbit
        sig[inside3(x, y, z, (ex, -72.0, -10.0), (12.0, 12.0, 12.0))] = MR_VITREOUS
    return sig


# --------------------------------------------------------------------------------------
# DICOM helpers
# --------------------------------------------------------------------------------------


def packbits_row(row: bytes) -> bytes:
    """PackBits (DICOM RLE, PS3.5 G.3) of one row of one byte plane."""
    arr = np.frombuffer(row, dtype=np.uint8)
    n = len(arr)
    starts = np.flatnonzero(np.r_[True, arr[1:] != arr[:-1]])
    lengths = np.diff(np.r_[starts, n])
    out = bytearray()
    literal = bytearray()

    def flush_literal() -> None:
        for i in range(0, len(literal), 128):
            chunk = literal[i : i + 128]
            out.append(len(chunk) - 1)
            out.extend(chunk)
        literal.clear()

    for start, length in zip(starts.tolist(), lengths.tolist()):
        value = row[start]
        if length == 1:
            literal.append(value)
            continue
        flush_literal()
        while length > 0:
            take = min(length, 128)
            if take == 1:
                literal.append(value)
            else:
                out.append(257 - take)  # -(take - 1) as a signed byte
                out.append(value)
            length -= take
    flush_literal()
    return bytes(out)


def rle_frame(image: np.ndarray) -> bytes:
    """One frame of 16-bit unsigned pixels as an RLE Lossless frame (2 segments, MSB first)."""
    data = image.astype("<u2")
    planes = [(data >> 8).astype(np.uint8), (data & 0xFF).astype(np.uint8)]
    segments = []
    for plane in planes:
        seg = b"".join(packbits_row(r.tobytes()) for r in plane)
        if len(seg) % 2:
            seg += b"\x00"
        segments.append(seg)
    header = np.zeros(16, dtype="<u4")
    header[0] = len(segments)
    offset = 64
    for i, seg in enumerate(segments):
        header[1 + i] = offset
        offset += len(seg)
    return header.tobytes() + b"".join(segments)


def new_dataset(sop_class: UID, sop_instance: UID, transfer_syntax: UID | None) -> Dataset:
    ds = Dataset()
    if transfer_syntax is not None:
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = sop_class
        meta.MediaStorageSOPInstanceUID = sop_instance
        meta.TransferSyntaxUID = transfer_syntax
        meta.ImplementationClassUID = uid("implementation")
        meta.ImplementationVersionName = IMPLEMENTATION_VERSION_NAME
        ds.file_meta = meta
        ds.preamble = b"\x00" * 128
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_instance
    return ds


def add_common(ds: Dataset, patient: dict, study: dict, series: dict, image: bool = True) -> None:
    """Patient, General Study, Patient Study, General Series, General Equipment.

    With ``image=False`` (an SR document), the image-only attributes (AcquisitionDate,
    BodyPartExamined, ProtocolName, PatientPosition) are left out."""
    if patient.get("charset"):
        ds.SpecificCharacterSet = patient["charset"]
    ds.InstanceCreationDate = study["date"]
    ds.InstanceCreationTime = series["time"]
    ds.StudyDate = study["date"]
    ds.SeriesDate = study["date"]
    if image:
        ds.AcquisitionDate = study["date"]
    ds.ContentDate = study["date"]
    ds.StudyTime = study["time"]
    ds.SeriesTime = series["time"]
    ds.AccessionNumber = study["accession"]
    ds.Modality = series["modality"]
    ds.Manufacturer = study["equipment"]["Manufacturer"]
    ds.InstitutionName = study["institution"]
    ds.InstitutionAddress = study.get("address", "")
    ds.ReferringPhysicianName = study["referring"]
    ds.StationName = study["equipment"]["StationName"]
    ds.StudyDescription = study["description"]
    ds.SeriesDescription = series["description"]
    ds.InstitutionalDepartmentName = study.get("department", "Radiology")
    ds.ManufacturerModelName = study["equipment"]["ManufacturerModelName"]
    ds.PatientName = patient["name"]
    ds.PatientID = patient["id"]
    ds.IssuerOfPatientID = "WORKBENCH"
    ds.PatientBirthDate = patient["birth"]
    ds.PatientSex = patient["sex"]
    ds.PatientAge = patient["age"]
    ds.PatientSize = patient["size"]
    ds.PatientWeight = patient["weight"]
    if image:
        ds.BodyPartExamined = series["body_part"]
    ds.DeviceSerialNumber = study["equipment"]["DeviceSerialNumber"]
    ds.SoftwareVersions = study["equipment"]["SoftwareVersions"]
    if image:
        ds.ProtocolName = series.get("protocol", series["description"])
    if image and "position" in series:
        ds.PatientPosition = series["position"]
    ds.StudyInstanceUID = study["uid"]
    ds.SeriesInstanceUID = series["uid"]
    ds.StudyID = study["id"]
    ds.SeriesNumber = series["number"]


def add_pixels(ds: Dataset, pixels: np.ndarray, bits_stored: int, photometric: str) -> None:
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.Rows, ds.Columns = pixels.shape
    ds.BitsAllocated = 16
    ds.BitsStored = bits_stored
    ds.HighBit = bits_stored - 1
    ds.PixelRepresentation = 0
    assert pixels.dtype == np.uint16 and int(pixels.max()) < (1 << bits_stored)
    ds.SmallestImagePixelValue = int(pixels.min())
    ds.LargestImagePixelValue = int(pixels.max())


def set_native_pixels(ds: Dataset, pixels: np.ndarray) -> None:
    ds.PixelData = pixels.astype("<u2").tobytes()
    ds["PixelData"].VR = "OW"


def time_plus(hhmmss: str, seconds: float) -> str:
    """'HHMMSS' plus seconds -> 'HHMMSS.ffffff' (fixed, no clock)."""
    t = int(hhmmss[:2]) * 3600 + int(hhmmss[2:4]) * 60 + int(hhmmss[4:6])
    micro = int(round(seconds * 1_000_000))
    t_us = t * 1_000_000 + micro
    s, us = divmod(t_us, 1_000_000)
    return f"{s // 3600:02d}{(s // 60) % 60:02d}{s % 60:02d}.{us:06d}"


def write(ds: Dataset, path: Path, written: list[Path]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if hasattr(ds, "file_meta"):
        dcmwrite(path, ds, enforce_file_format=True)
    else:
        # A bare data set: no preamble, no "DICM", no File Meta Information.
        dcmwrite(path, ds, enforce_file_format=False, implicit_vr=True, little_endian=True)
    written.append(path)


# --------------------------------------------------------------------------------------
# Patient 1: CT abdomen (localizer, axial, coronal RLE)
# --------------------------------------------------------------------------------------

CT_EQUIPMENT = {
    "Manufacturer": "Workbench Phantoms",
    "ManufacturerModelName": "SynthCT 64",
    "StationName": "CTSIM01",
    "DeviceSerialNumber": "WB64-000117",
    "SoftwareVersions": "synth-ct 1.0",
}

P1 = {
    "id": "WB-0001",
    "name": "PHANTOM^ABDOMEN",
    "charset": "ISO_IR 192",
    "birth": "19680415",
    "sex": "M",
    "age": "055Y",
    "size": "1.78",
    "weight": "82",
}

P1_STUDY = {
    "uid": uid("WB-0001", "study"),
    "id": "1",
    "date": "20240312",
    "time": "094107",
    "accession": "WBA24031201",
    "description": "CT ABDOMEN WITHOUT CONTRAST",
    "referring": "GARCIA^ELENA^^DR.",
    "institution": "Klinikum Süd",  # non-ASCII, encoded as UTF-8 (ISO_IR 192)
    "address": "Hauptstraße 1, Musterstadt",
    "department": "Radiologie",
    "equipment": CT_EQUIPMENT,
}
P1_FOR = uid("WB-0001", "frame-of-reference")

AX_N, AX_SIZE, AX_PIXEL, AX_STEP, AX_TOP = 30, 256, 1.5, 5.0, 50.0
AX_ORIGIN = -(AX_SIZE - 1) / 2 * AX_PIXEL  # -191.25: pixel centres symmetric about 0
TABLE_HEIGHT = "142"

# The localizer (topogram): rows along z from LOC_TOP down, LOC_PITCH mm square pixels.
LOC_ROWS, LOC_COLS, LOC_PITCH, LOC_TOP = 260, 256, 1.5, 160.0

# Exposure parameters in the image headers; the dose report (series 99) states the same values.
LOCALIZER_SCAN = {"kvp": "120", "ma": 35, "ms": 2800, "ctdi": 0.12, "kernel": "T20f", "thickness": "0.6"}
AXIAL_SCAN = {"kvp": "120", "ma": 180, "ms": 500, "ctdi": 9.81, "kernel": "B30f", "thickness": "5"}
SPIRAL = {  # the spiral acquisition of series 2 (and its reformat, series 3)
    "RevolutionTime": 0.5,
    "SingleCollimationWidth": 0.6,
    "TotalCollimationWidth": 38.4,
    "TableSpeed": 61.44,
    "TableFeedPerRotation": 30.72,
    "SpiralPitchFactor": 0.8,
}


def ct_acquisition(
    ds: Dataset, *, kvp: str, ma: int, ms: int, ctdi: float, kernel: str, thickness: str, localizer: bool
) -> None:
    ds.ScanOptions = "TOPOGRAM" if localizer else "HELICAL_CT"
    ds.SliceThickness = thickness
    ds.KVP = kvp
    ds.DataCollectionDiameter = "500"
    ds.ReconstructionDiameter = ds_str(AX_SIZE * AX_PIXEL)
    ds.DistanceSourceToDetector = "1085.6"
    ds.DistanceSourceToPatient = "595"
    ds.GantryDetectorTilt = "0"
    ds.TableHeight = TABLE_HEIGHT
    ds.RotationDirection = "CW"
    ds.ExposureTime = str(ms)
    ds.XRayTubeCurrent = str(ma)
    ds.Exposure = str(ma * ms // 1000)
    ds.FilterType = "FLAT" if localizer else "BODY"
    ds.GeneratorPower = str(int(kvp) * ma // 1000)
    ds.FocalSpots = "1.2"
    ds.ConvolutionKernel = kernel
    ds.CTDIvol = ctdi
    phantom = Dataset()
    phantom.CodeValue = "113691"
    phantom.CodingSchemeDesignator = "DCM"
    phantom.CodeMeaning = "IEC Body Dosimetry Phantom"
    ds.CTDIPhantomTypeCodeSequence = [phantom]
    if not localizer:
        for keyword, value in SPIRAL.items():
            setattr(ds, keyword, value)
    ds.AcquisitionNumber = 1
    ds.RescaleIntercept = str(CT_INTERCEPT)
    ds.RescaleSlope = "1"
    if not localizer:  # a topogram's values are not HU
        ds.RescaleType = "HU"
    ds.PositionReferenceIndicator = ""
    ds.FrameOfReferenceUID = P1_FOR
    ds.LossyImageCompression = "00"


def make_patient1(out: Path, written: list[Path]) -> None:
    study_dir = out / P1["id"] / "20240312_CT_ABDOMEN"
    evidence: dict[str, list[str]] = {}  # SeriesInstanceUID -> SOPInstanceUIDs, for the dose report

    # ---- Series 1: localizer (AP topogram, coronal plane) ------------------------------
    series = {
        "uid": uid("WB-0001", "series", 1),
        "number": 1,
        "modality": "CT",
        "description": "Topogram 0.6 T20f",
        "protocol": "Abdomen Routine",
        "body_part": "ABDOMEN",
        "position": "HFS",
        "time": "094112",
    }
    rows, cols, pitch = LOC_ROWS, LOC_COLS, LOC_PITCH
    z_top = LOC_TOP
    zs = z_top - pitch * np.arange(rows)
    xs = AX_ORIGIN + pitch * np.arange(cols)
    ys = -130.0 + 2.0 * np.arange(131)  # 2 mm steps through the body and the table
    proj = projection(xs, zs, ys, table=True)
    loc = np.clip(proj // 64 + int_noise(1001, proj.shape, 4) + 24, 0, 4095).astype(np.uint16)

    sop = uid("WB-0001", "instance", 1, 1)
    ds = new_dataset(CTImageStorage, sop, ExplicitVRLittleEndian)
    ds.ImageType = ["ORIGINAL", "PRIMARY", "LOCALIZER"]
    add_common(ds, P1, P1_STUDY, series)
    ds.ContentTime = time_plus(series["time"], 4)
    ds.AcquisitionTime = time_plus(series["time"], 0)
    ct_acquisition(ds, **LOCALIZER_SCAN, localizer=True)
    ds.InstanceNumber = 1
    ds.PatientOrientation = ["L", "F"]
    ds.ImagePositionPatient = [ds_str(xs[0]), "0", ds_str(z_top)]
    ds.ImageOrientationPatient = ["1", "0", "0", "0", "0", "-1"]
    ds.SliceLocation = "0"
    add_pixels(ds, loc, 12, "MONOCHROME2")
    ds.PixelSpacing = [ds_str(pitch), ds_str(pitch)]
    ds.WindowCenter = "1000"
    ds.WindowWidth = "2400"
    set_native_pixels(ds, loc)
    write(ds, study_dir / "1_Topogram" / "IM-0001-0001.dcm", written)
    evidence.setdefault(series["uid"], []).append(sop)

    # ---- Series 2: axial 5 mm (file names from a hash, not in slice order) -------------
    series = {
        "uid": uid("WB-0001", "series", 2),
        "number": 2,
        "modality": "CT",
        "description": "Abdomen 5.0 B30f",
        "protocol": "Abdomen Routine",
        "body_part": "ABDOMEN",
        "position": "HFS",
        "time": "094205",
    }
    grid = AX_ORIGIN + AX_PIXEL * np.arange(AX_SIZE)
    xx, yy = np.meshgrid(grid, grid, indexing="xy")  # x along columns, y along rows
    for k in range(AX_N):
        z = AX_TOP - AX_STEP * k
        hu = supersampled(lambda x, y, z=z: body_hu(x, y, z), xx, yy, AX_PIXEL, AX_PIXEL)
        pixels = ct_stored(hu, 2000 + k)
        sop = uid("WB-0001", "instance", 2, k + 1)
        ds = new_dataset(CTImageStorage, sop, ExplicitVRLittleEndian)
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        add_common(ds, P1, P1_STUDY, series)
        ds.ContentTime = time_plus(series["time"], 12 + 0.25 * k)
        ds.AcquisitionTime = time_plus(series["time"], 0.08 * k)
        ct_acquisition(ds, **AXIAL_SCAN, localizer=False)
        ds.InstanceNumber = k + 1
        ds.ImagePositionPatient = [ds_str(AX_ORIGIN), ds_str(AX_ORIGIN), ds_str(z)]
        ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
        ds.SliceLocation = ds_str(z)
        add_pixels(ds, pixels, 12, "MONOCHROME2")
        ds.PixelSpacing = [ds_str(AX_PIXEL), ds_str(AX_PIXEL)]
        ds.WindowCenter = ["40", "-600"]
        ds.WindowWidth = ["400", "1500"]
        ds.WindowCenterWidthExplanation = ["ABDOMEN", "LUNG"]
        set_native_pixels(ds, pixels)
        name = hashlib.sha1(str(sop).encode()).hexdigest()[:8].upper() + ".dcm"
        write(ds, study_dir / "2_Abdomen_5.0_B30f" / name, written)
        evidence.setdefault(series["uid"], []).append(sop)

    # ---- Series 3: coronal reformat, RLE Lossless --------------------------------------
    series = {
        "uid": uid("WB-0001", "series", 3),
        "number": 3,
        "modality": "CT",
        "description": "Abdomen COR 5.0 B30f",
        "protocol": "Abdomen Routine",
        "body_part": "ABDOMEN",
        "position": "HFS",
        "time": "094431",
    }
    cor_rows, cor_n, cor_step = 100, 20, 10.0
    cor_top = AX_TOP + 2.5
    zs = cor_top - AX_PIXEL * np.arange(cor_rows)
    xx, zz = np.meshgrid(grid, zs, indexing="xy")  # x along columns, z down the rows
    for k in range(cor_n):
        y = -90.0 + cor_step * k

        hu = supersampled(lambda x, z, y=y: body_hu(x, y, z), xx, zz, AX_PIXEL, AX_PIXEL)
        pixels = ct_stored(hu, 3000 + k)
        sop = uid("WB-0001", "instance", 3, k + 1)
        ds = new_dataset(CTImageStorage, sop, RLELossless)
        ds.ImageType = ["DERIVED", "SECONDARY", "REFORMATTED", "AVERAGE"]
        add_common(ds, P1, P1_STUDY, series)
        ds.ContentTime = time_plus(series["time"], 0.5 * k)
        ds.AcquisitionTime = time_plus("094205", 0)
        ds.DerivationDescription = "Coronal multiplanar reformat, 5 mm average"
        ct_acquisition(ds, **AXIAL_SCAN, localizer=False)
        ds.InstanceNumber = k + 1
        ds.ImagePositionPatient = [ds_str(AX_ORIGIN), ds_str(y), ds_str(cor_top)]
        ds.ImageOrientationPatient = ["1", "0", "0", "0", "0", "-1"]
        ds.SliceLocation = ds_str(y)
        ds.SpacingBetweenSlices = ds_str(cor_step)
        add_pixels(ds, pixels, 12, "MONOCHROME2")
        ds.PixelSpacing = [ds_str(AX_PIXEL), ds_str(AX_PIXEL)]
        ds.WindowCenter = "40"
        ds.WindowWidth = "400"
        ds.PixelData = encapsulate([rle_frame(pixels)])
        ds["PixelData"].VR = "OB"
        write(ds, study_dir / "3_Abdomen_COR_5.0_B30f" / f"IM-0003-{k + 1:04d}.dcm", written)
        evidence.setdefault(series["uid"], []).append(sop)

    make_dose_report(study_dir, evidence, written)


# --------------------------------------------------------------------------------------
# Patient 1: the CT Radiation Dose SR of the study (PS3.16 TID 10011)
# --------------------------------------------------------------------------------------

# Codes of TID 10011 "CT Radiation Dose" and the templates it includes (1002/1004 observer
# context, 10012 accumulated dose, 10013 irradiation event, 10014 scanning length), as
# (value, scheme, meaning) with the meanings the templates give. SNOMED CT (SCT) codes stand
# for the retired SNOMED RT (SRT) ones: P5-08000 = 77477000, P5-08001 = 116152004,
# T-D4000 = 818981001. Written out here rather than looked up in pydicom's code dictionary, so
# the bytes do not depend on the pydicom version; tests/data checks them against that dictionary.
DOSE_CODES = {
    "XRayRadiationDoseReport": ("113701", "DCM", "X-Ray Radiation Dose Report"),
    "ProcedureReported": ("121058", "DCM", "Procedure reported"),
    "ComputedTomographyXRay": ("77477000", "SCT", "Computed Tomography X-Ray"),
    "HasIntent": ("363703001", "SCT", "Has Intent"),
    "DiagnosticIntent": ("261004008", "SCT", "Diagnostic Intent"),
    "ObserverType": ("121005", "DCM", "Observer Type"),
    "Device": ("121007", "DCM", "Device"),
    "DeviceObserverUID": ("121012", "DCM", "Device Observer UID"),
    "DeviceObserverName": ("121013", "DCM", "Device Observer Name"),
    "DeviceObserverManufacturer": ("121014", "DCM", "Device Observer Manufacturer"),
    "DeviceObserverModelName": ("121015", "DCM", "Device Observer Model Name"),
    "DeviceObserverSerialNumber": ("121016", "DCM", "Device Observer Serial Number"),
    "StartOfXRayIrradiation": ("113809", "DCM", "Start of X-Ray Irradiation"),
    "EndOfXRayIrradiation": ("113810", "DCM", "End of X-Ray Irradiation"),
    "ScopeOfAccumulation": ("113705", "DCM", "Scope of Accumulation"),
    "Study": ("113014", "DCM", "Study"),
    "StudyInstanceUID": ("110180", "DCM", "Study Instance UID"),
    "CTAccumulatedDoseData": ("113811", "DCM", "CT Accumulated Dose Data"),
    "TotalNumberOfIrradiationEvents": ("113812", "DCM", "Total Number of Irradiation Events"),
    "CTDoseLengthProductTotal": ("113813", "DCM", "CT Dose Length Product Total"),
    "CTAcquisition": ("113819", "DCM", "CT Acquisition"),
    "AcquisitionProtocol": ("125203", "DCM", "Acquisition Protocol"),
    "TargetRegion": ("123014", "DCM", "Target Region"),
    "Abdomen": ("818981001", "SCT", "Abdomen"),
    "CTAcquisitionType": ("113820", "DCM", "CT Acquisition Type"),
    "ConstantAngleAcquisition": ("113805", "DCM", "Constant Angle Acquisition"),
    "SpiralAcquisition": ("116152004", "SCT", "Spiral Acquisition"),
    "IrradiationEventUID": ("113769", "DCM", "Irradiation Event UID"),
    "CTAcquisitionParameters": ("113822", "DCM", "CT Acquisition Parameters"),
    "ExposureTime": ("113824", "DCM", "Exposure Time"),
    "ScanningLength": ("113825", "DCM", "Scanning Length"),
    "NominalSingleCollimationWidth": ("113826", "DCM", "Nominal Single Collimation Width"),
    "NominalTotalCollimationWidth": ("113827", "DCM", "Nominal Total Collimation Width"),
    "PitchFactor": ("113828", "DCM", "Pitch Factor"),
    "NumberOfXRaySources": ("113823", "DCM", "Number of X-Ray Sources"),
    "CTXRaySourceParameters": ("113831", "DCM", "CT X-Ray Source Parameters"),
    "IdentificationOfTheXRaySource": ("113832", "DCM", "Identification of the X-Ray Source"),
    "KVP": ("113733", "DCM", "KVP"),
    "MaximumXRayTubeCurrent": ("113833", "DCM", "Maximum X-Ray Tube Current"),
    "XRayTubeCurrent": ("113734", "DCM", "X-Ray Tube Current"),
    "ExposureTimePerRotation": ("113834", "DCM", "Exposure Time per Rotation"),
    "CTDose": ("113829", "DCM", "CT Dose"),
    "MeanCTDIvol": ("113830", "DCM", "Mean CTDIvol"),
    "CTDIwPhantomType": ("113835", "DCM", "CTDIw Phantom Type"),
    "IECBodyDosimetryPhantom": ("113691", "DCM", "IEC Body Dosimetry Phantom"),
    "DLP": ("113838", "DCM", "DLP"),
    "SourceOfDoseInformation": ("113854", "DCM", "Source of Dose Information"),
    "AutomatedDataCollection": ("113856", "DCM", "Automated Data Collection"),
}

# Units (UCUM), with the code meanings of the templates.
UCUM_UNITS = {
    unit: (unit, "UCUM", meaning)
    for unit, meaning in [
        ("mGy", "mGy"),
        ("mGy.cm", "mGy.cm"),
        ("s", "s"),
        ("mm", "mm"),
        ("kV", "kV"),
        ("mA", "mA"),
        ("{ratio}", "ratio"),
        ("{events}", "events"),
        ("{X-Ray sources}", "X-Ray sources"),
    ]
}


def ct_irradiation_events() -> list[dict]:
    """The two irradiation events of the CT study, from the values in the image headers.

    Scanning length: the localizer's extent along z (rows x pixel spacing); for the spiral,
    the z extent of the axial slice centres plus one slice thickness. DLP = CTDIvol x
    scanning length / 10 (mGy.cm, the length in cm)."""
    events = []
    loc_length = LOC_ROWS * LOC_PITCH  # 390 mm
    ax_length = (AX_N - 1) * AX_STEP + float(AXIAL_SCAN["thickness"])  # 145 + 5 = 150 mm
    for number, scan, length, spiral, start in [
        (1, LOCALIZER_SCAN, loc_length, False, "094112"),
        (2, AXIAL_SCAN, ax_length, True, "094205"),
    ]:
        if spiral:  # beam on while the table travels the scanning length
            exposure_time = round(length / SPIRAL["TableSpeed"], 2)
            collimation = (SPIRAL["SingleCollimationWidth"], SPIRAL["TotalCollimationWidth"])
        else:  # a topogram: the tube stands still, one detector row wide
            exposure_time = scan["ms"] / 1000
            collimation = (float(scan["thickness"]), float(scan["thickness"]))
        events.append(
            {
                "uid": uid("WB-0001", "irradiation-event", number),
                "spiral": spiral,
                "protocol": "Abdomen Routine",
                "start": start,
                "exposure_time": exposure_time,
                "length": length,
                "collimation": collimation,
                "kvp": float(scan["kvp"]),
                "ma": float(scan["ma"]),
                "ctdivol": scan["ctdi"],
                "dlp": round(scan["ctdi"] * length / 10.0, 2),
            }
        )
    return events


def sr_code(code: tuple[str, str, str]) -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = code
    return item


def sr_item(
    relationship: str, value_type: str, concept: str, value=None, unit: str | None = None, children=()
) -> Dataset:
    """One SR content item (PS3.3 C.17.3); `concept` and CODE values are keys of DOSE_CODES."""
    item = Dataset()
    item.RelationshipType = relationship
    item.ValueType = value_type
    item.ConceptNameCodeSequence = [sr_code(DOSE_CODES[concept])]
    if value_type == "CODE":
        item.ConceptCodeSequence = [sr_code(DOSE_CODES[value])]
    elif value_type == "TEXT":
        item.TextValue = value
    elif value_type == "UIDREF":
        item.UID = value
    elif value_type == "DATETIME":
        item.DateTime = value
    elif value_type == "NUM":
        measured = Dataset()
        measured.MeasurementUnitsCodeSequence = [sr_code(UCUM_UNITS[unit])]
        measured.NumericValue = ds_str(value)
        item.MeasuredValueSequence = [measured]
    elif value_type == "CONTAINER":
        item.ContinuityOfContent = "SEPARATE"
    else:
        raise ValueError(value_type)
    if children:
        item.ContentSequence = list(children)
    return item


def ct_acquisition_item(event: dict) -> Dataset:
    """TID 10013 CT Irradiation Event Data, with TID 10014 Scanning Length."""
    source = [
        sr_item("CONTAINS", "TEXT", "IdentificationOfTheXRaySource", "A"),
        sr_item("CONTAINS", "NUM", "KVP", event["kvp"], "kV"),
        sr_item("CONTAINS", "NUM", "MaximumXRayTubeCurrent", event["ma"], "mA"),
        sr_item("CONTAINS", "NUM", "XRayTubeCurrent", event["ma"], "mA"),
    ]
    parameters = [
        sr_item("CONTAINS", "NUM", "ExposureTime", event["exposure_time"], "s"),
        sr_item("CONTAINS", "NUM", "ScanningLength", event["length"], "mm"),
        sr_item("CONTAINS", "NUM", "NominalSingleCollimationWidth", event["collimation"][0], "mm"),
        sr_item("CONTAINS", "NUM", "NominalTotalCollimationWidth", event["collimation"][1], "mm"),
    ]
    if event["spiral"]:
        parameters.append(sr_item("CONTAINS", "NUM", "PitchFactor", SPIRAL["SpiralPitchFactor"], "{ratio}"))
        source.append(sr_item("CONTAINS", "NUM", "ExposureTimePerRotation", SPIRAL["RevolutionTime"], "s"))
    parameters += [
        sr_item("CONTAINS", "NUM", "NumberOfXRaySources", 1, "{X-Ray sources}"),
        sr_item("CONTAINS", "CONTAINER", "CTXRaySourceParameters", children=source),
    ]
    dose = [
        sr_item("CONTAINS", "NUM", "MeanCTDIvol", event["ctdivol"], "mGy"),
        sr_item("CONTAINS", "CODE", "CTDIwPhantomType", "IECBodyDosimetryPhantom"),
        sr_item("CONTAINS", "NUM", "DLP", event["dlp"], "mGy.cm"),
    ]
    kind = "SpiralAcquisition" if event["spiral"] else "ConstantAngleAcquisition"
    return sr_item(
        "CONTAINS",
        "CONTAINER",
        "CTAcquisition",
        children=[
            sr_item("CONTAINS", "TEXT", "AcquisitionProtocol", event["protocol"]),
            sr_item("CONTAINS", "CODE", "TargetRegion", "Abdomen"),
            sr_item("CONTAINS", "CODE", "CTAcquisitionType", kind),
            sr_item("CONTAINS", "UIDREF", "IrradiationEventUID", event["uid"]),
            sr_item("CONTAINS", "CONTAINER", "CTAcquisitionParameters", children=parameters),
            sr_item("CONTAINS", "CONTAINER", "CTDose", children=dose),
        ],
    )


def make_dose_report(study_dir: Path, evidence: dict[str, list[str]], written: list[Path]) -> None:
    """Series 99: an X-Ray Radiation Dose SR (TID 10011 CT Radiation Dose) of the CT study."""
    series = {
        "uid": uid("WB-0001", "series", 99),
        "number": 99,
        "modality": "SR",
        "description": "Dose Report",
        "time": "094215",
    }
    events = ct_irradiation_events()
    date = P1_STUDY["date"]
    start = date + time_plus(events[0]["start"], 0)
    end = date + time_plus(events[-1]["start"], events[-1]["exposure_time"])
    equipment = P1_STUDY["equipment"]
    device_uid = uid("device", equipment["DeviceSerialNumber"])

    sop = uid("WB-0001", "instance", 99, 1)
    ds = new_dataset(XRayRadiationDoseSRStorage, sop, ExplicitVRLittleEndian)
    add_common(ds, P1, P1_STUDY, series, image=False)
    ds.ContentTime = series["time"]
    ds.InstanceNumber = 1
    ds.ReferencedPerformedProcedureStepSequence = []
    ds.CompletionFlag = "COMPLETE"
    ds.VerificationFlag = "UNVERIFIED"
    ds.PerformedProcedureCodeSequence = []
    referenced_series = []
    for series_uid, instances in evidence.items():
        item = Dataset()
        item.SeriesInstanceUID = series_uid
        item.ReferencedSOPSequence = []
        for instance_uid in instances:
            ref = Dataset()
            ref.ReferencedSOPClassUID = CTImageStorage
            ref.ReferencedSOPInstanceUID = instance_uid
            item.ReferencedSOPSequence.append(ref)
        referenced_series.append(item)
    study = Dataset()
    study.StudyInstanceUID = P1_STUDY["uid"]
    study.ReferencedSeriesSequence = referenced_series
    ds.CurrentRequestedProcedureEvidenceSequence = [study]

    # SR Document Content: the root container of TID 10011.
    ds.ValueType = "CONTAINER"
    ds.ConceptNameCodeSequence = [sr_code(DOSE_CODES["XRayRadiationDoseReport"])]
    ds.ContinuityOfContent = "SEPARATE"
    template = Dataset()
    template.MappingResource = "DCMR"
    template.TemplateIdentifier = "10011"
    ds.ContentTemplateSequence = [template]
    total_dlp = round(sum(e["dlp"] for e in events), 2)
    ds.ContentSequence = [
        sr_item(
            "HAS CONCEPT MOD",
            "CODE",
            "ProcedureReported",
            "ComputedTomographyXRay",
            children=[sr_item("HAS CONCEPT MOD", "CODE", "HasIntent", "DiagnosticIntent")],
        ),
        sr_item("HAS OBS CONTEXT", "CODE", "ObserverType", "Device"),
        sr_item("HAS OBS CONTEXT", "UIDREF", "DeviceObserverUID", device_uid),
        sr_item("HAS OBS CONTEXT", "TEXT", "DeviceObserverName", equipment["StationName"]),
        sr_item("HAS OBS CONTEXT", "TEXT", "DeviceObserverManufacturer", equipment["Manufacturer"]),
        sr_item("HAS OBS CONTEXT", "TEXT", "DeviceObserverModelName", equipment["ManufacturerModelName"]),
        sr_item("HAS OBS CONTEXT", "TEXT", "DeviceObserverSerialNumber", equipment["DeviceSerialNumber"]),
        sr_item("HAS OBS CONTEXT", "DATETIME", "StartOfXRayIrradiation", start),
        sr_item("HAS OBS CONTEXT", "DATETIME", "EndOfXRayIrradiation", end),
        sr_item(
            "HAS OBS CONTEXT",
            "CODE",
            "ScopeOfAccumulation",
            "Study",
            children=[sr_item("HAS PROPERTIES", "UIDREF", "StudyInstanceUID", P1_STUDY["uid"])],
        ),
        sr_item(
            "CONTAINS",
            "CONTAINER",
            "CTAccumulatedDoseData",
            children=[
                sr_item("CONTAINS", "NUM", "TotalNumberOfIrradiationEvents", len(events), "{events}"),
                sr_item("CONTAINS", "NUM", "CTDoseLengthProductTotal", total_dlp, "mGy.cm"),
            ],
        ),
        *(ct_acquisition_item(event) for event in events),
        sr_item("CONTAINS", "CODE", "SourceOfDoseInformation", "AutomatedDataCollection"),
    ]
    write(ds, study_dir / "99_Dose_Report" / "SR000001.dcm", written)


# --------------------------------------------------------------------------------------
# Patient 2: MR head, sagittal T1 SE, Implicit VR Little Endian, Latin-1 names
# --------------------------------------------------------------------------------------

P2 = {
    "id": "WB-0002",
    "name": "MÜLLER^JOSÉ",
    "charset": "ISO_IR 100",
    "birth": "19850723",
    "sex": "M",
    "age": "038Y",
    "size": "1.74",
    "weight": "71",
}

P2_STUDY = {
    "uid": uid("WB-0002", "study"),
    "id": "4711",
    "date": "20240506",
    "time": "151230",
    "accession": "WBA24050617",
    "description": "MRT SCHÄDEL NATIV",
    "referring": "BÖHM^ANNA^^DR.",
    "institution": "Hôpital Général de Démonstration",
    "address": "1 Rue de l'Exemple, Démoville",
    "department": "Neuroradiologie",
    "equipment": {
        "Manufacturer": "Workbench Phantoms",
        "ManufacturerModelName": "SynthMR 1.5T",
        "StationName": "MRSIM01",
        "DeviceSerialNumber": "WBMR-004242",
        "SoftwareVersions": "synth-mr 1.0",
    },
}

MR_N, MR_SIZE, MR_PIXEL, MR_STEP, MR_THICK = 20, 192, 1.2, 5.0, 4.0


def make_patient2(out: Path, written: list[Path]) -> None:
    series = {
        "uid": uid("WB-0002", "series", 3),
        "number": 3,
        "modality": "MR",
        "description": "t1_se_sag",
        "protocol": "t1_se_sag",
        "body_part": "HEAD",
        "position": "HFS",
        "time": "152004",
    }
    series_dir = out / P2["id"] / "20240506_MR_SCHAEDEL" / "3_t1_se_sag"
    half = (MR_SIZE - 1) / 2 * MR_PIXEL  # 114.6
    y0, z_top = -half, 10.0 + half
    ys = y0 + MR_PIXEL * np.arange(MR_SIZE)
    zs = z_top - MR_PIXEL * np.arange(MR_SIZE)
    yy, zz = np.meshgrid(ys, zs, indexing="xy")  # y along columns, z down the rows
    frame_of_reference = uid("WB-0002", "frame-of-reference")
    for k in range(MR_N):
        x = -47.5 + MR_STEP * k  # from patient right to patient left
        sig = supersampled(lambda y, z, x=x: head_signal(x, y, z), yy, zz, MR_PIXEL, MR_PIXEL)
        # Receive-coil shading: brighter at the back of the head (float, IEEE only).
        shaded = sig * (1.0 + yy / 600.0)
        n1 = int_noise(5000 + 2 * k, sig.shape, 7)
        n2 = int_noise(5001 + 2 * k, sig.shape, 7)
        magnitude = np.sqrt((shaded + n1) ** 2 + n2.astype(np.float64) ** 2)  # Rician
        pixels = np.clip(np.floor(magnitude), 0, 4095).astype(np.uint16)

        sop = uid("WB-0002", "instance", 3, k + 1)
        ds = new_dataset(MRImageStorage, sop, ImplicitVRLittleEndian)
        ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "NORM", "DIS2D"]
        add_common(ds, P2, P2_STUDY, series)
        ds.ContentTime = time_plus(series["time"], 95 + 0.1 * k)
        ds.AcquisitionTime = time_plus(series["time"], 0)
        ds.ScanningSequence = "SE"
        ds.SequenceVariant = ["SK", "SP"]
        ds.ScanOptions = ""
        ds.MRAcquisitionType = "2D"
        ds.SequenceName = "*se2d1"
        ds.AngioFlag = "N"
        ds.SliceThickness = ds_str(MR_THICK)
        ds.RepetitionTime = "500"
        ds.EchoTime = "12"
        ds.NumberOfAverages = "2"
        ds.ImagingFrequency = "63.676"
        ds.ImagedNucleus = "1H"
        ds.EchoNumbers = "1"
        ds.MagneticFieldStrength = "1.5"
        ds.SpacingBetweenSlices = ds_str(MR_STEP)
        ds.NumberOfPhaseEncodingSteps = str(MR_SIZE)
        ds.EchoTrainLength = "1"
        ds.PercentSampling = "100"
        ds.PercentPhaseFieldOfView = "100"
        ds.PixelBandwidth = "150"
        ds.ReceiveCoilName = "Head_32"
        ds.TransmitCoilName = "Body"
        ds.AcquisitionMatrix = [0, MR_SIZE, MR_SIZE, 0]
        ds.InPlanePhaseEncodingDirection = "ROW"
        ds.FlipAngle = "90"
        ds.SAR = "0.8"
        ds.dBdt = "0"
        ds.AcquisitionNumber = 1
        ds.InstanceNumber = k + 1
        ds.ImagePositionPatient = [ds_str(x), ds_str(y0), ds_str(z_top)]
        ds.ImageOrientationPatient = ["0", "1", "0", "0", "0", "-1"]
        ds.FrameOfReferenceUID = frame_of_reference
        ds.PositionReferenceIndicator = ""
        ds.SliceLocation = ds_str(x)
        add_pixels(ds, pixels, 12, "MONOCHROME2")
        ds.PixelSpacing = [ds_str(MR_PIXEL), ds_str(MR_PIXEL)]
        ds.LossyImageCompression = "00"
        ds.WindowCenter = "450"
        ds.WindowWidth = "1000"
        set_native_pixels(ds, pixels)
        # Extension-less names, as many PACS exports write them.
        write(ds, series_dir / f"MR{k + 1:06d}", written)


# --------------------------------------------------------------------------------------
# Patient 3: CR chest PA, MONOCHROME1, written without preamble / "DICM" / File Meta
# --------------------------------------------------------------------------------------

P3 = {
    "id": "WB-0003",
    "name": "PHANTOM^CHEST",
    "charset": None,
    "birth": "19511102",
    "sex": "F",
    "age": "072Y",
    "size": "1.63",
    "weight": "58",
}

P3_STUDY = {
    "uid": uid("WB-0003", "study"),
    "id": "1",
    "date": "20240918",
    "time": "081502",
    "accession": "WBA24091803",
    "description": "XR CHEST PA",
    "referring": "NAKAMURA^KENJI",
    "institution": "Workbench Demo Hospital",
    "department": "Radiology",
    "equipment": {
        "Manufacturer": "Workbench Phantoms",
        "ManufacturerModelName": "SynthCR 35",
        "StationName": "CRSIM01",
        "DeviceSerialNumber": "WBCR-000815",
        "SoftwareVersions": "synth-cr 1.0",
    },
}


def make_patient3(out: Path, written: list[Path]) -> None:
    series = {
        "uid": uid("WB-0003", "series", 1),
        "number": 1,
        "modality": "CR",
        "description": "Chest PA",
        "protocol": "Thorax PA",
        "body_part": "CHEST",
        "time": "081544",
    }
    rows, cols, pitch = 400, 340, 1.0
    xs = -(cols - 1) / 2 * pitch + pitch * np.arange(cols)
    zs = 185.0 - pitch * np.arange(rows)
    ys = -130.0 + 2.0 * np.arange(131)
    proj = projection(xs, zs, ys, table=False)
    # Stored values grow with detector exposure (less attenuation); MONOCHROME1 shows
    # them inverted, so bone is bright and air is dark on screen.
    raw = 3900 - proj // 48 + int_noise(7000, proj.shape, 6)
    pixels = np.clip(raw, 0, 4095).astype(np.uint16)

    sop = uid("WB-0003", "instance", 1, 1)
    ds = new_dataset(ComputedRadiographyImageStorage, sop, None)
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    add_common(ds, P3, P3_STUDY, series)
    ds.ContentTime = time_plus(series["time"], 30)
    ds.AcquisitionTime = time_plus(series["time"], 0)
    ds.ViewPosition = "PA"
    ds.KVP = "125"
    ds.ExposureTime = "8"
    ds.XRayTubeCurrent = "320"
    ds.Exposure = "3"
    ds.DistanceSourceToDetector = "1800"
    ds.ImagerPixelSpacing = [ds_str(pitch), ds_str(pitch)]
    ds.PlateType = "ST-VI"
    ds.AcquisitionNumber = 1
    ds.InstanceNumber = 1
    ds.PatientOrientation = ["L", "F"]
    add_pixels(ds, pixels, 12, "MONOCHROME1")
    ds.LossyImageCompression = "00"
    ds.WindowCenter = "2200"
    ds.WindowWidth = "3000"
    set_native_pixels(ds, pixels)
    write(ds, out / P3["id"] / "20240918_CR_CHEST" / "1_Chest_PA" / "CR000001", written)


def generate(out: Path) -> list[Path]:
    """Write the whole sample set into `out`; return the files written, in order."""
    out = Path(out)
    written: list[Path] = []
    make_patient1(out, written)
    make_patient2(out, written)
    make_patient3(out, written)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default: {DEFAULT_OUT})"
    )
    args = parser.parse_args(argv)
    written = generate(args.out)
    ours = {p.resolve() for p in written}
    stale = sorted(p for p in args.out.rglob("*") if p.is_file() and p.resolve() not in ours)
    size = sum(p.stat().st_size for p in written)
    print(f"wrote {len(written)} files, {size / 1e6:.1f} MB, into {args.out}")
    if stale:
        print(
            f"warning: {len(stale)} file(s) in {args.out} were not written by this "
            "script (delete them if the sample set should be exact):",
            file=sys.stderr,
        )
        for p in stale:
            print(f"  {p}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
