"""Apply the confidentiality profile to a data set (PS3.15 Annex E).

The :class:`Anonymizer` walks every element, through every sequence item (SR content,
private sequences, references), and applies the profile's action. What it replaces, it
replaces deterministically from a project key, so the same input gives the same output in
every file and every run:

- UIDs become ``2.25.<decimal>`` (PS3.5 B.2) or ``<root>.<decimal>``, from an HMAC-SHA256
  of the original: references between objects stay consistent;
- the patient's name and ID become one keyed pseudonym (or the user's own scheme);
- with the Retain Longitudinal Temporal Information with Modified Dates option, every date
  of a patient moves by one offset (whole days, so times and ages stay coherent).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
from collections import abc
from collections.abc import Callable, Iterable
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from workbench.deid.profile import OPTION_CODES, PROFILE_CODE, Profile
from workbench.dicom.writer import ascii_value

if TYPE_CHECKING:  # pydicom is imported when a data set is, not by the encoded path
    from pydicom.dataelem import DataElement
    from pydicom.dataset import Dataset
    from pydicom.tag import BaseTag

_PATIENT_NAME = 0x00100010
_PATIENT_ID = 0x00100020
_MAX_UID = 64
_DUMMY_TEXT = "ANONYMIZED"
_DUMMIES = {
    "DA": "19000101", "TM": "000000", "DT": "19000101000000", "AS": "000Y", "DS": "0", "IS": "0",
    "SH": _DUMMY_TEXT, "LO": _DUMMY_TEXT, "ST": _DUMMY_TEXT, "LT": _DUMMY_TEXT, "UT": _DUMMY_TEXT,
    "UC": _DUMMY_TEXT, "CS": _DUMMY_TEXT, "PN": _DUMMY_TEXT, "AE": _DUMMY_TEXT, "UR": "",
}
_BINARY_ZERO = {"US": 0, "SS": 0, "UL": 0, "SL": 0, "FL": 0.0, "FD": 0.0, "SV": 0, "UV": 0}
# Combined codes (PS3.15 E.3.1): the least removal that keeps the object valid.
_COMBINED = {"X/Z": "Z", "X/D": "D", "X/Z/D": "D", "Z/D": "D", "X/Z/U*": "U"}
_BULK_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN"})
_BINARY_SIZE = {"US": 2, "SS": 2, "UL": 4, "SL": 4, "FL": 4, "FD": 8, "SV": 8, "UV": 8}
_FREE_TEXT_VRS = frozenset({"SH", "LO", "ST", "LT", "UT", "UC", "PN"})
# Code Value, Coding Scheme Designator and Version, Code Meaning, Long and URN Code Value.
_CODE_TAGS = frozenset({0x00080100, 0x00080102, 0x00080103, 0x00080104, 0x00080119, 0x00080120})
#: File meta elements (PS3.10 7.1) that name the sending and receiving devices or carry private
#: information; the table does not list group 0002, they are removed all the same.
META_REMOVED = frozenset({
    0x00020016, 0x00020017, 0x00020018, 0x00020026, 0x00020027, 0x00020028, 0x00020100, 0x00020102,
})  # Source, Sending and Receiving AE Titles and Presentation Addresses, Private Information
#: Sequences coded X/Z that are Type 2 in their module, so emptied rather than removed: the
#: Acquisition Context Sequence (PS3.3 C.7.6.14). The other, Referenced Study Sequence, is Type 3
#: in the General Study Module.
_TYPE_2_SEQUENCES = frozenset({0x00400555})
#: Elements the table removes (X) that are Type 2 in the items that hold them: Requested Procedure ID
#: in a dose report's Referenced Request Sequence (PS3.3 C.17.2); emptied there instead.
_TYPE_2_IN_ITEMS = frozenset({0x00401001})
#: A code's value or meaning: an item holding one is a code (Code Sequence Macro, PS3.3 Table 8.8-1).
CODE_ITEM_TAGS = (0x00080100, 0x00080104, 0x00080119, 0x00080120)
# Largest shift of the modified-dates option, in days (about ten years).
_MAX_DATE_SHIFT = 3650


def resolved(action: str, vr: str | None, tag: int, top: bool) -> str:
    """The single action a code stands for here.

    A combined code (PS3.15 E.3.1: X unless Z, D or U is needed for the IOD to conform) becomes
    the least removal that keeps the object valid in every IOD: Z, D or U (a Type 3 element may be
    empty; a sequence replaced by D or U keeps items, which Type 1, 2 and 3 all allow). X/Z on a
    sequence at the ``top`` of the data set is X: emptied, a Type 3 module sequence would break
    its "one or more items" (the Type 2 ones of :data:`_TYPE_2_SEQUENCES` are emptied, Z); inside
    an item, where macros list them as Type 2 (Referenced Study Sequence in a Referenced Request
    Sequence, PS3.3 C.17.2), it is Z; so is X on the elements of :data:`_TYPE_2_IN_ITEMS` inside an
    item (an empty value tells as little as none). Cleaning bulk data (an overlay bitmap under
    Clean Graphics) removes it: no value of similar meaning can be made.
    """
    if vr == "SQ" and action == "X/Z":
        return "X" if top and tag not in _TYPE_2_SEQUENCES else "Z"
    if action == "X" and not top and tag in _TYPE_2_IN_ITEMS:
        return "Z"
    action = _COMBINED.get(action, action)
    return "X" if action == "C" and vr in _BULK_VRS else action


def replaced_inside(inherited: str, tag: int, vr: str | None) -> bool:
    """Whether an element the table does not list gets the action of the sequence it is in
    (``inherited``, see :func:`item_action`): free text does; codes stay under D (cleaning keeps
    them readable, a dummy would make them meaningless), except in a code D replaces (DC), where
    every value of the code goes (a URN Code Value, a Mapping Resource too)."""
    if inherited == "DC":
        return vr not in ("SQ", "UI", None)
    if tag in _CODE_TAGS:
        return inherited == "C" and vr in _FREE_TEXT_VRS
    return vr in _FREE_TEXT_VRS


def item_action(action: str, is_code: bool) -> str | None:
    """What a sequence's action passes to one of its items (``is_code``: the item is a code, PS3.3
    Table 8.8-1): D and C pass on, and D on a code replaces the code too ("DC"): a code in a
    sequence the profile replaces (Person Identification Code Sequence, ...) names a person or an
    institution, not a concept."""
    if action == "D" and is_code:
        return "DC"
    return action if action in ("D", "C") else None


def keyed_digest(key: bytes, text: str) -> bytes:
    """HMAC-SHA256 of ``text`` under ``key``: the one source of every pseudonym."""
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).digest()


class Anonymizer:
    """De-identify data sets with one profile, key and pseudonym scheme.

    Parameters
    ----------
    key : bytes
        The project key (at least 16 bytes). The same key gives the same pseudonyms.
    options : iterable of str
        Profile options (:data:`workbench.deid.profile.OPTIONS`).
    uid_root : str, optional
        Root for new UIDs, e.g. your organisation's; default ``2.25``.
    patient_pseudonym : callable, optional
        ``f(patient_id, patient_name) -> str`` giving the new PatientID and PatientName;
        default a keyed hash ``"P" + 12 hex digits``.
    safe_private : iterable of (str, int), optional
        With the Retain Safe Private option: (private creator, element byte) pairs known
        to hold no identifying information, kept; every other private element is removed.

    Raises
    ------
    ValueError
        For a short key, a malformed ``uid_root`` or a bad option.
    """

    def __init__(
        self,
        key: bytes,
        options: Iterable[str] = (),
        *,
        uid_root: str | None = None,
        patient_pseudonym: Callable[[str, str], str] | None = None,
        safe_private: Iterable[tuple[str, int]] = (),
    ) -> None:
        if len(key) < 16:
            raise ValueError(f"the key must hold at least 16 bytes, not {len(key)}")
        if uid_root is not None and not re.fullmatch(r"[1-9][0-9]*(\.(0|[1-9][0-9]*))*", uid_root):
            raise ValueError(f"uid_root {uid_root!r} is not a UID root (digits and dots, PS3.5 9.1)")
        self.key = key
        self.profile = Profile(options)
        self.uid_root = uid_root or "2.25"
        self._pseudonym = patient_pseudonym or self._default_pseudonym
        self.safe_private = set()
        for creator, element in safe_private:
            if not str(creator).strip() or not isinstance(element, int) or not 0x10 <= element <= 0xFF:
                raise ValueError(
                    f"safe private element {(creator, element)!r} is not (private creator, element byte "
                    "0x10-0xFF), e.g. ('ACME 1.1', 0x10) for (gggg,xx10)"
                )
            self.safe_private.add((str(creator).strip(), element))
        #: original -> pseudonym, for the map the user may ask for (never written in the export)
        self.replaced: dict[tuple[str, str], str] = {}
        self._actions: dict[int, str | None] = {}
        self._cleans = self.profile.uses("C")

    # --- pseudonyms ---------------------------------------------------------------------------------

    def uid(self, original: str) -> str:
        """The pseudonym of a UID: the same for the same original and key."""
        original = original.strip("\x00 ")
        if not original:
            return original
        number = int.from_bytes(keyed_digest(self.key, "uid:" + original)[:16], "big")
        digits = _MAX_UID - len(self.uid_root) - 1
        new = f"{self.uid_root}.{number % 10 ** digits}"
        self.replaced[("UID", original)] = new
        return new

    def _default_pseudonym(self, patient_id: str, patient_name: str) -> str:
        return "P" + keyed_digest(self.key, "patient:" + (patient_id or patient_name)).hex()[:12].upper()

    def patient(self, patient_id: str, patient_name: str) -> str:
        """The pseudonym standing for the patient, as PatientID and PatientName."""
        new = self._pseudonym(patient_id, patient_name)
        self.replaced[("PatientID", patient_id)] = new
        return new

    def date_shift(self, patient_id: str) -> dt.timedelta:
        """The patient's date offset: between one and :data:`_MAX_DATE_SHIFT` days back."""
        days = int.from_bytes(keyed_digest(self.key, "dates:" + patient_id)[:4], "big") % _MAX_DATE_SHIFT
        return dt.timedelta(days=-(days + 1))

    # --- the walk -----------------------------------------------------------------------------------

    def anonymize(self, dataset: Dataset) -> Dataset:
        """De-identify ``dataset`` in place (file meta included) and return it.

        Raises
        ------
        ValueError
            Never for values: a value that cannot be cleaned is replaced or removed.
        """
        patient_id = str(dataset.get("PatientID", "") or "")
        patient_name = str(dataset.get("PatientName", "") or "")
        context = _Context(
            pseudonym=self.patient(patient_id, patient_name),
            shift=self.date_shift(patient_id or patient_name),
            dataset=dataset,
        )
        if self._cleans:
            context.phi  # noqa: B018 - gathered from the data set as it came, before the walk changes it
        self._walk(dataset, context)
        dataset.PatientID = context.pseudonym
        dataset.PatientName = context.pseudonym
        self._mark(dataset)
        meta = getattr(dataset, "file_meta", None)
        keep_uids = "retain_uids" in self.profile.options
        for tag in META_REMOVED:
            if meta is not None and tag in meta:
                del meta[tag]
        if meta is not None and "MediaStorageSOPInstanceUID" in meta and not keep_uids:
            meta.MediaStorageSOPInstanceUID = self.uid(str(meta.MediaStorageSOPInstanceUID))
        return dataset

    def _walk(self, dataset: Dataset, context: _Context, inherited: str | None = None) -> None:
        """Apply the profile to every element; ``inherited`` is the D, DC or C of an enclosing sequence.

        Free text not listed in the table (e.g. an SR TEXT item's Text Value) inside a sequence
        the profile replaces (D) or cleans (C) gets that action too; codes stay under D (they are
        vocabulary, not PHI), except in a code the sequence replaces (DC, see :func:`item_action`)."""
        # Elements are looked at through their tag and VR; only those the profile changes are
        # converted to Python values (most of a header is kept as read, untouched).
        tags = list(dataset.keys())
        keep_safe = "retain_safe_private" in self.profile.options
        private_creators = {
            (tag.group, tag.element): str(dataset[tag].value or "").strip()
            for tag in tags if keep_safe and tag.group % 2 and 0 < tag.element < 0x0100
        }
        for tag in tags:
            if tag.element == 0 and tag.group != 0x0002:
                del dataset[tag]  # group lengths would be wrong after the changes (and are retired)
                continue
            if tag.group % 2:
                if not keep_safe:
                    del dataset[tag]
                else:
                    self._safe_private(dataset, tag, private_creators, context)
                continue
            action = self.action(int(tag))
            if action == "K":
                if _vr(dataset, tag) == "SQ":  # a kept sequence: its items are de-identified all the same
                    self._items(dataset[tag], context, inherited)
                continue
            if action == "X" and resolved(action, None, int(tag), dataset is context.dataset) == "X":
                del dataset[tag]
                continue
            vr = _vr(dataset, tag)
            if action is None:
                if vr == "SQ":
                    self._items(dataset[tag], context, inherited)
                elif inherited and replaced_inside(inherited, int(tag), vr):
                    self._apply(dataset, tag, vr, inherited[0], context)
                continue
            self._apply(dataset, tag, vr, action, context)

    def action(self, tag: int) -> str | None:
        """The profile's action for ``tag`` (``group << 16 | element``), None when it lists none."""
        if tag not in self._actions:
            self._actions[tag] = self.profile.action(tag)
        return self._actions[tag]

    def _items(self, element: DataElement, context: _Context, inherited: str | None = None) -> None:
        for item in element.value or ():
            self._walk(item, context, inherited)

    def _safe_private(self, dataset: Dataset, tag: BaseTag, creators: dict, context: _Context) -> None:
        """Keep a private element known to be safe (Retain Safe Private Option), remove the rest."""
        if tag.element >= 0x1000:
            creator = creators.get((tag.group, tag.element >> 8), "")
            if (creator, tag.element & 0xFF) in self.safe_private:
                element = _sequence_in_un(dataset, dataset[tag])
                if element.VR == "SQ":
                    self._items(element, context)
                return
        if tag.element < 0x0100 and any(
            creator == creators.get((tag.group, tag.element)) for creator, _ in self.safe_private
        ):
            return  # a private creator whose safe elements are kept stays with them
        del dataset[tag]

    def _apply(self, dataset: Dataset, tag: BaseTag, vr: str | None, action: str, context: _Context) -> None:
        action = resolved(action, vr, int(tag), dataset is context.dataset)
        if action == "K":
            return
        if action == "X":
            del dataset[tag]
            return
        # A value that does not depend on the old one is set without converting the old one.
        if int(tag) in (_PATIENT_NAME, _PATIENT_ID):
            _replace(dataset, tag, vr, context.pseudonym)
        elif action == "Z" and vr != "SQ":
            _replace(dataset, tag, vr, _BINARY_ZERO.get(vr, ""))
        elif action == "D" and vr not in ("SQ", "UI"):
            _replace(dataset, tag, vr, _BINARY_ZERO.get(vr, _DUMMIES.get(vr, "")))
        else:
            self._change(dataset[tag], action, context)

    def _change(self, element: DataElement, action: str, context: _Context) -> None:
        """The actions whose new value depends on the old one: U, C, and those on a sequence."""
        if element.VR == "SQ":
            if action == "Z":
                from pydicom.sequence import Sequence

                element.value = Sequence()
            else:  # D, C, U on a sequence: keep its structure, de-identify what is inside
                for item in element.value or ():
                    self._walk(item, context, item_action(action, any(t in item for t in CODE_ITEM_TAGS)))
        elif action == "C" and element.VR != "UI":
            element.value = self._clean(element, context)
        else:  # U, or D and C on a UI
            element.value = self._uids(element.value)

    def _uids(self, value: Any) -> Any:
        if "retain_uids" in self.profile.options:
            return value
        if isinstance(value, (list, tuple)) or hasattr(value, "__iter__") and not isinstance(value, str):
            return [self.uid(str(v)) for v in value]
        return self.uid(str(value)) if value else value

    def _clean(self, element: DataElement, context: _Context) -> Any:
        """Replace with values of similar meaning that do not identify (the C action)."""
        vr = element.VR
        if vr == "TM" or vr in _BINARY_ZERO or vr in ("DS", "IS", "AS"):
            return element.value  # whole-day shifts leave times as they are; numbers identify no one
        cleaned = self.clean_text(vr, _strings(element.value), context.shift, lambda: context.phi)
        return cleaned if len(cleaned) != 1 else cleaned[0]

    def clean_text(
        self, vr: str, values: list[str], shift: dt.timedelta, phi: Callable[[], list[str]]
    ) -> list[str]:
        """The C action on the text ``values`` of one element of VR ``vr`` (not TM, numbers or UI).

        Dates move by ``shift`` with the modified-dates option and become a dummy otherwise; in
        other text each of the identifying strings ``phi()`` becomes ``*``.
        """
        if vr in ("DA", "DT"):
            if "retain_modified_dates" in self.profile.options:
                return [_shift_one(value, vr, shift) for value in values]
            return [_DUMMIES[vr]]
        strings = phi()
        cleaned = []
        for text in values:
            for value in strings:
                text = re.sub(re.escape(value), "*", text, flags=re.IGNORECASE)
            cleaned.append(text)
        return cleaned

    def marks(self) -> dict[str, Any]:
        """What every de-identified data set says of it (PS3.15 E.1.1): keyword -> value, the
        DeidentificationMethodCodeSequence as (CodeValue, CodingSchemeDesignator, CodeMeaning)."""
        options = self.profile.options
        method, meanings = [], []
        for value, meaning in [PROFILE_CODE] + [OPTION_CODES[o] for o in options]:
            method.append((value, "DCM", meaning))
            meanings.append(meaning[:64])
        # One value per profile and option: each fits the 64 characters of LO.
        title = f"workbench, DICOM PS3.15 Annex E ({self.profile.edition})"
        if "retain_full_dates" in options:
            temporal = "UNMODIFIED"
        elif "retain_modified_dates" in options:
            temporal = "MODIFIED"
        else:
            temporal = "REMOVED"
        return {
            "PatientIdentityRemoved": "YES",
            "DeidentificationMethod": [title] + meanings,
            "DeidentificationMethodCodeSequence": method,
            "LongitudinalTemporalInformationModified": temporal,
        }

    def _mark(self, dataset: Dataset) -> None:
        from pydicom.dataset import Dataset

        for keyword, value in self.marks().items():
            if keyword == "DeidentificationMethodCodeSequence":
                items = []
                for code_value, scheme, meaning in value:
                    item = Dataset()
                    item.CodeValue, item.CodingSchemeDesignator = code_value, scheme
                    item.CodeMeaning = meaning
                    items.append(item)
                value = items
            setattr(dataset, keyword, value)


class _Context:
    """What the walk of one data set needs to know about its patient."""

    __slots__ = ("pseudonym", "shift", "dataset", "_phi")

    def __init__(self, pseudonym: str, shift: dt.timedelta, dataset: Dataset) -> None:
        self.pseudonym, self.shift, self.dataset, self._phi = pseudonym, shift, dataset, None

    @property
    def phi(self) -> list[str]:
        """The identifying strings to clean free text of, gathered when first needed."""
        if self._phi is None:
            self._phi = _identifying_strings(self.dataset)
        return self._phi


#: Identifiers gathered from a data set to clean its free text with (besides every person name).
IDENTIFIER_TAGS = frozenset({
    0x00100020, 0x00080050, 0x00080080, 0x00080081, 0x00081010, 0x00181000, 0x00200010,
    0x00401001, 0x00400009,
})  # PatientID, AccessionNumber, InstitutionName and Address, StationName, DeviceSerialNumber,
#     StudyID, RequestedProcedureID, ScheduledProcedureStepID


def _vr(dataset: Dataset, tag) -> str | None:
    """The VR of an element without converting its value (from the data dictionary for implicit VR)."""
    raw = dataset.get_item(tag)
    if raw is not None and raw.VR and (raw.VR != "UN" or _dictionary_vr(int(tag)) is None):
        return raw.VR
    return _dictionary_vr(int(tag))  # as pydicom reads an element of a known tag written as UN


@lru_cache(maxsize=4096)
def _dictionary_vr(tag: int) -> str | None:
    from pydicom.datadict import dictionary_VR

    try:
        return dictionary_VR(tag).split(" or ")[0]
    except KeyError:
        return None


def _sequence_in_un(dataset: Dataset, element: DataElement) -> DataElement:
    """A private sequence read as UN bytes (implicit VR, defined length) parsed into a sequence.

    Its items are implicit VR little endian (PS3.5 Section 6.2.2); a kept private sequence
    must be walked like any other, or what it holds would leave unseen.
    """
    value = element.value
    if element.VR != "UN" or not isinstance(value, bytes) or not value.startswith(b"\xfe\xff\x00\xe0"):
        return element
    from pydicom.dataelem import DataElement
    from pydicom.filebase import DicomBytesIO
    from pydicom.filereader import read_sequence

    # _character_set: the encodings in effect here, inherited from the enclosing data sets.
    items = read_sequence(DicomBytesIO(value), True, True, len(value), dataset._character_set)
    dataset[element.tag] = DataElement(element.tag, "SQ", items)
    return dataset[element.tag]


def _replace(dataset: Dataset, tag: BaseTag, vr: str | None, value: str | int | float) -> None:
    """Give the element ``tag`` a new value; as raw bytes when it was read and is still raw."""
    from pydicom.dataelem import RawDataElement

    raw = dataset.get_item(tag)
    if vr is not None and isinstance(raw, RawDataElement) and raw.is_little_endian:
        encoded = bytes(_BINARY_SIZE[vr]) if vr in _BINARY_SIZE else ascii_value(vr, str(value))
        if encoded is not None:  # zero is all zero bytes in every binary VR
            dataset[tag] = RawDataElement(
                tag, vr, len(encoded), encoded, raw.value_tell, raw.is_implicit_VR, True, True, False
            )
            return
    dataset[tag].value = value


def _identifying_strings(dataset: Dataset) -> list[str]:
    """Every person name (and its components) and identifier in the data set, longest first.

    The C (clean) action removes these from free text: the patient's, and also the names of
    physicians and operators, which a description may repeat.
    """
    values: set[str] = set()

    def visit(ds: Dataset) -> None:
        for tag in list(ds.keys()):
            vr = _vr(ds, tag)
            if vr == "SQ":
                for item in ds[tag].value or ():
                    visit(item)
            elif (vr == "PN" or int(tag) in IDENTIFIER_TAGS) and ds[tag].value:
                add_identifying(values, vr, _strings(ds[tag].value))

    visit(dataset)
    return longest_first(values)


def add_identifying(values: set[str], vr: str | None, strings: list[str]) -> None:
    """Add to ``values`` the identifying strings of one element: a person name (VR PN) in
    its usual spellings, or an identifier (:data:`IDENTIFIER_TAGS`)."""
    for text in strings:
        values.update(_name_spellings(text) if vr == "PN" else (text.strip(),))


def longest_first(values: set[str]) -> list[str]:
    """The identifying strings of three characters or more, longest first (ties in order), so
    that a full name is replaced before its parts."""
    return sorted((v for v in values if len(v) >= 3), key=lambda v: (-len(v), v))


def _name_spellings(name: str) -> set[str]:
    spellings = {name.strip()}
    for group in name.split("="):
        parts = [p.strip() for p in group.split("^") if p.strip()]
        spellings.update(parts)
        if len(parts) >= 2:
            spellings.update({f"{parts[1]} {parts[0]}", f"{parts[0]}, {parts[1]}", f"{parts[0]} {parts[1]}"})
    return spellings


def _strings(value: Any) -> list[str]:
    """An element's value as a list of strings, one per value (a multi-valued text is several)."""
    if value is None:
        return [""]
    if isinstance(value, abc.Sequence) and not isinstance(value, (str, bytes)):  # MultiValue too
        return [str(v) for v in value] or [""]
    return [str(value)]


def _shift_one(text: str, vr: str, shift: dt.timedelta) -> str:
    text = text.strip()
    if len(text) < 8 or not text[:8].isdigit():
        return _DUMMIES[vr]
    try:
        date = dt.date(int(text[:4]), int(text[4:6]), int(text[6:8])) + shift
    except ValueError:
        return _DUMMIES[vr]
    return date.strftime("%Y%m%d") + (text[8:] if vr == "DT" else "")
