"""The value pydicom gives for a column: the independent reference for the fast header reader."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pydicom
from pydicom.datadict import tag_for_keyword
from pydicom.multival import MultiValue


def _text(value: Any) -> str | None:
    if isinstance(value, (list, MultiValue)):
        text = "\\".join("" if v is None else str(v) for v in value)
    else:
        text = str(value)
    text = text.strip(" \x00")
    return text or None


def _first(value: Any) -> Any:
    if isinstance(value, (list, MultiValue)):
        return value[0] if len(value) else None
    return value


def reference_value(dataset: pydicom.Dataset, keyword: str, kind: str) -> Any:
    """The value of ``keyword`` in ``dataset`` converted to the column ``kind`` from pydicom's parse."""
    element = dataset.get(tag_for_keyword(keyword))
    if element is None or element.value is None or element.value == "" or element.VR == "SQ":
        return None
    value = element.value
    if isinstance(value, bytes):
        return None
    try:
        if kind == "str":
            if element.VR in ("FL", "FD", "US", "SS", "UL", "SL"):
                values = value if isinstance(value, (list, MultiValue)) else [value]
                return "\\".join(f"{float(v):g}" for v in values)
            return _text(value)
        if kind == "float":
            first = _first(value)
            return None if first in (None, "") else float(first)
        if kind == "int":
            first = _first(value)
            return None if first in (None, "") else int(float(first))
        if kind == "float_list":
            values = value if isinstance(value, (list, MultiValue)) else [value]
            return [None if v in (None, "") else float(v) for v in values]
        if kind in ("date", "time", "datetime"):
            first = str(_first(value)).strip()
            parsed = {
                "date": pydicom.valuerep.DA, "time": pydicom.valuerep.TM, "datetime": pydicom.valuerep.DT
            }[kind](first)
            if parsed is None:
                return None
            if kind == "datetime":
                return dt.datetime.combine(parsed.date(), parsed.time())
            if kind == "date":
                return dt.date(parsed.year, parsed.month, parsed.day)
            return dt.time(parsed.hour, parsed.minute, parsed.second, parsed.microsecond)
    except (ValueError, TypeError, OverflowError):
        return None
    raise ValueError(f"unknown kind {kind!r}")
