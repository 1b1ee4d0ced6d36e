"""The view projection: follows the global log and keeps bitemporal view segments.

Each batch runs in one transaction that also moves the tracking position, so
every event is applied exactly once, a crash resumes where it stopped, and a
rebuild is a reset followed by a catch-up.

Segment rows carry the system positions between which they were the record's
knowledge (`sys_from` <= P < `sys_to`) and the first valid day they hold for.
An event that lands after every known day of its record adds one or two rows;
any other event (an earlier fact, a correction, a retraction) refolds the
record and replaces only the rows that changed.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

from events import Fact, ValidTime
from registry.database import Cursor, Database
from registry.temporal import BEFORE_ALL, dump_state, fold, initial_state, read_log, segments

ALIVE = 2**62
NAME = "views"
log = logging.getLogger(__name__)


class ViewProjection:
    """The view projection. Its tables exist per version; one version is active.

    `rebuild()` builds a new version beside the active one (resumable), then
    switches to it in one transaction and drops the old tables.
    """

    def __init__(self, database: Database) -> None:
        self.database = database
        with database.write(lock=NAME) as cursor:
            cursor.execute(
                "INSERT INTO {projection_versions} (name, version) VALUES ('active', 1) ON CONFLICT (name) DO NOTHING")
        database.create_projection_tables(self.active_version())

    def active_version(self, cursor: Cursor | None = None) -> int:
        if cursor is None:
            with self.database.read() as fresh:
                return self.active_version(fresh)
        return int(cursor.execute("SELECT version FROM {projection_versions} WHERE name = 'active'").scalar())

    def active(self, cursor: Cursor) -> Cursor:
        """The cursor, reading the active version's tables."""
        return cursor.versioned(self.active_version(cursor))

    def position(self) -> int:
        with self.database.read() as cursor:
            return tracked_position(self.active(cursor))

    def catch_up(self, batch: int = 500, progress: Callable[[int], object] | None = None) -> int:
        """Apply every logged event the active version has not applied; returns its position."""
        while True:
            with self.database.write(lock=NAME, durable=False) as cursor:
                position, count = self._advance(self.active(cursor), batch)
            if progress and count:
                progress(count)
            if count < batch:
                return position

    def _advance(self, cursor: Cursor, batch: int, until: int | None = None) -> tuple[int, int]:
        """Apply up to `batch` events after the version's position (to `until`); tracking in the same transaction."""
        position = tracked_position(cursor)
        last = until if until is not None else 2**62
        rows = cursor.execute(
            "SELECT record, envelope FROM {event_log} WHERE position > ? AND position <= ? ORDER BY position LIMIT ?",
            (position, last, batch),
        ).all()
        writes = _Batch(cursor)
        writes.load_heads({row[0] for row in rows})
        for row in rows:
            writes.apply(json.loads(row[1]), row[1])
        writes.flush()
        if rows:
            position += len(rows)
            cursor.execute(
                "INSERT INTO {projection_position} (name, position) VALUES (?, ?) "
                "ON CONFLICT (name) DO UPDATE SET position = excluded.position",
                (_tracking_name(cursor), position),
            )
        return position, len(rows)

    def project_inline(self, cursor: Cursor, envelopes: list[dict[str, Any]]) -> bool:
        """Apply just-logged events inside the transaction that logs them, when the active
        version is right behind them; otherwise leave them to the next catch-up."""
        self.database.lock(cursor, NAME)
        active = self.active(cursor)
        if tracked_position(active) != envelopes[0]["position"] - 1:
            return False
        writes = _Batch(active)
        for envelope in envelopes:
            writes.apply(envelope, json.dumps(envelope, ensure_ascii=False))
        writes.flush()
        active.execute(
            "INSERT INTO {projection_position} (name, position) VALUES (?, ?) "
            "ON CONFLICT (name) DO UPDATE SET position = excluded.position",
            (_tracking_name(active), envelopes[-1]["position"]),
        )
        return True

    def build(self, version: int, batch: int = 5000, until: int | None = None,
              progress: Callable[[int], object] | None = None) -> int:
        """Build (or go on building) `version` beside the active one; returns its position."""
        self.database.create_projection_tables(version)
        while True:
            with self.database.write(lock=f"{NAME}-build-{version}", durable=False) as cursor:
                position, count = self._advance(cursor.versioned(version), batch, until)
            if progress and count:
                progress(count)
            if count < batch:
                return position

    def rebuild(self, batch: int = 5000, progress: Callable[[int], object] | None = None) -> tuple[int, int]:
        """Rebuild every view from the log beside the live ones, then switch atomically.

        Resumable: an interrupted rebuild goes on with the version it was building.
        Returns (new version, its position).
        """
        with self.database.write(lock=NAME) as cursor:
            building = cursor.execute("SELECT version FROM {projection_versions} WHERE name = 'building'").scalar()
            if building is None:
                building = self.active_version(cursor) + 1
                cursor.execute("INSERT INTO {projection_versions} (name, version) VALUES ('building', ?)", (building,))
        version = int(building)
        self.build(version, batch, progress=progress)
        with self.database.write(lock=NAME) as cursor:
            old = self.active_version(cursor)
            fresh = cursor.versioned(version)
            last_events = 0
            while True:  # the last events, with writers' catch-ups held off by the lock
                position, count = self._advance(fresh, batch)
                last_events += count
                if count < batch:
                    break
            cursor.execute("UPDATE {projection_versions} SET version = ? WHERE name = 'active'", (version,))
            cursor.execute("DELETE FROM {projection_versions} WHERE name = 'building'")
        if progress and last_events:
            progress(last_events)
        self.drop(old)
        return version, position

    def drop(self, version: int) -> None:
        self.database.drop_projection_tables(version)
        with self.database.write() as cursor:
            cursor.execute("DELETE FROM {projection_position} WHERE name = ?", (f"{NAME}_v{version}",))

    def behind(self) -> bool:
        with self.database.read() as cursor:
            logged = cursor.execute("SELECT MAX(position) FROM {event_log}").scalar()
            return int(logged or 0) > tracked_position(self.active(cursor))

    def follow(self, stop: threading.Event, interval: float = 1.0) -> None:
        """Catch up whenever the log is ahead, until `stop` is set; store errors are logged and retried."""
        while not stop.is_set():
            try:
                if self.behind():
                    self.catch_up()
            except Exception:
                log.exception("the projection could not catch up; retrying")
            stop.wait(interval)

    def reset(self) -> None:
        """Empty the active version, so that the next catch-up replays the whole log into it."""
        with self.database.write(lock=NAME) as cursor:
            active = self.active(cursor)
            for table in ("view_segments", "records", "heads", "head_days", "timeline", "series_members"):
                active.execute(f"DELETE FROM {{{table}}}")
            active.execute("DELETE FROM {projection_position} WHERE name = ?", (_tracking_name(active),))


class _Batch:
    """The writes of a run of events, held in memory and flushed together.

    An event that lands after every known day of its record (the usual case)
    is folded onto the record's head in memory. Any other event (an earlier
    fact, a correction, a retraction) flushes, then refolds its record in SQL.
    """

    def __init__(self, cursor: Cursor) -> None:
        self.cursor = cursor
        self.heads: dict[str, dict[str, Any]] = {}
        self.changed: set[str] = set()
        self.records: list[tuple[Any, ...]] = []
        self.new_heads: list[tuple[Any, ...]] = []
        self.days: list[tuple[Any, ...]] = []
        self.members: list[tuple[Any, ...]] = []
        self.segments: list[tuple[Any, ...]] = []
        self.unflushed: dict[tuple[str, int], int] = {}  # (record, day) -> index of its alive row in `segments`
        self.closed: list[tuple[Any, ...]] = []
        self.timeline: list[tuple[Any, ...]] = []

    def load_heads(self, records: set[str]) -> None:
        wanted = sorted(records - self.heads.keys())
        for start in range(0, len(wanted), 500):
            chunk = wanted[start:start + 500]
            rows = self.cursor.execute(
                f"SELECT record, head, kind FROM {{heads}} WHERE record IN ({','.join('?' * len(chunk))})",
                chunk).all()
            for row in rows:
                self.heads[row[0]] = {**json.loads(row[1]), "kind": row[2]}

    def apply(self, envelope: Mapping[str, Any], text: str) -> None:
        record = envelope["record"]
        if envelope["type"] == "registered":
            self._registered(envelope)
            return
        if record not in self.heads:
            self.load_heads({record})
        if envelope["type"] not in ("corrected", "retracted"):
            fact = Fact(envelope["id"], envelope["type"], ValidTime.parse(envelope["valid"]),
                        envelope["data"], envelope["position"])
            if _appends_after(self.heads[record], fact):
                self._append(envelope, text, fact)
                return
        self.flush()
        self.heads[record] = _refold(self.cursor, record, envelope["position"])

    def _registered(self, envelope: Mapping[str, Any]) -> None:
        record, position = envelope["record"], envelope["position"]
        state = initial_state(envelope["kind"], envelope["data"])
        head = {"last_day": BEFORE_ALL, "last_order": None, "last_state": state, "kind": envelope["kind"]}
        self.records.append((record, envelope["kind"], position))
        self.new_heads.append((record, envelope["kind"], _dump_head(head)))
        self.days.append((record, position, BEFORE_ALL))
        if envelope["data"].get("series"):
            self.members.append((envelope["data"]["series"], record))
        self._add_segments(record, position, [(BEFORE_ALL, state)])
        self.heads[record] = head

    def _append(self, envelope: Mapping[str, Any], text: str, fact: Fact) -> None:
        record, position = envelope["record"], envelope["position"]
        head = self.heads[record]
        last = head["last_state"]
        lower, certain = fact.valid.lower.toordinal(), fact.valid.certain_from.toordinal()
        after = {"view": fold(head["kind"], last["view"], [fact]), "uncertain": [], "has_world": True}
        rows = [(certain, after)]
        if lower < certain:
            rows.insert(0, (lower, {**last, "uncertain": [fact.id], "has_world": True}))
        if rows[0][0] == head["last_day"]:
            self._close(record, head["last_day"], position)
        self._add_segments(record, position, rows)
        head.update(last_day=certain, last_order=list(fact.order), last_state=after)
        self.changed.add(record)
        self.days.append((record, position, certain))
        valid = fact.valid
        self.timeline.append((
            fact.id, record, head["kind"], fact.type, position, valid.lower.toordinal(),
            valid.upper.toordinal() if valid.upper else None, "current", None, text,
        ))

    def _add_segments(self, record: str, position: int, rows: list[tuple[int, dict[str, Any]]]) -> None:
        for day, state in rows:
            self.unflushed[(record, day)] = len(self.segments)
            self.segments.append((record, day, position, ALIVE, dump_state(state)))

    def _close(self, record: str, day: int, position: int) -> None:
        """End the record's alive row for `day` at `position`, whether stored or still in this batch."""
        index = self.unflushed.pop((record, day), None)
        if index is None:
            self.closed.append((position, record, day, ALIVE))
        else:
            row = self.segments[index]
            self.segments[index] = (row[0], row[1], row[2], position, row[4])

    def flush(self) -> None:
        cursor = self.cursor
        cursor.executemany("INSERT INTO {records} (id, kind, registered_position) VALUES (?,?,?)", self.records)
        cursor.executemany("INSERT INTO {heads} (record, kind, head) VALUES (?,?,?)", self.new_heads)
        cursor.executemany("INSERT INTO {head_days} (record, sys_from, last_day) VALUES (?,?,?)", self.days)
        _add_members(cursor, self.members)
        cursor.executemany(
            "UPDATE {view_segments} SET sys_to = ? WHERE record = ? AND valid_from = ? AND sys_to = ?", self.closed)
        cursor.executemany(
            "INSERT INTO {view_segments} (record, valid_from, sys_from, sys_to, state) VALUES (?,?,?,?,?)",
            self.segments)
        cursor.executemany(
            "UPDATE {heads} SET head = ? WHERE record = ?",
            [(_dump_head(self.heads[record]), record) for record in sorted(self.changed)])
        _insert_timeline(cursor, self.timeline)
        self.records, self.new_heads, self.days, self.members = [], [], [], []
        self.closed, self.segments, self.timeline = [], [], []
        self.unflushed = {}
        self.changed = set()


def _refold(cursor: Cursor, record: str, position: int) -> dict[str, Any]:
    """Refold a record from its log up to `position`, replacing only the view rows that changed."""
    envelopes = [json.loads(r[0]) for r in cursor.execute(
        "SELECT envelope FROM {event_log} WHERE record = ? AND position <= ? ORDER BY position",
        (record, position)).all()]
    knowledge = read_log(envelopes)
    fresh = [(day, dump_state(state)) for day, state in segments(knowledge)]
    alive = {r[0]: r[1] for r in cursor.execute(
        "SELECT valid_from, state FROM {view_segments} WHERE record = ? AND sys_to = ?",
        (record, ALIVE)).all()}
    wanted = dict(fresh)
    cursor.executemany(
        "UPDATE {view_segments} SET sys_to = ? WHERE record = ? AND valid_from = ? AND sys_to = ?",
        [(position, record, day, ALIVE) for day, state in alive.items() if wanted.get(day) != state],
    )
    cursor.executemany(
        "INSERT INTO {view_segments} (record, valid_from, sys_from, sys_to, state) VALUES (?,?,?,?,?)",
        [(record, day, position, ALIVE, state) for day, state in fresh if alive.get(day) != state],
    )
    last_day, last_state = fresh[-1]
    # The fast path needs every fact certain by the last day; a refold keeps that true.
    head = {
        "last_day": last_day,
        "last_order": list(knowledge.facts[-1].order) if knowledge.facts else None,
        "last_state": json.loads(last_state),
        "kind": knowledge.kind,
    }
    cursor.execute("UPDATE {heads} SET head = ? WHERE record = ?", (_dump_head(head), record))
    cursor.execute("INSERT INTO {head_days} (record, sys_from, last_day) VALUES (?,?,?)", (record, position, last_day))
    if knowledge.registered.get("series"):
        _add_members(cursor, [(knowledge.registered["series"], record)])
    cursor.execute("DELETE FROM {timeline} WHERE record = ?", (record,))
    rows = []
    for fact in knowledge.facts:
        state = knowledge.states[fact.id]
        effective = None
        if state == "corrected":
            effective = json.dumps({"valid": fact.valid.text, **fact.valid.bounds(), "data": fact.data},
                                   ensure_ascii=False)
        rows.append((
            fact.id, record, knowledge.kind, fact.type, fact.position, fact.valid.lower.toordinal(),
            fact.valid.upper.toordinal() if fact.valid.upper else None, state, effective,
            json.dumps(knowledge.envelopes[fact.id], ensure_ascii=False),
        ))
    _insert_timeline(cursor, rows)
    return head


def _add_members(cursor: Cursor, rows: list[tuple[Any, ...]]) -> None:
    cursor.executemany(
        "INSERT INTO {series_members} (series, meeting) VALUES (?, ?) ON CONFLICT (series, meeting) DO NOTHING", rows)


def _insert_timeline(cursor: Cursor, rows: list[tuple[Any, ...]]) -> None:
    cursor.executemany(
        "INSERT INTO {timeline} (event_id, record, kind, type, position, valid_lower, valid_upper,"
        " state, effective, envelope) VALUES (?,?,?,?,?,?,?,?,?,?)",
        rows,
    )


def _dump_head(head: Mapping[str, Any]) -> str:
    return json.dumps({k: v for k, v in head.items() if k != "kind"}, ensure_ascii=False)


def _tracking_name(cursor: Cursor) -> str:
    return f"{NAME}_v{cursor.version}"


def tracked_position(cursor: Cursor) -> int:
    """The position a projection version has applied (the cursor names the version)."""
    value = cursor.execute(
        "SELECT position FROM {projection_position} WHERE name = ?", (_tracking_name(cursor),)).scalar()
    return int(value or 0)


def _appends_after(head: Mapping[str, Any], fact: Fact) -> bool:
    """True when the fact falls after every day and every fact the record already has."""
    if fact.valid.lower.toordinal() < head["last_day"]:
        return False
    return head["last_order"] is None or list(fact.order) > head["last_order"]
