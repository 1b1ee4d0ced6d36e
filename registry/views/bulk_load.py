"""The bulk load: a new projection version built from zero, a chunk of records at a time.

Records are independent, so the log is read in (record, position) order and cut
into chunks of whole records, about `batch` events each. Each chunk's rows are
worked out from its records' own events with the live catch-up's rules
(`view_rows`), in this process or in worker processes side by side, and written
once in their final form by the process that worked them out: no row is read
back, updated or deleted. The secondary indexes are made after the rows are written.

Chunks are written in record order, each in a transaction that also records the
last record loaded, so an interrupted load resumes after it. Memory holds a
chunk per process and the events of one record.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import queue
import signal
import time
import traceback
from collections import OrderedDict
from collections.abc import Callable, Generator, Iterator
from contextlib import closing, contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any

import orjson

from events.temporal import BEFORE_ALL, dump_state
from registry.log import reader as log
from registry.log.database import Database
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
        faceted = head["last_state"]  # the state whose facets were found last
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
                    if not _same_facets(view, faceted):  # else they are found already
                        faceted = view
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


def _same_facets(state: dict[str, Any], other: dict[str, Any]) -> bool:
    """True when the states have the same status and the same list of parties or members: a
    fold replaces a list rather than editing it, so an unchanged list is the same object."""
    view, seen = state["view"], other["view"]
    return view.get("status") == seen.get("status") and (
        (view.get("parties") or view.get("members")) is (seen.get("parties") or seen.get("members")))


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

        `workers`: processes that load chunks beside this one, which loads chunks too (None: one
        fewer than the machine's cores, up to 8, at least one, when the log is long enough to pay
        for starting them; else none). `progress` learns each chunk's events, in chunk order, once
        it is written and this process has heard so: if the load is interrupted, the workers may
        have written chunks not reported yet (a resumed load goes on after them).
        """
        if workers is None:
            workers = max(1, min(8, (os.cpu_count() or 1) - 1)) if self.until >= PARALLEL_FROM else 0
        chunks = self._chunks(after_record, batch)
        crew = _Crew(self, workers) if workers else None
        with crew or nullcontext():
            loading = crew.load(chunks) if crew else self._load_here(chunks)
            with _without_cycle_collection(), closing(loading):
                for events in loading:
                    if progress:
                        progress(events)
            with self.database.write(durable=False) as raw:  # while the workers exit
                cursor = raw.versioned(self.version)
                self.database.create_projection_indexes(cursor)
                index_search(cursor)
                cursor.execute("UPDATE {projection_tables} SET load_until = NULL, loaded_through = NULL"
                               " WHERE version = ?", (self.version,))
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

    def _load_here(self, chunks: Iterator[Chunk]) -> Generator[int, None, None]:
        for chunk in chunks:
            rows = fold_chunk(self.database, chunk)
            self._write(rows)
            yield rows.events

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


# Loading side by side: this process and worker processes take chunks in order from one
# queue, each as it becomes free, work out their rows, and write them in turn, in chunk order.
# A process waits for its turn only behind chunks that busy processes took before it, so no
# chunk waits on a later one, and whatever stops the load, every chunk written follows the
# last one written before it: an interrupted load resumes after the last record written.

WAIT = 0.5  # seconds between looks at whether the load has stopped while waiting for a chunk
POLL = 0.002  # seconds between looks at the turn


class LoadStopped(Exception):
    """Another process of the load failed or was stopped: this one stops too."""


@dataclass
class _Shared:
    """What the processes of one load share. No lock: a process killed holding one (or waiting
    on a condition) would hang the others; only the process whose turn it is moves the turn on."""

    todo: Any  # queue of (number, Chunk), then None for each worker: no more
    written: Any  # queue of (number, events, error text or None)
    turn: Any  # Value without a lock: the number of the next chunk to write
    stopped: Any  # Event: the load is stopping; give up

    def write_in_turn(self, number: int, load: BulkLoad, rows: Rows, gave_up: Callable[[], bool]) -> None:
        """Write the rows once every earlier chunk is written. Raises LoadStopped if `gave_up()` first."""
        while self.turn.value != number:
            if self.stopped.is_set() or gave_up():
                raise LoadStopped
            time.sleep(POLL)
        load._write(rows)
        self.turn.value = number + 1

    def written_through(self) -> int:
        """The number of chunks written."""
        return int(self.turn.value)

    def stop(self) -> None:
        self.stopped.set()


class _Crew:
    """This process and `workers` worker processes, loading chunks side by side; on leaving its
    context, it waits for the workers to exit (or stops them, if the load did not finish)."""

    def __init__(self, load: BulkLoad, workers: int) -> None:
        self.load_here = load
        self.workers = workers
        self.ahead = 2 * workers + 2  # chunks queued beyond the last written: none of the crew waits for one
        self.processes: list[Any] = []
        self.shared: _Shared | None = None  # kept until the workers exit: they may still be starting
        self.finished = False

    def __enter__(self) -> _Crew:
        return self

    def __exit__(self, *exc_info: object) -> None:
        for process in self.processes:
            if process.pid is None:  # not started: starting an earlier one failed
                continue
            process.join(None if self.finished else WAIT)
            if process.is_alive():
                process.terminate()
                process.join()

    def load(self, chunks: Iterator[Chunk]) -> Generator[int, None, None]:
        """Load every chunk; each chunk's events, in chunk order, once it is written."""
        from registry.log.store import RegistryStore  # here, so that workers need not import the event store

        context = multiprocessing.get_context("spawn")  # a fresh interpreter: no inherited connections
        self.shared = shared = _Shared(context.Queue(), context.Queue(), context.Value("q", 0, lock=False),
                                       context.Event())
        database = self.load_here.database
        start = (database.config, RegistryStore.name, self.load_here.version, self.load_here.until, shared)
        self.processes = [context.Process(target=_load_in_worker, args=start, daemon=True)
                          for _ in range(self.workers)]
        for process in self.processes:
            process.start()
        try:
            yield from self._share(chunks, shared, self.processes)
            self.finished = True
        finally:
            if self.finished:
                for _ in self.processes:
                    shared.todo.put(None)
            else:
                shared.stop()

    def _share(self, chunks: Iterator[Chunk], shared: _Shared, processes: list[Any]) -> Generator[int, None, None]:
        sent = 0  # chunks put in the queue
        reported = 0  # chunks whose events were yielded
        events: dict[int, int] = {}  # of chunks written but not yet yielded
        following = next(chunks, None)
        while following is not None or reported < sent:
            while following is not None and sent - shared.written_through() < self.ahead:
                shared.todo.put((sent, following))
                sent += 1
                following = next(chunks, None)
            taken = self._take(shared)
            if taken is not None:
                number, chunk = taken
                rows = fold_chunk(self.load_here.database, chunk)
                try:
                    shared.write_in_turn(number, self.load_here, rows, lambda: _failed(processes))
                except LoadStopped:
                    deadline = time.monotonic() + 4 * WAIT
                    while time.monotonic() < deadline:
                        self._collect(shared, events, processes, block=True)  # raises the failure, once known
                    raise LoadStopped("a worker process of the rebuild stopped") from None
                events[number] = rows.events
            self._collect(shared, events, processes, block=taken is None)
            while reported in events:
                yield events.pop(reported)
                reported += 1

    @staticmethod
    def _take(shared: _Shared) -> tuple[int, Chunk] | None:
        """The next chunk in the queue, or None when the workers have taken them all (or, rarely,
        when the chunk this process has just put in is not through the queue yet)."""
        try:
            return shared.todo.get(timeout=0.01)  # type: ignore[no-any-return]
        except queue.Empty:
            return None

    @staticmethod
    def _collect(shared: _Shared, events: dict[int, int], processes: list[Any], block: bool) -> None:
        """Take in what the workers have written. Raises LoadStopped when one failed or died."""
        while True:
            try:
                number, count, error = shared.written.get(timeout=0.1 if block else 0)
            except queue.Empty:
                if _failed(processes):
                    raise LoadStopped("a worker process of the rebuild stopped") from None
                return
            if error is not None:
                raise LoadStopped(f"a worker process of the rebuild failed: {error}")
            events[number] = count
            block = False


def _failed(processes: list[Any]) -> bool:
    return any(process.exitcode not in (None, 0) for process in processes)


def _load_in_worker(config: StoreConfig, name: str, version: int, until: int, shared: _Shared) -> None:
    gc.disable()  # see _without_cycle_collection
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the rebuilding process, which stops the load
    parent = os.getppid()

    def gave_up() -> bool:
        return shared.stopped.is_set() or os.getppid() != parent  # the load stopped, or its process died

    database = Database.open(config, name)
    load = BulkLoad(database, version, until)
    while not gave_up():
        try:
            taken = shared.todo.get(timeout=WAIT)
        except queue.Empty:
            continue
        if taken is None:
            return
        number, chunk = taken
        try:
            rows = fold_chunk(database, chunk)
            shared.write_in_turn(number, load, rows, gave_up)
        except LoadStopped:
            return
        except BaseException as error:
            shared.written.put((number, 0, "".join(traceback.format_exception_only(error)).strip()))
            shared.stop()
            raise
        shared.written.put((number, rows.events, None))


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
