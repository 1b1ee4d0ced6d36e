"""The event store's SQLite connections: the registry's pool, in WAL mode, with rows by name."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from registry.bootstrap import bootstrap
from registry.log.sqlite import StatementCachingPool
from registry.settings import Settings


def test_the_store_opens_its_sqlite_connections_from_the_statement_caching_pool(tmp_path: Path) -> None:
    registry = bootstrap(Settings(database=str(tmp_path / "store.db")))
    try:
        assert isinstance(registry.database.datastore.pool, StatementCachingPool)
        with registry.database.read() as cursor:
            assert cursor.execute("PRAGMA journal_mode").scalar() == "wal"
            row = cursor.execute("SELECT 7 AS seven").one()
            assert isinstance(row, sqlite3.Row) and row["seven"] == 7
    finally:
        registry.close()


def test_a_rebuild_worker_opens_the_same_pool(tmp_path: Path) -> None:
    from registry.log.database import Database
    from registry.log.store import RegistryStore

    registry = bootstrap(Settings(database=str(tmp_path / "store.db")))
    try:
        worker = Database.open(registry.database.config, RegistryStore.name)
        assert isinstance(worker.datastore.pool, StatementCachingPool)
        with worker.read() as cursor:
            assert cursor.execute("SELECT count(*) FROM {event_log}").scalar() == 0
    finally:
        registry.close()


@pytest.mark.parametrize("count", [1, 2, 3, 99, 100, 101, 164, 227])
def test_many_rows_go_in_few_statements_each_row_once(tmp_path: Path, count: int) -> None:
    registry = bootstrap(Settings(database=str(tmp_path / "store.db")))
    statements: list[str] = []
    try:
        rows = [(f"record-{n:03d}", "agreement", n) for n in range(count)]
        with registry.database.write() as cursor:
            cursor.raw.connection.set_trace_callback(statements.append)
            cursor.versioned(1).insert_rows("records", ("id", "kind", "registered_position"), rows)
            cursor.raw.connection.set_trace_callback(None)
        with registry.database.read() as cursor:
            stored = [tuple(r) for r in cursor.versioned(1).execute(
                "SELECT id, kind, registered_position FROM {records} WHERE kind = 'agreement'"
                " AND id LIKE 'record-%' ORDER BY id").all()]
        assert stored == rows
        inserts = [s for s in statements if s.startswith("INSERT")]
        assert len(inserts) == count // 100 + bin(count % 100).count("1")  # 100 a statement, then halves
    finally:
        registry.close()
