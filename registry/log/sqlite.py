"""The event store's SQLite connections, with a statement cache that holds the registry's statements.

`eventsourcing` opens its SQLite connections with `cached_statements=True`, a cache of one
statement, so every other statement is parsed and planned again each time it runs. A record
view runs four statements and an append about twenty: these connections keep the last
STATEMENTS_CACHED prepared. Everything else is the library's own (`SQLiteFactory`).
"""

from __future__ import annotations

import sqlite3

from eventsourcing.persistence import InterfaceError
from eventsourcing.sqlite import (
    SQLITE3_DEFAULT_LOCK_TIMEOUT,
    SQLiteConnection,
    SQLiteConnectionPool,
    SQLiteFactory,
)
from eventsourcing.utils import Environment, EnvType

STATEMENTS_CACHED = 256


class StatementCachingPool(SQLiteConnectionPool):
    def _create_connection(self) -> SQLiteConnection:
        try:
            connection = sqlite3.connect(
                database=self.db_name, uri=True, check_same_thread=False, isolation_level=None,
                cached_statements=STATEMENTS_CACHED, timeout=self.lock_timeout or SQLITE3_DEFAULT_LOCK_TIMEOUT)
        except (sqlite3.Error, TypeError) as error:
            raise InterfaceError(error) from error
        if not self.is_sqlite_memory_mode and not self.is_journal_mode_wal:
            if connection.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                connection.execute("PRAGMA journal_mode=WAL")
                self.journal_mode_was_changed_to_wal = True
            self.is_journal_mode_wal = True
        connection.row_factory = sqlite3.Row
        return SQLiteConnection(sqlite_conn=connection, max_age=self.max_age)


class Factory(SQLiteFactory):
    def __init__(self, env: Environment | EnvType | None) -> None:
        super().__init__(env)
        library = self.datastore.pool  # made by the library, no connection opened yet
        self.datastore.pool = StatementCachingPool(
            db_name=library.db_name, lock_timeout=library.lock_timeout, pool_size=library.pool_size,
            max_overflow=library.max_overflow, pool_timeout=library.pool_timeout, max_age=library.max_age,
            pre_ping=library.pre_ping)
