"""Meetings as an iCalendar (RFC 5545) feed.

Every meeting with a date is one all-day VEVENT: the date it was held, or else
the date it is planned for. An interval (`2018-04-04/2018-04-05`) spans its days
and DTEND is the day after the last (exclusive, as RFC 5545 wants). A date of
reduced precision (`2011-05`: one unknown day in May) spans its possible days,
is TRANSPARENT and says so in its description.

Meetings are read as of the last day the registry can know (every recorded
fact applied), as known now. UID is the meeting record's stable UUID, SEQUENCE
its version (every event on the record raises it), STATUS from its state:
held → CONFIRMED, scheduled (or overdue) → TENTATIVE, cancelled → CANCELLED.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from icalendar import Calendar, Event

from events import ValidTime, meeting_status
from registry.errors import NotFound
from registry.feeds.text import fit
from registry.log.store import record_uuid
from registry.views.reader import SERIES_KINDS, Reader

LATEST = dt.date(9999, 12, 30)  # as of: every fact with a valid time applies
STATUS = {"held": "CONFIRMED", "in_progress": "CONFIRMED", "scheduled": "TENTATIVE", "overdue": "TENTATIVE",
          "cancelled": "CANCELLED"}


def meetings_calendar(reader: Reader, base_url: str, series: str | None = None) -> bytes:
    """The meetings (of one series, if given) as iCalendar bytes. Raises NotFound for an unknown series."""
    title = "Cooperation Registry: meetings"
    if series is not None:
        if reader.record_kind(series) not in SERIES_KINDS:
            raise NotFound(f"no body or dialogue {series!r}")
        title += f" of {reader.view(series, None, None).get('title') or series}"
    calendar = Calendar()
    calendar.add("prodid", "-//Cooperation Registry//Meetings//EN")
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    calendar.add("name", fit(title))
    calendar.add("x-wr-calname", fit(title))
    for view in _meetings(reader):
        if series is not None and view["series"] != series:
            continue
        event = _event(reader, view, base_url)
        if event is not None:
            calendar.add_component(event)
    return calendar.to_ical()  # type: ignore[no-any-return]


def _meetings(reader: Reader) -> list[dict[str, Any]]:
    views, cursor = [], None
    while True:
        page = reader.list("meetings", LATEST, None, limit=1000, cursor_id=cursor)
        views += page["items"]
        cursor = page["next"]
        if cursor is None:
            return views


def _event(reader: Reader, view: Mapping[str, Any], base_url: str) -> Event | None:
    when = view["held"] if view["status"] in ("held", "in_progress") else view["planned"]
    if not when:
        return None
    status = view["status"]
    if status == "overdue":  # read as of the end of time every plan has passed: judge it as of today
        status = meeting_status({**view, "status": "scheduled"}, dt.datetime.now(dt.UTC).date())
    view = {**view, "status": status}
    valid = ValidTime.stored(when)
    envelopes = reader.record_envelopes(view["id"])
    first, last = (dt.datetime.fromisoformat(e["recorded_at"]) for e in (envelopes[0], envelopes[-1]))
    event = Event()
    event.add("uid", str(record_uuid(view["id"])))
    event.add("dtstamp", last)
    event.add("created", first)
    event.add("last-modified", last)
    event.add("sequence", view["version"])
    event.add("status", STATUS.get(view["status"] or "", "TENTATIVE"))
    event.add("summary", fit(view["title"]))
    event.add("dtstart", valid.lower)
    if valid.upper is not None and valid.upper < dt.date.max:  # DTEND is exclusive: none past year 9999
        event.add("dtend", valid.upper + dt.timedelta(days=1))
    uncertain = not valid.is_interval and valid.upper != valid.lower
    event.add("transp", "TRANSPARENT" if uncertain else "OPAQUE")
    if view.get("place"):
        event.add("location", fit(view["place"]))
    event.add("url", f"{base_url}/v1/meetings/{view['id']}")
    event.add("categories", [fit(view["series"])])
    event.add("description", fit(_description(view, valid, uncertain)))
    return event


def _description(view: Mapping[str, Any], valid: ValidTime, uncertain: bool) -> str:
    lines = [f"Series: {view['series']}"]
    if view.get("ordinal"):
        lines.append(f"Meeting number: {view['ordinal']}")
    if view.get("format"):
        lines.append(f"Format: {view['format']}")
    lines.append(f"Status: {view['status']}")
    lines.append(f"Date (EDTF): {valid.text}")
    if uncertain:
        lines.append("The exact day is not known: it is one day within this range.")
    if view.get("topics"):
        lines.append("Topics: " + "; ".join(view["topics"]))
    return "\n".join(lines)
