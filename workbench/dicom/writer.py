"""Write a data set as a Part 10 file in Explicit VR Little Endian, copying untouched values as read.

pydicom's writer encodes every element through its value machinery. After an anonymizer
has changed a few elements of a header, most elements are still the raw bytes pydicom
read: this writer copies those as they are and asks pydicom to encode only the changed
ones (PS3.5 Section 7.1.2, explicit VR; sequences and items of undefined length, 7.5).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

from workbench.dicom.tree import Tree

if TYPE_CHECKING:  # pydicom is imported when a pydicom data set is written, not for a tree
    from pydicom.dataelem import DataElement
    from pydicom.dataset import Dataset

_LONG_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"})
_ITEM = struct.pack("<HHL", 0xFFFE, 0xE000, 0xFFFFFFFF)
_ITEM_END = struct.pack("<HHL", 0xFFFE, 0xE00D, 0)
_SEQUENCE_END = struct.pack("<HHL", 0xFFFE, 0xE0DD, 0)
_PADDING = {"UI": b"\x00", "OB": b"\x00", "UN": b"\x00"}
# Text VRs whose values pydicom keeps as str (PN is a PersonName, DS and IS are numbers).
_ASCII_TEXT_VRS = frozenset(
    {"AE", "AS", "CS", "DA", "DT", "LO", "LT", "SH", "ST", "TM", "UC", "UI", "UR", "UT"}
)


@lru_cache(maxsize=4096)
def _dictionary_vr(tag: int) -> str:
    from pydicom.datadict import dictionary_VR

    try:
        return dictionary_VR(tag).split(" or ")[0]
    except KeyError:
        return "UN"


def _header(tag: int, vr: str, length: int) -> bytes:
    if vr in _LONG_VRS:
        return struct.pack("<HH2sHL", tag >> 16, tag & 0xFFFF, vr.encode(), 0, length)
    return struct.pack("<HH2sH", tag >> 16, tag & 0xFFFF, vr.encode(), length)


def _ascii_text(element: DataElement) -> bytes | None:
    """The value of a text element holding only ASCII strings, encoded and padded; else None.

    These make up most of what an anonymizer changes (UIDs, dates, dummies, pseudonyms); ASCII is
    the same bytes in every character set a data set may declare (PS3.5 6.1.2.3), so no
    Specific Character Set is consulted. Anything else goes through pydicom's writer.
    """
    if element.VR not in _ASCII_TEXT_VRS:
        return None
    value = element.value
    if isinstance(value, str):
        text = value
    elif isinstance(value, Sequence) and all(isinstance(v, str) for v in value):  # MultiValue
        text = "\\".join(value)
    else:
        return None
    encoded = ascii_value(element.VR, text)
    return encoded if encoded is None or len(encoded) <= 0xFFFF or element.VR in _LONG_VRS else None


def ascii_value(vr: str, text: str) -> bytes | None:
    """``text`` as the value of a ``vr`` element, padded to even length (PS3.5 6.2); None unless ASCII."""
    if not text.isascii():
        return None
    encoded = text.encode("ascii")
    if len(encoded) % 2:
        encoded += b"\x00" if vr == "UI" else b" "
    return encoded


def _raw_element(out: bytearray, tag: int, vr: str, value: bytes) -> None:
    """Append an element whose value is already encoded (little endian), padded to even length."""
    if len(value) % 2:
        value += _PADDING.get(vr, b" ")
    if vr not in _LONG_VRS and len(value) > 0xFFFF:
        vr = "UN"  # too long for a short-length VR: keep the bytes, as UN (PS3.5 6.2.2)
    out += _header(tag, vr, len(value))
    out += value


def encode_tree(tree: Tree, out: bytearray) -> None:
    """Append a data set read by :func:`workbench.dicom.tree.read_tree` (little endian) to ``out``
    in Explicit VR Little Endian, tags in ascending order; sequences and items of undefined length.

    An element whose VR is None (read in implicit VR) gets its data dictionary VR (PS3.6),
    UN when the tag is unknown.
    """
    for tag in sorted(tree):
        vr, value = tree[tag]
        if vr == "SQ":
            out += _header(tag, "SQ", 0xFFFFFFFF)
            for item in value:
                out += _ITEM
                encode_tree(item, out)
                out += _ITEM_END
            out += _SEQUENCE_END
        else:
            _raw_element(out, tag, vr or _dictionary_vr(tag), value)


def part10_prefix(meta_group: bytes | bytearray) -> bytearray:
    """The preamble, ``DICM`` and the file meta group (PS3.10 7.1) from its encoded elements,
    with its group length."""
    out = bytearray(b"\x00" * 128 + b"DICM")
    out += _header(0x00020000, "UL", 4) + struct.pack("<L", len(meta_group)) + meta_group
    return out


def _encode(dataset: Dataset, out: bytearray, encodings: list[str]) -> None:
    from pydicom.dataelem import RawDataElement
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_data_element

    for tag in sorted(dataset.keys()):
        raw = dataset.get_item(tag)
        if isinstance(raw, RawDataElement) and raw.value is not None and raw.is_little_endian \
                and (raw.VR or _dictionary_vr(int(tag))) != "SQ":
            _raw_element(out, int(tag), raw.VR or _dictionary_vr(int(tag)), raw.value)
            continue
        element = dataset[tag]
        encoded = _ascii_text(element)
        if encoded is not None:
            out += _header(int(tag), element.VR, len(encoded))
            out += encoded
            continue
        if element.VR == "SQ":
            out += _header(int(tag), "SQ", 0xFFFFFFFF)
            for item in element.value or ():
                out += _ITEM
                _encode(item, out, encodings)
                out += _ITEM_END
            out += _SEQUENCE_END
            continue
        buffer = DicomBytesIO()
        buffer.is_little_endian, buffer.is_implicit_VR = True, False
        write_data_element(buffer, element, encodings)
        out += buffer.getvalue()


def encode_part10(dataset: Dataset) -> bytes:
    """``dataset`` as a Part 10 file in Explicit VR Little Endian, without Pixel Data's value.

    The file meta (PS3.10 Section 7.1) gets its group length computed, File Meta Information
    Version and Implementation Class UID when missing, and its Transfer Syntax UID changed from
    Implicit to Explicit VR Little Endian (an encapsulated syntax stays). Append the Pixel Data
    element's encoded bytes to complete an image.

    Raises
    ------
    ValueError
        When the file meta has no Media Storage SOP Class or Instance UID.
    """
    from pydicom.charset import convert_encodings
    from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian

    charset = dataset.get("SpecificCharacterSet") or "ISO_IR 6"
    encodings = convert_encodings([charset] if isinstance(charset, str) else list(charset))

    meta = dataset.file_meta
    if meta.get("TransferSyntaxUID") in (None, ImplicitVRLittleEndian):
        meta.TransferSyntaxUID = ExplicitVRLittleEndian  # what this writes
    missing = [k for k in ("MediaStorageSOPClassUID", "MediaStorageSOPInstanceUID") if not meta.get(k)]
    if missing:
        raise ValueError(f"the file meta lacks {', '.join(missing)} (PS3.10 Section 7.1)")
    if "FileMetaInformationVersion" not in meta:
        meta.FileMetaInformationVersion = b"\x00\x01"
    if "ImplementationClassUID" not in meta:
        meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    if "FileMetaInformationGroupLength" in meta:
        del meta.FileMetaInformationGroupLength  # computed below
    group = bytearray()
    _encode(meta, group, encodings)
    out = part10_prefix(group)
    _encode(dataset, out, encodings)
    return bytes(out)
