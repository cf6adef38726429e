"""Radiation dose structured reports into tables (PS3.16 TID 10001 and TID 10011).

One X-Ray Radiation Dose SR (or an Enhanced SR holding the same templates, as GE writes)
becomes rows of two tables:

- ``dose_events``: one row per irradiation event: a CT acquisition (TID 10013) or a
  projection X-ray irradiation event (TID 10003: fluoroscopy, radiography, mammography);
- ``dose_studies``: one row per study with the totals the report states (TID 10012,
  TID 10002/10004/10007) and our own sums of the events beside them.

Every quantity is normalised to one unit per column, whatever UCUM unit the vendor used:
mGy, mGy.cm, Gy.m2, s, mm, kV, mA, mAs, degrees. Reports split across several objects
(Siemens "continued" reports, several reports for one study) are merged by Irradiation
Event UID, so no event is counted twice.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pydicom.dataset import Dataset

from workbench.dicom import values
from workbench.dicom.tree import Tree, read_tree

#: SOP classes read as dose reports.
DOSE_SR_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.88.67": "X-Ray Radiation Dose SR Storage",
    "1.2.840.10008.5.1.4.1.1.88.22": "Enhanced SR Storage",
    "1.2.840.10008.5.1.4.1.1.88.33": "Comprehensive SR Storage",
}
X_RAY_RADIATION_DOSE_REPORT = "113701"

# Unit of each column kind and the factor from each UCUM code to it.
_TO_UNIT = {
    "mGy": {"mGy": 1.0, "Gy": 1000.0, "uGy": 1e-3, "cGy": 10.0, "dGy": 100.0},
    "mGy.cm": {"mGy.cm": 1.0, "mGycm": 1.0, "Gy.cm": 1000.0, "mGy.mm": 0.1, "cGy.cm": 10.0},
    "Gy.m2": {"Gy.m2": 1.0, "Gym2": 1.0, "dGy.cm2": 1e-5, "cGy.cm2": 1e-6, "mGy.cm2": 1e-7, "uGy.m2": 1e-6,
              "Gy.cm2": 1e-4, "mGy.m2": 1e-3, "uGy.cm2": 1e-10, "dGy.m2": 0.1},
    "s": {"s": 1.0, "ms": 1e-3, "min": 60.0, "us": 1e-6},
    "mm": {"mm": 1.0, "cm": 10.0, "m": 1000.0, "um": 1e-3},
    "kV": {"kV": 1.0, "V": 1e-3},
    "mA": {"mA": 1.0, "A": 1000.0, "uA": 1e-3},
    "mAs": {"mA.s": 1.0, "mAs": 1.0, "uA.s": 1e-3, "uAs": 1e-3, "As": 1000.0, "A.s": 1000.0},
    "deg": {"deg": 1.0},
    "1": {"1": 1.0, "{ratio}": 1.0},
    "/s": {"/s": 1.0, "{pulse}/s": 1.0, "pulse/s": 1.0, "{pulses}/s": 1.0, "1/s": 1.0, "Hz": 1.0},
    "count": {"{events}": 1.0, "{X-Ray sources}": 1.0, "{X-ray sources}": 1.0, "X-ray sources": 1.0,
              "X-Ray sources": 1.0, "{pulses}": 1.0, "{pulse}": 1.0, "1": 1.0, "{frames}": 1.0,
              "{images}": 1.0, "events": 1.0},
}


class DoseReportError(ValueError):
    """A dose report that cannot be read into the tables, and why."""


@dataclass
class Item:
    """One content item of the SR tree, reduced to what the tables need."""

    code: str
    value_type: str
    value: Any = None
    unit: str | None = None
    meaning: str | None = None
    children: list[Item] = field(default_factory=list)

    def find(self, *codes: str) -> Item | None:
        """The first child (depth first, in order) whose concept is one of ``codes``."""
        for child in self.children:
            if child.code in codes:
                return child
        for child in self.children:
            found = child.find(*codes)
            if found is not None:
                return found
        return None

    def all(self, code: str) -> list[Item]:
        """Every direct child with concept ``code``."""
        return [child for child in self.children if child.code == code]


_CONCEPT_NAME = 0x0040A043
_CONCEPT_CODE = 0x0040A168
_CONTENT = 0x0040A730
_VALUE_TYPE = 0x0040A040
_MEASURED = 0x0040A300
_UNITS = 0x004008EA
_NUMERIC = 0x0040A30A
_CODE_VALUES = (0x00080100, 0x00080119, 0x00080120)  # Code Value, Long and URN Code Value
_CODE_MEANING = 0x00080104
_SIMPLE_VALUES = {"TEXT": 0x0040A160, "UIDREF": 0x0040A124, "DATETIME": 0x0040A120, "PNAME": 0x0040A123}
#: The tags a dose report is read for: the content tree's and the study, patient and device attributes.
REPORT_TAGS = frozenset({
    _CONCEPT_NAME, _CONCEPT_CODE, _CONTENT, _VALUE_TYPE, _MEASURED, _UNITS, _NUMERIC, *_CODE_VALUES,
    _CODE_MEANING, *_SIMPLE_VALUES.values(),
    0x00080005, 0x00080008, 0x00080016, 0x00080018, 0x0020000D, 0x00080050, 0x00080020, 0x00100020,
    0x00100040, 0x00101010, 0x00101020, 0x00101030, 0x00080070, 0x00081090, 0x00081010, 0x00181000,
    0x00080023, 0x00080033, 0x0040030E,
})


class _Raw:
    """Decoding of raw element values of one data set tree (its character set, byte order)."""

    def __init__(self, tree: Tree, little: bool) -> None:
        charset = tree.get(0x00080005)
        self.encodings = values.python_encodings(charset[1].strip(b" \x00") if charset else None)
        self.little = little

    def text(self, tree: Tree, tag: int) -> str | None:
        element = tree.get(tag)
        if element is None or element[0] == "SQ":
            return None
        return values.decode_text(element[1], element[0] or "LO", self.encodings) or None

    def number(self, tree: Tree, tag: int) -> float | None:
        element = tree.get(tag)
        if element is None or element[0] == "SQ" or not element[1]:
            return None
        return values.to_float(element[1], element[0] or "DS", self.little)

    def first_item(self, tree: Tree, tag: int) -> Tree | None:
        element = tree.get(tag)
        return element[1][0] if element is not None and element[0] == "SQ" and element[1] else None

    def code(self, item: Tree | None) -> tuple[str, str | None]:
        if item is None:
            return "", None
        value = next((self.text(item, t) for t in _CODE_VALUES if self.text(item, t)), "")
        return value, self.text(item, _CODE_MEANING)


def content_tree(dataset: Dataset | Tree, little: bool = True) -> Item:
    """The SR content as an :class:`Item` tree (PS3.3 C.17.3).

    Parameters
    ----------
    dataset : pydicom.Dataset or Tree
        The report, as pydicom read it or as :func:`workbench.dicom.tree.read_tree` did.
    """
    tree = _as_tree(dataset)[0] if isinstance(dataset, Dataset) else dataset
    raw = _Raw(tree, little)
    return _item(tree, raw)


def _as_tree(dataset: Dataset) -> tuple[Tree, bool]:
    """A pydicom data set as a raw tree: written in its own encoding (deflated ones inflated)."""
    import copy
    import io

    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import DeflatedExplicitVRLittleEndian, ExplicitVRLittleEndian

    dataset = copy.copy(dataset)
    dataset.file_meta = copy.copy(getattr(dataset, "file_meta", None) or FileMetaDataset())
    syntax = dataset.file_meta.get("TransferSyntaxUID")
    if syntax is None or syntax == DeflatedExplicitVRLittleEndian:
        dataset.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    return read_tree(buffer.getvalue())


def _item(tree: Tree, raw: _Raw) -> Item:
    value_type = raw.text(tree, _VALUE_TYPE) or ""
    node = Item(raw.code(raw.first_item(tree, _CONCEPT_NAME))[0], value_type)
    if value_type == "NUM":
        measured = raw.first_item(tree, _MEASURED)
        if measured is not None:
            node.value = raw.number(measured, _NUMERIC)
            node.unit = raw.code(raw.first_item(measured, _UNITS))[0] or None
    elif value_type == "CODE":
        node.value, node.meaning = raw.code(raw.first_item(tree, _CONCEPT_CODE))
    elif value_type in _SIMPLE_VALUES:
        node.value = raw.text(tree, _SIMPLE_VALUES[value_type])
    content = tree.get(_CONTENT)
    if content is not None and content[0] == "SQ":
        node.children = [_item(child, raw) for child in content[1]]
    return node


def _number(item: Item | None, unit: str) -> float | None:
    """A NUM item's value in ``unit``; None when absent or in a unit that cannot be converted."""
    if item is None or item.value is None:
        return None
    factors = _TO_UNIT[unit]
    if item.unit is None or item.unit in factors:
        return item.value * factors.get(item.unit or unit, 1.0)
    raise DoseReportError(f"concept {item.code} is in unit {item.unit!r}, which is not a {unit} unit")


def _text(item: Item | None) -> str | None:
    if item is None:
        return None
    if item.value_type == "CODE":
        return item.meaning
    return str(item.value) if item.value not in (None, "") else None


def _datetime(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    from workbench.dicom.values import to_datetime

    return to_datetime(value.encode())


def _age_years(value: Any) -> float | None:
    """An Age String (nnnD/W/M/Y, PS3.5 6.2) in years."""
    text = str(value or "").strip().upper()
    if len(text) != 4 or not text[:3].isdigit() or text[3] not in "DWMY":
        return None
    return int(text[:3]) / {"D": 365.25, "W": 52.1775, "M": 12.0, "Y": 1.0}[text[3]]


# --- the report ----------------------------------------------------------------------------------------


def report_rows(
    dataset: Dataset | Tree, source: dict[str, Any] | None = None, *, little: bool = True
) -> tuple[list[dict], dict]:
    """The event rows and the study row of one dose report.

    Parameters
    ----------
    dataset : pydicom.Dataset or Tree
        An X-Ray Radiation Dose SR (or an Enhanced/Comprehensive SR holding TID 10001/10011),
        as pydicom read it or as :func:`workbench.dicom.tree.read_tree` did (then ``little``
        gives its byte order).
    source : dict, optional
        Columns to copy into every row (e.g. ``path``).

    Returns
    -------
    tuple[list[dict], dict]
        The ``dose_events`` rows and the ``dose_studies`` row.

    Raises
    ------
    DoseReportError
        When the object is not an X-Ray Radiation Dose Report (TID 10001 or 10011) or a
        value is in a unit that cannot be normalised.
    """
    if isinstance(dataset, Dataset):
        dataset, little = _as_tree(dataset)
    raw = _Raw(dataset, little)
    tree = _item(dataset, raw)
    if tree.code != X_RAY_RADIATION_DOSE_REPORT:
        raise DoseReportError(
            "not an X-Ray Radiation Dose Report (TID 10001/10011): "
            f"its root concept is {tree.code or 'missing'}"
        )
    common = _common(dataset, raw, tree)
    common.update(source or {})
    if tree.find("113811") is not None or tree.all("113819"):
        events = [_ct_event(item, common) for item in tree.all("113819")]
        study = _ct_study(tree, common, events)
    else:
        events = [_projection_event(item, common) for item in tree.all("113706")]
        study = _projection_study(tree, common, events)
    return events, study


def _keyword(raw: _Raw, tree: Tree, keyword: str) -> str | None:
    from pydicom.datadict import tag_for_keyword

    return raw.text(tree, tag_for_keyword(keyword))


def _common(dataset: Tree, raw: _Raw, tree: Item) -> dict[str, Any]:
    """Device, study and patient columns shared by the report's rows."""
    def text(keyword: str) -> str | None:
        return _keyword(raw, dataset, keyword)

    study_date = values.to_date((text("StudyDate") or "").encode())
    return {
        "SOPInstanceUID": text("SOPInstanceUID"),
        "StudyInstanceUID": text("StudyInstanceUID"),
        "AccessionNumber": text("AccessionNumber"),
        "StudyDate": study_date,
        "PatientID": text("PatientID"),
        "PatientSex": text("PatientSex"),
        "patient_age_years": _age_years(text("PatientAge")),
        "PatientSize": _float(text("PatientSize")),
        "PatientWeight": _float(text("PatientWeight")),
        "Manufacturer": _text(tree.find("121014")) or text("Manufacturer"),
        "ManufacturerModelName": _text(tree.find("121015")) or text("ManufacturerModelName"),
        "StationName": text("StationName") or _text(tree.find("121013")),
        "DeviceSerialNumber": text("DeviceSerialNumber") or _text(tree.find("121016")),
        "device_observer_uid": _text(tree.find("121012")),
    }


def _float(value: Any) -> float | None:
    try:
        return None if value in (None, "") else float(value)
    except (TypeError, ValueError):
        return None


def _ct_event(item: Item, common: dict[str, Any]) -> dict[str, Any]:
    """One CT Acquisition (TID 10013) as a row."""
    parameters = item.find("113822") or Item("", "CONTAINER")
    dose = item.find("113829") or Item("", "CONTAINER")
    sources = parameters.all("113831")
    row = dict(common)
    row.update({
        "report_kind": "CT",
        "IrradiationEventUID": _text(item.find("113769")),
        "event_datetime": _datetime(_text(item.find("111526"))),
        "acquisition_protocol": _text(item.find("125203")),
        "target_region": _text(item.find("123014")),
        "acquisition_type": _text(item.find("113820")),
        "ctdivol_mgy": _number(dose.find("113830"), "mGy"),
        "dlp_mgycm": _number(dose.find("113838"), "mGy.cm"),
        "ctdiw_phantom": _text(dose.find("113835")),
        "exposure_time_s": _number(parameters.find("113824"), "s"),
        "scanning_length_mm": _number(parameters.find("113825"), "mm"),
        "nominal_single_collimation_mm": _number(parameters.find("113826"), "mm"),
        "nominal_total_collimation_mm": _number(parameters.find("113827"), "mm"),
        "pitch_factor": _number(parameters.find("113828"), "1"),
        "number_of_xray_sources": _number(parameters.find("113823"), "count"),
    })
    for suffix, source in zip(("", "_b"), sources[:2]):
        row.update({
            f"xray_source{suffix}": _text(source.find("113832")),
            f"kvp{suffix}": _number(source.find("113733"), "kV"),
            f"max_tube_current_ma{suffix}": _number(source.find("113833"), "mA"),
            f"mean_tube_current_ma{suffix}": _number(source.find("113734"), "mA"),
            f"exposure_time_per_rotation_s{suffix}": _number(source.find("113834"), "s"),
        })
    # CT Dose Check Details (TID 10015): alert and notification values configured, and estimates.
    alert, notification = item.find("113900"), item.find("113908")

    def alert_value(code: str, unit: str) -> float | None:
        return _number(alert.find(code), unit) if alert else None

    def notification_value(code: str, unit: str) -> float | None:
        return _number(notification.find(code), unit) if notification else None

    row.update({
        "dose_check_alert": alert is not None and (_yes(alert.find("113901")) or _yes(alert.find("113902"))),
        "dlp_alert_value_mgycm": alert_value("113903", "mGy.cm"),
        "ctdivol_alert_value_mgy": alert_value("113904", "mGy"),
        "accumulated_dlp_forward_estimate_mgycm": alert_value("113905", "mGy.cm"),
        "accumulated_ctdivol_forward_estimate_mgy": alert_value("113906", "mGy"),
        "dose_check_notification": notification is not None and (
            _yes(notification.find("113909")) or _yes(notification.find("113910"))),
        "dlp_notification_value_mgycm": notification_value("113911", "mGy.cm"),
        "ctdivol_notification_value_mgy": notification_value("113912", "mGy"),
        "dlp_forward_estimate_mgycm": notification_value("113913", "mGy.cm"),
        "ctdivol_forward_estimate_mgy": notification_value("113914", "mGy"),
    })
    return row


def _yes(item: Item | None) -> bool:
    """A Yes/No CODE item (CID 230) that says Yes."""
    return item is not None and item.value in ("R-0038D", "373066001")


def _ct_study(tree: Item, common: dict[str, Any], events: list[dict]) -> dict[str, Any]:
    accumulated = tree.find("113811") or Item("", "CONTAINER")
    row = {k: common[k] for k in _STUDY_KEYS if k in common}
    row.update({
        "report_kind": "CT",
        "events_reported": _number(accumulated.find("113812"), "count"),
        "dlp_total_mgycm": _number(accumulated.find("113813"), "mGy.cm"),
        "events_counted": len(events),
        "dlp_sum_mgycm": _sum(events, "dlp_mgycm"),
    })
    return row


def _projection_event(item: Item, common: dict[str, Any]) -> dict[str, Any]:
    """One Irradiation Event X-Ray Data (TID 10003) as a row."""
    row = dict(common)
    filters = item.all("113771")
    filter_row = filters[0] if filters else item
    row.update({
        "report_kind": "projection",
        "IrradiationEventUID": _text(item.find("113769")),
        "event_datetime": _datetime(_text(item.find("111526"))),
        "acquisition_plane": _text(item.find("113764")),
        "irradiation_event_type": _text(item.find("113721")),
        "acquisition_protocol": _text(item.find("125203")),
        "target_region": _text(item.find("123014")),
        "laterality": _text(item.find("111027") or item.find("G-C171")),
        "image_view": _text(item.find("111031")),
        "dap_gym2": _number(item.find("122130"), "Gy.m2"),
        "dose_rp_mgy": _number(item.find("113738"), "mGy"),
        "entrance_exposure_mgy": _number(item.find("111636"), "mGy"),
        "agd_mgy": _number(item.find("111631"), "mGy"),
        "half_value_layer_mm": _number(item.find("111634"), "mm"),
        "patient_equivalent_thickness_mm": _number(item.find("111638"), "mm"),
        "kvp": _number(item.find("113733"), "kV"),
        "tube_current_ma": _number(item.find("113734"), "mA"),
        "exposure_time_s": _number(item.find("113735") or item.find("113824"), "s"),
        "exposure_mas": _number(item.find("113736"), "mAs"),
        "irradiation_duration_s": _number(item.find("113742"), "s"),
        "pulse_rate": _number(item.find("113791"), "/s"),
        "number_of_pulses": _number(item.find("113768"), "count"),
        "fluoro_mode": _text(item.find("113732")),
        "filter_type": _text(filter_row.find("113772")),
        "filter_material": _text(filter_row.find("113757")),
        "filter_thickness_min_mm": _number(filter_row.find("113758"), "mm"),
        "filter_thickness_max_mm": _number(filter_row.find("113773"), "mm"),
        "anode_target_material": _text(item.find("111632")),
        "compression_thickness_mm": _number(item.find("111633"), "mm"),
        "positioner_primary_angle_deg": _number(item.find("112011"), "deg"),
        "positioner_secondary_angle_deg": _number(item.find("112012"), "deg"),
    })
    return row


def _projection_study(tree: Item, common: dict[str, Any], events: list[dict]) -> dict[str, Any]:
    row = {k: common[k] for k in _STUDY_KEYS if k in common}
    row.update({"report_kind": "projection", "events_counted": len(events)})
    planes = tree.all("113702")
    for plane in planes:
        name = (_text(plane.find("113764")) or "single plane").lower()
        suffix = "_plane_b" if "b" == name.split()[-1] else ("_plane_a" if "a" == name.split()[-1] else "")
        row.update({
            f"dap_total_gym2{suffix}": _number(plane.find("113722"), "Gy.m2"),
            f"dose_rp_total_mgy{suffix}": _number(plane.find("113725"), "mGy"),
            f"fluoro_dap_total_gym2{suffix}": _number(plane.find("113726"), "Gy.m2"),
            f"fluoro_dose_rp_total_mgy{suffix}": _number(plane.find("113728"), "mGy"),
            f"fluoro_time_total_s{suffix}": _number(plane.find("113730"), "s"),
            f"acquisition_dap_total_gym2{suffix}": _number(plane.find("113727"), "Gy.m2"),
            f"acquisition_dose_rp_total_mgy{suffix}": _number(plane.find("113729"), "mGy"),
            f"acquisition_time_total_s{suffix}": _number(plane.find("113855"), "s"),
        })
        for agd in plane.all("111637"):
            side = (_text(agd.find("111027") or agd.find("G-C171")) or "").lower()
            label = "left" if "left" in side else "right" if "right" in side else "both"
            row[f"agd_accumulated_mgy_{label}"] = _number(agd, "mGy")
    row["dap_sum_gym2"] = _sum(events, "dap_gym2")
    row["agd_sum_mgy"] = _sum(events, "agd_mgy")
    fluoro = [e for e in events if (e.get("irradiation_event_type") or "").lower().startswith("fluoro")]
    row["fluoro_time_sum_s"] = _sum(fluoro, "irradiation_duration_s") if fluoro else None
    return row


_STUDY_KEYS = ("StudyInstanceUID", "AccessionNumber", "StudyDate", "PatientID", "PatientSex",
               "patient_age_years", "PatientSize", "PatientWeight", "Manufacturer", "ManufacturerModelName",
               "StationName", "DeviceSerialNumber", "device_observer_uid", "SOPInstanceUID")


def _sum(rows: Iterable[dict], column: str) -> float | None:
    values = [r[column] for r in rows if r.get(column) is not None]
    return float(sum(values)) if values else None


# --- Philips CT dose information secondary captures ---------------------------------------------------

_PHILIPS_DLP = (0x00E1, "ELSCINT1", 0x21)
_ACQUISITION_TYPES = {
    "SPIRAL": "Spiral Acquisition", "SEQUENCED": "Sequenced Acquisition",
    "CONSTANT_ANGLE": "Constant Angle Acquisition", "STATIONARY": "Stationary Acquisition",
    "FREE": "Free Acquisition",
}


def is_philips_dose_capture(dataset: Dataset) -> bool:
    """A Philips CT dose information secondary capture: dose in the header, not in an SR."""
    image_type = [str(v).upper() for v in dataset.get("ImageType", [])]
    return "DOSE_INFO" in image_type and "ExposureDoseSequence" in dataset


def _private_dlp(dataset: Dataset) -> float | None:
    group, creator, element = _PHILIPS_DLP
    try:
        block = dataset.private_block(group, creator)
        return _float(block[element].value)
    except KeyError:
        return None


def philips_capture_rows(dataset: Dataset, source: dict[str, Any] | None = None) -> tuple[list[dict], dict]:
    """Events and study totals of a Philips CT dose information secondary capture.

    Each Exposure Dose Sequence item (PS3.3 C.4.16) is an acquisition; its DLP is in the
    private ELSCINT1 (00E1,xx21) element, the study total in the same element at top level.
    Items with no CTDIvol and no DLP (the localizer's) are still events.
    """
    tree, little = _as_tree(dataset)
    common = _common(tree, _Raw(tree, little), Item("", "CONTAINER"))
    common.update(source or {})
    events = []
    for item in dataset.ExposureDoseSequence:
        current_ua = _float(item.get("XRayTubeCurrentInuA"))
        exposure_ms = _float(item.get("ExposureTime"))
        row = dict(common)
        row.update({
            "report_kind": "CT",
            "IrradiationEventUID": None,
            "acquisition_protocol": str(item.get("SeriesDescription", "") or "") or None,
            "acquisition_type": _ACQUISITION_TYPES.get(str(item.get("AcquisitionType", "")).upper()),
            "ctdivol_mgy": _float(item.get("CTDIvol")),
            "dlp_mgycm": _private_dlp(item),
            "kvp": _float(item.get("KVP")),
            "mean_tube_current_ma": current_ua / 1000.0 if current_ua is not None else None,
            "exposure_time_s": exposure_ms / 1000.0 if exposure_ms is not None else None,
            "scanning_length_mm": _float(item.get("ScanLength")),
            "nominal_single_collimation_mm": _float(item.get("SingleCollimationWidth")),
            "nominal_total_collimation_mm": _float(item.get("TotalCollimationWidth")),
            "pitch_factor": _float(item.get("SpiralPitchFactor")),
        })
        events.append(row)
    study = {k: common[k] for k in _STUDY_KEYS if k in common}
    study.update({
        "report_kind": "CT",
        "events_reported": _float(dataset.get("TotalNumberOfExposures")),
        "dlp_total_mgycm": _private_dlp(dataset),
        "events_counted": len(events),
        "dlp_sum_mgycm": _sum(events, "dlp_mgycm"),
    })
    return events, study

