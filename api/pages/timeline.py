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
    """World events whose valid interval meets [from, to], as known at the point, in valid order."""
    start, end = query.get("from"), query.get("to")
    records = _records(reader, query)
    if query.known_at is None:
        # The timeline table holds current knowledge, with corrections applied.
        found = reader.timeline(start, end, kind=query.get("kind"), type=query.get("type"),
                                record=next(iter(records)) if records and len(records) == 1 else None)["items"]
    else:
        found = _as_known(reader, query)
    result = []
    for item in found:
        if records is not None and item["record"] not in records:
            continue
        effective = item.get("effective") or {}
        time = ValidTime.parse(effective.get("valid") or item["valid"])
        if (end and time.lower > end) or (start and time.upper and time.upper < start):
            continue
        day = query.as_of or dt.datetime.now(dt.UTC).date()
        result.append({**item, "time": time, "certainty": time.certainty(day)})
    result.sort(key=lambda r: (r["time"].lower, r["time"].upper or dt.date.max, r["position"]))
    return result


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


def _as_known(reader: Reader, query: PageQuery) -> list[dict[str, Any]]:
    """The timeline as the registry knew it at `known_at`: each record's history read at that instant."""
    kind, event_type = query.get("kind"), query.get("type")
    ids = dict.fromkeys(item["record"] for item in reader.timeline(None, None, kind=kind)["items"])
    found = []
    for record_id in ids:
        try:
            history = reader.history(record_id, query.as_of, query.known_at)["items"]
        except NotFound:  # registered later than known_at
            continue
        found += [item for item in history[1:] if event_type is None or item["type"] == event_type]
    return found


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
            start = (time.upper or day) - dt.timedelta(days=OPEN_START_DAYS)
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
            item["end"] = (end + dt.timedelta(days=1)).isoformat()  # bounds are inclusive days
            item["type"] = "range"
        items.append(item)
    return {"groups": list(groups.values()), "items": items, "day": day.isoformat()}
