"""Benchmark `workbench anonymize` against a pydicom loop, dicognito and dcmanon, with a leak check.

Run by hand, not by CI::

    python benchmarks/anonymize.py [--files 2000] [--workdir DIR] [--keep] [--subset 300] [--repeat 3]

A CT corpus (512x512 int16, explicit VR little endian) is generated deterministically (numpy
seeded) under the work directory, with PHI planted where hospitals put it: patient name, ID and
birth date, other patient IDs, accession numbers, physicians and operators, institution name and
address, station, device serial number, dates, free text naming the patient, a private block and
a private sequence with the name, request attributes, and a ReferencedImageSequence pointing at
another file of the same series. The corpus is crawled into an index.

Each contender anonymizes it into its own folder in the same run, with a warm page cache, in
``--repeat`` interleaved rounds (the median is reported):
``workbench.deid.export()`` (and the ``workbench anonymize`` command in a fresh
interpreter, and its ``--verify``), the pydicom loop a user would write (applying the same
PS3.15 table through ``workbench.deid.profile.Profile``), dicognito and dcmanon. Every output is
then checked the same way: a case-insensitive byte search of every file (and file name) for the
planted PHI values, and whether the references still resolve inside the output.
"""

from __future__ import annotations

import argparse
import datetime as dt
import filecmp
import hashlib
import io
import json
import math
import multiprocessing
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian
from report import Report, machine, version, work_directory

if TYPE_CHECKING:
    from workbench.deid.profile import Profile
    from workbench.index.index import Index

SEED = 20240612
CORPUS_VERSION = 1  # bump when the generated files change, so a reused --workdir is rebuilt
DATA_ROOT = "1.2.826.0.1.3680043.8.498.7.5"  # every study, series, instance, frame... UID of the corpus
IMPLEMENTATION_UID = "1.2.826.0.1.3680043.8.498.7.1"
REPO = Path(__file__).resolve().parents[1]
PATIENTS, STUDIES, SERIES = 5, 2, 2  # patients x studies per patient x series per study
SIZE = 512
TARGET_RATIO = 3.0

# The hospital's PHI, the same in every file (upper case, as the modalities write it).
REFERRING = "DOCTORSON^FRIEDRICH"
PERFORMING = "RADIOLOGA^HILDEGARD"
OPERATOR = "TECHNICIA^BERNADETTE"
INSTITUTION = "SANKT-GEORGSSPITAL NORD"
ADDRESS = "MUSTERSTRASSE 12, 99999 ENTENHAUSEN"
STATION = "CTROOM-ALPHA-07"
SERIAL = "SN-55443322"
HOSPITAL_CREATOR = "SGN HOSPITAL 1.0"
FAMILIES = ("HOSPITALSON", "KRANKENFELD", "MEDICINOVA", "PATIENCIA", "SCANLANDER")
GIVEN = ("WILHELMINA", "BARTHOLOMAEUS", "ROSALINDE", "FLORENTINE", "GOTTFRIEDA")


@dataclass(frozen=True)
class Patient:
    """One synthetic patient's identity and studies."""

    family: str
    given: str
    id: str
    other_id: str
    birth_date: str
    sex: str
    study_dates: tuple[str, ...]
    accessions: tuple[str, ...]

    @property
    def name(self) -> str:
        return f"{self.family}^{self.given}"

    @property
    def spoken(self) -> str:
        """The name as free text writes it: 'Wilhelmina Hospitalson'."""
        return f"{self.given.title()} {self.family.title()}"


def make_patients() -> list[Patient]:
    """The corpus' patients, from the seed."""
    rng = np.random.default_rng([SEED, 0])
    patients = []
    for p in range(PATIENTS):
        birth = dt.date(1930, 1, 1) + dt.timedelta(days=int(rng.integers(0, 60 * 365)))
        first = dt.date(2023, 1, 2) + dt.timedelta(days=int(rng.integers(0, 300)))
        dates = [first + dt.timedelta(days=int(rng.integers(30, 200)) * s) for s in range(STUDIES)]
        patients.append(Patient(
            FAMILIES[p], GIVEN[p], f"MRN{rng.integers(10**7, 10**8)}", f"OPI-{rng.integers(10**6, 10**7)}",
            birth.strftime("%Y%m%d"), "FM"[p % 2], tuple(d.strftime("%Y%m%d") for d in dates),
            tuple(f"ACC{rng.integers(10**8, 10**9)}" for _ in range(STUDIES)),
        ))
    return patients


PATIENT_LIST = make_patients()


# --------------------------------------------------------------------------- corpus generation


@dataclass(frozen=True)
class SeriesJob:
    """One series to write: its index, first global file number and file count."""

    root: str
    series: int
    first: int
    count: int

    @property
    def patient(self) -> int:
        return self.series // (STUDIES * SERIES)

    @property
    def study(self) -> int:
        return self.series // SERIES % STUDIES

    @property
    def folder(self) -> str:
        return f"PA{self.patient + 1:02d}/ST{self.study + 1:02d}/SE{self.series % SERIES + 1:02d}"


def uid(level: int, number: int) -> str:
    """A corpus UID: DATA_ROOT . level . number."""
    return f"{DATA_ROOT}.{level}.{number + 1}"


def code(value: str, scheme: str, meaning: str) -> Dataset:
    """A code sequence item."""
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, scheme, meaning
    return item


def series_header(job: SeriesJob) -> Dataset:
    """The header of a series' files, PHI planted; per-instance values are set by write_series."""
    patient = PATIENT_LIST[job.patient]
    date = patient.study_dates[job.study]
    study = job.patient * STUDIES + job.study
    kernel, thickness = (("Br40", "1.0"), ("Br60", "2.0"))[job.series % SERIES]
    rng = np.random.default_rng([SEED, 1, job.series])
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.ImplementationClassUID = IMPLEMENTATION_UID
    age = (dt.date.fromisoformat(date) - dt.date.fromisoformat(patient.birth_date)).days // 365
    values: dict[str, object] = {
        "SpecificCharacterSet": "ISO_IR 100", "ImageType": ["ORIGINAL", "PRIMARY", "AXIAL"],
        "InstanceCreationDate": date, "SOPClassUID": CTImageStorage,
        "StudyDate": date, "SeriesDate": date, "AcquisitionDate": date, "ContentDate": date,
        "StudyTime": "083000", "SeriesTime": f"08310{job.series % SERIES}",
        "AccessionNumber": patient.accessions[job.study], "Modality": "CT", "Manufacturer": "ACME Medical",
        "InstitutionName": INSTITUTION, "InstitutionAddress": ADDRESS, "ReferringPhysicianName": REFERRING,
        "StationName": STATION, "StudyDescription": f"CT THORAX {patient.family} FOLLOW-UP",
        "SeriesDescription": f"Thorax {thickness} {kernel}", "InstitutionalDepartmentName": "Radiology",
        "PerformingPhysicianName": PERFORMING, "OperatorsName": OPERATOR,
        "ManufacturerModelName": "Tomograph 128", "PatientName": patient.name, "PatientID": patient.id,
        "IssuerOfPatientID": "SGN", "PatientBirthDate": patient.birth_date, "PatientSex": patient.sex,
        "PatientAge": f"{age:03d}Y", "PatientSize": "1.72", "PatientWeight": str(55 + job.patient * 7),
        "AdditionalPatientHistory": f"{patient.spoken}, referred by Dr. Doctorson for dyspnoea",
        "BodyPartExamined": "CHEST", "ContrastBolusAgent": "Iohexol 350", "KVP": "120",
        "SliceThickness": thickness, "DeviceSerialNumber": SERIAL, "SoftwareVersions": ["VA20A", "SP3"],
        "ProtocolName": "Thorax routine", "DataCollectionDiameter": "500", "ReconstructionDiameter": "380",
        "GantryDetectorTilt": "0", "TableHeight": "160", "ExposureTime": "500",
        "ConvolutionKernel": kernel, "PatientPosition": "HFS", "CTDIvol": round(float(rng.uniform(6, 14)), 2),
        "StudyInstanceUID": uid(1, study), "SeriesInstanceUID": uid(2, job.series),
        "StudyID": str(job.study + 1), "SeriesNumber": job.series % SERIES + 1, "AcquisitionNumber": 1,
        "ImageOrientationPatient": ["1", "0", "0", "0", "1", "0"], "FrameOfReferenceUID": uid(4, study),
        "PositionReferenceIndicator": "", "SamplesPerPixel": 1, "PhotometricInterpretation": "MONOCHROME2",
        "Rows": SIZE, "Columns": SIZE, "PixelSpacing": ["0.742188", "0.742188"], "BitsAllocated": 16,
        "BitsStored": 16, "HighBit": 15, "PixelRepresentation": 1, "WindowCenter": ["40", "-600"],
        "WindowWidth": ["400", "1600"], "RescaleIntercept": "-1024", "RescaleSlope": "1",
        "RescaleType": "HU", "PerformedProcedureStepStartDate": date,
        "PerformedProcedureStepStartTime": "083000",
        "PerformedProcedureStepID": "PPS1", "RequestingPhysician": REFERRING,
        "PerformedProcedureStepDescription": f"CT thorax for {patient.spoken}",
        "IrradiationEventUID": uid(7, job.series),
    }  # fmt: skip
    for keyword, value in values.items():
        setattr(ds, keyword, value)
    other = Dataset()
    other.PatientID, other.IssuerOfPatientID = patient.other_id, INSTITUTION
    ds.OtherPatientIDsSequence = [other]
    request = Dataset()
    request.RequestedProcedureID = patient.accessions[job.study]
    request.ScheduledProcedureStepID = patient.id
    request.RequestedProcedureDescription = f"CT thorax {patient.spoken}, Dr. Doctorson"
    request.ScheduledProtocolCodeSequence = [code("CTTHX", "99SGN", f"Thorax by {OPERATOR}")]
    ds.RequestAttributesSequence = [request]
    ds.ProcedureCodeSequence = [code("CTTHX", "99SGN", "CT thorax")]
    pps = Dataset()
    pps.ReferencedSOPClassUID, pps.ReferencedSOPInstanceUID = "1.2.840.10008.3.1.2.3.3", uid(6, study)
    ds.ReferencedPerformedProcedureStepSequence = [pps]
    image = Dataset()
    image.ReferencedSOPClassUID, image.ReferencedSOPInstanceUID = CTImageStorage, ""
    ds.ReferencedImageSequence = [image]
    vendor = ds.private_block(0x0009, "ACME CT 1.0", create=True)
    for offset, (vr, value) in enumerate(
        [("LO", "RECON_ITER_3"), ("DS", "1.5"), ("US", 3), ("FD", 0.125), ("OB", bytes(range(32)))], start=1
    ):
        vendor.add_new(offset, vr, value)
    hospital = ds.private_block(0x0029, HOSPITAL_CREATOR, create=True)
    hospital.add_new(0x10, "LO", patient.name)
    inner = Dataset()
    inner.add_new(0x00100010, "PN", patient.name)
    inner.add_new(0x00100020, "LO", patient.id)
    hospital.add_new(0x11, "SQ", Sequence([inner]))
    ds.PixelData = ct_pixels(rng)
    ds["PixelData"].VR = "OW"
    return ds


def ct_pixels(rng: np.random.Generator) -> bytes:
    """A body-like phantom in stored values (HU + 1024) with noise, as int16 bytes."""
    y, x = np.ogrid[-1 : 1 : SIZE * 1j, -1 : 1 : SIZE * 1j]
    body = (x / 0.8) ** 2 + (y / 0.6) ** 2 <= 1
    hu = np.where(body, 40.0, -1000.0) + rng.normal(0.0, 12.0, body.shape)
    return (hu + 1024).astype("<i2").tobytes()


def write_series(job: SeriesJob) -> int:
    """Write every file of one series; each references the previous slice (the first, the last)."""
    patient = PATIENT_LIST[job.patient]
    ds = series_header(job)
    for i in range(job.count):
        sop = uid(3, job.first + i)
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = sop
        ds.ReferencedImageSequence[0].ReferencedSOPInstanceUID = uid(3, job.first + (i - 1) % job.count)
        ds.InstanceNumber = i + 1
        z = f"{-0.7 * i:.2f}"
        ds.ImagePositionPatient, ds.SliceLocation = ["-190", "-190", z], z
        ds.AcquisitionTime = ds.ContentTime = ds.InstanceCreationTime = f"0832{i // 10 % 60:02d}"
        ds.AcquisitionDateTime = ds.AcquisitionDate + ds.AcquisitionTime
        ds.XRayTubeCurrent = 150 + int(80 * math.sin(i / 7))
        ds.ImageComments = f"Patient {patient.spoken} ({patient.id}) tolerated contrast well"
        path = os.path.join(job.root, job.folder, f"IM{i + 1:04d}.dcm")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        pydicom.dcmwrite(path, ds, enforce_file_format=True)
    return job.count


def series_jobs(root: Path, files: int) -> list[SeriesJob]:
    """The series of the corpus: ``files`` spread evenly over patients x studies x series."""
    n_series = PATIENTS * STUDIES * SERIES
    jobs, first = [], 0
    for s in range(n_series):
        count = files // n_series + (s < files % n_series)
        if count:
            jobs.append(SeriesJob(str(root), s, first, count))
            first += count
    return jobs


def ensure_corpus(workdir: Path, files: int) -> list[SeriesJob]:
    """Generate the corpus (and a fresh index) unless the work directory holds this exact one."""
    root, marker = workdir / "ct", workdir / "anonymize-ct.json"
    jobs = series_jobs(root, files)
    wanted = {"files": files, "seed": SEED, "version": CORPUS_VERSION}
    if marker.exists() and root.is_dir() and json.loads(marker.read_text()) == wanted:
        print(f"reusing the corpus: {files} files in {root}")
        return jobs
    marker.unlink(missing_ok=True)
    shutil.rmtree(root, ignore_errors=True)
    shutil.rmtree(workdir / "index", ignore_errors=True)
    start = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(os.cpu_count()) as pool:
        written = sum(pool.imap_unordered(write_series, jobs))
    seconds = time.perf_counter() - start
    print(f"generated {written} files in {seconds:.1f} s")
    marker.write_text(json.dumps(wanted))
    return jobs


def pick_subset(jobs: list[SeriesJob], wanted: int) -> list[SeriesJob]:
    """Whole series (so references stay inside), patients taken in turn, until ``wanted`` files."""
    order = sorted(jobs, key=lambda j: (j.series % (STUDIES * SERIES), j.patient))
    picked: list[SeriesJob] = []
    while order and sum(j.count for j in picked) < wanted:
        picked.append(order.pop(0))
    return sorted(picked, key=lambda j: j.series)


def job_paths(jobs: list[SeriesJob]) -> list[Path]:
    """The files of some series."""
    return [Path(j.root, j.folder, f"IM{i + 1:04d}.dcm") for j in jobs for i in range(j.count)]


# --------------------------------------------------------------------------- contenders


@dataclass
class Timed:
    """One contender's run: files given, seconds, failures, and why it could not run."""

    name: str
    files: int
    seconds: float = 0.0
    failed: int = 0
    out: Path | None = None
    error: str = ""
    note: str = ""
    spread: str = ""  # the range of the seconds over the rounds
    cpu: float = 0.0  # CPU seconds of the process and its children while it ran

    @property
    def rate(self) -> float:
        return (self.files - self.failed) / self.seconds if self.seconds else 0.0


def mirror(path: Path, src: Path, out: Path) -> Path:
    """The output path of ``path``: the same relative path under ``out`` (the inputs hold no PHI)."""
    target = out / path.relative_to(src)
    target.parent.mkdir(parents=True, exist_ok=True)
    return target


def fresh(out: Path) -> None:
    """Remove ``out`` and flush every write so far to disk, untimed: no contender pays for the
    writeback of another's gigabyte (the page cache holds what they wrote, and the kernel writes
    it back, and throttles writers, while the next one runs)."""
    shutil.rmtree(out, ignore_errors=True)
    os.sync()


def run_loop(name: str, paths: list[Path], src: Path, out: Path, one: Callable[[Path, Path], None]) -> Timed:
    """Time ``one(path, target)`` over ``paths`` serially; a failing file is counted, not fatal."""
    fresh(out)
    timed = Timed(name, len(paths), out=out)
    errors: list[str] = []
    cpu, start = cpu_seconds(), time.perf_counter()
    for path in paths:
        try:
            one(path, mirror(path, src, out))
        except Exception as exc:  # noqa: BLE001 - a contender's failure on a file is a result
            timed.failed += 1
            errors.append(f"{type(exc).__name__}: {exc}"[:200])
    timed.seconds, timed.cpu = time.perf_counter() - start, cpu_seconds() - cpu
    if errors:
        timed.note = f"{len(errors)} failed, first: {errors[0]}"
    return timed


_DUMMY = {"DA": "19000101", "TM": "000000", "DT": "19000101000000", "AS": "000Y", "DS": "0", "IS": "0"}
_NUMBERS = {"US", "SS", "UL", "SL", "FL", "FD", "SV", "UV"}


def hash_uid(value: str) -> str:
    """The user's UID pseudonym: 2.25 + a SHA-256 of the original (PS3.5 B.2)."""
    return "2.25." + str(int(hashlib.sha256(value.encode()).hexdigest()[:30], 16))


def scrub(ds: Dataset, profile: Profile, pseudonym: str) -> None:
    """The pydicom loop's walk: the table's action for every element, recursively."""
    for element in list(ds):
        tag = element.tag
        if tag.is_private or tag.element == 0:
            del ds[tag]
            continue
        action = profile.action(int(tag))
        if action is None or action == "K":
            if element.VR == "SQ":
                for item in element.value:
                    scrub(item, profile, pseudonym)
            continue
        if tag in (0x00100010, 0x00100020):
            element.value = pseudonym
        elif element.VR == "SQ":
            if action.startswith("X") and "U" not in action:
                del ds[tag]
            else:
                for item in element.value:
                    scrub(item, profile, pseudonym)
        elif "U" in action or (element.VR == "UI" and not action.startswith("X")):
            values = element.value if element.VM > 1 else [element.value]
            new = [hash_uid(str(v)) for v in values if v]
            element.value = new if len(new) > 1 else (new[0] if new else "")
        elif action.startswith("X"):
            del ds[tag]
        elif action.startswith("Z"):
            element.value = None
        else:  # D, C: a dummy value
            element.value = 0 if element.VR in _NUMBERS else _DUMMY.get(element.VR, "ANONYMIZED")


def pydicom_one_factory() -> Callable[[Path, Path], None]:
    """dcmread, the table applied by ``scrub``, save_as."""
    from workbench.deid.profile import Profile

    profile = Profile()

    def one(path: Path, target: Path) -> None:
        ds = pydicom.dcmread(path)
        pseudonym = "P" + hashlib.sha256(str(ds.get("PatientID", "")).encode()).hexdigest()[:12].upper()
        scrub(ds, profile, pseudonym)
        ds.PatientIdentityRemoved = "YES"
        ds.DeidentificationMethod = "pydicom loop, PS3.15 Table E.1-1"
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.save_as(target, enforce_file_format=True)

    return one


def dicognito_one_factory() -> Callable[[Path, Path], None]:
    """dcmread, dicognito's Anonymizer (seeded), save_as."""
    from dicognito.anonymizer import Anonymizer

    anonymizer = Anonymizer(seed=str(SEED))

    def one(path: Path, target: Path) -> None:
        ds = pydicom.dcmread(path)
        anonymizer.anonymize(ds)
        ds.save_as(target)

    return one


def dcmanon_one_factory() -> Callable[[Path, Path], None]:
    """dcmanon's Anonymizer (default settings) on the path; the bytes it returns are written."""
    from dcmanon import Anonymizer

    anonymizer = Anonymizer()

    def one(path: Path, target: Path) -> None:
        target.write_bytes(anonymizer.anonymize(str(path)))

    return one


def run_contender(
    name: str, factory: Callable[[], Callable[[Path, Path], None]], paths: list[Path], src: Path, out: Path
) -> Timed:
    """Set a contender up (imports, its anonymizer) untimed, then time its loop."""
    try:
        one = factory()
    except Exception as exc:  # noqa: BLE001 - a contender that cannot be set up is reported
        return Timed(name, len(paths), error=f"cannot run: {type(exc).__name__}: {exc}"[:160])
    return run_loop(name, paths, src, out, one)


def run_workbench_api(index: Index, out: Path, key: bytes, files: int) -> Timed:
    """``export(index, out, key=key, quiet=True, verify=False)`` into an empty folder."""
    from workbench.deid import export

    fresh(out)
    cpu, start = cpu_seconds(), time.perf_counter()
    try:
        result = export(index, out, key=key, quiet=True, verify=False)
    except Exception as exc:  # noqa: BLE001 - reported as a failed row
        return Timed("workbench export()", files, error=f"raised {type(exc).__name__}: {exc}"[:160])
    timed = Timed("workbench export()", files, time.perf_counter() - start, out=out)
    timed.cpu = cpu_seconds() - cpu  # the pool's workers are reaped when export() returns
    timed.failed = files - result.exported
    timed.note = f"{len(result.failed)} failed, {len(result.held_back)} held back"
    return timed


def run_command(name: str, args: list[str], files: int, out: Path | None) -> tuple[Timed, str]:
    """Run ``python -m workbench ...`` in a fresh interpreter (cwd = repository); return its output."""
    cpu, start = cpu_seconds(), time.perf_counter()
    command = [sys.executable, "-m", "workbench", *args]
    proc = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    timed = Timed(name, files, time.perf_counter() - start, out=out)
    timed.cpu = cpu_seconds() - cpu
    output = (proc.stdout + proc.stderr).strip()
    if proc.returncode not in (0, 1) or "Traceback" in output:
        timed.error = f"exit {proc.returncode}: {output.splitlines()[-1] if output else 'no output'}"[:160]
    timed.note = f"exit {proc.returncode}"
    return timed, output


# --------------------------------------------------------------------------- the independent check


@dataclass(frozen=True)
class Needle:
    """One planted PHI value (lower case) and its kind; dates must not follow a digit or a dot."""

    kind: str
    value: bytes
    date: bool = False


def make_needles() -> list[Needle]:
    """Every planted PHI value: names, IDs, dates, institution, station, device, original UIDs."""
    needles = [Needle("original UID", (DATA_ROOT + ".").encode())]
    for p in PATIENT_LIST:
        needles += [Needle("patient name", v.encode()) for v in (p.name, p.family, p.given)]
        needles += [Needle("patient ID", p.id.encode()), Needle("other patient ID", p.other_id.encode())]
        needles += [Needle("birth date", p.birth_date.encode(), True)]
        needles += [Needle("accession number", a.encode()) for a in p.accessions]
        needles += [Needle("study date", d.encode(), True) for d in p.study_dates]
    for name in (REFERRING, PERFORMING, OPERATOR):
        needles += [Needle("physician/operator name", v.encode()) for v in (name, name.split("^")[0])]
    needles += [
        Needle("institution name", INSTITUTION.encode()), Needle("institution address", ADDRESS.encode()),
        Needle("station name", STATION.encode()), Needle("device serial number", SERIAL.encode()),
    ]
    return [Needle(n.kind, n.value.lower(), n.date) for n in dict.fromkeys(needles)]


NEEDLES = make_needles()
_NOT_BEFORE_DATE = frozenset(b"0123456789.")


def found(data: bytes, needle: Needle) -> bool:
    """Whether the (lower-cased) data hold the needle; a date inside a longer number does not count."""
    at = data.find(needle.value)
    while at >= 0:
        if not needle.date or at == 0 or data[at - 1] not in _NOT_BEFORE_DATE:
            return True
        at = data.find(needle.value, at + 1)
    return False


@dataclass
class Scanned:
    """One output file: the needles found, where, its SOPInstanceUID and references."""

    path: str
    hits: list[int]
    places: dict[str, set[int]]  # attribute path (or 'not DICOM', 'elsewhere') -> needles
    sop: str | None  # None: not a DICOM file; "": unreadable
    refs: list[str] | None


def places_in(ds: Dataset, hits: list[int], prefix: str = "") -> dict[str, set[int]]:
    """The attributes (keyword, or tag for private ones; '>' into sequences) holding the needles."""
    places: dict[str, set[int]] = {}
    for element in ds:
        name = prefix + (element.keyword or f"({element.tag.group:04X},{element.tag.element:04X})")
        if element.VR == "SQ":
            for item in element.value or ():
                for place, found_here in places_in(item, hits, name + ">").items():
                    places.setdefault(place, set()).update(found_here)
            continue
        value = str(element.value).lower().encode()
        found_here = {i for i in hits if found(value, NEEDLES[i])}
        if found_here:
            places.setdefault(name, set()).update(found_here)
    return places


def scan_file(path: str) -> Scanned:
    """Search one output file's bytes for every needle; read its UIDs if it is DICOM."""
    data = Path(path).read_bytes()
    low = data.lower()
    scanned = Scanned(path, [i for i, needle in enumerate(NEEDLES) if found(low, needle)], {}, None, None)
    if data[128:132] == b"DICM":
        try:
            ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
            scanned.sop = str(ds.get("SOPInstanceUID", ""))
            items = ds.get("ReferencedImageSequence", [])
            scanned.refs = [str(item.get("ReferencedSOPInstanceUID", "")) for item in items]
            if scanned.hits:
                scanned.places = places_in(ds.file_meta, scanned.hits, "meta ") | places_in(ds, scanned.hits)
        except Exception:  # noqa: BLE001 - an unreadable output is counted, not fatal
            scanned.sop = ""
    elif scanned.hits:
        scanned.places = {"not DICOM": set(scanned.hits)}
    rest = set(scanned.hits) - set().union(*scanned.places.values())
    if rest:
        scanned.places["elsewhere in the bytes"] = rest
    return scanned


@dataclass
class Check:
    """What the independent check found in one output folder."""

    dicom: int = 0
    other: int = 0
    unreadable: int = 0
    leaks: dict[str, set[str]] = field(default_factory=dict)  # kind -> files it was found in
    places: dict[str, set[str]] = field(default_factory=dict)  # attribute -> kinds found in it
    values: set[int] = field(default_factory=set)  # indices of the needles found
    references: int = 0
    broken: int = 0
    removed: int = 0

    def leak_text(self) -> str:
        """'0' or 'N values in M files: kind (files), ...' (never a value itself)."""
        if not self.values:
            return "0"
        files = len(set().union(*self.leaks.values()))
        by_files = sorted(self.leaks.items(), key=lambda kv: -len(kv[1]))
        kinds = ", ".join(f"{kind} ({len(paths):,})" for kind, paths in by_files)
        return f"{len(self.values)} values in {files:,} files: {kinds}"

    def reference_text(self) -> str:
        """'N of M' (removed ones counted as broken)."""
        text = f"{self.broken:,} of {self.references:,}"
        return text + (f" ({self.removed:,} removed)" if self.removed else "")


def check_output(out: Path) -> Check:
    """Byte-search every file and file name for PHI; resolve ReferencedImageSequence in the output."""
    paths = sorted(str(p) for p in out.rglob("*") if p.is_file())
    check = Check()
    sops: set[str] = set()
    refs_by_file: list[list[str] | None] = []
    with multiprocessing.get_context("fork").Pool(os.cpu_count()) as pool:
        for scanned in pool.imap_unordered(scan_file, paths, chunksize=16):
            path, hits = scanned.path, scanned.hits
            name = Path(path).relative_to(out).as_posix().lower().encode()
            named = [i for i, needle in enumerate(NEEDLES) if found(name, needle)]
            if named:
                scanned.places["file name"] = set(named)
            for i in hits + named:
                check.values.add(i)
                check.leaks.setdefault(NEEDLES[i].kind, set()).add(path)
            for place, needles in scanned.places.items():
                check.places.setdefault(place, set()).update(NEEDLES[i].kind for i in needles)
            if scanned.sop is None:
                check.other += 1
                continue
            check.dicom += 1
            if not scanned.sop:
                check.unreadable += 1
            sops.add(scanned.sop)
            refs_by_file.append(scanned.refs)
    for refs in refs_by_file:
        check.references += 1  # every input file holds one reference
        if not refs or not any(refs):
            check.removed += 1
        elif not all(r in sops for r in refs):
            check.broken += 1
    check.broken += check.removed
    return check


def same_output(a: Path, b: Path) -> str:
    """Whether two export folders hold the same file names with the same bytes."""
    names_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    names_b = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    if names_a != names_b:
        return f"differ: {len(names_a):,} vs {len(names_b):,} files, {len(set(names_a) ^ set(names_b))} names"
    differing = sum(not filecmp.cmp(a / n, b / n, shallow=False) for n in names_a)
    return f"identical ({len(names_a):,} files)" if not differing else f"differ: {differing} files"


# --------------------------------------------------------------------------- report


@dataclass
class LeakReport(Report):
    """The results table, with notes and where each contender leaked (never the values)."""

    places: dict[str, dict[str, set[str]]] = field(default_factory=dict)  # contender -> attribute -> kinds
    notes: list[str] = field(default_factory=list)

    def print(self) -> None:
        super().print()
        if self.notes:
            print("\nnotes")
        for note in self.notes:
            print(f"  {note}")
        if any(self.places.values()):
            print("\nwhere the leaked values are (attribute: kinds; never the values)")
        for contender, places in self.places.items():
            if places:
                print(f"  {contender}")
            for place, kinds in sorted(places.items()):
                print(f"    {place}: {', '.join(sorted(kinds))}")


def rate(timed: Timed) -> str:
    """'1,234 files/s (5.60 s; 5.41-6.02), 1.9 CPUs'."""
    cpus = f", {timed.cpu / timed.seconds:.1f} CPUs" if timed.cpu and timed.seconds else ""
    return f"{timed.rate:,.0f} files/s ({timed.seconds:.2f} s{timed.spread}){cpus}"


def cpu_seconds() -> float:
    """CPU time (user + system) of this process and of its children that have ended."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def median(runs: list[Timed]) -> Timed:
    """The run with the median time (a failed run, if any), with the range of all runs."""
    failed = [t for t in runs if t.error]
    if failed:
        return failed[0]
    ordered = sorted(runs, key=lambda t: t.seconds)
    chosen = ordered[len(ordered) // 2]
    if len(runs) > 1:
        chosen.spread = f"; {ordered[0].seconds:.2f}-{ordered[-1].seconds:.2f}"
    return chosen


def add_contender(report: Report, timed: Timed, base: Timed, workbench: bool = False) -> None:
    """Speed, ratio, leaks and references of one contender; targets only for the workbench."""
    label = f"{timed.name} ({timed.files:,} files)"
    if timed.error:
        report.add(label, timed.error, "runs" if workbench else "", False if workbench else None)
        return
    report.add(label, rate(timed) + (f"; {timed.note}" if timed.note else ""))
    if timed is not base and base.rate and not base.error:
        ratio = timed.rate / base.rate
        target, ok = (f">= {TARGET_RATIO:g}x", ratio >= TARGET_RATIO) if workbench else ("", None)
        report.add("  ratio to the pydicom loop", f"{ratio:.2f}x", target, ok)
    if timed.out is None:
        return
    print(f"checking {timed.out.name}")
    check = check_output(timed.out)
    report.places[timed.name] = check.places
    files = f"{check.dicom:,} DICOM of {timed.files:,}" + (f", {check.other} other" if check.other else "")
    if check.unreadable:
        files += f", {check.unreadable} unreadable"
    complete = check.dicom == timed.files and not check.unreadable
    report.add("  files in the output", files, "all" if workbench else "", complete if workbench else None)
    report.add("  leaked PHI values", check.leak_text(), "0" if workbench else "",
               not check.values if workbench else None)
    report.add("  broken references", check.reference_text(), "0" if workbench else "",
               check.broken == 0 if workbench else None)


def main() -> int:
    """Parse arguments, build or reuse the corpus, run the contenders, check and report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=2000, metavar="N", help="CT files (default: 2000)")
    parser.add_argument("--workdir", type=Path, help="reuse/keep the corpus here (default: temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary work directory")
    parser.add_argument("--subset", type=int, default=300, metavar="K",
                        help="the pydicom loop and dicognito run on whole series, at least K files (300)")
    parser.add_argument("--repeat", type=int, default=3, metavar="R",
                        help="timed rounds of every contender, the median is reported (3)")
    args = parser.parse_args()
    if args.files < PATIENTS * STUDIES * SERIES or min(args.subset, args.repeat) < 1:
        parser.error(f"--files must be >= {PATIENTS * STUDIES * SERIES}, --subset and --repeat >= 1")

    with work_directory(args.workdir, "wb-anon-bench-", keep=args.keep) as workdir:
        print(machine())
        print(
            f"python {platform.python_version()}, pydicom {pydicom.__version__}, numpy {np.__version__}, "
            f"workbench {version('workbench')}, dicognito {version('dicognito')}, "
            f"dcmanon {version('dcmanon')}"
        )
        print(f"workdir: {workdir}")
        report = bench(workdir, args.files, args.subset, args.repeat)
    report.print()
    print(f"\noverall: {'FAIL' if report.failed else 'PASS'}")
    return 1 if report.failed else 0


def bench(workdir: Path, files: int, subset: int, repeat: int) -> Report:
    """Generate and crawl the corpus, run every contender, check every output."""
    import workbench
    from workbench.deid import load_key

    jobs = ensure_corpus(workdir, files)
    src = workdir / "ct"
    paths = job_paths(jobs)
    size = sum(len(p.read_bytes()) for p in paths)  # also the warm-up: the page cache holds the corpus
    index = workbench.crawl(src, index=workdir / "index", quiet=True)
    key_file = workdir / "key"
    if not key_file.exists():  # a fixed key, so a rerun gives the same pseudonyms
        key_file.write_bytes(hashlib.sha256(f"workbench benchmark {SEED}".encode()).digest())
    key = load_key(key_file)
    some = job_paths(pick_subset(jobs, subset))
    layout = f"{PATIENTS} patients x {STUDIES} studies x {SERIES} series"
    report = LeakReport(f"anonymize: {files:,} CT files 512x512, {size / 1e9:.2f} GB, {layout}, PHI planted")

    print("leak check on the input itself")
    planted = check_output(src)
    in_files = len(set().union(*planted.leaks.values())) if planted.leaks else 0
    report.add(
        "leak check run on the input (sensitivity)",
        f"{len(planted.values)} of {len(NEEDLES)} planted values, in {in_files:,} of {files:,} files",
        "all", len(planted.values) == len(NEEDLES) and in_files == files,
    )
    rounds: dict[str, list[Timed]] = {}
    cli_out = workdir / "out-wb-cli"
    cli_args = ["anonymize", str(workdir / "index"), "--out", str(cli_out), "--key-file", str(key_file),
                "--no-verify", "--quiet"]
    for r in range(repeat):  # rounds interleave the contenders, so a slow spell of the machine hits all
        print(f"round {r + 1} of {repeat}: pydicom loop, workbench export() and command, dicognito, dcmanon")
        base_out = workdir / "out-pydicom"
        timed = [run_contender("pydicom loop, serial", pydicom_one_factory, some, src, base_out)]
        timed.append(run_workbench_api(index, workdir / "out-wb", key, files))
        fresh(cli_out)
        timed.append(run_command("workbench anonymize: whole command", cli_args, files, None)[0])
        for name, factory, chosen in (("dicognito", dicognito_one_factory, some),
                                      ("dcmanon", dcmanon_one_factory, paths)):
            timed.append(run_contender(f"{name}, serial", factory, chosen, src, workdir / f"out-{name}"))
        for t in timed:
            rounds.setdefault(t.name, []).append(t)
    base, api, cli, cognito, anon = (median(runs) for runs in rounds.values())
    print("workbench anonymize --verify")
    os.sync()
    verify, output = run_command("workbench anonymize --verify", [
        "anonymize", "--verify", str(workdir / "out-wb"), "--index", str(workdir / "index")], files, None)
    print("workbench anonymize as a user runs it (verification at the end)")
    fresh(workdir / "out-wb-default")
    default_args = [a if a != str(cli_out) else str(workdir / "out-wb-default") for a in cli_args
                    if a != "--no-verify"]
    default, _ = run_command("workbench anonymize, default (export + verify)", default_args, files, None)

    add_contender(report, base, base)
    add_contender(report, api, base, workbench=True)
    if anon.rate and api.rate:
        report.add("  ratio to dcmanon (the issue's goal: >= 1x)", f"{api.rate / anon.rate:.2f}x")
    same = ""
    if not cli.error and api.out:
        same = same_output(api.out, cli_out)
        cli.out = None if same.startswith("identical") else cli_out  # checked only when it differs
    add_contender(report, cli, base, workbench=True)
    if same:
        report.add("  its output vs export()'s (same key)", same, "identical", same.startswith("identical"))
    if verify.error:
        report.add("workbench anonymize --verify (not timed)", verify.error)
    else:
        counted = re.search(r"(\d+) identifying value", output)  # the count only: findings name PHI
        findings = f"{counted.group(1)} findings" if counted else "no finding"
        report.add(f"{verify.name} ({files:,} files)", f"{rate(verify)}; {verify.note}, {findings}")
    if default.error:
        report.add("workbench anonymize, default (not timed)", default.error)
    else:
        verdict = " (verified, no finding)" if default.note == "exit 0" else " (findings, or files failed)"
        report.add(f"{default.name} ({files:,} files)", f"{rate(default)}; {default.note}{verdict}")
        if base.rate:
            ratio = f"{default.rate / base.rate:.2f}x"
            report.add("  ratio to the pydicom loop (which verifies nothing)", ratio)
    add_contender(report, cognito, base)
    add_contender(report, anon, base)
    report.notes += tool_notes()
    return report


def tool_notes() -> list[str]:
    """How the published tools were run, when their command line could not be used."""
    notes = []
    if shutil.which("dcmanon") is None:
        notes.append("dcmanon: no `dcmanon` command on PATH (the PyPI package is a Python module; the CLI "
                     "is the Rust crate), so its Python API Anonymizer().anonymize(path) runs in a loop")
    if shutil.which("dicognito"):
        probe = subprocess.run(["dicognito", "--version"], capture_output=True, text=True)
        if probe.returncode:
            last = (probe.stderr.strip().splitlines() or ["no output"])[-1]
            notes.append(f"dicognito: its console script fails ({last[:70]}); its Python API is used")
    return notes


if __name__ == "__main__":
    sys.exit(main())
