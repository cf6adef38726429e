"""The columns of the ``instances`` table, defined once.

Each DICOM column is named by its keyword (PS3.6 Section 6) and has a type, the
information-model level it belongs to (patient, study, series, instance) and a
one-line meaning. The crawler, the Parquet schema and the README's column
reference are all made from :data:`INSTANCE_COLUMNS`, so they cannot drift.
``python scripts/readme_columns.py`` writes the reference into README.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import pyarrow as pa
from pydicom.datadict import dictionary_VR, keyword_dict, tag_for_keyword

#: Arrow type for each column kind.
ARROW_TYPES: dict[str, pa.DataType] = {
    "str": pa.string(),
    "int": pa.int64(),
    "float": pa.float64(),
    "float_list": pa.list_(pa.float64()),
    "date": pa.date32(),
    "time": pa.time64("us"),
    "datetime": pa.timestamp("us"),
    "bool": pa.bool_(),
}


@dataclass(frozen=True)
class Column:
    """One column of the index.

    Attributes
    ----------
    name : str
        DICOM keyword, or a snake_case name for columns that are not DICOM attributes.
    kind : str
        One of the keys of :data:`ARROW_TYPES`.
    level : str
        ``patient``, ``study``, ``series``, ``instance`` or ``file``.
    meaning : str
        One line saying what the column holds.
    """

    name: str
    kind: str
    level: str
    meaning: str

    @property
    def tag(self) -> int | None:
        """The DICOM tag of a keyword column, None for file columns."""
        return tag_for_keyword(self.name)

    @property
    def arrow_type(self) -> pa.DataType:
        """The Arrow type the column is stored as."""
        return ARROW_TYPES[self.kind]


def _c(name: str, kind: str, level: str, meaning: str) -> Column:
    return Column(name, kind, level, meaning)


#: Columns that describe the file rather than the data set.
FILE_COLUMNS: tuple[Column, ...] = (
    _c("path", "str", "file", "Absolute path of the file; for a zip member, the path of the archive"),
    _c("member", "str", "file", "Name of the member inside a zip archive; null for a plain file"),
    _c("source", "str", "file", "The crawl source (folder or archive) the file was found under"),
    _c("file_size", "int", "file", "Size in bytes (of the member, for a zip member)"),
    _c("mtime_ns", "int", "file", "Modification time in ns since the epoch (of the archive, for a member)"),
    _c("part10", "bool", "file", "Whether the file has the PS3.10 preamble and 'DICM' prefix"),
    _c("TransferSyntaxUID", "str", "file", "Transfer syntax of the data set (from the file meta)"),
    _c("sop_class_name", "str", "instance", "Readable name of the SOP Class UID, e.g. 'CT Image Storage'"),
)

#: DICOM attributes indexed for every instance.
DICOM_COLUMNS: tuple[Column, ...] = (
    # Patient
    _c("PatientName", "str", "patient", "Patient's name, as stored (components separated by ^)"),
    _c("PatientID", "str", "patient", "Primary identifier of the patient"),
    _c("IssuerOfPatientID", "str", "patient", "Authority that issued the Patient ID"),
    _c("PatientBirthDate", "date", "patient", "Birth date"),
    _c("PatientSex", "str", "patient", "M, F or O"),
    _c("PatientAge", "str", "study", "Age at the study, as stored (e.g. 045Y)"),
    _c("PatientSize", "float", "study", "Height in m"),
    _c("PatientWeight", "float", "study", "Weight in kg"),
    # Study
    _c("StudyInstanceUID", "str", "study", "Unique identifier of the study"),
    _c("StudyDate", "date", "study", "Date the study started"),
    _c("StudyTime", "time", "study", "Time the study started"),
    _c("StudyDescription", "str", "study", "Institution-generated description of the study"),
    _c("AccessionNumber", "str", "study", "RIS order number of the study"),
    _c("StudyID", "str", "study", "Equipment-generated study identifier"),
    _c("ReferringPhysicianName", "str", "study", "Referring physician"),
    # Series
    _c("SeriesInstanceUID", "str", "series", "Unique identifier of the series"),
    _c("SeriesNumber", "int", "series", "Number of the series in the study"),
    _c("SeriesDate", "date", "series", "Date the series started"),
    _c("SeriesTime", "time", "series", "Time the series started"),
    _c("SeriesDescription", "str", "series", "Description of the series"),
    _c("Modality", "str", "series", "Type of equipment: CT, MR, CR, DX, MG, US, PT, NM, SR, ..."),
    _c("BodyPartExamined", "str", "series", "Body part, e.g. CHEST, ABDOMEN, HEAD"),
    _c("ProtocolName", "str", "series", "Acquisition protocol"),
    _c("PatientPosition", "str", "series", "Patient position on the equipment, e.g. HFS, FFS"),
    _c("Laterality", "str", "series", "Side of a paired body part: R or L"),
    _c("FrameOfReferenceUID", "str", "series", "Frame of reference shared by spatially related series"),
    _c("OperatorsName", "str", "series", "Technologist(s) operating the equipment"),
    # Equipment
    _c("Manufacturer", "str", "series", "Equipment manufacturer"),
    _c("ManufacturerModelName", "str", "series", "Equipment model"),
    _c("StationName", "str", "series", "Name of the equipment (station)"),
    _c("DeviceSerialNumber", "str", "series", "Serial number of the equipment"),
    _c("SoftwareVersions", "str", "series", "Software versions (multiple values joined by \\)"),
    _c("InstitutionName", "str", "series", "Institution where the equipment is"),
    _c("InstitutionalDepartmentName", "str", "series", "Department where the equipment is"),
    # SOP common and general image
    _c("SOPInstanceUID", "str", "instance", "Unique identifier of the instance"),
    _c("SOPClassUID", "str", "instance", "Kind of object (IOD), e.g. 1.2.840.10008.5.1.4.1.1.2 for CT"),
    _c("SpecificCharacterSet", "str", "instance", "Character set(s) of the text values"),
    _c("InstanceNumber", "int", "instance", "Number of the instance in the series"),
    _c("ImageType", "str", "instance", "Image type values joined by \\, e.g. ORIGINAL\\PRIMARY\\AXIAL"),
    _c("AcquisitionNumber", "int", "instance", "Number of the acquisition"),
    _c("AcquisitionDate", "date", "instance", "Date the acquisition started"),
    _c("AcquisitionTime", "time", "instance", "Time the acquisition started"),
    _c("AcquisitionDateTime", "datetime", "instance", "Date and time the acquisition started"),
    _c("ContentDate", "date", "instance", "Date the content (image) was created"),
    _c("ContentTime", "time", "instance", "Time the content (image) was created"),
    _c("BurnedInAnnotation", "str", "instance", "YES when identifying text is burned into the pixels"),
    _c("LossyImageCompression", "str", "instance", "01 when the image has undergone lossy compression"),
    # Image plane
    _c("ImagePositionPatient", "float_list", "instance", "x, y, z of the first voxel's centre in mm (LPS)"),
    _c("ImageOrientationPatient", "float_list", "instance", "Direction cosines of the first row and column"),
    _c("PixelSpacing", "float_list", "instance", "Row spacing, column spacing in mm"),
    _c("SliceThickness", "float", "instance", "Nominal slice thickness in mm"),
    _c("SpacingBetweenSlices", "float", "instance", "Spacing between slices in mm, as stated"),
    _c("SliceLocation", "float", "instance", "Relative position of the image plane in mm"),
    # Image pixel
    _c("Rows", "int", "instance", "Number of rows"),
    _c("Columns", "int", "instance", "Number of columns"),
    _c("NumberOfFrames", "int", "instance", "Number of frames of a multi-frame image"),
    _c("SamplesPerPixel", "int", "instance", "1 for grayscale, 3 for colour"),
    _c("PhotometricInterpretation", "str", "instance", "MONOCHROME1, MONOCHROME2, RGB, YBR_FULL, ..."),
    _c("BitsAllocated", "int", "instance", "Bits allocated per sample"),
    _c("BitsStored", "int", "instance", "Bits stored per sample"),
    _c("PixelRepresentation", "int", "instance", "0 unsigned, 1 signed"),
    _c("RescaleIntercept", "float", "instance", "b in output = m * stored + b"),
    _c("RescaleSlope", "float", "instance", "m in output = m * stored + b"),
    _c("RescaleType", "str", "instance", "Units after rescale, e.g. HU"),
    _c("WindowCenter", "float_list", "instance", "Window centre(s) suggested for display"),
    _c("WindowWidth", "float_list", "instance", "Window width(s) suggested for display"),
    # CT acquisition and dose
    _c("KVP", "float", "instance", "Peak kilovoltage of the X-ray generator (kV)"),
    _c("XRayTubeCurrent", "float", "instance", "X-ray tube current (mA)"),
    _c("ExposureTime", "float", "instance", "Exposure time (ms)"),
    _c("Exposure", "float", "instance", "Exposure (mAs)"),
    _c("CTDIvol", "float", "instance", "Volume CT dose index (mGy)"),
    _c("ConvolutionKernel", "str", "instance", "Reconstruction kernel"),
    _c("SpiralPitchFactor", "float", "instance", "Table feed per rotation / total collimation width"),
    _c("RevolutionTime", "float", "instance", "Time of one gantry revolution (s)"),
    _c("SingleCollimationWidth", "float", "instance", "Width of a single detector row (mm)"),
    _c("TotalCollimationWidth", "float", "instance", "Total collimation width (mm)"),
    _c("GantryDetectorTilt", "float", "instance", "Gantry or detector tilt (degrees)"),
    _c("TableHeight", "float", "instance", "Table height (mm)"),
    _c("DataCollectionDiameter", "float", "instance", "Diameter of the data collection region (mm)"),
    _c("ReconstructionDiameter", "float", "instance", "Diameter of the reconstruction region (mm)"),
    _c("FilterType", "str", "instance", "X-ray filter type"),
    _c("ExposureModulationType", "str", "instance", "Tube current modulation, e.g. XYZ_EC"),
    # Projection X-ray dose
    _c("ImageAndFluoroscopyAreaDoseProduct", "float", "instance", "Dose area product (dGy.cm2)"),
    _c("EntranceDoseInmGy", "float", "instance", "Entrance dose (mGy)"),
    _c("DistanceSourceToDetector", "float", "instance", "Source to detector distance (mm)"),
    # MR acquisition
    _c("MagneticFieldStrength", "float", "instance", "Nominal field strength (T)"),
    _c("MRAcquisitionType", "str", "instance", "2D or 3D"),
    _c("ScanningSequence", "str", "instance", "Sequence type(s), e.g. SE, GR, IR, EP"),
    _c("SequenceVariant", "str", "instance", "Sequence variant(s), e.g. SK, SP, MP"),
    _c("SequenceName", "str", "instance", "User-defined sequence name"),
    _c("RepetitionTime", "float", "instance", "Repetition time (ms)"),
    _c("EchoTime", "float", "instance", "Echo time (ms)"),
    _c("InversionTime", "float", "instance", "Inversion time (ms)"),
    _c("FlipAngle", "float", "instance", "Flip angle (degrees)"),
    _c("EchoNumbers", "int", "instance", "Echo number of the image"),
    _c("EchoTrainLength", "int", "instance", "Number of echoes in the echo train"),
    _c("ImagingFrequency", "float", "instance", "Imaging frequency (MHz)"),
    _c("TemporalPositionIdentifier", "int", "instance", "Temporal position (time point) of the image"),
    _c("DiffusionBValue", "float", "instance", "Diffusion b-value (s/mm2)"),
)

#: Every column of the ``instances`` table, in order.
INSTANCE_COLUMNS: tuple[Column, ...] = FILE_COLUMNS + DICOM_COLUMNS
#: Name of the column that holds the whole header as DICOM JSON (``--full-header``).
FULL_HEADER_COLUMN = Column("header_json", "str", "instance", "The whole header as DICOM JSON (PS3.18 F.2)")

_VR_KINDS = {
    "DA": "date", "TM": "time", "DT": "datetime", "DS": "float", "FL": "float", "FD": "float",
    "IS": "int", "US": "int", "UL": "int", "SS": "int", "SL": "int", "SV": "int", "UV": "int",
}


def column_for_keyword(keyword: str) -> Column:
    """The column for a DICOM keyword given with ``--tags``.

    Parameters
    ----------
    keyword : str
        A DICOM keyword of PS3.6, e.g. ``"ContrastBolusAgent"``.

    Returns
    -------
    Column
        The predefined column when there is one, else a column typed from the keyword's VR.

    Raises
    ------
    ValueError
        When ``keyword`` is not a DICOM keyword, or names a sequence.
    """
    for column in DICOM_COLUMNS:
        if column.name == keyword:
            return column
    if keyword not in keyword_dict:
        raise ValueError(f"'{keyword}' is not a DICOM keyword (PS3.6)")
    vr = dictionary_VR(keyword_dict[keyword])
    if vr == "SQ":
        raise ValueError(f"'{keyword}' is a sequence; only attributes with values can be columns")
    kind = _VR_KINDS.get(vr.split(" or ")[0], "str")
    return Column(keyword, kind, "instance", f"Added with --tags (VR {vr})")


@lru_cache(maxsize=64)
def instance_columns(tags: tuple[str, ...] = (), full_header: bool = False) -> tuple[Column, ...]:
    """The columns of an index crawled with extra ``tags`` and ``full_header``."""
    names = {c.name for c in INSTANCE_COLUMNS}
    extra = tuple(column_for_keyword(k) for k in dict.fromkeys(tags) if k not in names)
    return INSTANCE_COLUMNS + extra + ((FULL_HEADER_COLUMN,) if full_header else ())


def instance_schema(tags: tuple[str, ...] = (), full_header: bool = False) -> pa.Schema:
    """The Arrow schema of the ``instances`` table for these crawl options."""
    return pa.schema([pa.field(c.name, c.arrow_type) for c in instance_columns(tags, full_header)])


#: Columns of the ``errors`` table.
ERROR_COLUMNS: tuple[Column, ...] = (
    _c("path", "str", "file", "Path of the file (of the archive, for a zip member)"),
    _c("member", "str", "file", "Name of the member inside a zip archive; null for a plain file"),
    _c("source", "str", "file", "The crawl source the file was found under"),
    _c("file_size", "int", "file", "Size in bytes, when known"),
    _c("mtime_ns", "int", "file", "Modification time in ns, when known"),
    _c("error", "str", "file", "Short class: empty, not_dicom, truncated, bad_vr, bad_length, ..."),
    _c("message", "str", "file", "One sentence saying what is wrong"),
)

ERROR_SCHEMA = pa.schema([pa.field(c.name, c.arrow_type) for c in ERROR_COLUMNS])


def markdown_reference() -> str:
    """The column reference of the ``instances`` table as a Markdown table."""
    lines = ["| column | type | level | meaning |", "|---|---|---|---|"]
    for c in INSTANCE_COLUMNS + (FULL_HEADER_COLUMN,):
        meaning = c.meaning.replace("|", "\\|")
        lines.append(f"| `{c.name}` | {c.arrow_type} | {c.level} | {meaning} |")
    return "\n".join(lines) + "\n"


#: Markers around the generated column reference in README.md.
README_MARKERS = (
    "<!-- columns:start (generated by python scripts/readme_columns.py) -->",
    "<!-- columns:end -->",
)


def readme_with_reference(readme: str) -> str:
    """``readme`` with the text between :data:`README_MARKERS` replaced by :func:`markdown_reference`.

    Raises
    ------
    ValueError
        When the README lacks the markers.
    """
    start, end = README_MARKERS
    if start not in readme or end not in readme:
        raise ValueError(f"the README has no column reference markers {start!r} ... {end!r}")
    head, rest = readme.split(start, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{start}\n{markdown_reference()}{end}{tail}"
