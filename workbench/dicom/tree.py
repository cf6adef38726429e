"""A whole data set, sequences included, read into plain dicts of raw values.

Structured reports are deep trees of small sequence items; pydicom builds a Python object
per element and per item, which is most of the time spent on a large dose report. This
reader walks the encoded bytes (PS3.5 Section 7) once and keeps, for each element, its VR
and raw value bytes, and for each sequence a list of item dicts. Values are decoded only
when asked for, with :mod:`workbench.dicom.values`.
"""

from __future__ import annotations

import io
import struct
from functools import lru_cache
from typing import Any

from workbench.dicom.header import (
    _LONG_VRS,
    _SHORT_VRS,
    Header,
    HeaderError,
    read_header,
)

_ITEM = 0xFFFEE000
_ITEM_DELIMITER = 0xFFFEE00D
_SEQUENCE_DELIMITER = 0xFFFEE0DD
_PIXEL_DATA = 0x7FE00010
_UNDEFINED = 0xFFFFFFFF

#: A parsed data set: tag -> (VR, raw bytes) or, for a sequence, ("SQ", list of data sets).
Tree = dict[int, tuple[str, Any]]


@lru_cache(maxsize=4096)
def _is_sequence(tag: int) -> bool:
    """Whether the data dictionary (PS3.6) makes ``tag`` a sequence: implicit VR does not say."""
    from pydicom.datadict import dictionary_VR

    try:
        return dictionary_VR(tag) == "SQ"
    except KeyError:
        return False


def read_tree(data: bytes, keep: frozenset[int] | None = None) -> tuple[Tree, bool]:
    """Every element of a Part 10 file (or bare data set) in ``data``, pixel data excepted.

    Parameters
    ----------
    data : bytes
        The whole file.
        Implicit VR elements are sequences when the data dictionary says so or when
        their length is undefined.
    keep : frozenset of int, optional
        Only these tags are kept, at every level (sequences included); the others are
        skipped by their length. All tags when None.

    Returns
    -------
    tuple[Tree, bool]
        The data set and whether it is little endian.

    Raises
    ------
    HeaderError
        When the bytes are not a readable data set.
    """
    header = read_header(io.BytesIO(data), {}, locate_pixel_data=False)
    return read_dataset(data, header, keep), header.little_endian


def read_dataset(data: bytes, header: Header, keep: frozenset[int] | None = None) -> Tree:
    """The data set of the file ``data`` whose ``header`` (:func:`read_header`) is read,
    up to Pixel Data; ``keep`` as in :func:`read_tree`.

    Raises
    ------
    HeaderError
        When the data set is deflated (pydicom reads those) or not readable.
    """
    if header.deflated:
        raise HeaderError("deflated", "deflated data sets are read by pydicom")
    start = _dataset_start(data, header)
    reader = _Reader(data, header.little_endian, header.implicit_vr, keep)
    tree, _ = reader.dataset(start, len(data), top=True)
    return tree


def _dataset_start(data: bytes, header) -> int:
    pos = 132 if header.part10 else 0
    while pos + 8 <= len(data):
        group, = struct.unpack_from("<H", data, pos)
        if group != 0x0002:
            break
        vr = data[pos + 4:pos + 6]
        if vr in _LONG_VRS:
            length, = struct.unpack_from("<L", data, pos + 8)
            pos += 12 + length
        elif vr in _SHORT_VRS:
            length, = struct.unpack_from("<H", data, pos + 6)
            pos += 8 + length
        else:
            length, = struct.unpack_from("<L", data, pos + 4)
            pos += 8 + length
    return pos


class _Reader:
    __slots__ = ("data", "implicit", "tag", "short", "long", "keep")

    def __init__(self, data: bytes, little: bool, implicit: bool, keep: frozenset[int] | None) -> None:
        self.keep = keep
        self.data = data
        self.implicit = implicit
        order = "<" if little else ">"
        self.tag = struct.Struct(order + "HH").unpack_from
        self.short = struct.Struct(order + "H").unpack_from
        self.long = struct.Struct(order + "L").unpack_from

    def dataset(self, pos: int, end: int, top: bool = False) -> tuple[Tree, int]:
        """Elements from ``pos`` up to ``end`` or an item delimiter; returns (tree, position after)."""
        data, tree = self.data, {}
        tag_of, short, long_ = self.tag, self.short, self.long
        while pos + 8 <= end:
            group, elem = tag_of(data, pos)
            tag = group << 16 | elem
            if tag == _ITEM_DELIMITER:
                return tree, pos + 8
            if top and tag == _PIXEL_DATA:
                return tree, pos
            if self.implicit:
                vr = "SQ" if _is_sequence(tag) else None
                length, = long_(data, pos + 4)
                start = pos + 8
            else:
                raw = data[pos + 4:pos + 6]
                if raw in _SHORT_VRS:
                    length, = short(data, pos + 6)
                    start = pos + 8
                elif raw in _LONG_VRS:
                    length, = long_(data, pos + 8)
                    start = pos + 12
                else:
                    raise HeaderError("bad_vr", f"element ({group:04X},{elem:04X}) has an invalid VR {raw!r}")
                vr = raw.decode("ascii")
            if length != _UNDEFINED and start + length > end:
                where = "the file ends" if end == len(data) else "its item or sequence ends"
                raise HeaderError("truncated", f"{where} inside element ({group:04X},{elem:04X})")
            wanted = self.keep is None or tag in self.keep
            if vr == "SQ" or length == _UNDEFINED:
                if not wanted and length != _UNDEFINED:
                    pos = start + length
                    continue
                # An explicit VR UN of undefined length holds implicit VR items (PS3.5 6.2.2).
                items, pos = self.sequence(start, length, end, implicit=self.implicit or vr == "UN")
                if wanted:
                    tree[tag] = ("SQ", items)
                continue
            if not wanted:
                pos = start + length
                continue
            tree[tag] = (vr, data[start:start + length])
            pos = start + length
        return tree, pos

    def sequence(self, pos: int, length: int, limit: int, implicit: bool) -> tuple[list[Tree], int]:
        """Items of a sequence whose value starts at ``pos`` and cannot go past ``limit`` (the end
        of what holds it), encoded in implicit VR or not; returns (items, position after)."""
        outer, self.implicit = self.implicit, implicit
        try:
            return self._items(pos, length, limit)
        finally:
            self.implicit = outer

    def _items(self, pos: int, length: int, limit: int) -> tuple[list[Tree], int]:
        data, tag_of, long_ = self.data, self.tag, self.long
        end = limit if length == _UNDEFINED else pos + length
        items = []
        while pos + 8 <= end:
            group, elem = tag_of(data, pos)
            tag = group << 16 | elem
            item_length, = long_(data, pos + 4)
            pos += 8
            if tag == _SEQUENCE_DELIMITER:
                return items, pos
            if tag != _ITEM:
                raise HeaderError("bad_length", f"expected a sequence item, found ({group:04X},{elem:04X})")
            item_end = end if item_length == _UNDEFINED else pos + item_length
            if item_end > end:
                raise HeaderError("bad_length", f"an item of {item_length} bytes runs past its sequence")
            item, pos = self.dataset(pos, item_end)
            items.append(item)
        return items, max(pos, end) if length != _UNDEFINED else pos
