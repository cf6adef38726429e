"""De-identify a file from its encoded bytes, without building a pydicom data set.

The exporter spends most of its time on headers: pydicom makes a Python object of every
element, the anonymizer converts the values it looks at, and the writer encodes them again.
This module applies the same :class:`~workbench.deid.anonymize.Anonymizer` to the data set
as read by :mod:`workbench.dicom.tree` (tag -> VR and raw bytes): elements the profile keeps
are copied as they are, the others are replaced by values encoded here. The result is the
same file, byte for byte, as :meth:`Anonymizer.anonymize` followed by
:func:`workbench.dicom.writer.encode_part10` (the tests compare both on every file they have).

Only plain files take this path: little endian, not deflated, text to read or change in
ASCII (the same bytes in every character set, PS3.5 6.1.2.3), Latin-1 or UTF-8, no private
element named safe to keep (Retain Safe Private Option).
For anything else :func:`anonymize_encoded` returns None and the caller uses pydicom.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

from workbench.deid.anonymize import (
    _BINARY_SIZE,
    _DUMMIES,
    _PATIENT_ID,
    _PATIENT_NAME,
    CODE_ITEM_TAGS,
    IDENTIFIER_TAGS,
    META_REMOVED,
    Anonymizer,
    _dictionary_vr,
    add_identifying,
    item_action,
    longest_first,
    replaced_inside,
    resolved,
)
from workbench.dicom.header import Header, HeaderError
from workbench.dicom.tree import Tree, read_dataset
from workbench.dicom.writer import ascii_value, encode_tree, part10_prefix

_SOP_CLASS_UID = 0x00080016
_SOP_INSTANCE_UID = 0x00080018
_META_GROUP_LENGTH = 0x00020000
_META_VERSION = 0x00020001
_MEDIA_SOP_CLASS = 0x00020002
_MEDIA_SOP_INSTANCE = 0x00020003
_TRANSFER_SYNTAX = 0x00020010
_IMPLEMENTATION_CLASS = 0x00020012
_IMPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2"
_EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"
# Text VRs whose values pydicom splits at backslashes before trimming each (the others are
# trimmed whole, then split; ST, LT and UT hold one value).
_SPLIT_FIRST_VRS = frozenset({"SH", "LO", "UC"})
_SINGLE_VALUE_VRS = frozenset({"ST", "LT", "UT"})
_SPECIFIC_CHARACTER_SET = 0x00080005
# The VRs whose text the Specific Character Set applies to (PS3.5 6.1.2.3; pydicom decodes only these).
_CHARACTER_SET_VRS = frozenset({"SH", "LO", "ST", "LT", "UC", "UT", "PN"})
# Specific Character Set values whose text is read here, with the codec pydicom uses for each.
_CODECS = {b"": "latin_1", b"ISO_IR 6": "latin_1", b"ISO_IR 100": "latin_1", b"ISO_IR 192": "utf_8"}


class _NotPlain(Exception):
    """Something pydicom must handle: the caller falls back to it."""


def anonymize_encoded(anonymizer: Anonymizer, data: bytes, header: Header) -> bytearray | None:
    """The de-identified file ``data`` up to (without) its Pixel Data element, or None.

    Parameters
    ----------
    anonymizer : Anonymizer
        The profile, key and pseudonyms to apply.
    data : bytes
        The whole file (Part 10, or a bare data set).
    header : Header
        Its header, from :func:`workbench.dicom.header.read_header`.

    Returns
    -------
    bytearray or None
        The preamble, file meta and data set in Explicit VR Little Endian; None when the file
        is not plain (see the module's docstring) and pydicom has to do the work.
    """
    if header.deflated or not header.little_endian:
        return None
    if anonymizer.safe_private and "retain_safe_private" in anonymizer.profile.options:
        return None  # private elements to keep: pydicom reads them (and the sequences in UN)
    try:
        tree = read_dataset(data, header)
        walk = _Walk(anonymizer, tree)
        dataset = walk.top()
        meta = _file_meta(anonymizer, header, tree)
    except (_NotPlain, HeaderError):
        return None
    out = part10_prefix(_encoded(meta))
    encode_tree(dataset, out)
    return out


def _encoded(tree: Tree) -> bytearray:
    out = bytearray()
    encode_tree(tree, out)
    return out


class _Walk:
    """The profile applied to one data set's tree (see ``Anonymizer._walk``, which it mirrors)."""

    __slots__ = ("anonymizer", "tree", "pseudonym", "shift", "_phi", "_codec")

    def __init__(self, anonymizer: Anonymizer, tree: Tree) -> None:
        self.anonymizer, self.tree, self._phi, self._codec = anonymizer, tree, None, None
        patient_id = self.single(tree.get(_PATIENT_ID), "LO")
        patient_name = self.single(tree.get(_PATIENT_NAME), "PN")
        self.pseudonym = self.encode("PN", anonymizer.patient(patient_id, patient_name))
        self.shift: dt.timedelta = anonymizer.date_shift(patient_id or patient_name)

    # --- text in the data set's character set -------------------------------------------------------

    def codec(self) -> str:
        """The Python codec of the data set's text, when it is one this path reads as pydicom does:
        the default repertoire, ISO_IR 100 (Latin-1) or ISO_IR 192 (UTF-8), the same in every item."""
        if self._codec is None:
            element = self.tree.get(_SPECIFIC_CHARACTER_SET)
            codec = _CODECS.get(element[1].rstrip(b" \x00") if element else b"")  # as pydicom trims
            if codec is None or _nested_character_set(self.tree):
                raise _NotPlain("this character set is decoded by pydicom")
            self._codec = codec
        return self._codec

    def strings(self, value: bytes, vr: str) -> list[str]:
        """The values of a text element as pydicom reads them (trailing spaces and NULs trimmed)."""
        if value.isascii() or vr not in _CHARACTER_SET_VRS:
            return _strings(value, vr)  # pydicom reads the other VRs in its default repertoire
        if b"\x1b" in value:
            raise _NotPlain("escape sequences switch character sets: pydicom reads them")
        try:
            return _split(value.decode(self.codec()), vr)
        except UnicodeDecodeError:
            raise _NotPlain("text that does not decode: pydicom replaces what it cannot read") from None

    def encode(self, vr: str, text: str) -> bytes:
        """``text`` as the value of a ``vr`` element in the data set's character set, padded."""
        if text.isascii():
            return _ascii(vr, text)
        if vr not in _CHARACTER_SET_VRS:
            raise _NotPlain("non-ASCII text in a VR pydicom writes in its default repertoire")
        try:
            encoded = text.encode(self.codec())
        except UnicodeEncodeError:
            raise _NotPlain("a new value the character set cannot hold (pydicom replaces it)") from None
        return encoded + b" " if len(encoded) % 2 else encoded

    def single(self, element: tuple | None, vr: str) -> str:
        """PatientID or PatientName as one string, '' when absent."""
        if element is None:
            return ""
        if element[0] == "SQ":
            raise _NotPlain("a sequence where a name or ID belongs")
        strings = self.strings(element[1], vr)
        if len(strings) > 1:
            raise _NotPlain("several patient IDs or names")
        return strings[0]

    # --- the walk -----------------------------------------------------------------------------------

    def top(self) -> Tree:
        """The de-identified data set, marked as such (PS3.15 E.1.1)."""
        out = self.walk(self.tree, None)
        charset = out.get(_SPECIFIC_CHARACTER_SET)
        if charset is not None and charset[0] != "SQ":  # the writer reads it, as pydicom trims it
            out[_SPECIFIC_CHARACTER_SET] = ("CS", _ascii("CS", "\\".join(_strings(charset[1], "CS"))))
        out[_PATIENT_ID] = ("LO", self.pseudonym)
        out[_PATIENT_NAME] = ("PN", self.pseudonym)
        out.update(_marks(self.anonymizer))
        return out

    def walk(self, tree: Tree, inherited: str | None) -> Tree:
        """``tree`` with the profile applied; ``inherited`` is the D or C of an enclosing sequence."""
        out: Tree = {}
        action_of = self.anonymizer.action
        for tag, (vr, value) in tree.items():
            group = tag >> 16
            if group & 1 or (tag & 0xFFFF == 0 and group != 0x0002):
                continue  # private (no safe private kept here), group lengths
            action = action_of(tag)
            if action == "K":  # a kept sequence: its items are de-identified all the same
                out[tag] = ("SQ", [self.walk(i, inherited) for i in value]) if vr == "SQ" else (vr, value)
                continue
            if action == "X" and resolved(action, vr, tag, tree is self.tree) == "X":
                continue
            if vr == "UN" and _dictionary_vr(tag) not in (None, "UN"):
                raise _NotPlain("pydicom gives a UN element its dictionary VR when it reads it")
            vr = vr or _dictionary_vr(tag)
            if action is None:
                if vr == "SQ":
                    out[tag] = ("SQ", [self.walk(item, inherited) for item in value])
                elif inherited and replaced_inside(inherited, tag, vr):
                    self.apply(out, tag, vr, value, inherited[0], tree is self.tree)
                else:
                    out[tag] = (vr, value)
                continue
            self.apply(out, tag, vr, value, action, tree is self.tree)
        return out

    def apply(self, out: Tree, tag: int, vr: str | None, value, action: str, top: bool) -> None:
        action = resolved(action, vr, tag, top)
        if action == "K":
            out[tag] = (vr, value)
            return
        if action == "X":
            return
        if vr is None:
            raise _NotPlain(f"({tag >> 16:04X},{tag & 0xFFFF:04X}) has no known VR")
        if tag in (_PATIENT_NAME, _PATIENT_ID):
            out[tag] = (vr, self.pseudonym)
        elif action == "Z" and vr != "SQ":
            out[tag] = (vr, bytes(_BINARY_SIZE[vr]) if vr in _BINARY_SIZE else b"")
        elif action == "D" and vr not in ("SQ", "UI"):
            dummy = bytes(_BINARY_SIZE[vr]) if vr in _BINARY_SIZE else _ascii(vr, _DUMMIES.get(vr, ""))
            out[tag] = (vr, dummy)
        elif vr == "SQ":
            if action == "Z":
                out[tag] = ("SQ", [])
            else:  # D, C, U on a sequence: keep its structure, de-identify what is inside
                out[tag] = ("SQ", [self.walk(item, item_action(action, _is_code(item))) for item in value])
        elif action == "C" and vr != "UI":
            out[tag] = (vr, self.clean(vr, value))
        else:  # U, or D and C on a UI
            out[tag] = (vr, self.uids(vr, value))

    def clean(self, vr: str, value: bytes) -> bytes:
        if vr == "TM" or vr in _BINARY_SIZE or vr in ("DS", "IS", "AS"):
            return value  # kept as read, like the numbers and times the pydicom path keeps
        texts = self.strings(value, vr)
        cleaned = self.anonymizer.clean_text(vr, texts, self.shift, self.phi)
        return self.encode(vr, "\\".join(cleaned))

    def uids(self, vr: str, value: bytes) -> bytes:
        if "retain_uids" in self.anonymizer.profile.options:
            return value
        texts = self.strings(value, vr)
        if texts == [""]:
            return b""
        return _ascii(vr, "\\".join(self.anonymizer.uid(text) for text in texts))

    def phi(self) -> list[str]:
        """The person names and identifiers of the whole data set, gathered when first needed."""
        if self._phi is None:
            values: set[str] = set()
            self._identifying(self.tree, values)
            self._phi = longest_first(values)
        return self._phi

    def _identifying(self, tree: Tree, values: set[str]) -> None:
        for tag, (vr, value) in tree.items():
            vr = vr or _dictionary_vr(tag)
            if vr == "SQ":
                for item in value:
                    self._identifying(item, values)
            elif (vr == "PN" or tag in IDENTIFIER_TAGS) and vr != "UN":
                strings = self.strings(value, vr)
                if strings != [""]:
                    add_identifying(values, vr, strings)
            elif tag in IDENTIFIER_TAGS:
                raise _NotPlain("an identifier read as UN")


def _strings(value: bytes, vr: str) -> list[str]:
    """The values of an ASCII text element as pydicom reads them (trailing spaces and NULs trimmed)."""
    if not value.isascii() or b"\x1b" in value:
        raise _NotPlain("text outside ASCII is decoded by pydicom, with the character set")
    return _split(value.decode("ascii"), vr)


def _split(text: str, vr: str) -> list[str]:
    if vr == "PN":  # pydicom drops empty component groups at the end of a name ("DOE^JOHN=")
        return [name.rstrip("=") for name in text.rstrip("\x00 ").split("\\")]
    if vr in _SINGLE_VALUE_VRS:
        return [text.rstrip("\x00 ")]
    if vr in _SPLIT_FIRST_VRS:
        return [part.rstrip("\x00 ") for part in text.split("\\")]
    return text.rstrip("\x00 ").split("\\")


def _is_code(item: Tree) -> bool:
    return any(tag in item for tag in CODE_ITEM_TAGS)


def _nested_character_set(tree: Tree, top: bool = True) -> bool:
    """Whether an item of the data set declares its own Specific Character Set (PS3.5 6.1.2.4)."""
    if not top and _SPECIFIC_CHARACTER_SET in tree:
        return True
    return any(
        _nested_character_set(item, False) for vr, value in tree.values() if vr == "SQ" for item in value
    )


def _ascii(vr: str, text: str) -> bytes:
    encoded = ascii_value(vr, text)
    if encoded is None:
        raise _NotPlain("a new value outside ASCII")
    return encoded


_MARK_TAGS = {
    "PatientIdentityRemoved": 0x00120062, "DeidentificationMethod": 0x00120063,
    "DeidentificationMethodCodeSequence": 0x00120064, "LongitudinalTemporalInformationModified": 0x00280303,
}


@lru_cache(maxsize=8)
def _marks(anonymizer: Anonymizer) -> Tree:
    """PatientIdentityRemoved, DeidentificationMethod (and its codes), LongitudinalTemporal-
    InformationModified, encoded once per anonymizer (the same for every file of an export)."""
    tree: Tree = {}
    for keyword, value in anonymizer.marks().items():
        tag = _MARK_TAGS[keyword]
        if keyword == "DeidentificationMethodCodeSequence":
            items = [{0x00080100: ("SH", _ascii("SH", code)), 0x00080102: ("SH", _ascii("SH", scheme)),
                      0x00080104: ("LO", _ascii("LO", meaning))} for code, scheme, meaning in value]
            tree[tag] = ("SQ", items)
        elif keyword == "DeidentificationMethod":
            tree[tag] = ("LO", _ascii("LO", "\\".join(value)))
        else:
            tree[tag] = ("CS", _ascii("CS", value))
    return tree


def _file_meta(anonymizer: Anonymizer, header: Header, tree: Tree) -> Tree:
    """The file meta of the copy (PS3.10 7.1), as ``exporter`` and ``encode_part10`` make it."""
    meta: Tree = {tag: element for tag, element in header.meta.items()
                  if tag != _META_GROUP_LENGTH and tag not in META_REMOVED}
    syntax = _strings(meta[_TRANSFER_SYNTAX][1], "UI")[0] if _TRANSFER_SYNTAX in meta else None
    if syntax in (None, _IMPLICIT_VR_LITTLE_ENDIAN):
        meta[_TRANSFER_SYNTAX] = ("UI", _ascii("UI", _EXPLICIT_VR_LITTLE_ENDIAN))
    for source, target in ((_SOP_CLASS_UID, _MEDIA_SOP_CLASS), (_SOP_INSTANCE_UID, _MEDIA_SOP_INSTANCE)):
        if source in tree:
            meta[target] = ("UI", _ascii("UI", "\\".join(_strings(tree[source][1], "UI"))))
    media = (_MEDIA_SOP_CLASS, _MEDIA_SOP_INSTANCE)
    if any(not meta.get(tag, (None, b""))[1].strip(b"\x00 ") for tag in media):
        raise _NotPlain("the file meta lacks a Media Storage SOP UID: pydicom's writer says so")
    if "retain_uids" not in anonymizer.profile.options:
        original = "\\".join(_strings(meta[_MEDIA_SOP_INSTANCE][1], "UI"))
        meta[_MEDIA_SOP_INSTANCE] = ("UI", _ascii("UI", anonymizer.uid(original)))
    meta.setdefault(_META_VERSION, ("OB", b"\x00\x01"))
    if _IMPLEMENTATION_CLASS not in meta:
        from pydicom.uid import PYDICOM_IMPLEMENTATION_UID  # what encode_part10 writes

        meta[_IMPLEMENTATION_CLASS] = ("UI", _ascii("UI", PYDICOM_IMPLEMENTATION_UID))
    return meta
