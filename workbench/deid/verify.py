"""Verify that an anonymized export holds no identifying value of the studies it came from.

This is the independent check of issue 5: it knows nothing of the anonymizer or of the
profile it applied (DICOM PS3.15 Annex E). It takes the original identifying values of the
exported studies from the index (:func:`phi_values`) and looks for them in the export
(:func:`verify_export`) in three independent ways:

1. **names**: every file and folder name (and the export's own name);
2. **bytes**: the raw bytes of every file, DICOM or not, in one pass of one compiled regular
   expression that holds every value in its plausible spellings and encodings;
3. **elements**: every DICOM file parsed, every element of every sequence item at any depth
   (private elements, private sequences and the file meta information included), each text value
   decoded with its character set and compared with the values as a whole (and, for person
   names, component by component).

A value found inside the Code Value or Code Meaning of a code from a standard coding scheme
(:data:`STANDARD_CODING_SCHEMES`) is a standard term, not a leak: a name component such as
"Observer" is not reported inside "Person Observer Name" of scheme DCM (it is in free text, and
in the codes of local schemes). A value found by the bytes look inside an element the elements
look already reported is not reported twice; a value the elements look cannot see (a name inside
a sentence, a value in a binary or unknown element, the preamble, a non-DICOM file) is reported
with the element it lies in when there is one. Findings never hold an identifying value in
clear: values and paths are masked (:func:`mask`), so the findings can be printed and logged.
"""

from __future__ import annotations

import io
import json
import multiprocessing
import os
import re
import struct
import unicodedata
import warnings
import zipfile
import zlib
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from workbench.index.index import Index

__all__ = ["LOOKS", "Finding", "PhiValue", "format_findings", "mask", "phi_values", "verify_export"]


# --- the values ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PhiValue:
    """One original identifying value.

    Attributes
    ----------
    kind : str
        What the value is: the DICOM keyword it was taken from (``"PatientName"``,
        ``"PatientID"``, ``"StudyDate"``, ``"StudyInstanceUID"``, ...). The components and other
        spellings of a name keep the kind of the name.
    value : str
        The value as it appears in DICOM: dates as ``YYYYMMDD``, person names as stored, with
        ``^`` between components.

    Notes
    -----
    The representation masks the value (:func:`mask`), so that printing a list of values does
    not print identifying data.
    """

    kind: str
    value: str

    def __post_init__(self) -> None:
        if not isinstance(self.kind, str) or not self.kind:
            raise ValueError(f"a PhiValue needs a kind, got {self.kind!r}")
        if not isinstance(self.value, str) or not self.value.strip():
            raise ValueError(f"a PhiValue of kind {self.kind} needs a non-empty text value")

    def __repr__(self) -> str:
        return f"PhiValue(kind={self.kind!r}, value={mask(self.value)!r})"


@dataclass(frozen=True)
class Finding:
    """One identifying value found in an export.

    Attributes
    ----------
    path : str
        The file or folder, relative to the export root with ``/`` separators (``""`` for the
        export itself). Identifying values inside the path are masked.
    where : str
        Where in it: ``"(0010,0010) PatientName"``, ``"(0009,1001) private in item 2 of
        (0040,A730) ContentSequence"``, ``"file name"``, ``"folder name"``,
        ``"bytes at 1234 in (0020,4000) ImageComments"``, ``"bytes at 56 (line 3)"``,
        ``"column PatientID row 7"``.
    kind : str
        The :attr:`PhiValue.kind` of the value found; ``"unverified"`` for a file that could not
        be read or parsed (it cannot be declared clean).
    shown : str
        The value found, masked (:func:`mask`).
    """

    path: str
    where: str
    kind: str
    shown: str

    def __str__(self) -> str:
        return f"{self.path or '.'}: {self.where}: {self.kind} {self.shown}".rstrip()


def mask(value: str) -> str:
    """A value as it may be printed: its first characters, ``***`` and its length.

    Parameters
    ----------
    value : str
        An identifying value.

    Returns
    -------
    str
        E.g. ``"WB***(7)"`` for ``"WB-0001"``; one character only is shown of values of up to 4
        characters.

    Examples
    --------
    >>> mask("MÜLLER^JOSÉ")
    'MÜ***(11)'
    """
    keep = 1 if len(value) <= 4 else 2
    return f"{value[:keep]}***({len(value)})"


#: Index columns holding person names (PN), in the order their kinds win when values coincide.
NAME_KEYWORDS: tuple[str, ...] = (
    "PatientName", "OtherPatientNames", "PatientBirthName", "PatientMotherBirthName",
    "ReferringPhysicianName", "PerformingPhysicianName", "NameOfPhysiciansReadingStudy",
    "PhysiciansOfRecord", "RequestingPhysician", "OperatorsName", "ScheduledPerformingPhysicianName",
    "ResponsiblePerson", "ContentCreatorName", "ReviewerName", "VerifyingObserverName", "PersonName",
)
#: Index columns holding identifying text (IDs, institution, device), PS3.15 Table E.1-1.
TEXT_KEYWORDS: tuple[str, ...] = (
    "PatientID", "OtherPatientIDs", "AccessionNumber", "StudyID", "AdmissionID", "MedicalRecordLocator",
    "RequestedProcedureID", "PerformedProcedureStepID", "ScheduledProcedureStepID",
    "PatientAddress", "PatientTelephoneNumbers", "InstitutionName", "InstitutionAddress",
    "InstitutionalDepartmentName", "StationName", "DeviceSerialNumber", "DetectorID",
)
#: Index columns holding dates (DA); PatientBirthDate first.
DATE_KEYWORDS: tuple[str, ...] = (
    "PatientBirthDate", "StudyDate", "SeriesDate", "AcquisitionDate", "ContentDate",
    "InstanceCreationDate", "PerformedProcedureStepStartDate", "ScheduledProcedureStepStartDate",
    "AcquisitionDateTime",
)
#: Index columns holding UIDs of the studies' own objects (PS3.15 E.1-1 action U).
UID_KEYWORDS: tuple[str, ...] = (
    "StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID", "SOPInstanceUID",
    "SynchronizationFrameOfReferenceUID", "IrradiationEventUID", "ConcatenationUID",
    "DimensionOrganizationUID",
)

#: Values that identify nobody (compared case-insensitively).
GENERIC_VALUES: frozenset[str] = frozenset({
    "anonymous", "anonymized", "anonymised", "anon", "none", "null", "nil", "unknown", "n/a",
    "removed", "redacted", "deidentified", "de-identified", "patient", "test", "demo", "sample",
    "phantom", "qa", "qc", "physician", "doctor", "operator", "technologist", "unnamed", "noname",
    "dicom",
})
#: Single words that are DICOM vocabulary (body parts of PS3.16 Annex L, and the like) rather
#: than identity. A *component* of a name equal to one of them is not searched on its own (the
#: whole name still is): the sample's ``PHANTOM^ABDOMEN`` would otherwise match every
#: ``BodyPartExamined`` of ABDOMEN.
VOCABULARY: frozenset[str] = frozenset({
    "abdomen", "ankle", "aorta", "arm", "bladder", "body", "bone", "brain", "breast", "cervix", "chest",
    "clavicle", "coccyx", "colon", "cspine", "elbow", "extremity", "eye", "face", "femur", "fibula",
    "finger", "foot", "forearm", "hand", "head", "heart", "hip", "humerus", "jaw", "kidney", "knee",
    "larynx", "leg", "liver", "lspine", "lung", "mandible", "neck", "orbit", "pancreas", "patella",
    "pelvis", "prostate", "radius", "rectum", "rib", "sacrum", "scapula", "shoulder", "sinus", "skull",
    "spine", "spleen", "sternum", "stomach", "thigh", "thorax", "thumb", "tibia", "toe", "tspine",
    "ulna", "uterus", "wholebody", "wrist",
    # particles of family names
    "van", "von", "der", "den", "del", "della", "dos", "das", "les",
})
#: Coded-string columns of the index whose words are vocabulary of these studies, not identity.
_VOCABULARY_COLUMNS = ("BodyPartExamined", "Modality", "ImageType", "PatientPosition", "Laterality")

_UID_SHAPE = re.compile(r"[0-9]+(?:\.[0-9]+)+")
#: The looks of :func:`verify_export`.
LOOKS: tuple[str, ...] = ("names", "bytes", "elements")


def phi_values(
    index: Index | pd.DataFrame | str | os.PathLike,
    study_uids: Iterable[str] | None = None,
    *,
    dates: bool = True,
    uids: bool = True,
) -> list[PhiValue]:
    """Every identifying value of some studies, taken from the index.

    Parameters
    ----------
    index : Index, pandas.DataFrame, str or path-like
        The index the studies were exported from (or its directory), or a slice of its
        ``instances`` table.
    study_uids : iterable of str, optional
        StudyInstanceUIDs of the exported studies; all studies of ``index`` when None.
    dates : bool
        Include the dates (PatientBirthDate and the study, series, acquisition and content
        dates). Pass False when the export keeps full dates on purpose (PS3.15 E.3.6, Retain
        Longitudinal Temporal Information with Full Dates Option).
    uids : bool
        Include the UIDs of the studies (Study, Series, SOP Instance, Frame of Reference, ...).
        Pass False when the export keeps them (PS3.15 E.3.9, Retain UIDs Option).

    Returns
    -------
    list of PhiValue
        Person names as stored and in other spellings (``GIVEN FAMILY``, ``FAMILY, GIVEN``),
        their family and given names of 3 or more characters, IDs, accession numbers, study IDs,
        institution, department, station and device serial number, dates as ``YYYYMMDD``, UIDs.
        Each value once (the first kind wins), names first. Empty values and values that
        identify nobody (fewer than 3 characters, ``ANONYMOUS``, ``NONE``, ``0``, ...) are left
        out; so are name components that are vocabulary (:data:`VOCABULARY`, and the body parts
        and other coded values of these studies in the index).

    Raises
    ------
    ValueError
        When a study UID is not a UID, or is not in the index.
    """
    table = _instances_table(index, study_uids)
    vocabulary = set(VOCABULARY)
    for column in _VOCABULARY_COLUMNS:
        for cell in table.get(column, []):
            vocabulary.update(w.casefold() for w in re.split(r"[^\w]+", str(cell)) if w)
    found: dict[str, PhiValue] = {}

    def add(kind: str, value: str) -> None:
        value = value.strip()
        if _is_generic(value):
            return
        found.setdefault(value.casefold(), PhiValue(kind, value))

    components: list[tuple[str, str]] = []
    for kind in NAME_KEYWORDS:
        for cell in _column_values(table, kind):
            for name in cell.split("\\"):
                name = name.strip().rstrip("^").strip()
                if not name:
                    continue
                add(kind, name)
                for spelling in _name_spellings(name):
                    add(kind, spelling)
                for component in _name_components(name):
                    if component.casefold() not in vocabulary:
                        components.append((kind, component))
    for kind, component in components:
        add(kind, component)
    for kind in TEXT_KEYWORDS:
        for cell in _column_values(table, kind):
            for value in cell.split("\\"):
                add(kind, value)
    if dates:
        for kind in DATE_KEYWORDS:
            for cell in _column_values(table, kind):
                add(kind, cell)
    if uids:
        for kind in UID_KEYWORDS:
            for cell in _column_values(table, kind):
                add(kind, cell)
    return list(found.values())


def _instances_table(index: Any, study_uids: Iterable[str] | None) -> dict[str, list[Any]]:
    """The distinct values of the identifying columns of the studies' instances (nulls left out)."""
    wanted = set(NAME_KEYWORDS + TEXT_KEYWORDS + DATE_KEYWORDS + UID_KEYWORDS + _VOCABULARY_COLUMNS)
    uids = None
    if study_uids is not None:
        uids = sorted({str(u).strip() for u in ([study_uids] if isinstance(study_uids, str) else study_uids)})
        for uid in uids:
            if not (0 < len(uid) <= 64 and _UID_SHAPE.fullmatch(uid)):
                raise ValueError(f"{uid!r} is not a StudyInstanceUID")
    if isinstance(index, str | os.PathLike):
        from workbench.index.index import open_index

        index = open_index(index)
    if hasattr(index, "connect"):  # an Index: Arrow columns, without pandas
        import pyarrow.compute as pc

        with index.connect() as con:
            columns = [c for c in con.sql("SELECT * FROM instances LIMIT 0").columns if c in wanted]
            query = "SELECT " + ", ".join(f'"{c}"' for c in columns) + " FROM instances"
            if uids is not None:
                query += " WHERE StudyInstanceUID IN (" + ", ".join(f"'{u}'" for u in uids or [""]) + ")"
            arrow = con.sql(query).to_arrow_table()
        table = {c: pc.unique(arrow.column(c).drop_null()).to_pylist() for c in arrow.column_names}
    else:  # a slice of the instances table as a pandas DataFrame
        frame = index[[c for c in index.columns if c in wanted]]
        if uids is not None:
            frame = frame[frame["StudyInstanceUID"].isin(uids)]
        table = {c: frame[c].dropna().unique().tolist() for c in frame.columns}
    if uids is not None:
        missing = sorted(set(uids) - set(table.get("StudyInstanceUID", [])))
        if missing:
            raise ValueError(f"studies not in the index: {', '.join(missing)}")
    return table


def _column_values(table: dict[str, list[Any]], column: str) -> list[str]:
    out = []
    for cell in table.get(column, []):
        if isinstance(cell, date):  # dates, and the date of date-times (datetime, pandas Timestamp)
            out.append(cell.strftime("%Y%m%d"))
        else:
            text = str(cell).strip()
            if text:
                out.append(text)
    return sorted(out)


def _is_generic(value: str) -> bool:
    text = value.strip()
    return len(text) < 3 or text.casefold() in GENERIC_VALUES or not text.strip("0 .-/^,")


def _name_parts(name: str) -> tuple[str, str, str]:
    """Family, given and prefix of a person name group (PS3.5 6.2.1)."""
    parts = [p.strip() for p in name.split("=")[0].split("^")] + ["", "", "", ""]
    return parts[0], parts[1], parts[3]


def _name_spellings(name: str) -> list[str]:
    """A name as people write it: ``GIVEN FAMILY``, ``FAMILY, GIVEN``, ``FAMILY GIVEN``, ``FAMILY^GIVEN``.

    The ideographic and phonetic component groups of the name (PS3.5 6.2.1.2) are spellings too.
    """
    groups = name.split("=")
    out = [g.rstrip("^ ") for g in groups[1:] if g.strip("^ ")]
    family, given, prefix = _name_parts(groups[0])
    if family and given:
        out += [f"{family}^{given}", f"{given} {family}", f"{family}, {given}", f"{family} {given}",
                f"{given}^{family}"]
        if prefix:
            out.append(f"{prefix} {given} {family}")
    elif (family or given) and len(groups) > 1:
        out.append(family or given)
    return [s for s in dict.fromkeys(out) if s != name]


def _name_components(name: str) -> list[str]:
    family, given, _ = _name_parts(name)
    words = [w.strip(".,") for part in (family, given) for w in part.split()]
    return [w for w in words if len(w) >= 3]


# --- matching -----------------------------------------------------------------------------------------

_NAME_KINDS = frozenset(NAME_KEYWORDS)
_SEPARATED_DATE = ("{y}-{m}-{d}", "{y}.{m}.{d}", "{y}/{m}/{d}", "{d}.{m}.{y}", "{d}/{m}/{y}", "{m}/{d}/{y}")
# Not a letter or digit before or after a text value (bytes and str patterns alike).
_BEFORE, _AFTER = r"(?<![^\W_])", r"(?![^\W_])"
_MIN_BYTES = 5  # shorter values are not byte-searched: they would hit pixel data by chance


def _category(value: PhiValue) -> str:
    if value.kind.endswith("UID") and _UID_SHAPE.fullmatch(value.value):
        return "uid"
    if (value.kind.endswith("Date") or value.kind.endswith("DateTime")) and _parse_date(value.value):
        return "date"
    if value.kind in _NAME_KINDS or "^" in value.value:
        return "name"
    return "text"


def _parse_date(value: str) -> tuple[str, str, str] | None:
    digits = re.sub(r"[^0-9]", "", value)
    if len(digits) < 8 or not re.fullmatch(r"[0-9]{8}([0-9]+(\.[0-9]*)?)?([+-][0-9]{4})?", value.strip()):
        if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value.strip()):
            return None
    y, m, d = digits[:4], digits[4:6], digits[6:8]
    try:
        date(int(y), int(m), int(d))
    except ValueError:
        return None
    return y, m, d


def _key(text: str) -> str:
    """A text value as compared: NFC, case-folded, padding and trailing ``^`` removed, spaces collapsed."""
    text = unicodedata.normalize("NFC", text).strip(" \x00\t\r\n")
    text = text.rstrip("^ ")
    return re.sub(r"\s+", " ", text).casefold()


def _unaccented(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


_GERMAN = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "Ä": "AE", "Ö": "OE", "Ü": "UE", "ß": "ss"})


def _spellings(value: PhiValue) -> set[str]:
    """The str forms a text or name value may take."""
    forms = {value.value}
    if _category(value) == "name":
        forms.update(_name_spellings(value.value))
    for form in list(forms):  # without accents: MULLER^JOSE, MUELLER^JOSE
        forms.add(_unaccented(form))
        forms.add(_unaccented(form.translate(_GERMAN)))
    return {f for f in forms if f.strip()}


def _byte_forms(text: str) -> set[bytes]:
    """The encodings a text value may take in a file: UTF-8, Latin-1, JSON escapes; in several cases."""
    out = set()
    for variant in {text, text.upper(), text.lower(), text.title()}:
        out.add(variant.encode("utf-8"))
        try:
            out.add(variant.encode("latin-1"))
        except UnicodeEncodeError:
            pass
        if not variant.isascii():
            out.add(json.dumps(variant)[1:-1].encode("ascii"))
    return out


def _trie_alternatives(words: dict[Any, Any], kind: type) -> list[Any]:
    """Regular expressions (str or bytes) that together match any key of ``words``, as a trie.

    Python's ``re`` tries the branches of an alternation one by one at every position; a trie
    tries one branch per character, so hundreds of values cost about what one does. One
    alternative is returned per first character: each begins with a literal, which lets ``re``
    skip quickly over positions where no value can begin. ``words`` maps each word to what must
    not follow it (a lookahead, or an empty string); a longer word wins over its prefixes.
    """
    def lit(text: str) -> Any:
        return text.encode() if kind is bytes else text

    root: dict = {}
    for word, ahead in sorted(words.items()):
        node = root
        for i in range(len(word)):
            node = node.setdefault(word[i:i + 1], {})
        node[None] = ahead

    def emit(node: dict) -> Any:
        branches = [re.escape(unit) + emit(child) for unit, child in sorted(
            ((u, c) for u, c in node.items() if u is not None), key=lambda uc: uc[0])]
        if None in node:  # a word ends here: its lookahead, tried after the longer words
            branches.append(lit(node[None]))
        if len(branches) == 1:
            return branches[0]
        return lit("(?:") + lit("|").join(branches) + lit(")")

    return [re.escape(unit) + emit(child) for unit, child in sorted(root.items())]


# What must not come just before or after a value found in bytes (which are searched lower-cased).
_BYTES_AHEAD = {"text": "(?![0-9a-z])", "compact": "", "separated": "(?![0-9])", "uid": "(?![0-9])"}
_BYTES_BEHIND = {"text": b"0123456789abcdefghijklmnopqrstuvwxyz", "compact": b"0123456789",
                 "separated": b"0123456789", "uid": b"0123456789."}
# UIDs begin with 0, 1 or 2 and a dot (PS3.5 9.1, ISO/IEC 8824 root arcs).
_GAP = 256  # bytes between two runs searched in one call rather than two
#: Coding schemes of standards bodies (PS3.16 Table 8-1): the Code Value and Code Meaning of one of
#: their codes are standard terms, so a name found inside one ("Person Observer Name", "Filters")
#: is vocabulary, not a leak. Local schemes (99..., L) are searched like any text.
STANDARD_CODING_SCHEMES = frozenset({
    "DCM", "SCT", "SRT", "SNM3", "LN", "UCUM", "FMA", "RADLEX", "NCIt", "MDC", "UMLS", "ACR", "I10", "I9C",
    "ICD10PCS", "NEU", "BARI", "NCDR", "HPC", "ISO3166_1", "ISO639_1", "ISO639_2",
})
_CODING_SCHEME_DESIGNATOR = 0x00080102
_CODE_TEXT = frozenset({0x00080100, 0x00080104, 0x00080119, 0x00080120})  # values and meanings
_UID_BYTES = [rb"0\.[0-9]+(?:\.[0-9]+)*", rb"1\.[0-9]+(?:\.[0-9]+)*", rb"2\.[0-9]+(?:\.[0-9]+)*"]


class _Matcher:
    """The values of one verification, compiled for the three looks."""

    def __init__(self, phi: Sequence[PhiValue]) -> None:
        self.values = list(phi)
        self.lookup: dict[str, PhiValue] = {}  # _key(text) -> value, for the elements look
        self.components: set[str] = set()  # keys that are one component of a name
        self.uids: dict[str, PhiValue] = {}
        self.byte_map: dict[bytes, tuple[PhiValue, str]] = {}  # lower-cased bytes -> (value, class)
        self.text_map: dict[str, PhiValue] = {}  # lower-cased str -> value
        text_str: dict[str, dict[str, str]] = {"text": {}, "compact": {}, "separated": {}}

        def add(text: str, value: PhiValue, category: str, forms: Iterable[bytes]) -> None:
            self.lookup.setdefault(_key(text), value)
            self.text_map.setdefault(text.lower(), value)
            text_str[category][text.lower()] = {"text": _AFTER, "compact": "",
                                                "separated": r"(?![0-9])"}[category]
            for form in forms:
                if len(form) >= _MIN_BYTES:
                    self.byte_map.setdefault(form.lower(), (value, category))

        for value in self.values:
            category = _category(value)
            if category == "uid":
                uid = value.value.strip()
                self.uids.setdefault(uid, value)
                if uid[:2] not in ("0.", "1.", "2."):  # not caught by _UID_BYTES: searched as it is
                    self.byte_map.setdefault(uid.encode(), (value, "uid"))
            elif category == "date":
                y, m, d = _parse_date(value.value)  # type: ignore[misc]
                add(f"{y}{m}{d}", value, "compact", [f"{y}{m}{d}".encode()])
                for form in _SEPARATED_DATE:
                    text = form.format(y=y, m=m, d=d)
                    add(text, value, "separated", [text.encode()])
            else:
                if category == "name" and "^" not in value.value and " " not in value.value.strip():
                    self.components.add(_key(value.value))
                for text in _spellings(value):
                    add(text, value, "text", _byte_forms(text))
        words = {form: _BYTES_AHEAD[category] for form, (_, category) in self.byte_map.items()}
        alternatives = _trie_alternatives(words, bytes) + (_UID_BYTES if self.uids else [])
        self.bytes_re = re.compile(b"|".join(alternatives or [b"(?!)"]))
        # Every byte a value's forms can hold (either case; UIDs: digits and dots) is 1 in this
        # table, others 0; a value found lies in a run of such bytes at least as long as the
        # shortest form (a UID-shaped token counts only when it begins with a study's UID).
        in_value = {byte for form in self.byte_map for byte in form}
        if self.uids:
            in_value.update(b"0123456789.")
        in_value |= {byte - 32 for byte in in_value if 0x61 <= byte <= 0x7A}
        self._in_value = bytes(byte in in_value for byte in range(256))
        lengths = [len(form) for form in self.byte_map] + [len(uid) for uid in self.uids]
        self._run = b"\x01" * min(lengths or [1])
        branches = []
        for category, behind in (("text", _BEFORE), ("compact", "(?<![0-9])"), ("separated", "(?<![0-9])")):
            if text_str[category]:
                branches.append(behind + "(?:" + "|".join(_trie_alternatives(text_str[category], str)) + ")")
        if self.uids:
            branches.append(r"(?<![0-9.])[0-9]+(?:\.[0-9]+)+")
        self.text_re = re.compile("|".join(branches or ["(?!)"]), re.IGNORECASE)

    def uid(self, token: str) -> PhiValue | None:
        """The study UID ``token`` is, or begins with (``<uid>.<more>``)."""
        if not self.uids:
            return None
        hit = self.uids.get(token)
        while hit is None and "." in token:
            token = token.rsplit(".", 1)[0]
            hit = self.uids.get(token)
        return hit

    def search_bytes(self, data: bytes) -> Iterator[tuple[int, PhiValue]]:
        """(offset, value) of each value in ``data``: one regular expression over every stretch
        of ``data`` that could hold one.

        A value's bytes all come from a small set (its letters, digits and punctuation), so a
        value lies inside a run of such bytes at least as long as its shortest form. Those runs
        are found with ``bytes.translate`` and ``bytes.find`` (C speed: most of an image's pixel
        data holds none), and the expression runs over each, with the byte before and after it,
        which its look-ahead and the look-behind check need: a match cannot cross a byte outside
        the set, so each stretch gives what one pass over all of ``data`` would. The stretches
        are lower-cased first (ASCII letters only, same length), so the expression holds
        lower-case literals and no case-insensitive flag, which would make ``re`` test every
        position; values with other letters are in it in several cases.
        """
        for first, end in self._stretches(data):
            base = max(0, first - 1)
            lowered = data[base:end + 1].lower()
            for match in self.bytes_re.finditer(lowered):
                found, start = match.group(), match.start()
                hit = self.byte_map.get(found)
                if hit is not None:
                    value, category = hit
                else:
                    value, category = self.uid(found.decode("ascii")), "uid"
                # start is 0 only at the start of data: elsewhere lowered[0] is the byte before
                if value is not None and (start == 0 or lowered[start - 1] not in _BYTES_BEHIND[category]):
                    yield base + start, value

    def _stretches(self, data: bytes) -> list[list[int]]:
        """[start, end) of each run of bytes a value can hold, long enough for one; runs less than
        :data:`_GAP` apart are joined (one search of the bytes between costs less than a call)."""
        flags = data.translate(self._in_value)
        run = self._run
        stretches: list[list[int]] = []
        start = flags.find(run)
        while start >= 0:
            end = flags.find(b"\x00", start)
            if end < 0:
                end = len(flags)
            if stretches and start - stretches[-1][1] <= _GAP:
                stretches[-1][1] = end
            else:
                stretches.append([start, end])
            start = flags.find(run, end)
        return stretches

    def search_text(self, text: str) -> Iterator[tuple[int, int, PhiValue]]:
        """(start, end, value) of each value in a str (a file or folder name, a table cell)."""
        text = unicodedata.normalize("NFC", text)
        for match in self.text_re.finditer(text):
            found = match.group()
            value = self.text_map.get(found.lower())
            if value is None and found[:1].isdigit():
                value = self.uid(found)
            if value is not None:
                yield match.start(), match.end(), value

    def mask_text(self, text: str) -> str:
        """``text`` with every value in it masked."""
        text = unicodedata.normalize("NFC", text)
        out, last = [], 0
        for start, end, _ in self.search_text(text):
            out.append(text[last:start] + mask(text[start:end]))
            last = end
        return "".join(out) + text[last:]

    def match_value(self, text: str, vr: str) -> PhiValue | None:
        """The value an element's (decoded, single) value is: whole, as a date, a UID or a name part."""
        key = _key(text)
        if not key:
            return None
        hit = self.lookup.get(key)
        if hit is not None and not (vr == "CS" and key in self.components):
            return hit
        if _UID_SHAPE.fullmatch(key):
            hit = self.uid(key)
            if hit is not None:
                return hit
        if vr == "DT" and len(key) >= 8:
            hit = self.lookup.get(key[:8])
            if hit is not None and _category(hit) == "date":
                return hit
        if vr in ("PN", "UN") or (vr not in ("CS", "AE") and "^" in key):
            for group in key.split("="):
                group = group.rstrip("^ ")
                hit = self.lookup.get(group)
                if hit is not None:
                    return hit
                for component in group.split("^"):
                    for word in {component.strip(), *component.split()}:
                        hit = self.lookup.get(word.strip(" .,"))
                        if hit is not None:
                            return hit
        return None


# --- the export ---------------------------------------------------------------------------------------

def verify_export(
    export: str | os.PathLike,
    phi: Sequence[PhiValue],
    *,
    workers: int | None = None,
    looks: Collection[str] = LOOKS,
) -> list[Finding]:
    """Look for identifying values in every file and name of an export.

    Three independent looks, each of which alone would catch most leaks:

    1. **names**: each folder and file name (and the export's own name), case-insensitively;
       names in their spellings, dates also as ``YYYY-MM-DD`` (and ``DD.MM.YYYY``, ...), UIDs
       also as the beginning of a longer UID.
    2. **bytes**: the raw bytes of every file (DICOM or not: the manifest, notes), searched in one
       pass of one compiled regular expression holding every value in its plausible encodings
       (UTF-8, Latin-1, JSON escapes; names case-insensitively, with ``^`` as a space, in other
       orders, without accents), dates as ``YYYYMMDD`` and separated forms, UIDs whole or as the
       root of a longer UID. Values shorter than 5 bytes are left to the elements look (they
       would match pixel data by chance). A deflated data set is inflated and searched too.
    3. **elements**: every DICOM file parsed with pydicom (``force=True``, large values deferred)
       and walked through every item of every sequence at any depth, private elements, private
       sequences of unknown VR (UN), and the file meta information included; each text value is
       decoded with its Specific Character Set (and as UTF-8 and Latin-1) and compared, as a
       whole, case-insensitively, with the values (person names also group by group and
       component by component, date-times by their date, UIDs also as the root of a longer UID).

    Parquet files (a manifest) are also read cell by cell. A zip file given as ``export`` is
    verified member by member.

    Parameters
    ----------
    export : str or path-like
        The export folder (or zip archive, or a single file).
    phi : sequence of PhiValue
        The original identifying values (:func:`phi_values`).
    workers : int, optional
        Processes reading files (default: the number of CPUs; 1 reads in this process). Fewer are
        used for few files.
    looks : collection of str
        The looks to take, among ``"names"``, ``"bytes"`` and ``"elements"`` (default: all
        three). One look alone shows what it catches by itself; with ``"elements"`` off, the
        bytes look reports every occurrence, with no element to attribute it to.

    Returns
    -------
    list of Finding
        One per value found (a value seen by the bytes look in an element the elements look
        already reported is reported once), and one of kind ``"unverified"`` per file that could
        not be read or parsed; sorted by path. Empty when the export is clean.

    Raises
    ------
    FileNotFoundError
        When ``export`` does not exist.
    ValueError
        When ``workers`` is less than 1, or a look is not one of :data:`LOOKS`.
    """
    root = Path(export)
    if not root.exists():
        raise FileNotFoundError(f"{export} does not exist: nothing to verify")
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be at least 1, not {workers}")
    looks = tuple(looks)
    for look in looks:
        if look not in LOOKS:
            raise ValueError(f"{look!r} is not a look of verify_export; choose among {', '.join(LOOKS)}")
    matcher = _Matcher(phi)
    if not matcher.values or not looks:
        return []
    findings = _names_look(root, matcher) if "names" in looks else []
    if "bytes" not in looks and "elements" not in looks:
        return _sorted(findings)
    if root.is_dir():
        tasks = []
        for folder, dirs, files in os.walk(root):
            dirs.sort()
            for name in sorted(files):
                full = os.path.join(folder, name)
                tasks.append((os.path.relpath(full, root).replace(os.sep, "/"), full, None, looks))
    elif zipfile.is_zipfile(root):
        with zipfile.ZipFile(root) as archive:
            tasks = [(info.filename, str(root), info.filename, looks) for info in archive.infolist()
                     if not info.is_dir()]
    else:
        tasks = [("", str(root), None, looks)]
    findings.extend(_scan_all(tasks, matcher, workers))
    return _sorted(findings)


def _sorted(findings: Iterable[Finding]) -> list[Finding]:
    """Findings once each, by path, then place (numbers in order: "bytes at 2" before "bytes at 16")."""
    def natural(text: str) -> list[Any]:
        return [int(t) if t.isdigit() else t for t in re.split(r"([0-9]+)", text)]

    return sorted(set(findings), key=lambda f: (natural(f.path), natural(f.where), f.kind, f.shown))


def format_findings(findings: Sequence[Finding]) -> str:
    """The findings as text, one line each (``path: where: kind masked-value``), for the command line.

    Parameters
    ----------
    findings : sequence of Finding

    Returns
    -------
    str
        No identifying value appears in it in clear.
    """
    return "\n".join(str(f) for f in findings)


def _names_look(root: Path, matcher: _Matcher) -> list[Finding]:
    findings = []

    def check(rel: str, name: str, where: str) -> None:
        for _, _, value in matcher.search_text(name):
            findings.append(Finding(matcher.mask_text(rel), where, value.kind, mask(value.value)))

    check("", root.resolve().name, "folder name" if root.is_dir() else "file name")
    if root.is_dir():
        for folder, dirs, files in os.walk(root):
            dirs.sort()
            rel_folder = os.path.relpath(folder, root).replace(os.sep, "/")
            prefix = "" if rel_folder == "." else rel_folder + "/"
            for name in dirs:
                check(prefix + name, name, "folder name")
            for name in files:
                check(prefix + name, name, "file name")
    elif zipfile.is_zipfile(root):
        with zipfile.ZipFile(root) as archive:
            seen = set()
            for info in archive.infolist():
                parts = info.filename.rstrip("/").split("/")
                for depth, name in enumerate(parts, 1):
                    rel = "/".join(parts[:depth])
                    if rel in seen:
                        continue
                    seen.add(rel)
                    is_file = depth == len(parts) and not info.is_dir()
                    check(rel, name, "file name" if is_file else "folder name")
    return findings


_FILES_PER_WORKER = 128
_Task = tuple[str, str, str | None, tuple[str, ...]]  # relative path, file or zip, member, looks
_WORKER: dict[str, _Matcher] = {}


def _init_worker(phi: Sequence[PhiValue]) -> None:
    _WORKER["matcher"] = _Matcher(phi)


def _scan_task(task: _Task) -> list[Finding]:
    return _scan_file(task, _WORKER["matcher"])


def _scan_all(tasks: list[_Task], matcher: _Matcher, workers: int | None) -> list[Finding]:
    # A pool costs about 0.1 s to start: worth it from a few hundred files (measured on the sample).
    workers = max(1, min(workers or os.cpu_count() or 1, len(tasks) // _FILES_PER_WORKER))
    if workers == 1:
        return [f for task in tasks for f in _scan_file(task, matcher)]
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else None)
    with context.Pool(workers, _init_worker, (matcher.values,)) as pool:
        return [f for found in pool.imap_unordered(_scan_task, tasks, chunksize=4) for f in found]


def _scan_file(task: _Task, matcher: _Matcher) -> list[Finding]:
    rel, source, member, looks = task
    shown_path = matcher.mask_text(rel)
    try:
        if member is None:
            data = Path(source).read_bytes()
        else:
            with zipfile.ZipFile(source) as archive:
                data = archive.read(member)
    except (OSError, zipfile.BadZipFile, RuntimeError) as error:
        return [Finding(shown_path, f"could not read ({type(error).__name__})", "unverified", "")]
    return _FileScan(shown_path, data, matcher).run(rel or Path(source).name, looks)


# --- one file -----------------------------------------------------------------------------------------

_TEXT_VRS = frozenset({"AE", "CS", "DA", "DT", "LO", "LT", "PN", "SH", "ST", "UC", "UI", "UR", "UT", "UN"})
_NOT_COMPARED = frozenset({"AS", "DS", "IS", "TM"})  # numbers and times: no identifying value
_SINGLE_VALUED = frozenset({"LT", "ST", "UT", "UR"})
_ASCII_VRS = frozenset({"AE", "AS", "CS", "DA", "DS", "DT", "IS", "TM", "UI", "UR"})
_ITEM_TAG = b"\xfe\xff\x00\xe0"
_ITEM_TAG_BIG = b"\xff\xfe\xe0\x00"
_DEFLATED = b"1.2.840.10008.1.2.1.99"
_DEFER = 256 * 1024
_NEWLINE = b"\n"


@dataclass
class _Range:
    stream: str  # "file" or "inflated"
    start: int
    end: int
    tag: int
    chain: tuple[str, ...]  # the sequence items it lies in, outermost first
    flagged: set[str]
    vocabulary: bool = False  # the value or meaning of a code from a standard coding scheme

    @property
    def where(self) -> str:
        """The element, named for a finding (made only when one is reported)."""
        return _tag_name(self.tag) + "".join(f" in {c}" for c in reversed(self.chain))


class _FileScan:
    """The bytes and elements looks on one file's content."""

    def __init__(self, path: str, data: bytes, matcher: _Matcher) -> None:
        self.path, self.data, self.matcher = path, data, matcher
        self.findings: list[Finding] = []
        self.ranges: list[_Range] = []
        self.inflated: bytes | None = None

    def add(self, where: str, value: PhiValue) -> None:
        self.findings.append(Finding(self.path, where, value.kind, mask(value.value)))

    def run(self, name: str, looks: tuple[str, ...]) -> list[Finding]:
        is_dicom = _looks_like_dicom(self.data)
        if is_dicom:
            self.inflated = _inflate(self.data)
            if "elements" in looks:
                try:
                    self._elements()
                except Exception as error:  # noqa: BLE001 - any parse failure leaves the file unverified
                    self.findings.append(Finding(self.path, f"could not parse ({type(error).__name__})",
                                                 "unverified", ""))
        if "bytes" in looks:
            table_kinds = self._table() if name.lower().endswith(".parquet") else set()
            self._bytes("file", self.data, is_dicom, table_kinds)
            if self.inflated is not None:
                self._bytes("inflated", self.inflated, is_dicom, table_kinds)
        return self.findings

    # the bytes look
    def _bytes(self, stream: str, data: bytes, is_dicom: bool, skip_kinds: set[str]) -> None:
        reported: set[tuple[int, str]] = set()
        ranges = [r for r in self.ranges if r.stream == stream]
        for offset, value in self.matcher.search_bytes(data):
            if value.kind in skip_kinds:
                continue
            where = f"bytes at {offset}" + (" of the inflated data set" if stream == "inflated" else "")
            if is_dicom:
                inside = [r for r in ranges if r.start <= offset < r.end]
                if inside:
                    element = min(inside, key=lambda r: r.end - r.start)
                    if element.vocabulary:
                        continue  # a standard term (see STANDARD_CODING_SCHEMES)
                    if value.kind in element.flagged or (id(element), value.kind) in reported:
                        continue
                    reported.add((id(element), value.kind))
                    where += f" in {element.where}"
                elif stream == "file" and offset < 128 and data[128:132] == b"DICM":
                    where += " (preamble)"
            else:
                where += f" (line {data.count(_NEWLINE, 0, offset) + 1})"
            self.add(where, value)

    # Parquet cells (a manifest written as Parquet is compressed: its bytes do not show the values)
    def _table(self) -> set[str]:
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(pa.BufferReader(self.data))
        except Exception as error:  # noqa: BLE001
            self.findings.append(Finding(self.path, f"could not read as Parquet ({type(error).__name__})",
                                         "unverified", ""))
            return set()
        kinds = set()
        for name in table.column_names:
            column = table.column(name)
            try:
                cells = column.cast(pa.string()).to_pylist()
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                cells = [None if c is None else str(c) for c in column.to_pylist()]
            for row, cell in enumerate(cells):
                if cell:
                    for _, _, value in self.matcher.search_text(cell):
                        self.add(f"column {self.matcher.mask_text(name)} row {row}", value)
                        kinds.add(value.kind)
        return kinds

    # the elements look
    def _elements(self) -> None:
        import pydicom
        from pydicom.charset import convert_encodings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(io.BytesIO(self.data), force=True, defer_size=_DEFER)
            meta = getattr(ds, "file_meta", None)
            if meta is not None and len(meta):
                self._walk(meta, "file", 0, self.data, ["iso8859"], ())
            stream, buffer = ("inflated", self.inflated) if self.inflated is not None else ("file", self.data)
            self._walk(ds, stream, 0, buffer or b"", convert_encodings(None), ())

    def _walk(self, ds: Any, stream: str, base: int, buffer: bytes, encodings: list[str],
              chain: tuple[str, ...]) -> None:
        """Compare every text element of ``ds``, and walk into every sequence item.

        ``buffer`` holds the bytes the elements of ``ds`` were read from (their ``value_tell``
        counts from its start), which begin at offset ``base`` of ``stream``. ``Dataset._dict`` is
        read directly so that nothing is converted or read that is not needed (pixel data).
        """
        from pydicom.charset import convert_encodings
        from pydicom.dataelem import RawDataElement

        charset = ds._dict.get(0x00080005)
        if isinstance(charset, RawDataElement):
            raw_cs = _raw_value(charset, "CS", buffer)
            if raw_cs:
                names = [n.strip() for n in raw_cs.decode("latin-1").strip(" \x00").split("\\")]
                try:
                    encodings = convert_encodings(names)
                except (LookupError, ValueError):  # an unknown character set: UTF-8 and Latin-1 still apply
                    pass
        scheme = ds._dict.get(_CODING_SCHEME_DESIGNATOR)
        scheme = _raw_value(scheme, "SH", buffer) if isinstance(scheme, RawDataElement) else None
        standard_code = (scheme or b"").strip(b" \x00").decode("latin-1") in STANDARD_CODING_SCHEMES
        for tag in sorted(ds._dict):
            elem = ds._dict[tag]
            if not isinstance(elem, RawDataElement):  # a sequence of undefined length, read in line
                if elem.VR == "SQ":
                    for number, item in enumerate(elem.value, 1):
                        self._walk(item, stream, base, buffer, encodings,
                                   chain + (f"item {number} of {_tag_name(tag)}",))
                continue
            vr = elem.VR or _implicit_vr(ds, tag)
            value = _raw_value(elem, vr, buffer)
            start = base + elem.value_tell
            length = len(value) if value is not None else elem.length
            end = start + (0 if length == 0xFFFFFFFF else length)
            element = _Range(stream, start, end, tag, chain, set(), standard_code and tag in _CODE_TEXT)
            self.ranges.append(element)
            if not value or element.vocabulary:
                continue
            # An item tag opens a sequence's value (big endian in a big endian SQ; a UN holds
            # implicit VR little endian, PS3.5 6.2.2).
            item_tag = _ITEM_TAG_BIG if vr == "SQ" and not elem.is_little_endian else _ITEM_TAG
            if vr in ("SQ", "UN") and value.startswith(item_tag):
                items = _parse_sequence(value, elem, vr, encodings)
                if items is not None:
                    for number, item in enumerate(items, 1):
                        self._walk(item, stream, start, value, encodings,
                                   chain + (f"item {number} of {_tag_name(tag)}",))
                    continue
            if vr in _TEXT_VRS and vr not in _NOT_COMPARED and not (vr == "UN" and len(value) > _DEFER):
                self._compare(value, vr, encodings, element)

    def _compare(self, raw: bytes, vr: str, encodings: list[str], element: _Range) -> None:
        for text in _decodings(raw, vr, encodings):
            parts = [text] if vr in _SINGLE_VALUED else text.split("\\")
            for part in parts:
                value = self.matcher.match_value(part, vr)
                if value is not None and value.kind not in element.flagged:
                    element.flagged.add(value.kind)
                    self.add(element.where, value)


def _looks_like_dicom(data: bytes) -> bool:
    """A PS3.10 file, or a bare data set (little endian) beginning with group 0002 or 0008."""
    if data[128:132] == b"DICM":
        return True
    if len(data) < 8:
        return False
    group, element = struct.unpack("<HH", data[:4])
    return group in (0x0002, 0x0008) and element < 0x0100


def _inflate(data: bytes) -> bytes | None:
    """The inflated data set of a Deflated Explicit VR Little Endian file (PS3.5 A.5)."""
    if data[128:132] != b"DICM" or data[132:136] != b"\x02\x00\x00\x00":
        return None
    (length,) = struct.unpack("<I", data[140:144])
    if _DEFLATED not in data[144:144 + length]:
        return None
    try:
        return zlib.decompressobj(-zlib.MAX_WBITS).decompress(data[144 + length:])
    except zlib.error:
        return None


def _raw_value(elem: Any, vr: str, buffer: bytes) -> bytes | None:
    """The bytes of a raw element's value; a deferred one read from ``buffer`` unless binary."""
    if elem.value is not None:
        return elem.value
    if elem.length == 0xFFFFFFFF:
        return None
    start = elem.value_tell
    if vr == "UN" and buffer[start:start + 4] != _ITEM_TAG:
        return None  # a large value of unknown content: left to the bytes look
    if vr != "SQ" and vr not in _TEXT_VRS:
        return None  # a large binary value (pixel data): left to the bytes look
    return bytes(buffer[start:start + elem.length])


def _parse_sequence(value: bytes, elem: Any, vr: str, encodings: list[str]) -> list | None:
    from pydicom.values import convert_SQ

    implicit = True if vr == "UN" else elem.is_implicit_VR
    try:
        return list(convert_SQ(value, implicit, elem.is_little_endian if vr == "SQ" else True, encodings))
    except Exception:  # noqa: BLE001 - not a sequence after all: compared as text
        if vr == "UN":
            return None
        raise


def _implicit_vr(ds: Any, tag: int) -> str:
    from pydicom.datadict import dictionary_VR, private_dictionary_VR

    group, element = tag >> 16, tag & 0xFFFF
    if element == 0:
        return "UL"
    if group % 2:
        if 0x0010 <= element <= 0x00FF:
            return "LO"  # private creator
        creator = ds._dict.get((group << 16) | (element >> 8))
        if creator is not None and creator.value:
            name = (creator.value if isinstance(creator.value, str)
                    else creator.value.decode("latin-1")).strip(" \x00")
            try:
                return private_dictionary_VR(tag, name).split(" ")[0]
            except KeyError:
                return "UN"
        return "UN"
    try:
        return dictionary_VR(tag).split(" ")[0]
    except KeyError:
        return "UN"


def _tag_name(tag: int) -> str:
    from pydicom.datadict import keyword_for_tag

    group, element = tag >> 16, tag & 0xFFFF
    text = f"({group:04X},{element:04X})"
    if group % 2:
        return text + (" private creator" if 0x0010 <= element <= 0x00FF else " private")
    keyword = keyword_for_tag(tag)
    return f"{text} {keyword}" if keyword else text


def _decodings(raw: bytes, vr: str, encodings: list[str]) -> set[str]:
    """A text value decoded with its character set, and as UTF-8 and Latin-1."""
    from pydicom.charset import decode_bytes

    out = set()
    if vr not in _ASCII_VRS:
        try:
            delimiters = {0x5C, 0x3D, 0x5E} if vr == "PN" else {0x5C}
            out.add(decode_bytes(raw, encodings, delimiters))
        except Exception:  # noqa: BLE001, S110 - the other decodings below still apply
            pass
        try:
            out.add(raw.decode("utf-8"))
        except UnicodeDecodeError:
            pass
    out.add(raw.decode("latin-1"))
    return out
