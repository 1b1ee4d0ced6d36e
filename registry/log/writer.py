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

Group commit: commits that arrive while one is being written wait, and the next of
them to run takes them all into one transaction and one durable commit (one disk
flush for the lot). The group's events, log entries and keys go in a statement per
table; if the store refuses any of it (a record moved on, a key taken), each commit is
written again on its own, with a savepoint each, so one that conflicts fails alone and
the others are stored. Every caller learns its own outcome only once the transaction is
durable.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypedDict

import psycopg
from eventsourcing.persistence import IntegrityError

from registry.log import reader
from registry.log.chain import EntryText, append_imported, append_to_log
from registry.log.database import Cursor
from registry.log.merkle import add_leaves
from registry.log.store import Record, RegistryStore

GROUP_LIMIT = 256  # commits in one transaction at most
INTEGRITY_ERRORS = (IntegrityError, sqlite3.IntegrityError, psycopg.IntegrityError)
logger = logging.getLogger(__name__)


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


@dataclass
class _Waiting:
    commit: Commit
    stored: list[Any]  # the commit's events as the library stores them, made before queueing
    texts: list[EntryText]  # its entries' canonical JSON, also made before queueing
    done: bool = False
    committed: Committed | None = None
    error: BaseException | None = None
    wake: threading.Event = field(default_factory=threading.Event)  # set when done, or when its turn to write

    def finish(self) -> None:
        self.done = True
        self.wake.set()


@dataclass
class WriterStats:
    """What `/metrics` shows of the writer: transactions, and commits and events in them."""

    transactions: int = 0
    commits: int = 0
    events: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, commits: int, events: int) -> None:
        with self.lock:
            self.transactions += 1
            self.commits += commits
            self.events += events


class LogWriter:
    """Commits events to the store and the global log, concurrent commits of a process together.

    `apply_views` writes the views inside the transaction (SQLite); `catch_up_views` brings
    them up to the log right after it (PostgreSQL, where the event table's lock must be
    short). Either way a caller's commit returns only once its views are written, or the
    catch-up has failed (`Committed.views_applied` is then False; the follower catches up).
    """

    def __init__(self, store: RegistryStore, apply_views: ApplyViews | None = None,
                 catch_up_views: Callable[[list[dict[str, Any]]], object] | None = None) -> None:
        self.store = store
        self.apply_views = apply_views
        self.catch_up_views = catch_up_views
        self.stats = WriterStats()
        self.on_commit: Callable[[int, int], None] | None = None  # told (commits, events) of each transaction
        self._queue: list[_Waiting] = []
        self._writing = False
        self._turn = threading.Lock()

    def commit(self, commit: Commit) -> Committed:
        """Store the commit's events, durably. Raises the library's IntegrityError when a record
        moved on meanwhile or the idempotency key was taken (nothing of this commit is stored),
        and OperationalError when the store is unavailable."""
        waiting = self._prepared(commit)
        with self._turn:
            self._queue.append(waiting)
            holds_turn = not self._writing
            self._writing = True
        try:
            if not holds_turn:
                waiting.wake.wait()  # until a writer has stored it, or hands this thread the turn
            while not waiting.done:  # this thread writes the next group (its own commit among them,
                holds_turn = True    # unless more than a group's worth queued before it)
                self._write_group()
        finally:  # also when this thread is interrupted while it waits or writes
            self._hand_over(waiting, holds_turn)
        if waiting.error is not None:
            raise waiting.error
        assert waiting.committed is not None
        return waiting.committed

    def _hand_over(self, waiting: _Waiting, holds_turn: bool) -> None:
        """The turn to write passes to the oldest queued commit's thread, waking only it. A
        caller that leaves while still queued takes its commit out of the queue (nothing of it
        is stored), and passes the turn on if it had just been handed it."""
        with self._turn:
            for index, queued in enumerate(self._queue):
                if queued is waiting:
                    del self._queue[index]
                    holds_turn = holds_turn or waiting.wake.is_set()
                    break
            if not holds_turn:
                return
            if self._queue:
                self._queue[0].wake.set()
            else:
                self._writing = False

    def _take_group(self) -> list[_Waiting]:
        with self._turn:
            group, self._queue = self._queue[:GROUP_LIMIT], self._queue[GROUP_LIMIT:]
        return group

    def _write_group(self) -> None:
        """One transaction for the next group; outcomes set once it is durable.

        The group is taken once the transaction holds the log's write lock: what queued while
        another process (or this one's last group) held it goes in too. Its commits are
        stored together; if the store refuses that, each on its own with a savepoint each (a
        lone commit needs none)."""
        outcomes: list[list[dict[str, Any]] | BaseException] = []
        group: list[_Waiting] | None = None
        views_applied = False
        try:
            with self.store.database.write() as cursor:
                self.store.lock_log(cursor)
                group = self._take_group()
                head = reader.head(cursor)
                together = self._write_together(cursor, group, head) if len(group) > 1 else None
                if together is not None:
                    outcomes = list(together)
                else:  # alone, or one of the group was refused: each commit on its own
                    for index, waiting in enumerate(group):
                        outcome = self._write_one(cursor, waiting, head, f"commit_{index}" if len(group) > 1 else None)
                        outcomes.append(outcome)
                        if isinstance(outcome, list):
                            head = outcome[-1]
                logged = [envelope for outcome in outcomes if isinstance(outcome, list) for envelope in outcome]
                add_leaves(cursor, logged)  # the Merkle tree grows once for the group
                if logged and self.apply_views is not None:
                    try:
                        views_applied = self.apply_views(cursor, logged)
                    except INTEGRITY_ERRORS as fault:  # a fault of the views, not a conflict to retry
                        raise ViewsFailed(f"the views could not be written: {fault}") from fault
        except BaseException as failure:  # the transaction failed: nothing of the group is stored
            error = failure.error if isinstance(failure, _Refused) else failure
            for waiting in group if group is not None else self._take_group():
                waiting.error = error
                waiting.finish()
            return
        assert group is not None
        try:
            if logged and not views_applied and self.catch_up_views is not None:
                try:
                    self.catch_up_views(logged)
                    views_applied = True
                except Exception:  # the events are stored: the views' follower catches up later
                    logger.exception("the views could not catch up after a commit")
            for waiting, outcome in zip(group, outcomes, strict=True):
                if isinstance(outcome, list):
                    try:
                        self.store.remember(waiting.commit.records)  # before the caller's next write loads them
                    except Exception:  # the commit is durable all the same; the next write reads the record
                        logger.exception("a committed record could not be cached")
        finally:  # every caller of the group learns its outcome, even if this thread is interrupted
            for waiting, outcome in zip(group, outcomes, strict=True):
                if isinstance(outcome, list):
                    waiting.committed = Committed(outcome, views_applied)
                else:
                    waiting.error = outcome
                waiting.finish()
        committed = [outcome for outcome in outcomes if isinstance(outcome, list)]
        events = sum(len(envelopes) for envelopes in committed)
        self.stats.add(len(committed), events)
        if self.on_commit is not None:
            try:
                self.on_commit(len(committed), events)
            except Exception:
                logger.exception("the writer's counters could not be updated")

    def _prepared(self, commit: Commit) -> _Waiting:
        """The commit as it waits in the queue: its events and entries encoded here, not while
        holding the store's lock."""
        return _Waiting(commit, self._stored_events(commit), [EntryText(entry) for entry in commit.entries])

    def _stored_events(self, commit: Commit) -> list[Any]:
        """The commit's events as the library stores them, in log order (taken from its records once)."""
        order = {entry["id"]: index for index, entry in enumerate(commit.entries)}
        events = sorted((event for record in commit.records for event in record.collect_events()),
                        key=lambda event: order[event.event_id])  # type: ignore[attr-defined]  # log order
        return [self.store.mapper.to_stored_event(event) for event in events]

    def _write_together(self, cursor: Cursor, group: list[_Waiting],
                        head: dict[str, Any]) -> list[list[dict[str, Any]]] | None:
        """Store the whole group in a statement per table; the envelopes of each commit. None,
        with nothing stored, when the store refuses any of it (a record moved on, a key taken)."""
        cursor.execute("SAVEPOINT group_together")
        try:
            self.store.insert_stored(cursor, [event for waiting in group for event in waiting.stored])
            envelopes = append_to_log(cursor, [entry for waiting in group for entry in waiting.commit.entries],
                                      head, leaves=False, texts=[text for waiting in group for text in waiting.texts])
            split, start = [], 0
            for waiting in group:
                split.append(envelopes[start:start + len(waiting.commit.entries)])
                start += len(waiting.commit.entries)
            _remember(cursor, [(waiting.commit.idempotency, envelopes_of[-1]["recorded_at"])
                               for waiting, envelopes_of in zip(group, split, strict=True)
                               if waiting.commit.idempotency is not None])
        except INTEGRITY_ERRORS:
            cursor.execute("ROLLBACK TO SAVEPOINT group_together")
            cursor.execute("RELEASE SAVEPOINT group_together")
            return None
        cursor.execute("RELEASE SAVEPOINT group_together")
        return split

    def _write_one(self, cursor: Cursor, waiting: _Waiting, head: dict[str, Any],
                   savepoint: str | None) -> list[dict[str, Any]] | BaseException:
        """Store one commit; a refused one leaves nothing (rolled back to `savepoint`, or with
        the whole transaction when it is the only commit, by raising `_Refused`)."""
        commit = waiting.commit
        if savepoint:
            cursor.execute(f"SAVEPOINT {savepoint}")
        try:
            self.store.insert_stored(cursor, waiting.stored)
            envelopes = append_to_log(cursor, commit.entries, head, leaves=False, texts=waiting.texts)
            if commit.idempotency is not None:
                _remember(cursor, [(commit.idempotency, envelopes[-1]["recorded_at"])])
        except INTEGRITY_ERRORS as error:
            refused = error if isinstance(error, IntegrityError) else IntegrityError(str(error))
            if not savepoint:
                raise _Refused(refused) from error
            cursor.execute(f"ROLLBACK TO SAVEPOINT {savepoint}")
            cursor.execute(f"RELEASE SAVEPOINT {savepoint}")
            return refused
        if savepoint:
            cursor.execute(f"RELEASE SAVEPOINT {savepoint}")
        return envelopes

    @contextmanager
    def importing(self) -> Iterator[Callable[[list[Any], list[dict[str, Any]]], None]]:
        """One transaction for a whole import: `write(events, envelopes)` may be called many
        times; the envelopes keep their positions, times and hashes."""
        with self.store.database.write() as cursor:
            self.store.lock_log(cursor)

            def write(events: list[Any], envelopes: list[dict[str, Any]]) -> None:
                self.store.insert_stored(cursor, [self.store.mapper.to_stored_event(e) for e in events])
                append_imported(cursor, envelopes)

            yield write


class ViewsFailed(Exception):
    """Writing the views in the events' transaction (SQLite) failed: nothing of the group is stored."""


class _Refused(Exception):
    """The store refused a group's only commit: its transaction is rolled back."""

    def __init__(self, error: IntegrityError) -> None:
        super().__init__(str(error))
        self.error = error


def _remember(cursor: Cursor, keys: list[tuple[IdempotencyRecord, str]]) -> None:
    """Store idempotency keys, each with the time its commit was recorded."""
    cursor.executemany(
        "INSERT INTO {idempotency} (key, actor, fingerprint, outcome, created_at) VALUES (?,?,?,?,?)",
        [(key.key, key.actor, key.fingerprint, key.outcome, recorded_at) for key, recorded_at in keys],
    )
