"""Audit: prove that no stored event was edited, deleted or reordered.

`verify` re-reads the log in position order in bounded batches and checks, for
every row: the position follows the last one; the envelope decodes and agrees
with the row; its hash recomputes; its `prev_hash` is the previous hash; time
never goes back; each record's versions are contiguous; and the event store's
own copy of the event says the same. Over the whole log it also replays every
event into a fresh projection version and compares it with the stored views.
"""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent

from registry.errors import BadQuery, StoreBusy
from registry.log import reader as log
from registry.log.chain import GENESIS, envelope_hash
from registry.log.database import Cursor
from registry.log.store import RegistryStore, record_uuid
from registry.views.rows import ALIVE
from registry.views.tables import tracked_position

BATCH = 1000
ENVELOPE_COLUMNS = ("position", "id", "record", "kind", "type", "version", "recorded_at", "hash")


@dataclass(frozen=True)
class Finding:
    position: int
    reason: str


class Bad(Exception):
    def __init__(self, position: int, reason: str) -> None:
        super().__init__(reason)
        self.finding = Finding(position, reason)


class Auditor:
    def __init__(self, store: RegistryStore, projection: Any) -> None:
        self.store = store
        self.database = store.database
        self.projection = projection
        self._replaying = threading.Lock()

    def verify(self, start: int | None = None, end: int | None = None, head_hash: str | None = None,
               projections: bool = True, progress: Callable[[int], object] | None = None) -> dict[str, Any]:
        """`{ok, checked, head, first_bad, projections}`; raises BadQuery for a range outside the log,
        or a `head_hash` without the `start` it was kept at.

        `start` defaults to 1. With `head_hash` (an auditor's kept receipt of position
        `start`), the whole log from position 1 is checked, and the event at `start` must
        have that hash: today's log holds exactly the receipted history and only adds to it.
        """
        if head_hash is not None and start is None:
            raise BadQuery("a kept hash is the hash of one position: give that position as 'from'",
                           {"from": ["needed with hash"]})
        start = 1 if start is None else start
        head = self._head()
        last = head["position"] if end is None else end
        if start < 1:
            raise BadQuery("'from' must be 1 or more", {"from": ["below 1"]})
        if start > max(head["position"], 1):
            raise BadQuery(f"'from' {start} is beyond the head at position {head['position']}",
                           {"from": ["beyond the head"]})
        if last < start and end is not None:  # an empty log checks nothing from 1 to its head, 0
            raise BadQuery(f"'to' {end} is before 'from' {start}", {"to": ["before from"]})
        if last > head["position"]:
            raise BadQuery(f"'to' must lie between 'from' and the head ({head['position']})", {"to": ["out of range"]})
        checked = 0
        replayed = "skipped"
        first = 1 if head_hash is not None else start
        try:
            checked = self._check_log(first, last, (start, head_hash) if head_hash else None, progress)
            if projections and first == 1 and last == head["position"]:
                replayed = self._check_projections()
        except Bad as bad:
            return {"ok": False, "checked": checked, "head": head, "first_bad": bad.finding.__dict__,
                    "projections": replayed}
        return {"ok": True, "checked": checked, "head": head, "first_bad": None, "projections": replayed}

    # The log

    def _check_log(self, start: int, last: int, receipt: tuple[int, str] | None,
                   progress: Callable[[int], object] | None) -> int:
        prev_hash, recorded_at = GENESIS, ""
        if start > 1:
            previous = self._row(start - 1)
            if previous is None:
                raise Bad(start - 1, f"position {start - 1} is missing")
            prev_hash, recorded_at = previous["hash"], previous["recorded_at"]
        library = self._library_rows(start)
        expected, checked = start, 0
        for batch in self._batches(start, last):
            for row in batch:
                position, row_hash, envelope_text = int(row["position"]), row["hash"], row["envelope"]
                if position != expected:
                    raise Bad(expected, f"position {expected} is missing (the next row is {position})")
                envelope = self._decode(position, envelope_text)
                if receipt is not None and position == receipt[0] and row_hash != receipt[1]:
                    raise Bad(position, "the log does not extend the given head: its hash differs")
                self._check_row(row, envelope)
                if envelope["prev_hash"] != prev_hash:
                    raise Bad(position, f"prev_hash does not link to position {position - 1}")
                if envelope["recorded_at"] < recorded_at:
                    raise Bad(position, "recorded_at is earlier than the previous event's")
                self._check_version(position, envelope, row["previous"])
                self._check_stored_event(position, envelope, next(library, None))
                prev_hash, recorded_at = row_hash, envelope["recorded_at"]
                expected += 1
                checked += 1
            if progress:
                progress(len(batch))
        if expected <= last:
            raise Bad(expected, f"position {expected} is missing")
        if last == self._head()["position"] and next(library, None) is not None:
            raise Bad(last + 1, "the event store holds an event past the log's head")
        return checked

    def _check_row(self, row: Any, envelope: Mapping[str, Any]) -> None:
        """The columns readers select by must say what the sealed envelope says."""
        position = int(row["position"])
        missing = [name for name in ENVELOPE_COLUMNS if name not in envelope]
        if missing:
            raise Bad(position, f"the envelope lacks {', '.join(missing)}")
        target = envelope["data"].get("target") if envelope["type"] in ("corrected", "retracted") else None
        columns = {name: row[name] for name in ("position", "record", "kind", "type", "version",
                                                 "recorded_at", "hash", "target")}
        columns["id"] = row["event_id"]
        for name, value in columns.items():
            expected = target if name == "target" else envelope[name]
            if value != expected:
                raise Bad(position, f"the row's {name} column disagrees with its envelope (edited)")
        if envelope_hash(envelope) != row["hash"]:
            raise Bad(position, "the hash does not match the envelope's content (edited)")

    def _check_version(self, position: int, envelope: Mapping[str, Any], previous: int | None) -> None:
        """A record's version N > 1 follows its version N - 1, logged earlier (looked up, not remembered)."""
        record, version = envelope["record"], envelope["version"]
        if version != 1 and (previous is None or previous >= position):
            raise Bad(position, f"version {version} of {record!r} does not follow version {version - 1}")

    def _check_stored_event(self, position: int, envelope: Mapping[str, Any], stored: StoredEvent | None) -> None:
        if stored is None:
            raise Bad(position, "the event store has no event for this position (deleted)")
        if stored.originator_id != record_uuid(envelope["record"]) or stored.originator_version != envelope["version"]:
            raise Bad(position, "the event store's event at this place is another one (deleted or reordered)")
        try:
            event: Any = self.store.mapper.to_domain_event(stored)
        except Exception as error:  # any decoding failure is a finding, not a crash
            raise Bad(position, f"the event store's event does not decode: {type(error).__name__}") from None
        same = (
            event.event_id == envelope["id"]
            and getattr(event, "type", "registered") == envelope["type"]
            and getattr(event, "valid", None) == envelope["valid"]
            and event.data == envelope["data"]
            and event.sources == envelope["sources"]
            and event.note == envelope["note"]
            and event.actor == envelope["actor"]
        )
        if not same:
            raise Bad(position, "the event store's event differs from the log's envelope (edited)")

    def _decode(self, position: int, text: str) -> dict[str, Any]:
        try:
            envelope = json.loads(text)
        except (TypeError, ValueError):
            raise Bad(position, "the row's envelope is not decodable JSON") from None
        if not isinstance(envelope, dict):
            raise Bad(position, "the row's envelope is not a JSON object")
        return envelope

    def _head(self) -> dict[str, Any]:
        with self.database.read() as cursor:
            return log.head(cursor)

    def _row(self, position: int) -> Any:
        with self.database.read() as cursor:
            return log.entry(cursor, position)

    def _batches(self, start: int, last: int) -> Iterator[list[Any]]:
        after = start - 1
        while after < last:
            with self.database.read() as cursor:
                rows = log.rows_in_range(cursor, after, last, BATCH)
            if not rows:
                return
            yield rows
            after = int(rows[-1][0])

    def _library_rows(self, start: int) -> Iterator[StoredEvent]:
        """The event store's events in the order they were stored, from the one logged at `start`."""
        table = self._library_table()
        order = "rowid" if self.database.engine == "sqlite" else "notification_id"
        key = 0
        if start > 1:
            with self.database.read() as cursor:
                row = log.entry(cursor, start)
                if row is not None:
                    found = cursor.execute(
                        f"SELECT {order} FROM {table} WHERE originator_id = ? AND originator_version = ?",
                        (self._originator(row["record"]), row["version"])).scalar()
                    key = int(found) - 1 if found is not None else 0
        while True:
            with self.database.read() as cursor:
                rows = cursor.execute(
                    f"SELECT {order}, originator_id, originator_version, topic, state FROM {table}"
                    f" WHERE {order} > ? ORDER BY {order} LIMIT ?", (key, BATCH)).all()
            if not rows:
                return
            for row in rows:
                yield StoredEvent(
                    originator_id=row[1] if isinstance(row[1], UUID) else UUID(row[1]),
                    originator_version=int(row[2]), topic=row[3], state=bytes(row[4]))
            key = int(rows[-1][0])

    def _library_table(self) -> str:
        name = self.store.recorder.events_table_name  # type: ignore[attr-defined]
        return f'"{self.database.schema}".{name}' if self.database.engine == "postgres" else str(name)

    def _originator(self, record: str) -> Any:
        uuid = record_uuid(record)
        return uuid.hex if self.database.engine == "sqlite" else uuid

    # The projections

    def _check_projections(self) -> str:
        """Replay the log into a fresh projection version and compare it with the active one."""
        if not self._replaying.acquire(blocking=False):
            raise StoreBusy("a verification is already replaying the log in this process; try again later")
        try:
            return self._replay_and_compare()
        finally:
            self._replaying.release()

    def _replay_and_compare(self) -> str:
        try:
            self.projection.catch_up()
        except Exception as error:  # an event the views cannot apply is a finding
            raise Bad(self.projection.position() + 1, f"the views cannot apply this event: {error!r}") from None
        version = 1_000_000 + secrets.randbelow(1_000_000)
        try:
            active_position = self.projection.position()
            built = self.projection.build(version, until=active_position)
            with self.database.read() as cursor:
                active = self.projection.active(cursor)
                position = min(built, tracked_position(active))
                self._compare(active, cursor.versioned(version), position)
        finally:
            self.projection.drop(version)
        return "verified"

    def _compare(self, stored: Cursor, replayed: Cursor, position: int) -> None:
        """Compare the tables row by row in key order, a page at a time (bounded memory)."""
        tables: list[tuple[str, str, str, tuple[Any, ...], tuple[Any, ...], int, int, str]] = [
            ("record, valid_from, sys_from, CASE WHEN sys_to > ? THEN ? ELSE sys_to END, state",
             "{view_segments}", "sys_from <= ?", (position, ALIVE), (position,), 3, 2,
             "the stored view of {0!r} differs from a replay of the log"),
            ("id, registered_position, kind", "{records}", "registered_position <= ?", (), (position,), 1, 1,
             "the stored record index differs from a replay at {0!r}"),
            ("record, sys_from, last_day", "{head_days}", "sys_from <= ?", (), (position,), 2, 1,
             "the stored view bounds of {0!r} differ from a replay of the log"),
        ]
        if tracked_position(stored) == position:  # these hold current knowledge only: compared when both are current
            tables.append(("record, position, valid_lower, valid_upper, state, effective", "{timeline}", "1 = 1",
                           (), (), 2, 1, "the stored timeline of {0!r} differs from a replay of the log"))
            tables.append(("m.series, m.meeting, r.registered_position",
                           "{series_members} m JOIN {records} r ON r.id = m.meeting", "1 = 1", (), (), 2, 2,
                           "the stored meetings of series {0!r} differ from a replay of the log"))
            tables.append(("f.kind, f.facet, f.value, f.record, r.registered_position",
                           "{record_facets} f JOIN {records} r ON r.id = f.record", "1 = 1", (), (), 4, 4,
                           "the stored list filters of kind {0!r} differ from a replay of the log"))
        for columns, table, where, select_params, where_params, key, at, reason in tables:
            mine_rows = _paged(stored, columns, table, where, select_params, where_params, key)
            their_rows = _paged(replayed, columns, table, where, select_params, where_params, key)
            while True:
                mine, theirs = next(mine_rows, None), next(their_rows, None)
                if mine is None and theirs is None:
                    break
                if mine != theirs:
                    row = mine if mine is not None else theirs
                    assert row is not None
                    raise Bad(int(row[at]), reason.format(row[0]))


def _paged(cursor: Cursor, columns: str, table: str, where: str, select_params: tuple[Any, ...],
           where_params: tuple[Any, ...], key: int) -> Iterator[tuple[Any, ...]]:
    """Rows in key order, fetched a page at a time by keyset."""
    names = [c.strip() for c in columns.split(",")][:key]
    last: tuple[Any, ...] | None = None
    while True:
        clause = where
        params: tuple[Any, ...] = select_params + where_params
        if last is not None:
            clause += f" AND ({', '.join(names)}) > ({', '.join('?' * key)})"
            params += last
        rows = cursor.execute(
            f"SELECT {columns} FROM {table} WHERE {clause} ORDER BY {', '.join(names)} LIMIT {BATCH}", params).all()
        if not rows:
            return
        for row in rows:
            yield tuple(row)
        last = tuple(rows[-1])[:key]
