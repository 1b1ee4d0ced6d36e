"""The event store: one `Record` aggregate per record, in an `eventsourcing` Application."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from typing import Any

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresAggregateRecorder
from eventsourcing.utils import Environment, register_topic
from psycopg.sql import SQL, Identifier
from uuid6 import uuid7

from registry.log.database import Cursor, Database, ensure_schema
from registry.settings import StoreConfig

RECORD_NAMESPACE = uuid.UUID("6f1c1d2e-8a53-4c4e-9d35-0c5f2a7b9e11")


@functools.lru_cache(maxsize=16384)
def record_uuid(record_id: str) -> uuid.UUID:
    return uuid.uuid5(RECORD_NAMESPACE, record_id)


class Record(Aggregate):
    """One record's event stream. Its state is only what commands must check."""

    class Registered(Aggregate.Created):
        kind: str
        record_id: str
        event_id: str
        data: dict[str, Any]
        sources: list[dict[str, Any]]
        note: str | None
        actor: str

    class Recorded(Aggregate.Event):
        event_id: str
        type: str
        valid: str | None
        data: dict[str, Any]
        sources: list[dict[str, Any]]
        note: str | None
        actor: str

        def apply(self, aggregate: Aggregate) -> None:
            if self.type == "retracted":  # a new set, never changed in place: copies share it
                aggregate.retracted = aggregate.retracted | {self.data["target"]}  # type: ignore[attr-defined]

    def __init__(self, kind: str, record_id: str, event_id: str, data: dict[str, Any],
                 sources: list[dict[str, Any]], note: str | None, actor: str) -> None:
        self.kind = kind
        self.record_id = record_id
        self.retracted: frozenset[str] = frozenset()  # ids of the record's retracted events

    def __deepcopy__(self, memo: dict[int, Any]) -> Record:
        # The library copies cached records for each command. Every attribute is immutable
        # but the list of pending events: a shallow copy with a list of its own will do.
        copied = object.__new__(type(self))
        copied.__dict__.update(self.__dict__)
        copied.__dict__["_pending_events"] = list(self.__dict__["_pending_events"])
        return copied

    @classmethod
    def register(cls, kind: str, record_id: str, data: dict[str, Any],
                 sources: list[dict[str, Any]], note: str | None, actor: str) -> Record:
        return cls._create(
            cls.Registered, id=record_uuid(record_id), kind=kind, record_id=record_id,
            event_id=_event_id(), data=data, sources=sources, note=note, actor=actor,
        )

    def record(self, type: str, valid: str | None, data: dict[str, Any],
               sources: list[dict[str, Any]], note: str | None, actor: str) -> Recorded:
        self.trigger_event(
            self.Recorded, event_id=_event_id(), type=type, valid=valid,
            data=data, sources=sources, note=note, actor=actor,
        )
        return self.pending_events[-1]  # type: ignore[return-value]


# Events stored before the store moved to `registry.log.store` name its old module.
register_topic("registry.store:Record", Record)


class RegistryStore(Application[uuid.UUID]):
    """The event store. Its name is pinned: it names tables and configuration keys.

    Events are not saved through `Application.save()`: `registry.log.writer` stores
    them with their log entries in one transaction of its own, by `insert_stored()`.
    """

    name = "registry"

    def __init__(self, config: StoreConfig) -> None:
        self.config = config
        env = config.library_env()
        env["AGGREGATE_CACHE_MAXSIZE"] = "2000"
        if config.engine == "postgres":
            ensure_schema(config)
        super().__init__(env=env)
        self.database = Database(self.factory.datastore, config)  # type: ignore[attr-defined]

    def close(self) -> None:
        self.database.close()
        super().close()

    def construct_env(self, name: str, env: Any = None) -> Any:
        # The store is configured by StoreConfig alone, not by stray process variables.
        return Environment(name, dict(env or {}))

    def insert_stored(self, cursor: Cursor, stored: Sequence[StoredEvent]) -> None:
        """Insert into the library's table within the cursor's transaction, which holds the log's
        lock (`lock_log`)."""
        recorder: Any = self.recorder
        if self.config.engine == "sqlite":  # the library's own statement, for many events in one call
            cursor.raw.executemany(recorder.insert_events_statement, [
                (_hex(event.originator_id), event.originator_version, event.topic, event.state) for event in stored])
        else:  # the library's insert, without the table lock and NOTIFY it would send again each time
            # (a method of the library's pinned version, as its `_lock_table` used before)
            PostgresAggregateRecorder._insert_stored_events(recorder, cursor.raw, stored)

    def lock_log(self, cursor: Cursor) -> None:
        """Take, now, the lock that orders the cursor's transaction among writers of the log.

        PostgreSQL: the library's table lock, as its own inserts take it, and its NOTIFY to
        listeners (sent when the transaction commits), once for the whole transaction. SQLite:
        the transaction holds the store's one write lock from its start."""
        if self.config.engine == "postgres":
            recorder: Any = self.recorder
            cursor.raw.execute("SELECT set_config('lock_timeout', %s, true), pg_notify(%s, '')",
                               (f"{recorder.datastore.lock_timeout}s", recorder.channel_name), prepare=True)
            cursor.raw.execute(SQL("LOCK TABLE {0}.{1} IN EXCLUSIVE MODE").format(
                Identifier(recorder.datastore.schema), Identifier(recorder.events_table_name)), prepare=True)

    def remember(self, records: Sequence[Record]) -> None:
        """Keep just-saved records in the library's cache, as `Application.save()` would."""
        cache = self.repository.cache
        if cache is not None:
            for record in records:
                cache.put(record.id, record)


def _event_id() -> str:
    """A new event's id: a UUID whose first bits are the time of writing (RFC 9562 version 7),
    so that the log's index of ids grows at its end instead of at a random page each write."""
    return str(uuid7())


def _hex(originator_id: uuid.UUID | str) -> str:
    return originator_id.hex if isinstance(originator_id, uuid.UUID) else originator_id
