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
    tag : int or None
        The attribute's tag (``group << 16 | element``); None for file columns.
    vr : str or None
        The attribute's value representation in PS3.6 (the first one where several are
        allowed), used to read implicit VR and UN values; None for file columns.
    """

    name: str
    kind: str
    level: str
    meaning: str
    tag: int | None = None
    vr: str | None = None

    @property
    def arrow_type(self) -> pa.DataType:
        """The Arrow type the column is stored as."""
        return ARROW_TYPES[self.kind]


def _c(name: str, kind: str, level: str, meaning: str) -> Column:
    return Column(name, kind, level, meaning)


def _d(name: str, tag: int, vr: str, kind: str, level: str, meaning: str) -> Column:
    # Tag and VR are written out (and checked against pydicom's dictionary by the tests) so the
    # crawler does not need to import pydicom to know them.
    return Column(name, kind, level, meaning, tag, vr)


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
    _d("PatientName", 0x00100010, "PN", "str", "patient", "Patient's name, as stored (components separated by ^)"),
    _d("PatientID", 0x00100020, "LO", "str", "patient", "Primary identifier of the patient"),
    _d("IssuerOfPatientID", 0x00100021, "LO", "str", "patient", "Authority that issued the Patient ID"),
    _d("PatientBirthDate", 0x00100030, "DA", "date", "patient", "Birth date"),
    _d("PatientSex", 0x00100040, "CS", "str", "patient", "M, F or O"),
    _d("PatientAge", 0x00101010, "AS", "str", "study", "Age at the study, as stored (e.g. 045Y)"),
    _d("PatientSize", 0x00101020, "DS", "float", "study", "Height in m"),
    _d("PatientWeight", 0x00101030, "DS", "float", "study", "Weight in kg"),
    # Study
    _d("StudyInstanceUID", 0x0020000D, "UI", "str", "study", "Unique identifier of the study"),
    _d("StudyDate", 0x00080020, "DA", "date", "study", "Date the study started"),
    _d("StudyTime", 0x00080030, "TM", "time", "study", "Time the study started"),
    _d("StudyDescription", 0x00081030, "LO", "str", "study", "Institution-generated description of the study"),
    _d("AccessionNumber", 0x00080050, "SH", "str", "study", "RIS order number of the study"),
    _d("StudyID", 0x00200010, "SH", "str", "study", "Equipment-generated study identifier"),
    _d("ReferringPhysicianName", 0x00080090, "PN", "str", "study", "Referring physician"),
    # Series
    _d("SeriesInstanceUID", 0x0020000E, "UI", "str", "series", "Unique identifier of the series"),
    _d("SeriesNumber", 0x00200011, "IS", "int", "series", "Number of the series in the study"),
    _d("SeriesDate", 0x00080021, "DA", "date", "series", "Date the series started"),
    _d("SeriesTime", 0x00080031, "TM", "time", "series", "Time the series started"),
    _d("SeriesDescription", 0x0008103E, "LO", "str", "series", "Description of the series"),
    _d("Modality", 0x00080060, "CS", "str", "series", "Type of equipment: CT, MR, CR, DX, MG, US, PT, NM, SR, ..."),
    _d("BodyPartExamined", 0x00180015, "CS", "str", "series", "Body part, e.g. CHEST, ABDOMEN, HEAD"),
    _d("ProtocolName", 0x00181030, "LO", "str", "series", "Acquisition protocol"),
    _d("PatientPosition", 0x00185100, "CS", "str", "series", "Patient position on the equipment, e.g. HFS, FFS"),
    _d("Laterality", 0x00200060, "CS", "str", "series", "Side of a paired body part: R or L"),
    _d("FrameOfReferenceUID", 0x00200052, "UI", "str", "series", "Frame of reference shared by spatially related series"),
    _d("OperatorsName", 0x00081070, "PN", "str", "series", "Technologist(s) operating the equipment"),
    # Equipment
    _d("Manufacturer", 0x00080070, "LO", "str", "series", "Equipment manufacturer"),
    _d("ManufacturerModelName", 0x00081090, "LO", "str", "series", "Equipment model"),
    _d("StationName", 0x00081010, "SH", "str", "series", "Name of the equipment (station)"),
    _d("DeviceSerialNumber", 0x00181000, "LO", "str", "series", "Serial number of the equipment"),
    _d("SoftwareVersions", 0x00181020, "LO", "str", "series", "Software versions (multiple values joined by \\)"),
    _d("InstitutionName", 0x00080080, "LO", "str", "series", "Institution where the equipment is"),
    _d("InstitutionalDepartmentName", 0x00081040, "LO", "str", "series", "Department where the equipment is"),
    # SOP common and general image
    _d("SOPInstanceUID", 0x00080018, "UI", "str", "instance", "Unique identifier of the instance"),
    _d("SOPClassUID", 0x00080016, "UI", "str", "instance", "Kind of object (IOD), e.g. 1.2.840.10008.5.1.4.1.1.2 for CT"),
    _d("SpecificCharacterSet", 0x00080005, "CS", "str", "instance", "Character set(s) of the text values"),
    _d("InstanceNumber", 0x00200013, "IS", "int", "instance", "Number of the instance in the series"),
    _d("ImageType", 0x00080008, "CS", "str", "instance", "Image type values joined by \\, e.g. ORIGINAL\\PRIMARY\\AXIAL"),
    _d("AcquisitionNumber", 0x00200012, "IS", "int", "instance", "Number of the acquisition"),
    _d("AcquisitionDate", 0x00080022, "DA", "date", "instance", "Date the acquisition started"),
    _d("AcquisitionTime", 0x00080032, "TM", "time", "instance", "Time the acquisition started"),
    _d("AcquisitionDateTime", 0x0008002A, "DT", "datetime", "instance", "Date and time the acquisition started"),
    _d("ContentDate", 0x00080023, "DA", "date", "instance", "Date the content (image) was created"),
    _d("ContentTime", 0x00080033, "TM", "time", "instance", "Time the content (image) was created"),
    _d("BurnedInAnnotation", 0x00280301, "CS", "str", "instance", "YES when identifying text is burned into the pixels"),
    _d("LossyImageCompression", 0x00282110, "CS", "str", "instance", "01 when the image has undergone lossy compression"),
    # Image plane
    _d("ImagePositionPatient", 0x00200032, "DS", "float_list", "instance", "x, y, z of the first voxel's centre in mm (LPS)"),
    _d("ImageOrientationPatient", 0x00200037, "DS", "float_list", "instance", "Direction cosines of the first row and column"),
    _d("PixelSpacing", 0x00280030, "DS", "float_list", "instance", "Row spacing, column spacing in mm"),
    _d("SliceThickness", 0x00180050, "DS", "float", "instance", "Nominal slice thickness in mm"),
    _d("SpacingBetweenSlices", 0x00180088, "DS", "float", "instance", "Spacing between slices in mm, as stated"),
    _d("SliceLocation", 0x00201041, "DS", "float", "instance", "Relative position of the image plane in mm"),
    # Image pixel
    _d("Rows", 0x00280010, "US", "int", "instance", "Number of rows"),
    _d("Columns", 0x00280011, "US", "int", "instance", "Number of columns"),
    _d("NumberOfFrames", 0x00280008, "IS", "int", "instance", "Number of frames of a multi-frame image"),
    _d("SamplesPerPixel", 0x00280002, "US", "int", "instance", "1 for grayscale, 3 for colour"),
    _d("PhotometricInterpretation", 0x00280004, "CS", "str", "instance", "MONOCHROME1, MONOCHROME2, RGB, YBR_FULL, ..."),
    _d("BitsAllocated", 0x00280100, "US", "int", "instance", "Bits allocated per sample"),
    _d("BitsStored", 0x00280101, "US", "int", "instance", "Bits stored per sample"),
    _d("PixelRepresentation", 0x00280103, "US", "int", "instance", "0 unsigned, 1 signed"),
    _d("RescaleIntercept", 0x00281052, "DS", "float", "instance", "b in output = m * stored + b"),
    _d("RescaleSlope", 0x00281053, "DS", "float", "instance", "m in output = m * stored + b"),
    _d("RescaleType", 0x00281054, "LO", "str", "instance", "Units after rescale, e.g. HU"),
    _d("WindowCenter", 0x00281050, "DS", "float_list", "instance", "Window centre(s) suggested for display"),
    _d("WindowWidth", 0x00281051, "DS", "float_list", "instance", "Window width(s) suggested for display"),
    # CT acquisition and dose
    _d("KVP", 0x00180060, "DS", "float", "instance", "Peak kilovoltage of the X-ray generator (kV)"),
    _d("XRayTubeCurrent", 0x00181151, "IS", "float", "instance", "X-ray tube current (mA)"),
    _d("ExposureTime", 0x00181150, "IS", "float", "instance", "Exposure time (ms)"),
    _d("Exposure", 0x00181152, "IS", "float", "instance", "Exposure (mAs)"),
    _d("CTDIvol", 0x00189345, "FD", "float", "instance", "Volume CT dose index (mGy)"),
    _d("ConvolutionKernel", 0x00181210, "SH", "str", "instance", "Reconstruction kernel"),
    _d("SpiralPitchFactor", 0x00189311, "FD", "float", "instance", "Table feed per rotation / total collimation width"),
    _d("RevolutionTime", 0x00189305, "FD", "float", "instance", "Time of one gantry revolution (s)"),
    _d("SingleCollimationWidth", 0x00189306, "FD", "float", "instance", "Width of a single detector row (mm)"),
    _d("TotalCollimationWidth", 0x00189307, "FD", "float", "instance", "Total collimation width (mm)"),
    _d("GantryDetectorTilt", 0x00181120, "DS", "float", "instance", "Gantry or detector tilt (degrees)"),
    _d("TableHeight", 0x00181130, "DS", "float", "instance", "Table height (mm)"),
    _d("DataCollectionDiameter", 0x00180090, "DS", "float", "instance", "Diameter of the data collection region (mm)"),
    _d("ReconstructionDiameter", 0x00181100, "DS", "float", "instance", "Diameter of the reconstruction region (mm)"),
    _d("FilterType", 0x00181160, "SH", "str", "instance", "X-ray filter type"),
    _d("ExposureModulationType", 0x00189323, "CS", "str", "instance", "Tube current modulation, e.g. XYZ_EC"),
    # Projection X-ray dose
    _d("ImageAndFluoroscopyAreaDoseProduct", 0x0018115E, "DS", "float", "instance", "Dose area product (dGy.cm2)"),
    _d("EntranceDoseInmGy", 0x00408302, "DS", "float", "instance", "Entrance dose (mGy)"),
    _d("DistanceSourceToDetector", 0x00181110, "DS", "float", "instance", "Source to detector distance (mm)"),
    # MR acquisition
    _d("MagneticFieldStrength", 0x00180087, "DS", "float", "instance", "Nominal field strength (T)"),
    _d("MRAcquisitionType", 0x00180023, "CS", "str", "instance", "2D or 3D"),
    _d("ScanningSequence", 0x00180020, "CS", "str", "instance", "Sequence type(s), e.g. SE, GR, IR, EP"),
    _d("SequenceVariant", 0x00180021, "CS", "str", "instance", "Sequence variant(s), e.g. SK, SP, MP"),
    _d("SequenceName", 0x00180024, "SH", "str", "instance", "User-defined sequence name"),
    _d("RepetitionTime", 0x00180080, "DS", "float", "instance", "Repetition time (ms)"),
    _d("EchoTime", 0x00180081, "DS", "float", "instance", "Echo time (ms)"),
    _d("InversionTime", 0x00180082, "DS", "float", "instance", "Inversion time (ms)"),
    _d("FlipAngle", 0x00181314, "DS", "float", "instance", "Flip angle (degrees)"),
    _d("EchoNumbers", 0x00180086, "IS", "int", "instance", "Echo number of the image"),
    _d("EchoTrainLength", 0x00180091, "IS", "int", "instance", "Number of echoes in the echo train"),
    _d("ImagingFrequency", 0x00180084, "DS", "float", "instance", "Imaging frequency (MHz)"),
    _d("TemporalPositionIdentifier", 0x00200100, "IS", "int", "instance", "Temporal position (time point) of the image"),
    _d("DiffusionBValue", 0x00189087, "FD", "float", "instance", "Diffusion b-value (s/mm2)"),
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
    from pydicom.datadict import dictionary_VR, keyword_dict

    if keyword not in keyword_dict:
        raise ValueError(f"'{keyword}' is not a DICOM keyword (PS3.6)")
    tag = keyword_dict[keyword]
    vr = dictionary_VR(tag).split(" or ")[0]
    if vr == "SQ":
        raise ValueError(f"'{keyword}' is a sequence; only attributes with values can be columns")
    return Column(keyword, _VR_KINDS.get(vr, "str"), "instance", f"Added with --tags (VR {vr})", tag, vr)


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

#: The ``queries`` table: one row per query a PACS crawl ran (``DIR/queries.parquet``).
QUERY_SCHEMA = pa.schema([
    ("crawl_started", pa.string()),  # when the crawl that ran the query started
    ("source", pa.string()),  # the PACS address
    ("level", pa.string()),  # STUDY, SERIES or IMAGE
    ("keys", pa.string()),  # the matching keys, e.g. "StudyDate=20240101-20240131"
    ("window", pa.string()),  # the date window of a study query
    ("results", pa.int64()),  # matches returned
    ("cap_hit", pa.bool_()),  # the PACS's limit was reached (or it said so)
    ("split", pa.bool_()),  # the window was split and asked again in halves
    ("status", pa.string()),  # ok or failed (after the retries)
    ("attempts", pa.int64()),
    ("seconds", pa.float64()),
    ("message", pa.string()),  # why capped, or why it failed
])


def markdown_reference() -> str:
    """The column reference of the ``instances`` table as a Markdown table."""
    lines = ["| column | tag | VR | type | level | meaning |", "|---|---|---|---|---|---|"]
    for c in INSTANCE_COLUMNS + (FULL_HEADER_COLUMN,):
        meaning = c.meaning.replace("|", "\\|")
        tag = f"({c.tag >> 16:04X},{c.tag & 0xFFFF:04X})" if c.tag is not None else ""
        lines.append(f"| `{c.name}` | {tag} | {c.vr or ''} | {c.arrow_type} | {c.level} | {meaning} |")
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
