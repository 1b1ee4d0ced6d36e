"""The timeline page's rows (world events by valid time) and the chart data for one page of them."""

from __future__ import annotations

import datetime as dt
from typing import Any

from api.pages import words
from api.pages.params import PageQuery
from events import CATALOGUE, ValidTime
from registry.errors import NotFound
from registry.views.reader import Reader

SERIES_KINDS = ("body", "dialogue")
OPEN_START_DAYS = 365  # how far back an open start ("on or before D") is drawn


def rows(reader: Reader, query: PageQuery) -> list[dict[str, Any]]:
    """World events whose valid interval meets [from, to], as known at the point, in valid order.

    As known now, the reader's timeline is already filtered and in valid order (corrections
    applied); only the page shown is worked out further (`shape`).
    """
    records = _records(reader, query)
    if query.known_at is None:
        one = next(iter(records)) if records and len(records) == 1 else None
        found = every_event(reader, query.get("from"), query.get("to"), kind=query.get("kind"),
                            type=query.get("type"), record=one)
        return found if records is None else [item for item in found if item["record"] in records]
    return _as_known(reader, query, records)


def every_event(reader: Reader, start: dt.date | None, end: dt.date | None, **filters: Any) -> list[dict[str, Any]]:
    """The reader's timeline, every page of it: the page's table counts its rows and pages them itself."""
    found: list[dict[str, Any]] = []
    after = None
    while True:
        page = reader.timeline(start, end, limit=1000, after=after, **filters)
        found += page["items"]
        if page["next"] is None:
            return found
        after = page["next"]


def shape(shown: list[dict[str, Any]], day: dt.date) -> list[dict[str, Any]]:
    """The page's rows with their effective valid time and certainty as of `day`."""
    result = []
    for item in shown:
        time = _time(item)
        result.append({**item, "time": time, "certainty": time.certainty(day)})
    return result


def _time(item: dict[str, Any]) -> ValidTime:
    effective = item.get("effective") or {}
    return ValidTime.parse(effective.get("valid") or item["valid"])


def _records(reader: Reader, query: PageQuery) -> set[str] | None:
    """The records the filters allow (a series brings its meetings), or None for all."""
    record, party = query.get("record"), query.get("party")
    if record is None and party is None:
        return None
    allowed: set[str] = {record} if record is not None else set()
    if party is not None:
        with_party: set[str] = set()
        for kind in CATALOGUE:
            if kind.name == "meeting":
                continue
            with_party |= {view["id"] for view in _all(reader, kind.collection, query, party=party)}
        allowed = with_party if record is None else allowed & with_party
    series = {r for r in allowed if reader.record_kind(r) in SERIES_KINDS}
    if series:
        allowed |= {m["id"] for m in _all(reader, "meetings", query) if m["series"] in series}
    return allowed


def _all(reader: Reader, collection: str, query: PageQuery, party: str | None = None) -> list[dict[str, Any]]:
    found, cursor_id = [], None
    while True:
        page = reader.list(collection, query.as_of, query.known_at, party=party, limit=1000, cursor_id=cursor_id)
        found += page["items"]
        if not page["next"]:
            return found
        cursor_id = page["next"]


def _as_known(reader: Reader, query: PageQuery, records: set[str] | None) -> list[dict[str, Any]]:
    """The timeline as the registry knew it at `known_at`: each record's history read at that instant."""
    kind, event_type = query.get("kind"), query.get("type")
    start, end = query.get("from"), query.get("to")
    ids = dict.fromkeys(item["record"] for item in every_event(reader, None, None, kind=kind))
    found = []
    for record_id in ids:
        if records is not None and record_id not in records:
            continue
        try:
            history = reader.history(record_id, query.as_of, query.known_at)["items"]
        except NotFound:  # registered later than known_at
            continue
        for item in history[1:]:
            time = _time(item)
            if (event_type and item["type"] != event_type) or (end and time.lower > end) or (
                    start and time.upper and time.upper < start):
                continue
            found.append((time.lower, time.upper or dt.date.max, item["position"], item))
    found.sort(key=lambda entry: entry[:3])
    return [entry[3] for entry in found]


def chart(shown: list[dict[str, Any]], day: dt.date) -> dict[str, Any]:
    """vis-timeline groups (one per record) and items for the rows on this page only."""
    groups: dict[str, dict[str, Any]] = {}
    items = []
    for row in shown:
        groups.setdefault(row["record"], {"id": row["record"], "content": row["record"]})
        time: ValidTime = row["time"]
        classes = [row["state"]]
        start = time.lower
        if start == words.EARLIEST:
            start = dt.date.fromordinal(max(1, (time.upper or day).toordinal() - OPEN_START_DAYS))
            classes.append("open-start")
        end = time.upper
        if end is None:
            end = max(day, start)
            classes.append("open-end")
        if time.is_interval:
            classes.append("interval")
        elif time.lower != time.upper:
            classes.append("uncertain")
        else:
            classes.append("day")
        label = words.event_phrase(row["type"]) + (" (retracted)" if row["state"] == "retracted" else "")
        item: dict[str, Any] = {
            "id": row["id"], "group": row["record"], "content": label, "start": start.isoformat(),
            "className": " ".join(classes), "title": f"{label}: {words.when(time.text)} ({time.text})",
        }
        if "day" in classes:
            item["type"] = "point"
        else:
            # bounds are inclusive days; the day after the last of year 9999 is drawn as that day
            item["end"] = (end + dt.timedelta(days=1) if end < dt.date.max else end).isoformat()
            item["type"] = "range"
        items.append(item)
    return {"groups": list(groups.values()), "items": items, "day": day.isoformat()}
