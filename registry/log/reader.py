"""The one reader of the global log: its head, ranges by position, one event, a record's events.

Every function takes a cursor, so a caller reads within its own transaction (feeds,
audit, export and the views all read the log through here). Envelopes are returned
decoded; positions are gap-free and given in commit order.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from registry.log.database import Cursor

GENESIS = "0" * 64  # the `prev_hash` of position 1
PAGE = 500
COLUMNS = "position, event_id, record, kind, type, version, target, recorded_at, hash, envelope"


@dataclass(frozen=True)
class EventFilter:
    """Which events a reader wants: any of `types`, any of `kinds`, any of `records` (empty: all)."""

    types: frozenset[str] = field(default_factory=frozenset)
    kinds: frozenset[str] = field(default_factory=frozenset)
    records: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def of(cls, types: Iterable[str] | None = None, kinds: Iterable[str] | None = None,
           records: Iterable[str] | None = None) -> EventFilter:
        return cls(frozenset(types or ()), frozenset(kinds or ()), frozenset(records or ()))

    def matches(self, envelope: Mapping[str, Any]) -> bool:
        return ((not self.types or envelope["type"] in self.types)
                and (not self.kinds or envelope["kind"] in self.kinds)
                and (not self.records or envelope["record"] in self.records))

    def sql(self) -> tuple[str, list[str]]:
        clauses, params = [], []
        for column, values in (("type", self.types), ("kind", self.kinds), ("record", self.records)):
            if values:
                clauses.append(f" AND {column} IN ({','.join('?' * len(values))})")
                params.extend(sorted(values))
        return "".join(clauses), params


EVERYTHING = EventFilter()


def head(cursor: Cursor) -> dict[str, Any]:
    """`{position, hash, recorded_at}` of the newest event (position 0 and 64 zeros when empty)."""
    row = cursor.execute(
        "SELECT position, hash, recorded_at FROM {event_log} ORDER BY position DESC LIMIT 1").one()
    if row is None:
        return {"position": 0, "hash": GENESIS, "recorded_at": None}
    return {"position": int(row[0]), "hash": row[1], "recorded_at": row[2]}


def last_position(cursor: Cursor) -> int:
    """The newest position, 0 for an empty log."""
    return int(cursor.execute("SELECT MAX(position) FROM {event_log}").scalar() or 0)


def entry(cursor: Cursor, position: int) -> Any:
    """The log row at `position` (columns as in COLUMNS), or None."""
    return cursor.execute(f"SELECT {COLUMNS} FROM {{event_log}} WHERE position = ?", (position,)).one()


def position_known_at(cursor: Cursor, instant: str) -> int:
    """The last position recorded at or before `instant` (fixed-width RFC 3339), 0 if none."""
    row = cursor.execute(
        "SELECT position FROM {event_log} WHERE recorded_at <= ? ORDER BY recorded_at DESC, position DESC LIMIT 1",
        (instant,)).one()
    return int(row[0]) if row else 0


def read_range(cursor: Cursor, after: int, upto: int | None = None, wanted: EventFilter = EVERYTHING,
               limit: int = PAGE) -> list[dict[str, Any]]:
    """Envelopes in (after, upto] that match `wanted`, in position order, at most `limit`."""
    where, params = wanted.sql()
    rows = cursor.execute(
        f"SELECT envelope FROM {{event_log}} WHERE position > ? AND position <= ?{where} ORDER BY position LIMIT ?",
        [after, 2**62 if upto is None else upto, *params, limit],
    ).all()
    return [orjson.loads(row[0]) for row in rows]


def read_committed(cursor: Cursor, after: int, upto: int, wanted: EventFilter,
                   limit: int = PAGE) -> tuple[list[dict[str, Any]], int]:
    """Matching envelopes in (after, upto], and the position read up to.

    `upto` must be known to be committed: positions are gap-free and in commit
    order, so every event at or below it is visible.
    """
    items = read_range(cursor, after, upto, wanted, limit)
    return items, (items[-1]["position"] if len(items) == limit else upto)


def rows_in_range(cursor: Cursor, after: int, upto: int, limit: int) -> list[Any]:
    """Raw log rows in (after, upto] (COLUMNS, then `previous`: the position of the same
    record's previous version, None if there is none), for checks of the stored columns."""
    prefixed = ", ".join(f"e.{column}" for column in COLUMNS.split(", "))
    return cursor.execute(
        f"SELECT {prefixed}, p.position AS previous FROM {{event_log}} e"
        " LEFT JOIN {event_log} p ON p.record = e.record AND p.version = e.version - 1"
        " WHERE e.position > ? AND e.position <= ? ORDER BY e.position LIMIT ?",
        (after, upto, limit),
    ).all()


def event(cursor: Cursor, event_id: str) -> dict[str, Any] | None:
    """One envelope by event id, or None."""
    row = cursor.execute("SELECT envelope FROM {event_log} WHERE event_id = ?", (event_id,)).one()
    return None if row is None else orjson.loads(row[0])  # type: ignore[no-any-return]


def record_events(cursor: Cursor, record_id: str, upto: int | None = None) -> list[dict[str, Any]]:
    """A record's envelopes up to position `upto` (all when None), in position order."""
    rows = cursor.execute(
        "SELECT envelope FROM {event_log} WHERE record = ? AND position <= ? ORDER BY position",
        (record_id, 2**62 if upto is None else upto),
    ).all()
    return [orjson.loads(row[0]) for row in rows]


def record_kind(cursor: Cursor, record_id: str) -> str | None:
    """The kind a record was registered as, or None when there is no such record."""
    kind = cursor.execute("SELECT kind FROM {event_log} WHERE record = ? AND version = 1", (record_id,)).scalar()
    return str(kind) if kind else None


def record_kinds_and_versions(cursor: Cursor, record_ids: Sequence[str]) -> dict[str, tuple[str, int]]:
    """(kind, version) of each of the records that exist, by id: each record's newest event
    found through the (record, version) key, whatever the length of its history."""
    found: dict[str, tuple[str, int]] = {}
    if cursor.database.engine == "postgres":  # one round trip for them all
        rows = cursor.execute(
            "SELECT r.id, e.kind, e.version FROM unnest(?::text[]) AS r(id) CROSS JOIN LATERAL"
            " (SELECT kind, version FROM {event_log} WHERE record = r.id ORDER BY version DESC LIMIT 1) e",
            (list(record_ids),)).all()
    else:  # in process: a lookup a record costs microseconds
        rows = []
        for record_id in record_ids:
            row = cursor.execute("SELECT kind, version FROM {event_log} WHERE record = ? ORDER BY version DESC LIMIT 1",
                                 (record_id,)).one()
            if row is not None:
                rows.append((record_id, *row))
    found.update((str(record), (str(kind), int(version))) for record, kind, version in rows)
    return found


def record_version(cursor: Cursor, record_id: str, upto: int) -> int | None:
    """The record's version as of position `upto`."""
    version = cursor.execute(
        "SELECT version FROM {event_log} WHERE record = ? AND position <= ? ORDER BY position DESC LIMIT 1",
        (record_id, upto)).scalar()
    return None if version is None else int(version)


def is_retracted(cursor: Cursor, event_id: str) -> bool:
    return cursor.execute(
        "SELECT 1 FROM {event_log} WHERE target = ? AND type = 'retracted'", (event_id,)).one() is not None


def records_in_order(cursor: Cursor, after_record: str, through: str | None, upto: int) -> list[Any]:
    """(record, envelope) of the records in (after_record, through], in (record, position)
    order, up to position `upto`: the order a bulk load folds records in. The envelope is its
    JSON text as UTF-8 bytes on SQLite (the JSON parser's input, not decoded twice), else text."""
    bound = "" if through is None else " AND record <= ?"
    envelope = "CAST(envelope AS BLOB)" if cursor.database.engine == "sqlite" else "envelope"
    return cursor.execute(
        f"SELECT record, {envelope} FROM {{event_log}} WHERE record > ?{bound} AND position <= ?"
        " ORDER BY record, position",
        (after_record, *([] if through is None else [through]), upto)).all()


def record_at_offset(cursor: Cursor, after_record: str, upto: int, offset: int) -> str | None:
    """The record of the event `offset` places after `after_record` in (record, position) order."""
    found = cursor.execute(
        "SELECT record FROM {event_log} WHERE record > ? AND position <= ? ORDER BY record, position"
        " LIMIT 1 OFFSET ?", (after_record, upto, offset)).scalar()
    return None if found is None else str(found)
