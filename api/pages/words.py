"""Plain words for what the views hold: event types, valid times, certainty, evidence."""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from events import InvalidValidTime, ValidTime

EARLIEST = dt.date(1, 1, 1)
PHRASES = {
    "entered_into_force": "entered into force",
    "scope_extended": "scope extended",
    "territorial_application_changed": "territorial application changed",
    "suspension_lifted": "suspension lifted",
    "recommendation_adopted": "recommendation adopted",
    "contacts_established": "contacts established",
    "arrangement_signed": "arrangement signed",
    "member_joined": "member joined",
    "member_left": "member left",
}
CERTAINTY = {
    "certain": "certain",
    "uncertain": "not certain yet",
    "not_yet": "not yet",
    None: "",
}
DATE_FIELDS = frozenset({"signed", "entered_into_force", "established", "launched", "planned", "held",
                         "contacts_established"})
BOOKKEEPING = frozenset({"evidence", "uncertain"})  # shown in their own sections, not as changed values
STATES = {"current": "current", "corrected": "corrected", "retracted": "retracted"}


def event_phrase(event_type: str) -> str:
    return PHRASES.get(event_type, event_type.replace("_", " "))


def day(value: dt.date | str | None) -> str:
    """`1 June 2007`, readable in any locale's order."""
    if value is None:
        return "open"
    if isinstance(value, str):
        value = dt.date.fromisoformat(value)
    return f"{value.day} {calendar.month_name[value.month]} {value.year}"


def span(lower: dt.date, upper: dt.date | None) -> str:
    """Where one unknown day lies: `in 2006`, `in May 2011`, `on or before 4 October 2017`."""
    if upper is None:
        return f"on or after {day(lower)}"
    if lower == upper:
        return f"on {day(lower)}"
    if lower == EARLIEST:
        return f"on or before {day(upper)}"
    if lower.year == upper.year and (lower.month, lower.day, upper.month, upper.day) == (1, 1, 12, 31):
        return f"in {lower.year}"
    last = calendar.monthrange(upper.year, upper.month)[1]
    if (lower.year, lower.month) == (upper.year, upper.month) and lower.day == 1 and upper.day == last:
        return f"in {calendar.month_name[lower.month]} {lower.year}"
    return f"between {day(lower)} and {day(upper)}"


def when(valid: str | None) -> str:
    """A valid time in words: a day, an interval, or the range one unknown day lies in."""
    if not valid:
        return ""
    try:
        time = ValidTime.parse(valid)
    except InvalidValidTime:
        return valid
    if time.is_interval:
        start = span(time.lower, time.certain_from)
        start = start.removeprefix("on ") if start.startswith("on ") and "before" not in start else "some day " + start
        end = "an open end" if time.upper is None else day(time.upper)
        return f"from {start} to {end}"
    return span(time.lower, time.upper)


def uncertain_sentence(event_type: str, valid: str, as_of: str) -> str:
    """`Signed some day in 2006; not certain by 1 June 2006.`"""
    time = ValidTime.parse(valid)
    if time.is_interval:
        where = "began " + span(time.lower, time.certain_from).replace("on or before", "some day on or before")
    else:
        where = "some day " + span(time.lower, time.upper)
    sentence = f"{event_phrase(event_type)} {where}; not certain by {day(as_of)}."
    return sentence[0].upper() + sentence[1:]


def evidence(view: Mapping[str, Any], history: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The certain world events behind the view, with their sources (the view's own list when it has one)."""
    if "evidence" in view:
        return [dict(item) for item in view["evidence"]]
    found = []
    for item in history:
        if item["type"] == "registered" or item["state"] == "retracted" or item["certainty"] != "certain":
            continue
        valid = (item.get("effective") or {}).get("valid", item["valid"])
        found.append({"event": item["id"], "type": item["type"], "valid": valid, "sources": item["sources"]})
    return found


def value(field_value: Any) -> str:
    """A field of a view as text: lists joined, mappings as `key: value`, nothing as a dash."""
    if field_value is None or field_value == [] or field_value == {}:
        return "—"
    if isinstance(field_value, list):
        return "; ".join(value(v) for v in field_value)
    if isinstance(field_value, dict):
        return ", ".join(f"{k}: {value(v)}" for k, v in field_value.items() if v not in (None, [], {}))
    return str(field_value)
