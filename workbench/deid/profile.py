"""The Basic Application Level Confidentiality Profile and its options, as data (PS3.15 Annex E).

Table E.1-1 ships in ``data/confidentiality_profile.json`` with its provenance and edition.
A :class:`Profile` answers, for a tag, which action applies once the chosen options are
taken into account:

- ``D`` replace with a non-zero length dummy value, ``Z`` replace with a zero length value,
  ``X`` remove, ``K`` keep, ``C`` clean (replace with values of similar meaning known not
  to identify), ``U`` replace a UID with a consistent pseudonym;
- the combined codes (``X/Z``, ``X/D``, ``X/Z/D``, ``Z/D``, ``X/Z/U*``) are returned as
  they are; the anonymizer resolves them (PS3.15 E.3.1 explains when each part applies).

Attributes not in the table are kept (they are not identifying per the standard), except
private attributes (odd groups), removed unless the Retain Safe Private option keeps them,
and curve (50xx) and overlay comment/data (60xx,4000/3000) groups, which the table lists
with wildcards.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

#: The profile's options: name used here -> column of Table E.1-1.
OPTIONS: dict[str, str] = {
    "retain_safe_private": "rtnSafePrivOpt",
    "retain_uids": "rtnUIDsOpt",
    "retain_device_identity": "rtnDevIdOpt",
    "retain_institution_identity": "rtnInstIdOpt",
    "retain_patient_characteristics": "rtnPatCharsOpt",
    "retain_full_dates": "rtnLongFullDatesOpt",
    "retain_modified_dates": "rtnLongModifDatesOpt",
    "clean_descriptors": "cleanDescOpt",
    "clean_structured_content": "cleanStructContOpt",
    "clean_graphics": "cleanGraphOpt",
}
#: Each option's code, (Code Value, Code Meaning) in scheme DCM (PS3.16 CID 7050).
OPTION_CODES: dict[str, tuple[str, str]] = {
    "retain_safe_private": ("113111", "Retain Safe Private Option"),
    "retain_uids": ("113110", "Retain UIDs Option"),
    "retain_device_identity": ("113109", "Retain Device Identity Option"),
    "retain_institution_identity": ("113112", "Retain Institution Identity Option"),
    "retain_patient_characteristics": ("113108", "Retain Patient Characteristics Option"),
    "retain_full_dates": ("113106", "Retain Longitudinal Temporal Information Full Dates Option"),
    "retain_modified_dates": ("113107", "Retain Longitudinal Temporal Information Modified Dates Option"),
    "clean_descriptors": ("113105", "Clean Descriptors Option"),
    "clean_structured_content": ("113104", "Clean Structured Content Option"),
    "clean_graphics": ("113103", "Clean Graphics Option"),
}
#: The profile's own code and the Clean Pixel Data Option's (PS3.16 CID 7050).
PROFILE_CODE = ("113100", "Basic Application Confidentiality Profile")
CLEAN_PIXEL_DATA_CODE = ("113101", "Clean Pixel Data Option")
ACTIONS = ("D", "Z", "X", "K", "C", "U", "X/Z", "X/D", "X/Z/D", "Z/D", "X/Z/U*")
_DATA = Path(__file__).with_name("data") / "confidentiality_profile.json"
# Wildcard rows of the table: (group mask, group value, element or None for any).
_CURVES = (0xFF00, 0x5000, None)
_OVERLAY_COMMENTS = (0xFF00, 0x6000, 0x4000)
_OVERLAY_DATA = (0xFF00, 0x6000, 0x3000)


@dataclass(frozen=True)
class Rule:
    """One row of Table E.1-1: the attribute, its Basic Profile action and option actions."""

    name: str
    tag: str
    basic: str
    options: dict[str, str]


@cache
def table() -> dict[str, Any]:
    """The shipped table with its provenance: keys ``title``, ``edition``, ``source``, ``rows``."""
    return json.loads(_DATA.read_text())


@cache
def _rules() -> tuple[dict[int, Rule], dict[tuple, Rule], Rule]:
    exact: dict[int, Rule] = {}
    wildcard: dict[tuple, Rule] = {}
    private = None
    for row in table()["rows"]:
        options = {name: row[column] for name, column in OPTIONS.items() if column in row}
        rule = Rule(row["name"], row["tag"], row["basicProfile"], options)
        tag = row["tag"].upper()
        if "ODD" in tag:
            private = rule
        elif tag == "(50XX,XXXX)":
            wildcard[_CURVES] = rule
        elif tag == "(60XX,4000)":
            wildcard[_OVERLAY_COMMENTS] = rule
        elif tag == "(60XX,3000)":
            wildcard[_OVERLAY_DATA] = rule
        else:
            group, element = tag.strip("()").split(",")
            exact[int(group, 16) << 16 | int(element, 16)] = rule
    if private is None:
        raise ValueError(f"{_DATA} has no row for private attributes")
    return exact, wildcard, private


class Profile:
    """The Basic Profile with a set of options (PS3.15 E.3).

    Parameters
    ----------
    options : iterable of str
        Names from :data:`OPTIONS`.

    Raises
    ------
    ValueError
        For an unknown option, or both date options at once (they exclude each other).
    """

    def __init__(self, options: Iterable[str] = ()) -> None:
        chosen = tuple(dict.fromkeys(o.strip().lower().replace("-", "_") for o in options if o.strip()))
        unknown = [o for o in chosen if o not in OPTIONS]
        if unknown:
            raise ValueError(f"unknown de-identification option(s) {unknown}; known: {sorted(OPTIONS)}")
        if {"retain_full_dates", "retain_modified_dates"} <= set(chosen):
            raise ValueError("retain_full_dates and retain_modified_dates exclude each other")
        self.options = chosen

    def __repr__(self) -> str:
        return f"Profile(options={list(self.options)})"

    def rule(self, tag: int) -> Rule | None:
        """The table row for ``tag``, or None when the table does not list it."""
        exact, wildcard, private = _rules()
        if tag in exact:
            return exact[tag]
        group, element = tag >> 16, tag & 0xFFFF
        if group % 2:
            return private
        for (mask, value, wanted), rule in wildcard.items():
            if group & mask == value and (wanted is None or element == wanted):
                return rule
        return None

    def action(self, tag: int) -> str | None:
        """The action for ``tag`` with the chosen options, or None when the table does not list it.

        Where several chosen options name an action for the same attribute, keeping (K)
        wins over cleaning (C): an option that retains information is asked for on purpose.
        """
        rule = self.rule(tag)
        return None if rule is None else self._action(rule)

    def _action(self, rule: Rule) -> str:
        chosen = [rule.options[o] for o in self.options if o in rule.options]
        if "K" in chosen:
            return "K"
        if "C" in chosen:
            return "C"
        return rule.basic

    def uses(self, action: str) -> bool:
        """Whether any attribute of the table gets ``action`` (e.g. ``"C"``) with the chosen options."""
        exact, wildcard, private = _rules()
        return any(self._action(rule) == action for rule in [*exact.values(), *wildcard.values(), private])

    @property
    def edition(self) -> str:
        """The edition of the standard the table was taken from."""
        return table()["edition"]
