"""The view projection: follows the global log and keeps bitemporal view segments.

Each batch runs in one transaction that also moves the tracking position, so
every event is applied exactly once and a crash resumes where it stopped. A
rebuild bulk-loads a new version beside the active one (`bulk_load`), lets it
catch up, and switches to it.

Segment rows carry the system positions between which they were the record's
knowledge (`sys_from` <= P < `sys_to`) and the first valid day they hold for.
An event that lands after every known day of its record adds one or two rows;
any other event (an earlier fact, a correction, a retraction) refolds the
record and replaces only the rows that changed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from contextlib import nullcontext
from typing import Any

import orjson

from events.temporal import BEFORE_ALL, dump_state
from registry.log import reader as log
from registry.log.database import LAYOUT, Cursor, Database
from registry.views.bulk_load import BulkLoad
from registry.views.rows import (
    ALIVE,
    Head,
    appended,
    appends_after,
    dump_head,
    evidence_entry,
    facets,
    new_titles,
    refold,
    registered_head,
    text_facets,
    text_rows,
    timeline_row,
    title_of,
    world_fact,
)
from registry.views.tables import (
    NAME,
    add_facets,
    add_members,
    clear_search_index,
    end_evidence,
    insert_evidence,
    insert_search,
    insert_segments,
    insert_timeline,
    track,
    tracked_position,
    tracking_name,
    update_heads,
)

REFRESH_BY_REBUILD = 10_000  # events behind, and more than the views hold: rebuilding is faster
PIPELINED = 100  # events applied at once, at most, whose writes go in one round trip (PostgreSQL)
logger = logging.getLogger(__name__)


class ViewProjection:
    """The view projection. Its tables exist per version; one version is active.

    `rebuild()` builds a new version beside the active one (resumable), then
    switches to it in one transaction and drops the old tables.
    """

    def __init__(self, database: Database) -> None:
        self.database = database

    def prepare(self) -> bool:
        """Make the active version's tables if there are none; returns False when they are
        in an older layout, which `upgrade()` rebuilds."""
        with self.database.write(lock=NAME) as cursor:
            cursor.execute(
                "INSERT INTO {projection_versions} (name, version) VALUES ('active', 1) ON CONFLICT (name) DO NOTHING")
            active = self.active_version(cursor)
            layout = cursor.execute("SELECT layout FROM {projection_tables} WHERE version = ?", (active,)).scalar()
            logged = log.last_position(cursor)
        if layout == LAYOUT:
            return True
        if logged:
            return False
        self.database.drop_projection_tables(active)
        self.database.create_projection_tables(active)
        return True

    def upgrade(self, progress: Callable[[int], object] | None = None) -> int:
        """Bring the views to this version's layout and up to the log (rebuilding them when
        their layout is older, or when most of the log is new to them); returns their position."""
        if not self.prepare():
            logger.warning("the views are in an older layout: rebuilding them from the log")
            return self.rebuild(progress=progress)[1]
        return self.refresh(progress=progress)

    def active_version(self, cursor: Cursor | None = None) -> int:
        if cursor is None:
            with self.database.read() as fresh:
                return self.active_version(fresh)
        return int(cursor.execute("SELECT version FROM {projection_versions} WHERE name = 'active'").scalar())

    def active(self, cursor: Cursor) -> Cursor:
        """The cursor, reading the active version's tables."""
        return cursor.versioned(self.active_version(cursor))

    def active_and_position(self, cursor: Cursor) -> Cursor:
        """The cursor, reading the active version's tables, with `projected`: the position they
        have applied (one query for both)."""
        row = cursor.execute(
            "SELECT v.version, p.position FROM {projection_versions} v LEFT JOIN {projection_position} p"
            " ON p.name = ? || v.version WHERE v.name = 'active'", (f"{NAME}_v",)).one()
        active = cursor.versioned(int(row[0]))
        active.projected = int(row[1] or 0)
        return active

    def position(self) -> int:
        with self.database.read() as cursor:
            return tracked_position(self.active(cursor))

    def catch_up(self, batch: int = 500, progress: Callable[[int], object] | None = None,
                 logged: list[dict[str, Any]] | None = None) -> int:
        """Apply every logged event the active version has not applied; returns its position.
        `logged`: envelopes just logged, applied as given when the views are right behind them."""
        while True:
            with self.database.write(lock=NAME, durable=False) as cursor:
                active = self.active_and_position(cursor)
                if logged and active.projected == logged[0]["position"] - 1:
                    position, count = self._apply(active, logged), 0
                else:
                    position, count = self._advance(active, batch)
            logged = None
            if progress and count:
                progress(count)
            if count < batch:
                return position

    def refresh(self, progress: Callable[[int], object] | None = None, rebuild_from: int = REFRESH_BY_REBUILD) -> int:
        """Bring the views up to the log: event by event or, when most of the log is new to
        them (after an import), by a rebuild beside them, which loads far faster. Returns
        the position the views have applied."""
        with self.database.read() as cursor:
            logged = log.last_position(cursor)
            applied = tracked_position(self.active(cursor))
        if logged - applied >= max(rebuild_from, applied):
            return self.rebuild(progress=progress)[1]
        return self.catch_up(progress=progress)

    def _advance(self, cursor: Cursor, batch: int, until: int | None = None) -> tuple[int, int]:
        """Apply up to `batch` events after the version's position (to `until`); tracking in the same transaction."""
        position = cursor.projected if cursor.projected is not None else tracked_position(cursor)
        envelopes = log.read_range(cursor, position, until, limit=batch)
        return (self._apply(cursor, envelopes) if envelopes else position), len(envelopes)

    def _apply(self, cursor: Cursor, envelopes: list[dict[str, Any]]) -> int:
        """Apply the envelopes, the next after the version's position, and track the last; returns it."""
        writes = _Batch(cursor)
        writes.load_heads({envelope["record"] for envelope in envelopes})  # in one query
        for envelope in envelopes:
            writes.apply(envelope)
        # A commit's few writes, which need no answer, in one round trip; a long catch-up's by COPY.
        with self.database.pipeline(cursor) if len(envelopes) <= PIPELINED else nullcontext():
            writes.flush()
            track(cursor, envelopes[-1]["position"])
        return int(envelopes[-1]["position"])

    def project_inline(self, cursor: Cursor, envelopes: list[dict[str, Any]]) -> bool:
        """Apply just-logged events inside the transaction that logs them, when the active
        version is right behind them; otherwise leave them to the next catch-up."""
        self.database.lock(cursor, NAME)
        active = self.active_and_position(cursor)
        if active.projected != envelopes[0]["position"] - 1:
            return False
        self._apply(active, envelopes)
        return True

    def build(self, version: int, batch: int = 5000, until: int | None = None,
              progress: Callable[[int], object] | None = None, workers: int | None = None) -> int:
        """Build (or go on building) `version` beside the active one; returns its position.

        A new version is bulk-loaded from the log as it stands (to `until`), record after
        record (`workers`: see `BulkLoad.run`); then, like any version, it catches up event
        by event (to `until`).
        """
        load_until, loaded_through = self._load_state(version, until)
        if load_until is not None:
            BulkLoad(self.database, version, load_until).run(batch, loaded_through, progress, workers)
        while True:
            with self.database.write(lock=f"{NAME}-build-{version}", durable=False) as cursor:
                position, count = self._advance(cursor.versioned(version), batch, until)
            if progress and count:
                progress(count)
            if count < batch:
                return position

    def _load_state(self, version: int, until: int | None) -> tuple[int | None, str]:
        """(the position a bulk load of `version` goes to, the last record it has loaded), or
        (None, "") once it is loaded. Starts the load of a version that has no tables."""
        with self.database.read() as cursor:
            row = cursor.execute(
                "SELECT layout, load_until, loaded_through FROM {projection_tables} WHERE version = ?",
                (version,)).one()
            head = log.last_position(cursor)
        if row is None or row[0] != LAYOUT:  # tables of an older layout, or none
            self.database.drop_projection_tables(version)
            load_until = head if until is None else min(until, head)
            self.database.create_projection_tables(version, load_until=load_until)
            return load_until, ""
        return (None if row[1] is None else int(row[1])), row[2] or ""

    def rebuild(self, batch: int = 5000, progress: Callable[[int], object] | None = None,
                workers: int | None = None) -> tuple[int, int]:
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
        self.build(version, batch, progress=progress, workers=workers)
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
            return log.last_position(cursor) > tracked_position(self.active(cursor))

    def follow(self, stop: threading.Event, interval: float = 1.0) -> None:
        """Catch up whenever the log is ahead, until `stop` is set; store errors are logged and retried."""
        while not stop.is_set():
            try:
                if self.behind():
                    self.catch_up()
            except Exception:
                logger.exception("the projection could not catch up; retrying")
            stop.wait(interval)

    def reset(self) -> None:
        """Empty the active version, so that the next catch-up replays the whole log into it."""
        with self.database.write(lock=NAME) as cursor:
            active = self.active(cursor)
            for table in ("view_segments", "records", "heads", "head_days", "timeline", "series_members",
                          "record_facets", "evidence", "search_hits", "search_texts"):
                active.execute(f"DELETE FROM {{{table}}}")
            clear_search_index(active)
            active.execute("DELETE FROM {projection_position} WHERE name = ?", (tracking_name(active),))


class _Batch:
    """The writes of a run of events, held in memory and flushed together.

    An event that lands after every known day of its record (the usual case)
    is folded onto the record's head in memory. Any other event (an earlier
    fact, a correction, a retraction) flushes, then refolds its record in SQL.
    """

    def __init__(self, cursor: Cursor) -> None:
        self.cursor = cursor
        self.heads: dict[str, Head] = {}
        self.changed: set[str] = set()
        self.records: list[tuple[Any, ...]] = []
        self.new_heads: list[tuple[Any, ...]] = []
        self.days: list[tuple[Any, ...]] = []
        self.members: list[tuple[Any, ...]] = []
        self.segments: list[tuple[Any, ...]] = []
        self.unflushed: dict[tuple[str, int], int] = {}  # (record, day) -> index of its alive row in `segments`
        self.closed: list[tuple[Any, ...]] = []
        self.timeline: list[tuple[Any, ...]] = []
        self.facets: list[tuple[str, str, str, str]] = []
        self.evidence: list[tuple[Any, ...]] = []
        self.search: list[tuple[Any, ...]] = []

    def load_heads(self, records: set[str]) -> None:
        wanted = sorted(records - self.heads.keys())
        for start in range(0, len(wanted), 500):
            chunk = wanted[start:start + 500]
            rows = self.cursor.execute(
                f"SELECT record, head, kind FROM {{heads}} WHERE record IN ({','.join('?' * len(chunk))})",
                chunk).all()
            for row in rows:
                self.heads[row[0]] = {**orjson.loads(row[1]), "kind": row[2]}

    def apply(self, envelope: Mapping[str, Any]) -> None:
        record, position = envelope["record"], envelope["position"]
        self.search.extend(text_rows(envelope))
        if envelope["type"] == "registered":
            head = self.heads[record] = registered_head(envelope)
            self.search.extend(new_titles(envelope, [], [title_of(head["last_state"])]))
            self.records.append((record, envelope["kind"], position))
            self.new_heads.append((record, envelope["kind"], dump_head(head)))
            self.days.append((record, position, BEFORE_ALL))
            if envelope["data"].get("series"):
                self.members.append((envelope["data"]["series"], record))
            self._add_segments(record, position, [(BEFORE_ALL, head["last_state"])])
            self.facets += facets(envelope["kind"], record, head["last_state"])
            return
        if record not in self.heads:
            self.load_heads({record})
        head, fact = self.heads[record], world_fact(envelope)
        if fact is not None and appends_after(head, fact):
            rows, self.heads[record] = appended(head, fact)
            if rows[0][0] == head["last_day"]:
                self._close(record, head["last_day"], position)
            self._add_segments(record, position, rows)
            self.facets += [f for _, state in rows for f in facets(head["kind"], record, state)]
            self.changed.add(record)
            self.days.append((record, position, self.heads[record]["last_day"]))
            self.timeline.append(timeline_row(record, fact))
            self.evidence.append((record, position, *evidence_entry(fact, envelope["sources"]), position, ALIVE))
            self.search.extend(new_titles(envelope, [title_of(head["last_state"])], [title_of(s) for _, s in rows]))
            return
        self.flush()
        self.heads[record] = _refold(self.cursor, record, position)

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
        cursor.insert_rows("records", ("id", "kind", "registered_position"), self.records)
        cursor.insert_rows("heads", ("record", "kind", "head"), self.new_heads)
        cursor.insert_rows("head_days", ("record", "sys_from", "last_day"), self.days)
        add_members(cursor, self.members)
        cursor.executemany(
            "UPDATE {view_segments} SET sys_to = ? WHERE record = ? AND valid_from = ? AND sys_to = ?", self.closed)
        insert_segments(cursor, self.segments)
        update_heads(cursor, [(record, dump_head(self.heads[record])) for record in sorted(self.changed)])
        insert_timeline(cursor, self.timeline)
        add_facets(cursor, self.facets)
        insert_evidence(cursor, self.evidence)
        insert_search(cursor, self.search)
        self.records, self.new_heads, self.days, self.members = [], [], [], []
        self.closed, self.segments, self.timeline, self.facets, self.evidence, self.search = [], [], [], [], [], []
        self.unflushed = {}
        self.changed = set()


def _refold(cursor: Cursor, record: str, position: int) -> Head:
    """Refold a record from its log up to `position`, replacing only the view rows that changed."""
    folded = refold(record, log.record_events(cursor, record, position))
    alive = {r[0]: r[1] for r in cursor.execute(
        "SELECT valid_from, state FROM {view_segments} WHERE record = ? AND sys_to = ?",
        (record, ALIVE)).all()}
    ended, added = folded.changes(alive)
    cursor.executemany(
        "UPDATE {view_segments} SET sys_to = ? WHERE record = ? AND valid_from = ? AND sys_to = ?",
        [(position, record, day, ALIVE) for day in ended])
    insert_segments(cursor, [(record, day, position, ALIVE, state) for day, state in added])
    add_facets(cursor, text_facets(folded.head["kind"], record, [state for _, state in added]))
    alive_evidence = {r[0]: (r[1], r[2], r[3], r[4]) for r in cursor.execute(
        "SELECT position, certain_day, valid_lower, valid_upper, item FROM {evidence} WHERE record = ? AND sys_to = ?",
        (record, ALIVE)).all()}
    ended_evidence, added_evidence = folded.evidence_changes(alive_evidence)
    end_evidence(cursor, record, ended_evidence, position)
    insert_evidence(cursor, [(record, at, *entry, position, ALIVE) for at, entry in added_evidence])
    event = {"record": record, "kind": folded.head["kind"], "position": position}
    insert_search(cursor, new_titles(event, [title_of(orjson.loads(state)) for state in alive.values()],
                                     folded.titles()))
    cursor.execute("UPDATE {heads} SET head = ? WHERE record = ?", (dump_head(folded.head), record))
    cursor.execute("INSERT INTO {head_days} (record, sys_from, last_day) VALUES (?,?,?)",
                   (record, position, folded.head["last_day"]))
    if folded.series:
        add_members(cursor, [(folded.series, record)])
    cursor.execute("DELETE FROM {timeline} WHERE record = ?", (record,))
    insert_timeline(cursor, folded.timeline)
    return folded.head

