"""The event store's SQLite connections: the registry's pool, in WAL mode, with rows by name."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from registry.bootstrap import bootstrap
from registry.log.sqlite import CHECKPOINT_BACKSTOP, StatementCachingPool
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


def test_the_write_ahead_log_is_copied_into_the_store_by_the_checkpointer_not_by_commits(tmp_path: Path) -> None:
    # A commit checkpoints itself only past CHECKPOINT_BACKSTOP pages (40 MB); a batch of a few
    # hundred records writes a few hundred, which only the checkpointer's thread copies into the
    # store file, after the commit.
    path = tmp_path / "store.db"
    registry = bootstrap(Settings(database=str(path)))
    try:
        with registry.database.read() as cursor:
            assert cursor.execute("PRAGMA wal_autocheckpoint").scalar() == CHECKPOINT_BACKSTOP
        checkpointer = registry.database.checkpointer
        assert checkpointer is not None
        time.sleep(0.2)  # any checkpoint of the store's creation is done
        before, done = path.stat().st_size, checkpointer.checkpoints
        registry.batch({"writes": [
            {"op": "register", "collection": "organisations", "body": {"id": f"agency-{n}", "name": f"Agency {n}"}}
            for n in range(400)]}, "registry-editor")
        deadline = time.monotonic() + 10
        while path.stat().st_size < before + 256 * 1024 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert path.stat().st_size >= before + 256 * 1024
        assert checkpointer.checkpoints > done
        assert registry.reader.view("agency-399", None, None)["name"] == "Agency 399"
    finally:
        registry.close()
    thread = checkpointer._thread
    assert thread is not None and not thread.is_alive()  # stopped with the store


def test_a_store_in_memory_has_no_checkpointer() -> None:
    registry = bootstrap(Settings(database=":memory:"))
    try:
        assert registry.database.checkpointer is None
        registry.batch({"writes": [{"op": "register", "collection": "organisations",
                                    "body": {"id": "agency", "name": "Agency"}}]}, "registry-editor")
    finally:
        registry.close()
