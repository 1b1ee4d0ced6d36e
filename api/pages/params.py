"""Query parameters of the pages: the API's own, read leniently where a browser form differs.

A form sends empty fields for what a person left blank, and a `datetime-local` picker
sends `YYYY-MM-DDTHH:MM[:SS]` without a zone: both are accepted (blank as absent, the
picker's value as UTC). Anything else the API would refuse is refused here too, as a 400.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from flask import request
from marshmallow import ValidationError

from events import CATALOGUE, parse_day, parse_instant
from events.ids import is_record_id
from registry.errors import BadQuery

POINT = ("as_of", "known_at")
PICKER_INSTANT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?")
MAX_PAGE = 100_000
COUNTRY = re.compile(r"[A-Za-z]{2}")


@dataclass
class PageQuery:
    """The parsed parameters of one page request; `raw` keeps the canonical strings for links."""

    as_of: dt.date | None = None
    known_at: dt.datetime | None = None
    values: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, str] = field(default_factory=dict)

    def get(self, name: str, default: Any = None) -> Any:
        return self.values.get(name, default)

    def point(self) -> dict[str, str]:
        """The canonical `as_of` / `known_at` strings a person chose (links keep them)."""
        return {name: self.raw[name] for name in POINT if name in self.raw}


def instant(text: str) -> dt.datetime:
    if PICKER_INSTANT.fullmatch(text):
        text += ":00Z" if text.count(":") == 1 else "Z"
    return parse_instant(text)


def format_instant(value: dt.datetime) -> str:
    value = value.astimezone(dt.UTC)  # %Y does not pad years before 1000 to four digits (glibc)
    return f"{value.year:04d}" + value.strftime("-%m-%dT%H:%M:%SZ")


def _day(text: str) -> dt.date:
    return parse_day(text)


def _kind(text: str) -> str:
    if text not in CATALOGUE.kinds:
        raise ValueError("must be one of " + ", ".join(sorted(CATALOGUE.kinds)))
    return text


def _type(text: str) -> str:
    names = sorted(CATALOGUE.all_type_names())
    if text not in names:
        raise ValueError("must be an event type such as signed, held or entered_into_force")
    return text


def _record(text: str) -> str:
    if not is_record_id(text):
        raise ValueError("must be a record id such as ru-eu-readmission-agreement")
    return text


def _party(text: str) -> str:
    if len(text) > 80 or not (COUNTRY.fullmatch(text) or is_record_id(text)):
        raise ValueError("must be a country code such as RU (any case) or an organisation id such as eu")
    return text


def _page(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= MAX_PAGE:
        raise ValueError(f"must be a page number from 1 to {MAX_PAGE}")
    return int(text)


def _limit(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 1000:
        raise ValueError("must be a number from 1 to 1000")
    return int(text)


def _words(text: str) -> str:
    if len(text) > 500:
        raise ValueError("must be at most 500 characters")
    return text


PARSERS: dict[str, Any] = {
    "as_of": _day, "known_at": instant, "from": _day, "to": _day, "known_from": instant, "known_to": instant,
    "kind": _kind, "type": _type, "record": _record, "party": _party, "status": _words, "q": _words,
    "cursor": _words, "page": _page, "limit": _limit,
}


def parse(accepted: Iterable[str]) -> PageQuery:
    """This request's query, for a page that accepts `accepted` (besides as_of and known_at). Raises BadQuery."""
    allowed = set(POINT) | set(accepted)
    errors: dict[str, list[str]] = {}
    query = PageQuery()
    for name in request.args:
        if name not in allowed:
            errors[name] = ["this page does not take it; it takes " + ", ".join(sorted(allowed))]
            continue
        values = request.args.getlist(name)
        text = values[-1].strip()
        if not text:
            continue
        try:
            value = PARSERS[name](text)
        except ValueError as error:
            errors[name] = [str(error)]
            continue
        query.values[name] = value
        query.raw[name] = format_instant(value) if isinstance(value, dt.datetime) else str(value)
    if errors:
        raise BadQuery("invalid parameters: " + ", ".join(sorted(errors)), errors)
    query.as_of = query.values.get("as_of")
    query.known_at = query.values.get("known_at")
    return query


def decode_cursor(cursor_field: Any, text: str | None) -> Any:
    """A page cursor the API gave out, decoded by its schema field. Raises BadQuery."""
    if text is None:
        return None
    try:
        return cursor_field.deserialize(text)
    except ValidationError as error:
        raise BadQuery("invalid parameters: cursor", {"cursor": ["not a cursor this site gave out"]}) from error
