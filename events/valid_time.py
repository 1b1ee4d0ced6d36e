"""Valid time: EDTF values (levels 0 and 1, plus sub-year groups) as inclusive day bounds."""

from __future__ import annotations

import calendar
import datetime as dt
import re
from functools import lru_cache
from typing import NamedTuple

from edtf import EDTFParseException, parse_edtf
from edtf.parser.parser_classes import (
    Date,
    DateAndTime,
    EDTFObject,
    Interval,
    Level1Interval,
    Level2Season,
    OneOfASet,
    PartialUncertainOrApproximate,
    Season,
    UncertainOrApproximate,
    Unspecified,
    UnspecifiedIntervalSection,
)

# Levels 0 and 1, sub-year groups, and a level-2 set such as [..2026-11-29] ("one day by then").
ACCEPTED_POINTS = (Date, DateAndTime, Season, Level2Season, UncertainOrApproximate, Unspecified, OneOfASet)


MAX_LENGTH = 100  # characters of a `valid` value
MAX_SET_MEMBERS = 32  # members of an EDTF set [a,b,..] or {a,b,..}


class InvalidValidTime(ValueError):
    """The text is not an EDTF value the registry accepts."""


class ValidTime(NamedTuple):
    """An EDTF value with inclusive day bounds (immutable; make one with `parse` or `of`).

    `lower`/`upper` bound the whole value (`upper` is None for an open end);
    `certain_from` is the first day on which the event has certainly happened:
    the upper bound of a point, or of an interval's start. `ordinals` holds the
    three as day ordinals, which the fold compares.
    """

    text: str
    lower: dt.date
    upper: dt.date | None
    certain_from: dt.date
    is_interval: bool
    ordinals: tuple[int, int | None, int]

    @classmethod
    def of(cls, text: str, lower: dt.date, upper: dt.date | None, certain_from: dt.date,
           is_interval: bool) -> ValidTime:
        ordinals = (lower.toordinal(), upper.toordinal() if upper else None, certain_from.toordinal())
        return cls(text, lower, upper, certain_from, is_interval, ordinals)

    @classmethod
    def parse(cls, text: object) -> ValidTime:
        """A new value, within the limits (SPEC section 11). Raises InvalidValidTime."""
        if not isinstance(text, str) or not text.strip():
            raise InvalidValidTime("must be an EDTF string such as 2006, 2011-05 or 2018-04-04/2018-04-05")
        text = text.strip()
        if len(text) > MAX_LENGTH:
            raise InvalidValidTime(f"must be at most {MAX_LENGTH} characters")
        if text[:1] in "[{" and text.count(",") >= MAX_SET_MEMBERS:
            raise InvalidValidTime(f"an EDTF set may have at most {MAX_SET_MEMBERS} members")
        return _parse(text)

    @classmethod
    def stored(cls, text: str) -> ValidTime:
        """A value the log already holds, read whatever its length (the limits apply to new ones)."""
        return _parse(text.strip())

    @classmethod
    def _parse_edtf(cls, text: str) -> ValidTime:
        try:
            value = parse_edtf(text)
        except (EDTFParseException, ValueError, TypeError) as error:
            raise InvalidValidTime(f"{text!r} is not valid EDTF") from error
        if isinstance(value, (Interval, Level1Interval)):
            start, end = value.lower, value.upper
            if isinstance(start, UnspecifiedIntervalSection):
                raise InvalidValidTime(f"{text!r}: an interval's start must be known")
            start_lower, start_upper = _point_bounds(start, text)
            if isinstance(end, UnspecifiedIntervalSection):
                upper = None
            else:
                _, upper = _point_bounds(end, text)
                if upper < start_lower:
                    raise InvalidValidTime(f"{text!r}: the interval ends before it starts")
                start_upper = min(start_upper, upper)
            return cls.of(text, start_lower, upper, start_upper, True)
        lower, upper = _point_bounds(value, text)
        return cls.of(text, lower, upper, upper, False)

    def certainty(self, day: dt.date) -> str:
        """`certain`, `uncertain` or `not_yet` as of `day`."""
        if self.certain_from <= day:
            return "certain"
        if self.lower <= day:
            return "uncertain"
        return "not_yet"

    def contains(self, day: dt.date) -> bool:
        return self.lower <= day and (self.upper is None or day <= self.upper)

    def bounds(self) -> dict[str, str | None]:
        return {
            "valid_lower": self.lower.isoformat(),
            "valid_upper": self.upper.isoformat() if self.upper else None,
        }


PLAIN = re.compile(r"([0-9]{4})(?:-([0-9]{2})(?:-([0-9]{2}))?)?")
DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
INSTANT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})")


MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December")


def calendar_day(year: int, month: int, day: int, text: str) -> dt.date:
    """The day; raises InvalidValidTime saying why it is not in the calendar (a 29 February
    outside a leap year, a 31 April, a year outside 1..9999)."""
    written = f"{year:04d}-{month:02d}-{day:02d}"
    subject = repr(text) if text == written else f"{text!r}: {written}"
    if not dt.MINYEAR <= year <= dt.MAXYEAR:
        raise InvalidValidTime(f"{text!r}: year {year} is outside the registry's calendar (years 1 to 9999)")
    if not 1 <= month <= 12:
        raise InvalidValidTime(f"{subject} is not a date in the calendar: there is no month {month}")
    days = calendar.monthrange(year, month)[1]
    if not 1 <= day <= days:
        raise InvalidValidTime(f"{subject} is not a date in the calendar: {MONTHS[month - 1]} {year} has {days} days")
    return dt.date(year, month, day)


def _plain_bounds(text: str, whole: str) -> tuple[dt.date, dt.date] | None:
    """Bounds of a level-0 date (YYYY, YYYY-MM, YYYY-MM-DD) without the full grammar, or None.
    Raises InvalidValidTime for a day the calendar lacks (`whole` is the value it is part of)."""
    if DAY.fullmatch(text):  # the usual case: one day
        try:
            only = dt.date.fromisoformat(text)
        except ValueError:
            y, m, d = (int(part) for part in text.split("-"))
            if 1 <= m <= 12 and 1 <= d <= 31 and y >= dt.MINYEAR:  # a 29 February, a 31 April
                calendar_day(y, m, d, whole)
            return None  # the full grammar gives the error
        return only, only
    found = PLAIN.fullmatch(text)
    if not found:
        return None
    year, month, day = (int(g) if g else None for g in found.groups())
    assert year is not None
    try:
        if month is None:
            return dt.date(year, 1, 1), dt.date(year, 12, 31)
        if day is None:
            return dt.date(year, month, 1), dt.date(year, month, calendar.monthrange(year, month)[1])
        return dt.date(year, month, day), dt.date(year, month, day)
    except (ValueError, calendar.IllegalMonthError):
        return None  # the full grammar gives the error


@lru_cache(maxsize=65536)
def _parse(text: str) -> ValidTime:
    # Plain level-0 dates and intervals of them are most of the registry's values; the edtf
    # grammar (pyparsing) takes milliseconds, so they take a direct path with the same result.
    start, _, end = text.partition("/")
    start_bounds = _plain_bounds(start, text) if start.strip() == start else None
    if start_bounds and not end and "/" not in text:
        return ValidTime.of(text, start_bounds[0], start_bounds[1], start_bounds[1], False)
    end_bounds = _plain_bounds(end, text) if end else None
    if start_bounds and end_bounds and end_bounds[1] >= start_bounds[0]:
        return ValidTime.of(text, start_bounds[0], end_bounds[1], min(start_bounds[1], end_bounds[1]), True)
    return ValidTime._parse_edtf(text)


def _point_bounds(value: EDTFObject, text: str) -> tuple[dt.date, dt.date]:
    if isinstance(value, PartialUncertainOrApproximate) or not isinstance(value, ACCEPTED_POINTS):
        raise InvalidValidTime(f"{text!r}: only EDTF levels 0 and 1 and sub-year groups are accepted")
    try:
        earliest, latest = value.lower_strict(), value.upper_strict()
        lower = dt.date.min if earliest == float("-inf") else calendar_day(*earliest[:3], text)
        upper = calendar_day(*latest[:3], text)
    except InvalidValidTime:
        raise
    except (TypeError, ValueError) as error:  # an infinite end (a float, not a date)
        raise InvalidValidTime(f"{text!r} has no finite day bounds") from error
    return lower, upper


def parse_day(text: object) -> dt.date:
    """A calendar day `YYYY-MM-DD`, strictly."""
    if not isinstance(text, str) or not DAY.fullmatch(text):
        raise ValueError("must be a day YYYY-MM-DD")
    try:
        return dt.date.fromisoformat(text)
    except ValueError as error:
        raise ValueError("must be a day YYYY-MM-DD") from error


def parse_instant(text: object) -> dt.datetime:
    """An RFC 3339 instant with a time zone, returned in UTC."""
    if not isinstance(text, str) or not INSTANT.fullmatch(text):
        if isinstance(text, str) and INSTANT.fullmatch(text + "Z"):
            raise ValueError("an RFC 3339 instant needs a time zone (Z or ±hh:mm)")
        raise ValueError("must be an RFC 3339 instant such as 2019-03-01T00:00:00Z")
    try:
        value = dt.datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
        return value.astimezone(dt.UTC)
    except (ValueError, OverflowError) as error:
        raise ValueError("must be an RFC 3339 instant such as 2019-03-01T00:00:00Z, within years 1-9999") from error
