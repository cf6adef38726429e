"""Fast reading of the data elements a caller asks for from a DICOM file header.

pydicom's reader builds a Python object for every element of the header; the
crawler only needs a few dozen top-level attributes, so this module walks the
encoded header (PS3.5 Section 7) with :mod:`struct`, skips what it does not
need by length, stops at the first tag past the last one wanted, and never
reads Pixel Data. Values come back as raw bytes with their VR, to be turned
into Python values by :mod:`workbench.dicom.values`.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import BinaryIO

#: Transfer syntaxes whose data set is encoded in Implicit VR Little Endian.
IMPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2"
#: Explicit VR Big Endian (retired, still met in old archives).
EXPLICIT_VR_BIG_ENDIAN = "1.2.840.10008.1.2.2"
#: Deflated Explicit VR Little Endian: the data set after the file meta is deflated.
DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1.99"
#: Media Storage Directory Storage: a DICOMDIR, not an instance.
MEDIA_STORAGE_DIRECTORY_STORAGE = "1.2.840.10008.1.3.10"

# VRs with a 2-byte reserved field and a 4-byte length in explicit VR (PS3.5 Table 7.1-1).
_LONG_VRS = frozenset(
    {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
)
_SHORT_VRS = frozenset(
    {b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FD", b"FL", b"IS", b"LO", b"LT",
     b"PN", b"SH", b"SL", b"SS", b"ST", b"TM", b"UI", b"UL", b"US"}
)
_VALID_VRS = _LONG_VRS | _SHORT_VRS
_UNDEFINED = 0xFFFFFFFF
_ITEM = 0xFFFEE000
_ITEM_DELIMITER = 0xFFFEE00D
_SEQUENCE_DELIMITER = 0xFFFEE0DD
_PIXEL_DATA = 0x7FE00010
_FIRST_READ = 8192
_MAX_DEPTH = 32


class HeaderError(ValueError):
    """A file whose header cannot be read.

    Attributes
    ----------
    kind : str
        Short class of the problem: ``empty``, ``not_dicom``, ``truncated``,
        ``bad_vr`` or ``bad_length``.
    """

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass
class Header:
    """The wanted elements of one DICOM file, undecoded.

    Attributes
    ----------
    elements : dict[int, tuple[str, bytes]]
        Tag -> (VR, value bytes) for each wanted top-level element present.
    meta : dict[int, tuple[str, bytes]]
        Every File Meta Information element (group 0002) found.
    little_endian : bool
        Byte order of the data set.
    implicit_vr : bool
        Whether the data set was encoded with implicit VR.
    part10 : bool
        Whether the file has the 128-byte preamble and ``DICM`` prefix (PS3.10 Section 7.1).
    deflated : bool
        Whether the data set was deflated (positions are then in the inflated bytes).
    pixel_data : tuple[int, int, str or None] or None
        Where Pixel Data's value starts, its length (0xFFFFFFFF when encapsulated) and
        its VR, when asked for with ``locate_pixel_data``.
    """

    elements: dict[int, tuple[str, bytes]] = field(default_factory=dict)
    meta: dict[int, tuple[str, bytes]] = field(default_factory=dict)
    little_endian: bool = True
    implicit_vr: bool = False
    part10: bool = True
    deflated: bool = False
    pixel_data: tuple[int, int, str | None] | None = None

    @property
    def transfer_syntax_uid(self) -> str | None:
        """The Transfer Syntax UID (0002,0010), or None when the file has no file meta."""
        return _uid(self.meta.get(0x00020010))

    @property
    def media_storage_sop_class_uid(self) -> str | None:
        """The Media Storage SOP Class UID (0002,0002), or None."""
        return _uid(self.meta.get(0x00020002))


def _uid(item: tuple[str, bytes] | None) -> str | None:
    if item is None:
        return None
    return item[1].rstrip(b"\x00 ").decode("ascii", "replace") or None


class _Source:
    """A byte buffer that grows from a file on demand."""

    __slots__ = ("fp", "data", "eof")

    def __init__(self, fp: BinaryIO, first: bytes) -> None:
        self.fp = fp
        self.data = first
        self.eof = len(first) < _FIRST_READ

    def need(self, end: int) -> bool:
        """Make sure bytes up to ``end`` are buffered; False when the file is shorter."""
        data = self.data
        if end <= len(data):
            return True
        if self.eof:
            return False
        more = self.fp.read(max(end - len(data), len(data)))
        if len(more) < max(end - len(data), len(data)):
            self.eof = True
        self.data = data + more
        return end <= len(self.data)


def read_header(fp: BinaryIO, wanted: Mapping[int, str], locate_pixel_data: bool = False) -> Header:
    """Read the wanted top-level elements of a DICOM file.

    Parameters
    ----------
    fp : BinaryIO
        The file, opened in binary mode at its start.
    wanted : Mapping[int, str]
        Tags (``group << 16 | element``) to return, each with its dictionary VR (PS3.6),
        used for implicit VR and UN values. Reading stops at the first top-level tag
        greater than the largest of them, and always before Pixel Data.
    locate_pixel_data : bool
        Read on to the Pixel Data element (7FE0,0010) and record where its value is
        in the file (:attr:`Header.pixel_data`), without reading it.

    Returns
    -------
    Header
        The wanted elements found, with the file meta and the encoding.

    Raises
    ------
    HeaderError
        When the file is empty, not DICOM (PS3.10 Section 7 nor a bare data set),
        truncated inside the header, or has an invalid VR or length.
    """
    src = _Source(fp, fp.read(_FIRST_READ))
    data = src.data
    if not data:
        raise HeaderError("empty", "the file is empty (0 bytes)")
    header = Header()
    if len(data) >= 132 and data[128:132] == b"DICM":
        pos = 132
    else:
        header.part10 = False
        pos = 0
        if len(data) >= 132 and data[:128].strip(b"\x00") == b"" and data[128:132] != b"DICM":
            raise HeaderError("not_dicom", "a 128-byte preamble without the 'DICM' prefix")
    pos = _read_meta(src, pos, header)

    ts = header.transfer_syntax_uid
    if ts is None:
        _guess_encoding(src, pos, header)
    elif ts == IMPLICIT_VR_LITTLE_ENDIAN:
        header.implicit_vr = True
    elif ts == EXPLICIT_VR_BIG_ENDIAN:
        header.little_endian = False
    elif ts == DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN:
        try:
            inflated = zlib.decompress(src.data[pos:] + fp.read(), -zlib.MAX_WBITS)
        except zlib.error as exc:
            raise HeaderError("truncated", f"the deflated data set does not inflate: {exc}") from None
        src = _Source(fp, inflated)
        src.eof = True
        pos = 0
        header.deflated = True
    if ts is not None and src.need(pos + 6):
        _follow_actual_vr_encoding(src.data, pos, header)
    if wanted or locate_pixel_data:
        stop = _PIXEL_DATA if locate_pixel_data else min(max(wanted), _PIXEL_DATA - 1)
        _read_dataset(src, pos, header, wanted, stop)
    return header


def encapsulated_end(data: bytes, start: int, little_endian: bool = True) -> int:
    """Where an undefined-length Pixel Data value whose items start at ``start`` ends.

    Encapsulated pixel data (PS3.5 Annex A.4) is a sequence of items closed by a
    Sequence Delimitation Item; the returned position is just after it.

    Raises
    ------
    HeaderError
        When the items run past the end of ``data``.
    """
    src = _Source(io.BytesIO(b""), data)
    src.eof = True
    return _skip_sequence(src, start, little_endian, False, 0)


def _read_meta(src: _Source, pos: int, header: Header) -> int:
    """Read group 0002 (always explicit VR little endian) and return where the data set starts."""
    while True:
        if not src.need(pos + 8):
            if header.part10:
                raise HeaderError("truncated", "the file ends inside the file meta information")
            break
        data = src.data
        group, = struct.unpack_from("<H", data, pos)
        if group != 0x0002:
            break
        tag = group << 16 | struct.unpack_from("<H", data, pos + 2)[0]
        vr = data[pos + 4:pos + 6]
        if vr in _LONG_VRS:
            if not src.need(pos + 12):
                raise HeaderError("truncated", "the file ends inside the file meta information")
            length, = struct.unpack_from("<L", src.data, pos + 8)
            start = pos + 12
        elif vr in _SHORT_VRS:
            length, = struct.unpack_from("<H", data, pos + 6)
            start = pos + 8
        else:
            # Some writers put group 0002 in implicit VR; read it that way.
            length, = struct.unpack_from("<L", data, pos + 4)
            vr = b"UN"
            start = pos + 8
        if length == _UNDEFINED or not src.need(start + length):
            raise HeaderError("truncated", f"the file ends inside file meta element {_fmt(tag)}")
        header.meta[tag] = (vr.decode("ascii"), src.data[start:start + length])
        pos = start + length
    return pos


def _guess_encoding(src: _Source, pos: int, header: Header) -> None:
    """Tell implicit from explicit VR for a data set without file meta, as pydicom does."""
    if not src.need(pos + 8):
        raise HeaderError("not_dicom", "too short to hold a DICOM data element")
    data = src.data
    group, elem = struct.unpack_from("<HH", data, pos)
    if group > 0x00FF or group in (0, 1) or group % 2:
        big_group, = struct.unpack_from(">H", data, pos)
        if big_group == 0x0008 and data[pos + 4:pos + 6] in _VALID_VRS:
            header.little_endian = False
            return
        raise HeaderError("not_dicom", "no 'DICM' prefix and no data element at the start")
    if data[pos + 4:pos + 6] in _VALID_VRS:
        return
    length, = struct.unpack_from("<L", data, pos + 4)
    if length > 0x10000:
        raise HeaderError("not_dicom", "no 'DICM' prefix and no data element at the start")
    header.implicit_vr = True


def _follow_actual_vr_encoding(data: bytes, pos: int, header: Header) -> None:
    """Trust the data over the transfer syntax for implicit vs explicit VR, as pydicom does.

    Some writers declare one encoding in (0002,0010) and use the other.
    """
    looks_explicit = data[pos + 4:pos + 6] in _VALID_VRS
    if header.implicit_vr and looks_explicit:
        header.implicit_vr = False
    elif not header.implicit_vr and not looks_explicit and header.little_endian:
        header.implicit_vr = True


def _fmt(tag: int) -> str:
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


def _element_header(
    src: _Source, pos: int, tag: int, implicit: bool, short_len, long_len
) -> tuple[bytes | None, int, int]:
    """(VR or None for implicit VR, value length, value start) of the element at ``pos``."""
    data = src.data
    if implicit:
        return None, long_len(data, pos + 4)[0], pos + 8
    vr = data[pos + 4:pos + 6]
    if vr in _SHORT_VRS:
        return vr, short_len(data, pos + 6)[0], pos + 8
    if vr in _LONG_VRS:
        if not src.need(pos + 12):
            raise HeaderError("truncated", f"the file ends inside element {_fmt(tag)}")
        return vr, long_len(src.data, pos + 8)[0], pos + 12
    raise HeaderError("bad_vr", f"element {_fmt(tag)} has an invalid VR {vr!r} at byte {pos}")


def _read_dataset(src: _Source, pos: int, header: Header, wanted: Mapping[int, str], stop: int) -> None:
    """Walk the top-level elements from ``pos``, keeping the wanted ones."""
    little = header.little_endian
    implicit = header.implicit_vr
    tag_fmt = struct.Struct("<HH" if little else ">HH").unpack_from
    short_len = struct.Struct("<H" if little else ">H").unpack_from
    long_len = struct.Struct("<L" if little else ">L").unpack_from
    elements = header.elements
    need = src.need
    data = src.data
    size = len(data)
    while True:
        if pos + 12 > size:
            if not need(pos + 8):
                if pos != len(src.data):
                    raise HeaderError("truncated", f"the file ends inside the header, at byte {pos}")
                return
            data = src.data
            size = len(data)
        group, elem = tag_fmt(data, pos)
        tag = group << 16 | elem
        if tag > stop:
            return
        vr, length, start = _element_header(src, pos, tag, implicit, short_len, long_len)
        if tag == _PIXEL_DATA:
            header.pixel_data = (start, length, vr.decode("ascii") if vr else None)
            return
        if length == _UNDEFINED:
            if vr not in (None, b"SQ", b"UN", b"OB", b"OW"):
                raise HeaderError(
                    "bad_length",
                    f"element {_fmt(tag)} with VR {vr.decode()} has an undefined length, "
                    "which only sequences may have",
                )
            # An undefined-length UN holds a sequence in implicit VR (PS3.5 Section 6.2.2).
            pos = _skip_sequence(src, start, little, implicit or vr == b"UN", 0)
            if tag in wanted:
                elements[tag] = ("SQ", b"")
            continue
        end = start + length
        if tag in wanted:
            if end > size and not need(end):
                raise HeaderError(
                    "truncated", f"the file ends inside element {_fmt(tag)} ({length} bytes declared)"
                )
            # UN for a known tag is read with the dictionary VR, as pydicom does.
            known = vr is None or vr == b"UN"
            elements[tag] = (wanted[tag] if known else vr.decode("ascii"), src.data[start:end])
        pos = end


def _skip_sequence(src: _Source, pos: int, little: bool, implicit: bool, depth: int) -> int:
    """Return the position after an undefined-length sequence whose items start at ``pos``."""
    if depth > _MAX_DEPTH:
        raise HeaderError("bad_length", f"sequences nested deeper than {_MAX_DEPTH} levels")
    tag_fmt = struct.Struct("<HH" if little else ">HH").unpack_from
    long_len = struct.Struct("<L" if little else ">L").unpack_from
    while True:
        if not src.need(pos + 8):
            raise HeaderError("truncated", "the file ends inside a sequence of undefined length")
        group, elem = tag_fmt(src.data, pos)
        tag = group << 16 | elem
        length, = long_len(src.data, pos + 4)
        pos += 8
        if tag == _SEQUENCE_DELIMITER:
            return pos
        if tag != _ITEM:
            raise HeaderError(
                "bad_length", f"expected an item in a sequence of undefined length, found {_fmt(tag)}"
            )
        if length == _UNDEFINED:
            pos = _skip_item(src, pos, little, implicit, depth + 1)
        else:
            pos += length


def _skip_item(src: _Source, pos: int, little: bool, implicit: bool, depth: int) -> int:
    """Return the position after an undefined-length item whose elements start at ``pos``."""
    tag_fmt = struct.Struct("<HH" if little else ">HH").unpack_from
    short_len = struct.Struct("<H" if little else ">H").unpack_from
    long_len = struct.Struct("<L" if little else ">L").unpack_from
    while True:
        if not src.need(pos + 8):
            raise HeaderError("truncated", "the file ends inside a sequence item of undefined length")
        data = src.data
        group, elem = tag_fmt(data, pos)
        tag = group << 16 | elem
        if tag == _ITEM_DELIMITER:
            return pos + 8
        vr, length, start = _element_header(src, pos, tag, implicit, short_len, long_len)
        if length == _UNDEFINED:
            pos = _skip_sequence(src, start, little, implicit or vr == b"UN", depth)
        else:
            pos = start + length
