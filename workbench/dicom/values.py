"""Turn raw element bytes into typed Python values (PS3.5 Section 6.2).

A value that does not parse becomes ``None``: the index keeps going and the
column stays typed.
"""

from __future__ import annotations

import datetime as dt
import re
import struct
from functools import lru_cache

_BINARY_FORMATS = {"US": "H", "SS": "h", "UL": "L", "SL": "l", "FL": "f", "FD": "d", "SV": "q", "UV": "Q"}
_BINARY_SIZES = {fmt: struct.calcsize(fmt) for fmt in _BINARY_FORMATS.values()}
# Text VRs affected by Specific Character Set (PS3.5 Section 6.1.2.3).
_CHARSET_VRS = frozenset({"SH", "LO", "ST", "LT", "UC", "UT", "PN"})
_PN_DELIMITERS = {0x5C, 0x3D, 0x5E}
# The character sets most files use, as pydicom names their codecs (PS3.3 C.12.1.1.2),
# known here so that reading them needs no import of pydicom.
_COMMON_CHARACTER_SETS = {
    b"ISO_IR 6": ("iso8859",), b"ISO_IR 100": ("latin_1",), b"ISO_IR 192": ("UTF8",),
}
_TEXT_DELIMITERS = {0x5C}
_DT = re.compile(r"(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(?:\.(\d{1,6}))?(?:[+-]\d{4})?")


@lru_cache(maxsize=256)
def python_encodings(specific_character_set: bytes | None) -> tuple[str, ...]:
    """Python codec names for a raw Specific Character Set (0008,0005) value.

    Parameters
    ----------
    specific_character_set : bytes or None
        The raw value, e.g. ``b"ISO_IR 100"`` or ``b"\\\\ISO 2022 IR 87"``; None means
        the default repertoire.

    Returns
    -------
    tuple[str, ...]
        Codecs as :func:`pydicom.charset.convert_encodings` gives them.
    """
    if not specific_character_set:
        return ("iso8859",)
    common = _COMMON_CHARACTER_SETS.get(specific_character_set)
    if common:
        return common
    from pydicom.charset import convert_encodings

    terms = [t.strip() for t in specific_character_set.decode("ascii", "replace").split("\\")]
    return tuple(convert_encodings(terms or [""]))


def decode_text(value: bytes, vr: str, encodings: tuple[str, ...]) -> str:
    """Decode a text value with the data set's character sets, stripped of padding."""
    value = value.rstrip(b"\x00 ")
    if vr in _CHARSET_VRS and encodings != ("iso8859",):
        if len(encodings) == 1:
            text = value.decode(encodings[0], "replace")
        else:
            from pydicom.charset import decode_bytes

            delimiters = _PN_DELIMITERS if vr == "PN" else _TEXT_DELIMITERS
            text = decode_bytes(value, list(encodings), delimiters)
    else:
        text = value.decode("latin-1")
    return text.strip(" \x00")


def _numbers(value: bytes, vr: str, little_endian: bool) -> list[float | int] | None:
    fmt = _BINARY_FORMATS.get(vr)
    if fmt is None:
        return None
    size = _BINARY_SIZES[fmt]
    count = len(value) // size
    if count == 0:
        return None
    return list(struct.unpack(("<" if little_endian else ">") + fmt * count, value[: count * size]))


def _text_numbers(text: str, parse) -> list:
    out = []
    for part in text.split("\\"):
        part = part.strip()
        try:
            out.append(parse(part))
        except ValueError:
            out.append(None)
    return out


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        number = float(text)
        if not number.is_integer():
            raise
        return int(number)


def to_float_list(value: bytes, vr: str, little_endian: bool = True) -> list[float | None] | None:
    """All values of a numeric element (DS, IS or binary) as floats; None when empty."""
    binary = _numbers(value, vr, little_endian)
    if binary is not None:
        return [float(v) for v in binary]
    text = value.decode("latin-1").strip(" \x00")
    if not text or vr not in ("DS", "IS", "UN", "LO", "SH", "CS"):
        return None
    return _text_numbers(text, float)


def to_float(value: bytes, vr: str, little_endian: bool = True) -> float | None:
    """The first value of a numeric element as a float, or None."""
    if vr == "DS":
        try:
            return float(value)  # the common case: one value, space-padded
        except ValueError:
            pass
    values = to_float_list(value, vr, little_endian)
    return values[0] if values else None


def to_int(value: bytes, vr: str, little_endian: bool = True) -> int | None:
    """The first value of an integer element (IS or binary) as an int, or None."""
    if vr == "IS":
        try:
            return int(value)  # the common case: one value, space-padded
        except ValueError:
            pass
    binary = _numbers(value, vr, little_endian)
    if binary is not None:
        return int(binary[0])
    text = value.decode("latin-1").split("\\")[0].strip(" \x00")
    if not text:
        return None
    try:
        return _int(text)
    except ValueError:
        return None


def to_date(value: bytes) -> dt.date | None:
    """A DA value as a date; tolerates the ACR-NEMA form ``YYYY.MM.DD``."""
    text = value.decode("latin-1").split("\\")[0].strip(" \x00").replace(".", "")
    if len(text) != 8 or not text.isdigit():
        return None
    try:
        return dt.date(int(text[:4]), int(text[4:6]), int(text[6:8]))
    except ValueError:
        return None


def to_time(value: bytes) -> dt.time | None:
    """A TM value (``HH[MM[SS[.F{1,6}]]]``, or the old ``HH:MM:SS`` form) as a time."""
    text = value.decode("latin-1").split("\\")[0].strip(" \x00").replace(":", "")
    if not text:
        return None
    whole, _, fraction = text.partition(".")
    if not whole.isdigit() or len(whole) not in (2, 4, 6) or (fraction and not fraction.isdigit()):
        return None
    try:
        hour = int(whole[:2])
        minute = int(whole[2:4] or 0)
        second = min(int(whole[4:6] or 0), 59)  # a leap second 60 has no datetime.time
        micro = int((fraction + "000000")[:6]) if fraction else 0
        return dt.time(hour, minute, second, micro)
    except ValueError:
        return None


def to_datetime(value: bytes) -> dt.datetime | None:
    """A DT value (``YYYY[MM[DD[HH[MM[SS[.F{1,6}]]]]]][&ZZXX]``) as a naive datetime.

    The UTC offset suffix, when present, is dropped: the value stays in the
    time zone it was recorded in, like DA and TM values.
    """
    text = value.decode("latin-1").split("\\")[0].strip(" \x00")
    match = _DT.fullmatch(text)
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction = match.groups()
    try:
        return dt.datetime(
            int(year), int(month or 1), int(day or 1), int(hour or 0), int(minute or 0),
            min(int(second or 0), 59), int((fraction or "").ljust(6, "0")),
        )
    except ValueError:
        return None
