"""Changes between two points: on the valid axis (two days, as known at one instant) or on
the system axis (two instants, as of one day).

A record changed when its list view at the second point differs from the one at the
first (null where the record is not in its collection's list), compared on every field
but `as_of`, `known_at` and `version`. Its `events` explain the change: those whose
valid lower bound falls in (D1, D2] or that became certain then (a `2006` signing changes
the view on 2006-12-31), or that were recorded in (T1, T2].
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from events import CATALOGUE
from events.temporal import read_log
from registry.errors import BadQuery
from registry.log import reader as log
from registry.log.database import Cursor

if TYPE_CHECKING:
    from registry.views.reader import Point, Reader

IGNORED = ("as_of", "known_at", "version")


@dataclass(frozen=True)
class Between:
    """Which two points to compare: the valid axis (`from_day`, `to_day`) or the system axis."""

    from_day: dt.date | None = None
    to_day: dt.date | None = None
    known_from: dt.datetime | None = None
    known_to: dt.datetime | None = None

    def check(self) -> str:
        """'valid' or 'system'. Raises BadQuery unless exactly one pair is given whole, in order."""
        valid = (self.from_day, self.to_day)
        system = (self.known_from, self.known_to)
        given_valid = [v is not None for v in valid]
        given_system = [v is not None for v in system]
        if any(given_valid) and any(given_system):
            raise BadQuery("give either from and to (days) or known_from and known_to (instants), not both",
                           {"known_from": ["not with from/to"]})
        if not any(given_valid) and not any(given_system):
            raise BadQuery("give from and to (days), or known_from and known_to (instants)",
                           {"from": ["missing"], "known_from": ["missing"]})
        names, pair = (("from", "to"), valid) if any(given_valid) else (("known_from", "known_to"), system)
        for name, value in zip(names, pair, strict=True):
            if value is None:
                raise BadQuery(f"{name} is missing: a pair needs both ends", {name: ["missing"]})
        if pair[0] > pair[1]:  # type: ignore[operator]
            raise BadQuery(f"{names[0]} is after {names[1]}", {names[1]: [f"before {names[0]}"]})
        return "valid" if any(given_valid) else "system"


def changes(reader: Reader, between: Between, *, as_of: dt.date | None = None, known_at: dt.datetime | None = None,
            kind: str | None = None, party: str | None = None, limit: int = 100,
            cursor_id: str | None = None) -> dict[str, Any]:
    """Records whose view differs between the two points, in id order, a page at a time.

    Raises BadQuery for an incomplete or reversed pair, both pairs, an unknown kind or a bad party,
    and for the point a pair replaces: `as_of` with two days, `known_at` with two instants.
    """
    from registry.views.reader import in_party, party_set

    axis = between.check()
    if axis == "valid" and as_of is not None:
        raise BadQuery("as_of does not go with from and to: they are the two days compared"
                       " (known_at says as known when)", {"as_of": ["not with from/to"]})
    if axis == "system" and known_at is not None:
        raise BadQuery("known_at does not go with known_from and known_to: they are the two instants compared"
                       " (as_of says as of which day)", {"known_at": ["not with known_from/known_to"]})
    if kind is not None and kind not in CATALOGUE.kinds:
        raise BadQuery(f"no kind {kind!r}", {"kind": [f"one of {', '.join(sorted(CATALOGUE.kinds))}"]})
    parties = party_set(party)
    with reader._read() as cursor:
        if axis == "valid":
            first = reader._point(cursor, between.from_day, known_at)
            second = reader._point(cursor, between.to_day, known_at)
            second = type(second)(second.day, first.known_at, first.position)  # one instant for both
        else:
            first = reader._point(cursor, as_of, between.known_from)
            second = reader._point(cursor, as_of, between.known_to)
            first = type(first)(second.day, first.known_at, first.position)  # one day for both
        rows = cursor.execute(
            "SELECT id, kind FROM {records} WHERE registered_position <= ? AND id > ?"
            + (" AND kind = ?" if kind else "") + " ORDER BY id",
            (max(first.position, second.position), cursor_id or "", *([kind] if kind else [])),
        ).all()
        items: list[dict[str, Any]] = []
        more = False
        for record_id, record_kind in [tuple(r) for r in rows]:
            before = _listed(reader, cursor, record_id, record_kind, first)
            after = _listed(reader, cursor, record_id, record_kind, second)
            changed = _changed(before, after)
            if not changed:
                continue
            if parties is not None and not any(
                    view is not None and in_party(view, parties) for view in (before, after)):
                continue
            if len(items) == limit:
                more = True
                break
            items.append({"id": record_id, "kind": record_kind, "before": before, "after": after,
                          "changed": changed, "events": _explaining(reader, cursor, record_id, first, second, axis)})
    page: dict[str, Any] = {"items": items, "next": items[-1]["id"] if more else None}
    if axis == "valid":
        page.update({"from": first.day.isoformat(), "to": second.day.isoformat(), "known_at": first.known_at})
    else:
        page.update({"known_from": first.known_at, "known_to": second.known_at, "as_of": first.day.isoformat()})
    return page


def _listed(reader: Reader, cursor: Cursor, record_id: str, kind: str, point: Point) -> dict[str, Any] | None:
    """The record's view as its collection's list holds it at the point, or None."""
    registered = cursor.execute("SELECT registered_position FROM {records} WHERE id = ?", (record_id,)).scalar()
    if registered is None or int(registered) > point.position:
        return None
    state = reader._state(cursor, record_id, point)
    if not state["has_world"]:
        return None
    return reader._view(cursor, record_id, kind, point, state)


def _changed(before: dict[str, Any] | None, after: dict[str, Any] | None) -> list[str]:
    if before is None and after is None:
        return []
    names = set(before or {}) | set(after or {})
    return sorted(name for name in names - set(IGNORED)
                  if (before or {}).get(name) != (after or {}).get(name))


def _explaining(reader: Reader, cursor: Cursor, record_id: str, first: Point, second: Point, axis: str) -> list[str]:
    """The ids of the events behind a change: valid lower bound or certain day in (D1, D2], or
    recorded in (T1, T2]; for a body or dialogue, its meetings' too (they make its `meetings`)."""
    records = [record_id, *(str(r[0]) for r in cursor.execute(
        "SELECT meeting FROM {series_members} WHERE series = ? ORDER BY meeting", (record_id,)).all())]
    found: list[tuple[int, str]] = []
    for record in records:
        if axis == "system":
            found.extend((e["position"], e["id"]) for e in log.record_events(cursor, record, second.position)
                         if e["position"] > first.position)
            continue
        knowledge = read_log(log.record_events(cursor, record, second.position))
        low, high = first.day.toordinal(), second.day.toordinal()
        found.extend((fact.position, fact.id) for fact in knowledge.facts
                     if low < fact.valid.ordinals[0] <= high or low < fact.valid.ordinals[2] <= high)
    return [event_id for _, event_id in sorted(found)]
