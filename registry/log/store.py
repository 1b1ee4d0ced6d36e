"""The event store: one `Record` aggregate per record, in an `eventsourcing` Application.

The recorders extend the library's so that every transaction that stores events
also stores their log entries (position, `recorded_at`, hash chain) and the
request's idempotency key.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor
from eventsourcing.utils import register_topic, retry

from registry.log.chain import record_in_log
from registry.log.database import Cursor, Database
from registry.settings import StoreConfig

RECORD_NAMESPACE = uuid.UUID("6f1c1d2e-8a53-4c4e-9d35-0c5f2a7b9e11")


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
            pass

    def __init__(self, kind: str, record_id: str, event_id: str, data: dict[str, Any],
                 sources: list[dict[str, Any]], note: str | None, actor: str) -> None:
        self.kind = kind
        self.record_id = record_id

    @classmethod
    def register(cls, kind: str, record_id: str, data: dict[str, Any],
                 sources: list[dict[str, Any]], note: str | None, actor: str) -> Record:
        return cls._create(
            cls.Registered, id=record_uuid(record_id), kind=kind, record_id=record_id,
            event_id=str(uuid.uuid4()), data=data, sources=sources, note=note, actor=actor,
        )

    def record(self, type: str, valid: str | None, data: dict[str, Any],
               sources: list[dict[str, Any]], note: str | None, actor: str) -> Recorded:
        self.trigger_event(
            self.Recorded, event_id=str(uuid.uuid4()), type=type, valid=valid,
            data=data, sources=sources, note=note, actor=actor,
        )
        return self.pending_events[-1]  # type: ignore[return-value]


# Events stored before the store moved to `registry.log.store` name its old module.
register_topic("registry.store:Record", Record)


class SQLiteRegistryRecorder(SQLiteApplicationRecorder):
    database: Database

    def _insert_events(self, c: SQLiteCursor, stored_events: Sequence[StoredEvent],
                       **kwargs: Any) -> Sequence[int] | None:
        ids = super()._insert_events(c, stored_events, **kwargs)
        record_in_log(Cursor(c.sqlite_cursor, self.database), kwargs)
        return ids


class PostgresRegistryRecorder(PostgresApplicationRecorder):
    database: Database

    @retry(max_attempts=1)
    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        with self.datastore.transaction(commit=True) as curs:
            self._insert_stored_events(curs, stored_events)
            ids = self._fetch_ids_after_insert_events(curs, stored_events)
            record_in_log(Cursor(curs, self.database), kwargs)
        return ids


class RegistryStore(Application[uuid.UUID]):
    """The event store. Its name is pinned: it names tables and configuration keys."""

    name = "registry"

    def __init__(self, config: StoreConfig) -> None:
        self.config = config
        env = config.library_env()
        env["AGGREGATE_CACHE_MAXSIZE"] = "2000"
        if config.engine == "sqlite":
            env["APPLICATION_RECORDER_TOPIC"] = f"{__name__}:SQLiteRegistryRecorder"
        else:
            env["APPLICATION_RECORDER_TOPIC"] = f"{__name__}:PostgresRegistryRecorder"
            _ensure_schema(config)
        super().__init__(env=env)
        self.database = Database(self.factory.datastore, config)  # type: ignore[attr-defined]
        self.recorder.database = self.database  # type: ignore[attr-defined]
        self.database.create_tables()

    def construct_env(self, name: str, env: Any = None) -> Any:
        # The store is configured by StoreConfig alone, not by stray process variables.
        from eventsourcing.utils import Environment

        return Environment(name, dict(env or {}))


    @contextmanager
    def bulk_import(self) -> Iterator[Callable[[list[Any], list[dict[str, Any]]], None]]:
        """One transaction for a whole import: `write(events, envelopes)` may be called many times."""
        recorder: Any = self.recorder
        with recorder.datastore.transaction(commit=True) as raw:
            cursor = Cursor(raw.sqlite_cursor if self.config.engine == "sqlite" else raw, self.database)

            def write(events: list[Any], envelopes: list[dict[str, Any]]) -> None:
                stored = [self.mapper.to_stored_event(event) for event in events]
                if self.config.engine == "sqlite":
                    SQLiteApplicationRecorder._insert_events(recorder, raw, stored)
                else:
                    recorder._insert_stored_events(raw, stored)
                record_in_log(cursor, {"imported": envelopes, "stored": []})

            yield write


@contextmanager
def setup_lock(config: StoreConfig) -> Iterator[None]:
    """Hold while creating tables: on PostgreSQL, processes starting at once (gunicorn
    workers, a projector) would otherwise race on the same DDL and fail."""
    if config.engine != "postgres":
        yield
        return
    import psycopg

    pg = dict(config.pg)
    with psycopg.connect(
        dbname=pg["POSTGRES_DBNAME"], host=pg["POSTGRES_HOST"], port=pg["POSTGRES_PORT"],
        user=pg["POSTGRES_USER"], password=pg["POSTGRES_PASSWORD"], autocommit=True, connect_timeout=5,
    ) as conn:
        key = f"registry-setup:{config.schema}"
        conn.execute("SELECT pg_advisory_lock(hashtext(%s))", (key,))
        try:
            yield
        finally:
            conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (key,))


def _ensure_schema(config: StoreConfig) -> None:
    import psycopg

    pg = dict(config.pg)
    with psycopg.connect(
        dbname=pg["POSTGRES_DBNAME"], host=pg["POSTGRES_HOST"], port=pg["POSTGRES_PORT"],
        user=pg["POSTGRES_USER"], password=pg["POSTGRES_PASSWORD"], autocommit=True, connect_timeout=5,
    ) as conn:
        conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{config.schema}"')
