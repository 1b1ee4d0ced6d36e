"""The registry's clock: instants as fixed-width RFC 3339 text in UTC, so text order is time order."""

from __future__ import annotations

import datetime as dt


def utc_now() -> str:
    return format_instant(dt.datetime.now(dt.UTC))


def format_instant(value: dt.datetime) -> str:
    value = value.astimezone(dt.UTC)  # %Y does not pad years before 1000 to four digits (glibc)
    return f"{value.year:04d}" + value.strftime("-%m-%dT%H:%M:%S.%fZ")
