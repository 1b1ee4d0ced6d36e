"""Reads: views on both time axes, lists, history, snapshot, timeline and the log."""

from __future__ import annotations

import builtins
import datetime as dt
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import orjson

from events import CATALOGUE, ValidTime, meeting_status
from events.ids import is_event_id, is_record_id
from events.parties import party_filter
from events.temporal import read_log
from registry.clock import format_instant, utc_now
from registry.errors import BadQuery, NotFound, StoreBusy
from registry.log import reader as log
from registry.log.database import OPEN_END, Cursor, Database
from registry.views import changes, search
from registry.views.changes import Between
from registry.views.projection import ViewProjection
from registry.views.tables import NAME, tracked_position

MAX_PAGE = 1000
SERIES_KINDS = ("body", "dialogue")
CANDIDATES = 200  # record ids read at a time for a list, at most
IDS = 400  # record ids one statement reads views of, at most (two parameters each: under SQLite's old 999)
EVIDENCE = 20  # the latest certain events a view shows as its evidence
# Statuses a view takes as of a day from the status it stores (a meeting past its plan is overdue).
STORED_STATUS = {("meeting", "overdue"): ("scheduled",), ("meeting", "in_progress"): ("held",),
                 ("meeting", "scheduled"): ("scheduled",), ("meeting", "held"): ("held",)}


# A record view in one statement: the point's position (`<position>`: the views' own, or the
# least of it and the position known at an instant), the record as known then, its state on
# the day (or its last day known then, if earlier), and its latest evidence.
VIEW_AT_ONCE = f"""
WITH point AS MATERIALIZED (
  SELECT v.version AS active, <position> AS position
  FROM {{projection_versions}} v LEFT JOIN {{projection_position}} p ON p.name = ? || v.version
  WHERE v.name = 'active'),
found AS MATERIALIZED (
  SELECT point.active, point.position, r.kind, r.registered_position,
    (SELECT last_day FROM {{head_days}} WHERE record = r.id AND sys_from <= point.position
     ORDER BY sys_from DESC LIMIT 1) AS last_day,
    (SELECT version FROM {{event_log}} WHERE record = r.id AND position <= point.position
     ORDER BY position DESC LIMIT 1) AS version
  FROM point LEFT JOIN {{records}} r ON r.id = ?),
bound AS MATERIALIZED (
  SELECT found.*, CASE WHEN last_day IS NULL OR last_day > ? THEN ? ELSE last_day END AS day FROM found)
SELECT 0 AS part, active, position, kind, registered_position, last_day, version,
  (SELECT state FROM {{view_segments}} WHERE record = ? AND valid_from <= bound.day
   AND sys_from <= bound.position AND sys_to > bound.position
   ORDER BY valid_from DESC, sys_from DESC LIMIT 1) AS item,
  0 AS at_lower, 0 AS at_upper, 0 AS at_position
FROM bound
UNION ALL
SELECT 1, NULL, NULL, NULL, NULL, NULL, NULL, e.item, e.valid_lower, e.valid_upper, e.position FROM (
  SELECT item, valid_lower, COALESCE(valid_upper, {OPEN_END}) AS valid_upper, evidence.position
  FROM {{evidence}} evidence, bound
  WHERE record = ? AND valid_lower <= bound.day AND certain_day <= ?
    AND sys_to > bound.position AND sys_from <= bound.position
  ORDER BY valid_lower DESC, COALESCE(valid_upper, {OPEN_END}) DESC, evidence.position DESC LIMIT ?) e
ORDER BY part, at_lower DESC, at_upper DESC, at_position DESC"""


@dataclass(frozen=True)
class Point:
    """A point on both axes: a valid day, and the log position known at an instant."""

    day: dt.date
    known_at: str
    position: int


class Reader:
    def __init__(self, database: Database, projection: ViewProjection) -> None:
        self.database = database
        self.projection = projection
        self._active_seen: int | None = None  # the projection version last seen active

    @contextmanager
    def _read(self) -> Iterator[Cursor]:
        """A read transaction over the active projection version (`cursor.projected`: its position)."""
        with self.database.read() as cursor:
            yield self.projection.active_and_position(cursor)

    # Points in time

    def _point(self, cursor: Cursor, as_of: dt.date | None, known_at: dt.datetime | None) -> Point:
        projected = cursor.projected if cursor.projected is not None else tracked_position(cursor)
        day = as_of or dt.datetime.now(dt.UTC).date()
        if known_at is None:
            return Point(day, utc_now(), projected)
        instant = format_instant(known_at)
        return Point(day, instant, min(projected, log.position_known_at(cursor, instant)))

    # Record views

    def view(self, record_id: str, as_of: dt.date | None, known_at: dt.datetime | None) -> dict[str, Any]:
        """The record as of a day, as known at an instant. Raises NotFound."""
        _known_id(record_id)
        if self.database.engine == "postgres":
            return self._view_at_once(record_id, as_of, known_at)
        with self._read() as cursor:
            point = self._point(cursor, as_of, known_at)
            row = self._lookup(cursor, record_id, point)
            if row is None or row[1] > point.position:
                raise NotFound(f"no record {record_id!r}" + (" known at that time" if row else ""))
            state = self._state(cursor, record_id, point, row[2])
            return self._view(cursor, record_id, str(row[0]), point, state, row[3], row[2])

    def _view_at_once(self, record_id: str, as_of: dt.date | None, known_at: dt.datetime | None) -> dict[str, Any]:
        """`view` in one statement, for PostgreSQL, where each statement is a round trip (on SQLite
        the four plain statements are quicker than their union)."""
        day = as_of or dt.datetime.now(dt.UTC).date()
        instant = None if known_at is None else format_instant(known_at)
        with self.database.read() as cursor:
            rows = self._view_rows(cursor, record_id, day, instant)
            head, evidence = rows[0], rows[1:]
            cursor = cursor.versioned(int(head["active"]))
            point = Point(day, utc_now() if instant is None else instant, int(head["position"]))
            if head["kind"] is None or head["registered_position"] > point.position:
                raise NotFound(f"no record {record_id!r}" + (" known at that time" if head["kind"] else ""))
            return self._view(cursor, record_id, str(head["kind"]), point, orjson.loads(head["item"]),
                              head["version"], head["last_day"], [orjson.loads(row["item"]) for row in evidence])

    def _view_rows(self, cursor: Cursor, record_id: str, day: dt.date, instant: str | None) -> list[Any]:
        """The row of the point, the record and its state, then its evidence rows, latest first: over
        the tables of the projection version last seen active, again when another is active now."""
        position = "COALESCE(p.position, 0)"
        if instant is not None:
            position = (f"LEAST({position}, COALESCE((SELECT position FROM {{event_log}} WHERE recorded_at <= ?"
                        " ORDER BY recorded_at DESC, position DESC LIMIT 1), 0))")
        statement = VIEW_AT_ONCE.replace("<position>", position)
        ordinal = day.toordinal()
        params = (*((instant,) if instant else ()), f"{NAME}_v", record_id, ordinal, ordinal,
                  record_id, record_id, ordinal, EVIDENCE)
        for attempt in range(3):
            seen = self._active_seen
            version = seen if seen is not None else self.projection.active_version(cursor)
            try:
                rows = cursor.versioned(version).execute(statement, params).all()
            except Exception:
                if attempt == 2:
                    raise
                self._active_seen = None  # a rebuild may have dropped that version's tables
                continue
            self._active_seen = int(rows[0]["active"])
            if self._active_seen == version:
                return rows
        raise StoreBusy("the views' version kept changing; try again")

    def list(self, collection: str, as_of: dt.date | None, known_at: dt.datetime | None, *,
             status: str | None = None, party: str | None = None, limit: int = 100,
             cursor_id: str | None = None) -> dict[str, Any]:
        kind = CATALOGUE.by_collection(collection)
        if kind is None:
            raise NotFound(f"no collection {collection!r}")
        check_status(kind.name, status)
        parties = party_set(party)
        with self._read() as cursor:
            point = self._point(cursor, as_of, known_at)
            items, more = self._collection(cursor, kind.name, point, status, parties, limit, cursor_id)
        return {
            "items": items,
            "next": items[-1]["id"] if more else None,
            "as_of": point.day.isoformat(),
            "known_at": point.known_at,
        }

    def snapshot(self, as_of: dt.date | None, known_at: dt.datetime | None) -> dict[str, Any]:
        head, collections = self.snapshot_views(as_of, known_at)
        return {**head, "records": {collection: list(views) for collection, views in collections}}

    def snapshot_views(self, as_of: dt.date | None, known_at: dt.datetime | None,
                       page: int = 500) -> tuple[dict[str, Any], Iterator[tuple[str, Iterator[dict[str, Any]]]]]:
        """The snapshot's head `{as_of, known_at, position}`, and each collection with its views,
        read a page at a time (bounded memory): each page in a read of its own, at one point."""
        with self._read() as cursor:
            point = self._point(cursor, as_of, known_at)
        head = {"as_of": point.day.isoformat(), "known_at": point.known_at, "position": point.position}

        def views(kind: str) -> Iterator[dict[str, Any]]:
            after = None
            while True:
                with self._read() as cursor:
                    items, more = self._collection(cursor, kind, point, None, None, page, after)
                yield from items
                if not more:
                    return
                after = items[-1]["id"]

        return head, ((kind.collection, views(kind.name)) for kind in CATALOGUE)

    def history(self, record_id: str, as_of: dt.date | None, known_at: dt.datetime | None) -> dict[str, Any]:
        _known_id(record_id)
        with self._read() as cursor:
            point = self._point(cursor, as_of, known_at)
            self._kind_at(cursor, record_id, point)
            envelopes = log.record_events(cursor, record_id, point.position)
        knowledge = read_log(envelopes)
        items = []
        for event_id, envelope in knowledge.envelopes.items():
            state = knowledge.states[event_id]
            item = {**envelope, "state": state, "certainty": None}
            if state == "corrected":
                item["corrections"] = knowledge.corrections[event_id]
            if state == "retracted":
                item["retracted_by"] = knowledge.retracted_by[event_id]
            if envelope["type"] != "registered":
                effective = knowledge.effective[event_id]
                valid = ValidTime.stored(effective["valid"])
                item["certainty"] = valid.certainty(point.day)
                if state == "corrected":
                    item["effective"] = {"valid": valid.text, **valid.bounds(), "data": effective["data"]}
                item["_order"] = (valid.lower, valid.upper or dt.date.max, envelope["position"])
            items.append(item)
        registered, world = items[0], sorted(items[1:], key=lambda i: i.pop("_order"))
        return {"items": [registered, *world], "as_of": point.day.isoformat(), "known_at": point.known_at}

    @staticmethod
    def _lookup(cursor: Cursor, record_id: str, point: Point) -> Any:
        """(kind, registered position, last day, version) of a record as known at the point, in one query
        (for one record, plainer and quicker than `_lookups`)."""
        return cursor.execute(
            "SELECT r.kind, r.registered_position,"
            " (SELECT last_day FROM {head_days} WHERE record = r.id AND sys_from <= ?"
            "  ORDER BY sys_from DESC LIMIT 1),"
            " (SELECT version FROM {event_log} WHERE record = r.id AND position <= ?"
            "  ORDER BY position DESC LIMIT 1)"
            " FROM {records} r WHERE r.id = ?", (point.position, point.position, record_id)).one()

    @staticmethod
    def _lookups(cursor: Cursor, record_ids: Sequence[str], point: Point) -> dict[str, tuple[Any, ...]]:
        """`_lookup` of each of the records that exist, by id, in one query (per IDS of them)."""
        found: dict[str, tuple[Any, ...]] = {}
        for page in _pages(record_ids):
            rows = cursor.execute(
                "SELECT r.id, r.kind, r.registered_position,"
                " (SELECT last_day FROM {head_days} WHERE record = r.id AND sys_from <= ?"
                "  ORDER BY sys_from DESC LIMIT 1),"
                " (SELECT version FROM {event_log} WHERE record = r.id AND position <= ?"
                "  ORDER BY position DESC LIMIT 1)"
                f" FROM {{records}} r WHERE r.id IN ({', '.join('?' * len(page))})",
                (point.position, point.position, *page)).all()
            found.update((row[0], tuple(row)[1:]) for row in rows)
        return found

    def _kind_at(self, cursor: Cursor, record_id: str, point: Point) -> str:
        row = cursor.execute(
            "SELECT kind, registered_position FROM {records} WHERE id = ?", (record_id,)).one()
        if row is None or row[1] > point.position:
            raise NotFound(f"no record {record_id!r}" + (" known at that time" if row else ""))
        return str(row[0])

    def _state(self, cursor: Cursor, record_id: str, point: Point, last_day: int | None = None) -> dict[str, Any]:
        # No segment known at the point starts after the record's last day known then.
        if last_day is None:
            last_day = cursor.execute(
                "SELECT last_day FROM {head_days} WHERE record = ? AND sys_from <= ? ORDER BY sys_from DESC LIMIT 1",
                (record_id, point.position)).scalar()
        row = cursor.execute(
            "SELECT state FROM {view_segments} WHERE record = ? AND valid_from <= ? AND sys_from <= ?"
            " AND sys_to > ? ORDER BY valid_from DESC, sys_from DESC LIMIT 1",
            (record_id, _bound(point, last_day), point.position, point.position)).one()
        return orjson.loads(row[0])  # type: ignore[no-any-return]

    @staticmethod
    def _states(cursor: Cursor, bounds: dict[str, int], point: Point) -> dict[str, dict[str, Any]]:
        """Each record's state as of its bound (`_bound`) as known at the point, by id: the segment with
        the latest (valid_from, sys_from), one index probe a record, in one query (per IDS records)."""
        states: dict[str, dict[str, Any]] = {}
        for page in _pages(list(bounds)):
            rows = cursor.execute(
                f"WITH c (id, bound) AS (VALUES {', '.join(['(?, ?)'] * len(page))})"
                " SELECT c.id, (SELECT state FROM {view_segments} WHERE record = c.id AND valid_from <= c.bound"
                "  AND sys_from <= ? AND sys_to > ? ORDER BY valid_from DESC, sys_from DESC LIMIT 1) FROM c",
                (*_pairs(page, bounds), point.position, point.position)).all()
            states.update((row[0], orjson.loads(row[1])) for row in rows)
        return states

    def _view(self, cursor: Cursor, record_id: str, kind: str, point: Point, state: dict[str, Any] | None = None,
              version: int | None = None, last_day: int | None = None,
              evidence: builtins.list[dict[str, Any]] | None = None) -> dict[str, Any]:
        state = state or self._state(cursor, record_id, point)
        if version is None:
            version = log.record_version(cursor, record_id, point.position)
        view = _fields(record_id, kind, point, state, version)
        if kind in SERIES_KINDS:
            view["meetings"] = self._meetings(cursor, [record_id], point)[record_id]
        view["evidence"] = (self._evidence(cursor, record_id, point, last_day) if evidence is None
                            else evidence[::-1])
        return view

    def _views(self, cursor: Cursor, kind: str, record_ids: Sequence[str],
               point: Point) -> builtins.list[dict[str, Any]]:
        """The views `_view` gives of those of the kind's records (known at the point) that have a world,
        in order: in a few queries, however many records."""
        found = self._lookups(cursor, record_ids, point)
        bounds = {record_id: _bound(point, found[record_id][2]) for record_id in record_ids}
        states = self._states(cursor, bounds, point)
        alive = [record_id for record_id in record_ids if states[record_id]["has_world"]]
        evidence = self._evidence_of(cursor, {record_id: bounds[record_id] for record_id in alive}, point)
        meetings = self._meetings(cursor, alive, point) if kind in SERIES_KINDS else {}
        views = []
        for record_id in alive:
            view = _fields(record_id, kind, point, states[record_id], found[record_id][3])
            if kind in SERIES_KINDS:
                view["meetings"] = meetings[record_id]
            view["evidence"] = evidence.get(record_id, [])
            views.append(view)
        return views

    def _evidence(self, cursor: Cursor, record_id: str, point: Point,
                  last_day: int | None) -> builtins.list[dict[str, Any]]:
        """The certain world events folded into the view, in valid order: the latest EVIDENCE of them
        (a record's history has them all). Read backwards along an index from the day, or from the
        record's last day as known at the point if earlier (an event certain by then began by then),
        so the cost does not grow with the history."""
        rows = cursor.execute(
            "SELECT item FROM {evidence} WHERE record = ? AND valid_lower <= ? AND certain_day <= ?"
            " AND sys_to > ? AND sys_from <= ?"
            f" ORDER BY valid_lower DESC, COALESCE(valid_upper, {OPEN_END}) DESC, position DESC LIMIT ?",
            (record_id, _bound(point, last_day), point.day.toordinal(), point.position, point.position,
             EVIDENCE)).all()
        return [orjson.loads(row[0]) for row in reversed(rows)]

    @staticmethod
    def _evidence_of(cursor: Cursor, bounds: dict[str, int],
                     point: Point) -> dict[str, builtins.list[dict[str, Any]]]:
        """`_evidence` of each record, from its bound, by id (none for a record without), in one query
        (per IDS records): its rows numbered in `_evidence`'s order, the first EVIDENCE kept. Unlike
        `_evidence`, this reads all of a record's rows up to its bound."""
        evidence: dict[str, builtins.list[dict[str, Any]]] = {}
        for page in _pages(list(bounds)):
            values = f"WITH c (id, bound) AS (VALUES {', '.join(['(?, ?)'] * len(page))})"
            if cursor.database.engine == "postgres":  # the planner may scan the whole table for the window
                statement = (
                    f"{values} SELECT c.id, e.item FROM c CROSS JOIN LATERAL (SELECT item, valid_lower,"
                    f"  COALESCE(valid_upper, {OPEN_END}) AS valid_upper, position FROM {{evidence}}"
                    "  WHERE record = c.id AND valid_lower <= c.bound AND certain_day <= ? AND sys_to > ?"
                    f"  AND sys_from <= ? ORDER BY valid_lower DESC, COALESCE(valid_upper, {OPEN_END}) DESC,"
                    "  position DESC LIMIT ?) AS e ORDER BY c.id, e.valid_lower, e.valid_upper, e.position")
            else:  # no LATERAL: each record's rows numbered in that order
                statement = (
                    f"{values} SELECT record, item FROM (SELECT e.record, e.item, ROW_NUMBER() OVER (PARTITION BY"
                    f"  e.record ORDER BY e.valid_lower DESC, COALESCE(e.valid_upper, {OPEN_END}) DESC,"
                    "  e.position DESC) AS n FROM c JOIN {evidence} e ON e.record = c.id WHERE e.valid_lower <= c.bound"
                    "  AND e.certain_day <= ? AND e.sys_to > ? AND e.sys_from <= ?) AS latest"
                    " WHERE n <= ? ORDER BY record, n DESC")
            rows = cursor.execute(
                statement, (*_pairs(page, bounds), point.day.toordinal(), point.position, point.position, EVIDENCE)
            ).all()
            for record_id, item in [tuple(r) for r in rows]:
                evidence.setdefault(record_id, []).append(orjson.loads(item))
        return evidence

    def _collection(self, cursor: Cursor, kind: str, point: Point, status: str | None, parties: frozenset[str] | None,
                    limit: int | None, after_id: str | None) -> tuple[builtins.list[dict[str, Any]], bool]:
        items: builtins.list[dict[str, Any]] = []
        after, rounds = after_id or "", 0
        while True:
            # Candidates for the rest of the page and one more (is there a next page?), an eighth more for
            # those the filters drop, and twice as many at each further round (they dropped more).
            wanted = CANDIDATES if limit is None else limit - len(items) + 1
            size = min(CANDIDATES, (wanted + wanted // 8 + 1) << rounds)
            record_ids = self._candidates(cursor, kind, point, status, parties, after, size)
            for view in self._views(cursor, kind, record_ids, point):
                if status is not None and view["status"] != status:
                    continue
                if parties is not None and not in_party(view, parties):
                    continue
                if limit is not None and len(items) == limit:
                    return items, True
                items.append(view)
            if len(record_ids) < size:
                return items, False
            after, rounds = record_ids[-1], rounds + 1

    def _candidates(self, cursor: Cursor, kind: str, point: Point, status: str | None,
                    parties: frozenset[str] | None, after_id: str, size: int) -> builtins.list[str]:
        """The ids, in order, of up to `size` of the kind's records after `after_id`, known at the point,
        that may be in its list: with a filter, those whose view ever had that party (or status), found
        in the facets' index."""
        if parties is not None:
            facet, values = "party", sorted(parties)
        elif status is not None:
            facet, values = "status", list(STORED_STATUS.get((kind, status), (status,)))
        else:
            facet, values = "", []
        if facet:
            # A range of the facets' index per value, merged: one scan over several values would read
            # every value of the facet to sort them.
            branch = ("SELECT record FROM (SELECT f.record FROM {record_facets} f JOIN {records} r ON r.id = f.record"
                      " WHERE f.kind = ? AND f.facet = ? AND f.value = ? AND f.record > ?"
                      " AND r.registered_position <= ? ORDER BY f.record LIMIT ?) AS value_{}")
            rows = cursor.execute(
                "SELECT DISTINCT record FROM ("
                + " UNION ALL ".join(branch.replace("value_{}", f"value_{n}") for n in range(len(values)))
                + ") AS found ORDER BY record LIMIT ?",
                (*(p for value in values for p in (kind, facet, value, after_id, point.position, size)), size)).all()
        else:
            rows = cursor.execute(
                "SELECT id FROM {records} WHERE kind = ? AND registered_position <= ? AND id > ?"
                " ORDER BY id LIMIT ?", (kind, point.position, after_id, size)).all()
        return [row[0] for row in rows]

    def _meetings(self, cursor: Cursor, series_ids: Sequence[str], point: Point) -> dict[str, dict[str, Any]]:
        """Each series' meetings as of the point, by series: how many held, the last and the next. The
        meetings of them all in three queries (per IDS series, and per IDS meetings)."""
        members: dict[str, builtins.list[str]] = {series: [] for series in series_ids}
        for page in _pages(series_ids):
            rows = cursor.execute(
                "SELECT m.series, r.id FROM {series_members} m JOIN {records} r ON r.id = m.meeting"
                f" WHERE m.series IN ({', '.join('?' * len(page))}) AND r.registered_position <= ?"
                " ORDER BY m.series, r.id", (*page, point.position)).all()
            for series, meeting_id in [tuple(r) for r in rows]:
                members[series].append(meeting_id)
        meeting_ids = sorted({meeting_id for ids in members.values() for meeting_id in ids})
        found = self._lookups(cursor, meeting_ids, point)
        states = self._states(cursor, {m: _bound(point, found[m][2]) for m in meeting_ids}, point)
        views = {m: _fields(m, "meeting", point, states[m], found[m][3]) for m in meeting_ids}
        return {series: _summary(series, [views[m] for m in ids]) for series, ids in members.items()}

    # Answers across records

    def changes(self, between: Between, **options: Any) -> dict[str, Any]:
        """Records whose view differs between two days or two instants: see `registry.views.changes`."""
        return changes.changes(self, between, **options)

    def search(self, q: str, **options: Any) -> dict[str, Any]:
        """Records matching the words of `q`: see `registry.views.search`."""
        return search.search(self, q, **options)

    # The global log

    def timeline(self, start: dt.date | None, end: dt.date | None, *, kind: str | None = None,
                 type: str | None = None, record: str | None = None, limit: int = 100,
                 after: tuple[int, int, int] | None = None) -> dict[str, Any]:
        """World events whose valid interval meets [start, end], in valid order, a page at a time:
        `next` is the (lower, upper, position) to continue after, or None on the last page."""
        clauses: builtins.list[str] = ["1 = 1"]
        params: builtins.list[Any] = []
        if end is not None:
            clauses.append("t.valid_lower <= ?")
            params.append(end.toordinal())
        if start is not None:
            clauses.append("(t.valid_upper IS NULL OR t.valid_upper >= ?)")
            params.append(start.toordinal())
        for column, value in (("l.kind", kind), ("l.type", type), ("t.record", record)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if after is not None:
            clauses.append(f"(t.valid_lower, COALESCE(t.valid_upper, {OPEN_END}), t.position) > (?, ?, ?)")
            params.extend(after)
        with self._read() as cursor:
            rows = cursor.execute(
                "SELECT l.envelope, t.state, t.effective, t.valid_lower, COALESCE(t.valid_upper, "
                f"{OPEN_END}), t.position FROM {{timeline}} t JOIN {{event_log}} l ON l.position = t.position"
                f" WHERE {' AND '.join(clauses)}"
                f" ORDER BY t.valid_lower, COALESCE(t.valid_upper, {OPEN_END}), t.position LIMIT ?",
                [*params, limit + 1],
            ).all()
        items = []
        for envelope, state, effective, *_ in [tuple(r) for r in rows[:limit]]:
            item = {**orjson.loads(envelope), "state": state}
            if effective:
                item["effective"] = orjson.loads(effective)
            items.append(item)
        last = tuple(rows[limit - 1])[3:] if len(rows) > limit else None
        return {"items": items, "next": None if last is None else tuple(int(v) for v in last)}

    def events(self, after: int, limit: int, *, type: str | None = None, kind: str | None = None,
               record: str | None = None) -> dict[str, Any]:
        wanted = log.EventFilter.of(*([value] if value else [] for value in (type, kind, record)))
        with self.database.read() as cursor:
            items = log.read_range(cursor, after, None, wanted, limit)
            last = log.last_position(cursor)
        return {
            "items": items,
            "next": items[-1]["position"] if items else after,
            "last_position": last,
            "full": len(items) == limit,
        }

    def event(self, event_id: str) -> dict[str, Any]:
        found = None
        if is_event_id(event_id):
            with self.database.read() as cursor:
                found = log.event(cursor, event_id)
        if found is None:
            raise NotFound(f"no event {event_id!r}")
        return found

    def head(self) -> dict[str, Any]:
        with self.database.read() as cursor:
            return log.head(cursor)

    def lag(self) -> tuple[int, int]:
        """(last logged position, last projected position)."""
        with self._read() as cursor:
            return log.last_position(cursor), int(cursor.projected or 0)

    # Lookups for the commands

    def record_kind(self, record_id: str) -> str | None:
        if not is_record_id(record_id):
            return None
        with self.database.read() as cursor:
            return log.record_kind(cursor, record_id)

    def record_kinds_and_versions(self, record_ids: Iterable[str]) -> tuple[dict[str, str | None], dict[str, int]]:
        """The kind of each record (None for those that do not exist) and the version of those
        that do, in one query."""
        wanted = sorted({record_id for record_id in record_ids if is_record_id(record_id)})
        with self.database.read() as cursor:
            found = log.record_kinds_and_versions(cursor, wanted)
        return ({record_id: found[record_id][0] if record_id in found else None for record_id in wanted},
                {record_id: version for record_id, (_, version) in found.items()})

    def record_envelopes(self, record_id: str) -> builtins.list[dict[str, Any]]:
        with self.database.read() as cursor:
            return log.record_events(cursor, record_id)

    def is_retracted(self, event_id: str) -> bool:
        with self.database.read() as cursor:
            return log.is_retracted(cursor, event_id)

    def idempotency(self, actor: str, key: str) -> tuple[str, str] | None:
        with self.database.read() as cursor:
            row = cursor.execute(
                "SELECT fingerprint, outcome FROM {idempotency} WHERE actor = ? AND key = ?", (actor, key)).one()
        return (row[0], row[1]) if row else None


def check_status(kind: str, status: str | None) -> None:
    """Raises BadQuery for a status the kind never has."""
    statuses = CATALOGUE.kinds[kind].statuses
    if status is not None and status not in statuses:
        raise BadQuery(f"a {kind} is never {status!r}; its statuses are {', '.join(statuses)}",
                       {"status": [f"one of {', '.join(statuses)}"]})


def party_set(party: str | None) -> frozenset[str] | None:
    """The parties a `party` filter (a country code in any case, or an organisation id)
    stands for; None for no filter. Raises BadQuery when it can be neither."""
    if party is None:
        return None
    try:
        return party_filter(party)
    except ValueError as error:
        raise BadQuery(str(error), {"party": [str(error)]}) from error


def in_party(view: dict[str, Any], parties: frozenset[str]) -> bool:
    """True when one of `parties` is among the view's parties or members."""
    return not parties.isdisjoint(view.get("parties") or view.get("members") or ())


def _bound(point: Point, last_day: int | None) -> int:
    """The latest valid day a view as of the point reads of a record: the day, or the record's last
    day as known at the point if earlier (nothing known then begins after it)."""
    return point.day.toordinal() if last_day is None else min(point.day.toordinal(), int(last_day))


def _pages(record_ids: Sequence[str]) -> Iterator[Sequence[str]]:
    """The ids, IDS at a time."""
    for start in range(0, len(record_ids), IDS):
        yield record_ids[start:start + IDS]


def _pairs(record_ids: Sequence[str], bounds: dict[str, int]) -> builtins.list[Any]:
    """Each id and its bound, flat: the parameters of a `VALUES (?, ?), ...`."""
    return [value for record_id in record_ids for value in (record_id, bounds[record_id])]


def _fields(record_id: str, kind: str, point: Point, state: dict[str, Any], version: int | None) -> dict[str, Any]:
    """A view but for its meetings and evidence, from the record's state."""
    fields = dict(state["view"])
    status = fields.pop("status")
    if kind == "meeting":
        status = meeting_status({**fields, "status": status}, point.day)
    return {
        "id": record_id, "kind": kind, "status": status, "version": version or 0,
        "as_of": point.day.isoformat(), "known_at": point.known_at,
        "uncertain": state["uncertain"], **fields,
    }


def _summary(series: str, meetings: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """A series' meetings, from their views: how many held, the last and the next (a meeting filed
    under the series once and under another since is not one of them)."""
    held, upcoming = [], []
    for view in meetings:
        if view["series"] != series:
            continue
        if view["status"] in ("held", "in_progress"):
            held.append(view)
        elif view["status"] == "scheduled":
            upcoming.append(view)
    last = max(held, key=lambda m: (ValidTime.stored(m["held"]).lower, m["ordinal"] or 0), default=None)
    following = min(upcoming, key=lambda m: ValidTime.stored(m["planned"]).lower, default=None)
    ordinals = [m["ordinal"] for m in held if m["ordinal"]]
    return {
        "held": len(held),
        "last_ordinal": max(ordinals, default=None),
        "last": last and {"id": last["id"], "ordinal": last["ordinal"], "valid": last["held"],
                          "place": last["place"]},
        "next": following and {"id": following["id"], "planned": following["planned"],
                               "place": following["place"]},
    }


def _known_id(record_id: str) -> None:
    if not is_record_id(record_id):
        raise NotFound(f"no record {record_id!r}")
