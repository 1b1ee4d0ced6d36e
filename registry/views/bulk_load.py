"""The bulk load: a new projection version built from zero, a chunk of records at a time.

Records are independent, so the log is read in (record, position) order and cut
into chunks of whole records, about `batch` events each. Each chunk's rows are
worked out from its records' own events with the live catch-up's rules
(`view_rows`), in this process or in worker processes side by side, and written
once in their final form: no row is read back, updated or deleted. The
secondary indexes are made after the rows are written.

Chunks are written in record order, each in a transaction that also records the
last record loaded, so an interrupted load resumes after it. Memory holds a few
chunks and the events of one record.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson

from events.temporal import BEFORE_ALL, dump_state
from registry.log import reader as log
from registry.log.database import Database
from registry.log.store import RegistryStore
from registry.settings import StoreConfig
from registry.views.rows import (
    ALIVE,
    Evidence,
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
    EVIDENCE_COLUMNS,
    FACET_COLUMNS,
    SEGMENT_COLUMNS,
    TIMELINE_COLUMNS,
    index_search,
    load_search,
    track,
)

PARALLEL_FROM = 50_000  # events: below this, starting worker processes costs more than it saves


@dataclass
class Chunk:
    """The records after `after` up to `through` (None: to the last), their events up to `until`."""

    after: str
    through: str | None
    until: int


@dataclass
class Rows:
    """The rows of a chunk of records, ready to insert."""

    last_record: str | None = None
    events: int = 0
    records: list[tuple[Any, ...]] = field(default_factory=list)
    heads: list[tuple[Any, ...]] = field(default_factory=list)
    days: list[tuple[Any, ...]] = field(default_factory=list)
    members: list[tuple[Any, ...]] = field(default_factory=list)
    segments: list[tuple[Any, ...]] = field(default_factory=list)
    timeline: list[tuple[Any, ...]] = field(default_factory=list)
    facets: list[tuple[str, str, str, str]] = field(default_factory=list)
    evidence: list[tuple[Any, ...]] = field(default_factory=list)
    search: list[tuple[Any, ...]] = field(default_factory=list)

    def add_record(self, events: list[dict[str, Any]]) -> None:
        """One record's rows, worked out from its events as the live catch-up would have stored them."""
        first = events[0]
        record = first["record"]
        head = registered_head(first)
        self.records.append((record, first["kind"], first["position"]))
        self.days.append((record, first["position"], BEFORE_ALL))
        members = {first["data"]["series"]} if first["data"].get("series") else set()
        alive: dict[int, tuple[int, str]] = {BEFORE_ALL: (first["position"], dump_state(head["last_state"]))}
        found = set(facets(first["kind"], record, head["last_state"]))
        timeline: list[tuple[Any, ...]] = []
        evidence: dict[int, tuple[int, Evidence]] = {}  # event position -> (sys_from, entry), alive
        self.search.extend(text_rows(first))
        self.search.extend(new_titles(first, [], [title_of(head["last_state"])]))
        for number, envelope in enumerate(events[1:], start=1):
            position, fact = envelope["position"], world_fact(envelope)
            self.search.extend(text_rows(envelope))
            if fact is not None and appends_after(head, fact):
                rows, after = appended(head, fact)
                if rows[0][0] == head["last_day"]:
                    self._end(record, head["last_day"], alive.pop(head["last_day"]), position)
                for day, view in rows:
                    alive[day] = (position, dump_state(view))
                    found.update(facets(first["kind"], record, view))
                self.search.extend(new_titles(envelope, [title_of(head["last_state"])],
                                              [title_of(view) for _, view in rows]))
                head = after
                timeline.append(timeline_row(record, fact))
                evidence[position] = (position, evidence_entry(fact, envelope["sources"]))
            else:
                folded = refold(record, events[:number + 1])
                before = [title_of(orjson.loads(text)) for _, text in alive.values()]
                ended, added = folded.changes({day: row[1] for day, row in alive.items()})
                for day in ended:
                    self._end(record, day, alive.pop(day), position)
                for day, text in added:
                    alive[day] = (position, text)
                found.update(text_facets(first["kind"], record, [text for _, text in added]))
                ended_at, added_at = folded.evidence_changes({at: row[1] for at, row in evidence.items()})
                for at in ended_at:
                    sys_from, entry = evidence.pop(at)
                    self.evidence.append((record, at, *entry, sys_from, position))
                for at, entry in added_at:
                    evidence[at] = (position, entry)
                event = {"record": record, "kind": first["kind"], "position": position}
                self.search.extend(new_titles(event, before, folded.titles()))
                head, timeline = folded.head, folded.timeline
                if folded.series:
                    members.add(folded.series)
            self.days.append((record, position, head["last_day"]))
        self.segments.extend((record, day, sys_from, ALIVE, state) for day, (sys_from, state) in alive.items())
        self.evidence.extend((record, at, *entry, sys_from, ALIVE) for at, (sys_from, entry) in evidence.items())
        self.heads.append((record, first["kind"], dump_head(head)))
        self.members.extend((series, record) for series in sorted(members))
        self.timeline.extend(timeline)
        self.facets.extend(sorted(found))
        self.last_record = record
        self.events += len(events)

    def _end(self, record: str, day: int, row: tuple[int, str], position: int) -> None:
        self.segments.append((record, day, row[0], position, row[1]))


def fold_chunk(database: Database, chunk: Chunk) -> Rows:
    """Read a chunk's events and work out its rows."""
    with database.read() as cursor:
        found = log.records_in_order(cursor, chunk.after, chunk.through, chunk.until)
    rows, events = Rows(), list[dict[str, Any]]()
    for record, envelope in found:
        if events and events[0]["record"] != record:
            rows.add_record(events)
            events = []
        events.append(orjson.loads(envelope))
    if events:
        rows.add_record(events)
    return rows


class BulkLoad:
    """Loads projection `version` (its tables made without secondary indexes) from the log up to `until`."""

    def __init__(self, database: Database, version: int, until: int) -> None:
        self.database = database
        self.version = version
        self.until = until
        self.stored_texts: OrderedDict[bytes, None] = OrderedDict()

    def run(self, batch: int, after_record: str, progress: Callable[[int], object] | None = None,
            workers: int | None = None) -> None:
        """Load every record after `after_record`, then make the indexes and end the load.

        `workers`: processes that work out rows beside this one, which writes them and works
        out rows too while it would wait (None: one fewer than the machine's cores, up to 8,
        at least one, when the log is long enough to pay for starting them; else none).
        """
        if workers is None:
            workers = max(1, min(8, (os.cpu_count() or 1) - 1)) if self.until >= PARALLEL_FROM else 0
        with _without_cycle_collection():
            for rows in self._folded(self._chunks(after_record, batch), workers):
                self._write(rows)
                if progress:
                    progress(rows.events)
        with self.database.write(durable=False) as raw:
            cursor = raw.versioned(self.version)
            self.database.create_projection_indexes(cursor)
            index_search(cursor)
            cursor.execute("UPDATE {projection_tables} SET load_until = NULL, loaded_through = NULL WHERE version = ?",
                           (self.version,))
            track(cursor, self.until)

    def _chunks(self, after: str, batch: int) -> Iterator[Chunk]:
        """Whole records, about `batch` events each, found in the log's (record, position) index."""
        while True:
            with self.database.read() as cursor:
                through = log.record_at_offset(cursor, after, self.until, max(batch, 1) - 1)
            yield Chunk(after, through, self.until)
            if through is None:
                return
            after = through

    def _folded(self, chunks: Iterator[Chunk], workers: int) -> Iterator[Rows]:
        """Each chunk's rows, in chunk order. With workers, this process folds a chunk of its own
        whenever the next one due is not ready yet, so no core waits while there is work."""
        if workers == 0:
            for chunk in chunks:
                yield fold_chunk(self.database, chunk)
            return
        context = multiprocessing.get_context("spawn")  # a fresh interpreter: no inherited connections
        start = (self.database.config, RegistryStore.name)
        with context.Pool(workers, initializer=_start_worker, initargs=start) as pool:
            pending: deque[Any] = deque()  # in chunk order: a worker's result, or rows folded here
            sent = 0  # of the pending, those sent to workers
            queued = 2 * workers + 1  # sent at most: each worker always has the next chunk waiting
            ahead = queued + 2  # pending at most
            following = next(chunks, None)
            while following is not None or pending:
                while following is not None and sent < queued and len(pending) < ahead:  # every worker busy
                    pending.append(pool.apply_async(_fold_in_worker, (following,)))
                    sent += 1
                    following = next(chunks, None)
                head = pending[0] if pending else None
                if head is not None and (isinstance(head, Rows) or head.ready() or following is None
                                         or len(pending) >= ahead):
                    pending.popleft()
                    if not isinstance(head, Rows):
                        sent -= 1
                    yield _rows(head)
                elif following is not None:  # the next due is not ready: fold one here meanwhile
                    pending.append(fold_chunk(self.database, following))
                    following = next(chunks, None)

    def _write(self, rows: Rows) -> None:
        if not rows.events:
            return
        with self.database.write(durable=False) as raw:
            cursor = raw.versioned(self.version)
            for table, columns, table_rows in (
                ("records", ("id", "kind", "registered_position"), rows.records),
                ("heads", ("record", "kind", "head"), rows.heads),
                ("head_days", ("record", "sys_from", "last_day"), rows.days),
                ("series_members", ("series", "meeting"), rows.members),  # records are disjoint: no duplicates
                ("view_segments", SEGMENT_COLUMNS, rows.segments),
                ("timeline", TIMELINE_COLUMNS, rows.timeline),
                ("record_facets", FACET_COLUMNS, rows.facets),  # records are disjoint: no duplicates
                ("evidence", EVIDENCE_COLUMNS, rows.evidence),
            ):
                cursor.insert_rows(table, columns, table_rows)
            load_search(cursor, rows.search, self.stored_texts)
            cursor.execute("UPDATE {projection_tables} SET loaded_through = ? WHERE version = ?",
                           (rows.last_record, self.version))


# Worker processes: each reads the store through a database of its own.

_worker_database: Database | None = None


def _start_worker(config: StoreConfig, name: str) -> None:
    global _worker_database
    gc.disable()  # see _without_cycle_collection
    _worker_database = Database.open(config, name)


@contextmanager
def _without_cycle_collection() -> Iterator[None]:
    """Rows and envelopes hold no reference cycles, but their sheer number makes the cycle
    collector walk the growing heap again and again: a bulk load runs without it."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _rows(item: Rows | Any) -> Rows:
    return item if isinstance(item, Rows) else item.get()


def _fold_in_worker(chunk: Chunk) -> Rows:
    assert _worker_database is not None
    return fold_chunk(_worker_database, chunk)
