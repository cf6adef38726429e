"""A patient with PHI planted everywhere a hospital puts it: the data the anonymizer tests export."""

from __future__ import annotations

import io
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"

PATIENT_NAME = "HOSPITALSON^WILHELMINA^Q"
PATIENT_ID = "MRN-4711-0815"
OTHER_ID = "OTHERID-99887"
BIRTH_DATE = "19580317"
ACCESSION = "ACC-20240312-77"
REFERRING = "DOCTORSON^FRIEDRICH"
OPERATOR = "TECHNICIA^BERNADETTE"
INSTITUTION = "SANKT-GEORGSSPITAL NORD"
ADDRESS = "MUSTERSTRASSE 12, 99999 ENTENHAUSEN"
STATION = "CTROOM-ALPHA-07"
SERIAL = "SN-55443322"
STUDY_DATES = ("20240312", "20240519")
PRIVATE_CREATOR = "ACME HOSPITAL 1.0"


@dataclass
class PlantedPatient:
    """The planted files and the PHI strings that must not survive."""

    folder: Path
    ct_files: list[Path] = field(default_factory=list)
    sr_file: Path | None = None
    phi: list[str] = field(default_factory=list)


def _plant(ds: Dataset, study_date: str, study_uid: str) -> None:
    ds.PatientName = PATIENT_NAME
    ds.PatientID = PATIENT_ID
    ds.PatientBirthDate = BIRTH_DATE
    ds.PatientSex = "F"
    ds.PatientAge = "066Y"
    ds.PatientWeight = "61.5"
    ds.AccessionNumber = ACCESSION
    ds.ReferringPhysicianName = REFERRING
    ds.OperatorsName = OPERATOR
    ds.PerformingPhysicianName = REFERRING
    ds.InstitutionName = INSTITUTION
    ds.InstitutionAddress = ADDRESS
    ds.StationName = STATION
    ds.DeviceSerialNumber = SERIAL
    ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = study_date
    ds.StudyInstanceUID = study_uid
    ds.StudyDescription = f"CT abdomen for {PATIENT_NAME.split('^')[0]}"
    ds.ImageComments = f"Patient Wilhelmina Hospitalson ({PATIENT_ID}) tolerated contrast well"
    other = Dataset()
    other.PatientID = OTHER_ID
    other.IssuerOfPatientID = INSTITUTION
    ds.OtherPatientIDsSequence = [other]
    # Nested three deep: request attributes > scheduled protocol code > a name in a private-ish place.
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = "X1", "99LOCAL", f"Protocol {OPERATOR}"
    request = Dataset()
    request.RequestedProcedureID = ACCESSION
    request.ScheduledProcedureStepID = PATIENT_ID
    request.ScheduledProtocolCodeSequence = [code]
    ds.RequestAttributesSequence = [request]
    # Private tags and a private sequence, as vendors write them.
    block = ds.private_block(0x0029, PRIVATE_CREATOR, create=True)
    block.add_new(0x10, "LO", PATIENT_NAME)
    inner = Dataset()
    inner.add_new(0x00100010, "PN", PATIENT_NAME)
    block.add_new(0x11, "SQ", Sequence([inner]))


def make_planted_patient(folder: Path) -> PlantedPatient:
    """Two CT studies of one patient and an SR that references the first, full of PHI."""
    folder.mkdir(parents=True)
    planted = PlantedPatient(folder)
    sources = sorted((SAMPLE / "WB-0001").rglob("2_Abdomen_5.0_B30f/*.dcm"))[:6]
    frame_of_reference = generate_uid()
    first_study = None
    for number, (study_date, study_uid) in enumerate(zip(STUDY_DATES, (generate_uid(), generate_uid()))):
        series_uid = generate_uid()
        for source in sources:
            ds = pydicom.dcmread(source)
            _plant(ds, study_date, study_uid)
            ds.SeriesInstanceUID = series_uid
            ds.FrameOfReferenceUID = frame_of_reference
            ds.SOPInstanceUID = generate_uid()
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            # File names carry PHI too, as some exports do.
            path = folder / f"{PATIENT_ID}_{study_date}_{ds.InstanceNumber:03d}.dcm"
            ds.save_as(path)
            planted.ct_files.append(path)
            if number == 0:
                first_study = first_study or (study_uid, series_uid, [])
                first_study[2].append((ds.SOPClassUID, ds.SOPInstanceUID))
    planted.sr_file = _make_sr(folder, first_study)
    planted.phi = [
        PATIENT_NAME, "HOSPITALSON", "WILHELMINA", PATIENT_ID, OTHER_ID, BIRTH_DATE, ACCESSION, REFERRING,
        "DOCTORSON", OPERATOR, "TECHNICIA", INSTITUTION, ADDRESS, STATION, SERIAL, *STUDY_DATES,
    ]
    return planted


def _make_sr(folder: Path, study: tuple) -> Path:
    """A Comprehensive SR with a text finding naming the patient, an observer, and image references."""
    study_uid, series_uid, images = study
    ct = pydicom.dcmread(next(folder.glob("*.dcm")))
    ds = Dataset()
    ds.file_meta = pydicom.dataset.FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.88.33"
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.Modality = "SR"
    for keyword in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "AccessionNumber",
                    "ReferringPhysicianName", "StudyDate", "StudyTime", "InstitutionName", "StudyID"):
        if keyword in ct:
            setattr(ds, keyword, ct.data_element(keyword).value)
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = generate_uid()
    ds.SeriesNumber, ds.InstanceNumber = 99, 1
    ds.ContentDate, ds.ContentTime = STUDY_DATES[0], "101500"
    ds.Manufacturer = "workbench tests"
    ds.CompletionFlag, ds.VerificationFlag, ds.ValueType = "COMPLETE", "UNVERIFIED", "CONTAINER"
    concept = Dataset()
    concept.CodeValue, concept.CodingSchemeDesignator = "126000", "DCM"
    concept.CodeMeaning = "Imaging Measurement Report"
    ds.ConceptNameCodeSequence = [concept]
    ds.ContinuityOfContent = "SEPARATE"
    text = Dataset()
    text.RelationshipType, text.ValueType = "CONTAINS", "TEXT"
    text_concept = Dataset()
    text_concept.CodeValue, text_concept.CodingSchemeDesignator = "121071", "DCM"
    text_concept.CodeMeaning = "Finding"
    text.ConceptNameCodeSequence = [text_concept]
    text.TextValue = f"Findings for Wilhelmina Hospitalson, MRN {PATIENT_ID}: no lesion."
    observer = Dataset()
    observer.RelationshipType, observer.ValueType = "HAS OBS CONTEXT", "PNAME"
    observer_concept = Dataset()
    observer_concept.CodeValue, observer_concept.CodingSchemeDesignator = "121008", "DCM"
    observer_concept.CodeMeaning = "Person Observer Name"
    observer.ConceptNameCodeSequence = [observer_concept]
    observer.PersonName = REFERRING
    image = Dataset()
    image.RelationshipType, image.ValueType = "CONTAINS", "IMAGE"
    reference = Dataset()
    reference.ReferencedSOPClassUID, reference.ReferencedSOPInstanceUID = images[0]
    image.ReferencedSOPSequence = [reference]
    ds.ContentSequence = [observer, text, image]
    evidence = Dataset()
    evidence.StudyInstanceUID = study_uid
    series = Dataset()
    series.SeriesInstanceUID = series_uid
    series.ReferencedSOPSequence = []
    for sop_class, sop_instance in images:
        item = Dataset()
        item.ReferencedSOPClassUID, item.ReferencedSOPInstanceUID = sop_class, sop_instance
        series.ReferencedSOPSequence.append(item)
    evidence.ReferencedSeriesSequence = [series]
    ds.CurrentRequestedProcedureEvidenceSequence = [evidence]
    path = folder / f"{PATIENT_ID}_report.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path


def copy_sample(folder: Path) -> Path:
    """A copy of the bundled sample data."""
    shutil.copytree(SAMPLE, folder)
    return folder


def sample_with_burned_in_cr(folder: Path) -> Path:
    """A copy of the sample data whose CR image says BurnedInAnnotation YES; returns that file."""
    cr = next(copy_sample(folder).rglob("CR*"))
    ds = pydicom.dcmread(cr, force=True)
    ds.BurnedInAnnotation = "YES"
    ds.save_as(cr)
    return cr


def part10(ds: Dataset) -> bytes:
    """``ds`` as a Part 10 file in Explicit VR Little Endian, its file meta made from its SOP UIDs."""
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()
