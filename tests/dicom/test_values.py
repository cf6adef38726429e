"""Value conversion: every column type, and values that do not parse becoming None."""

from __future__ import annotations

import datetime as dt
import struct

import pytest

from workbench.dicom import values


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"20240131", dt.date(2024, 1, 31)),
        (b"2024.01.31", dt.date(2024, 1, 31)),  # ACR-NEMA form
        (b"20240231", None),  # no such day
        (b"2024013", None),
        (b"", None),
        (b"ABCDEFGH", None),
    ],
)
def test_date(raw: bytes, expected) -> None:
    assert values.to_date(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"072730", dt.time(7, 27, 30)),
        (b"0727", dt.time(7, 27)),
        (b"07", dt.time(7)),
        (b"072730.123456", dt.time(7, 27, 30, 123456)),
        (b"072730.12 ", dt.time(7, 27, 30, 120000)),
        (b"14:04:38", dt.time(14, 4, 38)),  # ACR-NEMA form
        (b"235960", dt.time(23, 59, 59)),  # a leap second
        (b"256000", None),
        (b"7", None),
    ],
)
def test_time(raw: bytes, expected) -> None:
    assert values.to_time(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"20240131072730.5+0100", dt.datetime(2024, 1, 31, 7, 27, 30, 500000)),
        (b"2024", dt.datetime(2024, 1, 1)),
        (b"202401310727", dt.datetime(2024, 1, 31, 7, 27)),
        (b"20241331", None),
        (b"nonsense", None),
    ],
)
def test_datetime(raw: bytes, expected) -> None:
    assert values.to_datetime(raw) == expected


def test_numbers_from_text_and_binary() -> None:
    assert values.to_float_list(b"-158.1\\-179.0\\-75.7 ", "DS") == [-158.1, -179.0, -75.7]
    assert values.to_float_list(b"1.5\\abc", "DS") == [1.5, None]
    assert values.to_float(b" 120 ", "DS") == 120.0
    assert values.to_float(b"", "DS") is None
    assert values.to_int(b"12 ", "IS") == 12
    assert values.to_int(b"12.0", "IS") == 12  # seen in the wild
    assert values.to_int(b"12.5", "IS") is None
    assert values.to_int(struct.pack("<H", 512), "US") == 512
    assert values.to_int(struct.pack(">H", 512), "US", little_endian=False) == 512
    assert values.to_float_list(struct.pack("<2d", 0.5, 2.0), "FD") == [0.5, 2.0]
    assert values.to_float(struct.pack("<f", 1.25), "FL") == 1.25


def test_text_with_character_sets() -> None:
    latin1 = values.python_encodings(b"ISO_IR 100")
    assert values.decode_text("Müller^Jürgen ".encode("latin-1"), "PN", latin1) == "Müller^Jürgen"
    utf8 = values.python_encodings(b"ISO_IR 192")
    assert values.decode_text("王^小明".encode(), "PN", utf8) == "王^小明"
    # Code extensions (ISO 2022): a Japanese name with escape sequences, from PS3.5 Annex H.
    jis = values.python_encodings(b"\\ISO 2022 IR 87")
    raw = b"Yamada^Tarou=\x1b$B;3ED\x1b(B^\x1b$BB@O:\x1b(B"
    assert values.decode_text(raw, "PN", jis) == "Yamada^Tarou=山田^太郎"
    # Without a character set, bytes are read as the default repertoire and never fail.
    assert values.decode_text(b"ABC\xe9 ", "LO", values.python_encodings(None)) == "ABC\xe9"
