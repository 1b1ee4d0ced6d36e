"""The one write path: a transaction that stores events, their log entries and what goes with them.

Two tables hold each event, on purpose:
- the `eventsourcing` library's stored events, keyed (record, version): the library
  loads records from them, and their unique key turns two concurrent writes to one
  record into an IntegrityError (optimistic concurrency);
- the global log (`{event_log}`): the envelope as the registry publishes it, with its
  gap-free position, `recorded_at`, hash chain and the columns readers select by.
Both are written in one transaction, under the library's table lock on PostgreSQL
(so positions are in commit order), and so is the request's idempotency key and,
where the caller passes `apply_views`, the views: no event is ever visible without
its log entry and hash.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypedDict

from registry.log.chain import append_imported, append_to_log
from registry.log.database import Cursor
from registry.log.store import Record, RegistryStore


class LogEntry(TypedDict):
    """An event as the log will publish it, before the log gives it a position, time and hash."""

    id: str
    record: str
    kind: str
    version: int
    type: str
    valid: str | None
    valid_lower: str | None
    valid_upper: str | None
    data: dict[str, Any]
    sources: list[dict[str, Any]]
    note: str | None
    actor: str


@dataclass(frozen=True)
class IdempotencyRecord:
    """A request's Idempotency-Key, stored with its outcome (JSON) in the transaction it caused."""

    key: str
    actor: str
    fingerprint: str
    outcome: str


@dataclass(frozen=True)
class Commit:
    """What one transaction stores: the records' new events and their log entries, in order."""

    records: Sequence[Record]
    entries: Sequence[LogEntry]
    idempotency: IdempotencyRecord | None = None


@dataclass(frozen=True)
class Committed:
    envelopes: list[dict[str, Any]]  # as logged: with position, recorded_at, prev_hash and hash
    views_applied: bool  # whether `apply_views` brought the views up to the last envelope


ApplyViews = Callable[[Cursor, list[dict[str, Any]]], bool]


class LogWriter:
    """Commits events to the store and the global log in one transaction."""

    def __init__(self, store: RegistryStore, apply_views: ApplyViews | None = None) -> None:
        self.store = store
        self.apply_views = apply_views

    def commit(self, commit: Commit) -> Committed:
        """Store the commit's events; raises the library's IntegrityError when a record moved on
        meanwhile (nothing is stored) and OperationalError when the store is unavailable."""
        events = [event for record in commit.records for event in record.collect_events()]
        stored = [self.store.mapper.to_stored_event(event) for event in events]
        with self.store.database.write() as cursor:
            self.store.insert_stored(cursor, stored)
            envelopes = append_to_log(cursor, commit.entries)
            if commit.idempotency is not None:
                _remember(cursor, commit.idempotency, envelopes[-1]["recorded_at"])
            applied = self.apply_views(cursor, envelopes) if self.apply_views else False
        self.store.remember(commit.records)
        return Committed(envelopes, applied)

    @contextmanager
    def importing(self) -> Iterator[Callable[[list[Any], list[dict[str, Any]]], None]]:
        """One transaction for a whole import: `write(events, envelopes)` may be called many
        times; the envelopes keep their positions, times and hashes."""
        with self.store.database.write() as cursor:

            def write(events: list[Any], envelopes: list[dict[str, Any]]) -> None:
                self.store.insert_stored(cursor, [self.store.mapper.to_stored_event(e) for e in events])
                append_imported(cursor, envelopes)

            yield write


def _remember(cursor: Cursor, idempotency: IdempotencyRecord, recorded_at: str) -> None:
    cursor.execute(
        "INSERT INTO {idempotency} (key, actor, fingerprint, outcome, created_at) VALUES (?,?,?,?,?)",
        (idempotency.key, idempotency.actor, idempotency.fingerprint, idempotency.outcome, recorded_at),
    )
