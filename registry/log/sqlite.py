"""The event store's SQLite connections, with a statement cache that holds the registry's
statements, and the checkpointer that copies the write-ahead log into the store.

`eventsourcing` opens its SQLite connections with `cached_statements=True`, a cache of one
statement, so every other statement is parsed and planned again each time it runs. A record
view runs four statements and an append about twenty: these connections keep the last
STATEMENTS_CACHED prepared. Everything else is the library's own (`SQLiteFactory`).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading

from eventsourcing.persistence import InterfaceError
from eventsourcing.sqlite import (
    SQLITE3_DEFAULT_LOCK_TIMEOUT,
    SQLiteConnection,
    SQLiteConnectionPool,
    SQLiteFactory,
)
from eventsourcing.utils import Environment, EnvType

STATEMENTS_CACHED = 256
CHECKPOINT_BACKSTOP = 10_000  # pages in the write-ahead log past which a commit checkpoints itself
CHECKPOINT_PAUSE = 0.05  # seconds at least between two of the checkpointer's checkpoints
logger = logging.getLogger(__name__)


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
        connection.execute(f"PRAGMA wal_autocheckpoint = {CHECKPOINT_BACKSTOP}")  # see Checkpointer
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


class Checkpointer:
    """Copies the write-ahead log into the store in a thread of its own, outside the writers' turn.

    SQLite checkpoints in the commit that takes the log past 1,000 pages, still holding the
    write lock, so every writer of every process waits for it (on a grown store, 40 of a
    500-event batch's 86 ms commit). Here, after commits, a thread runs a PASSIVE checkpoint,
    which never blocks writers, at most every CHECKPOINT_PAUSE; a commit still checkpoints
    itself past CHECKPOINT_BACKSTOP pages, should the thread fall behind. What it copies is
    already durable in the log: a crash at any point loses nothing.
    """

    def __init__(self, path: str, timeout: float) -> None:
        self.path = path
        self.timeout = timeout
        self.checkpoints = 0
        self._due = threading.Event()
        self._stop = threading.Event()
        self._start = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()

    def committed(self) -> None:
        """A commit has grown the write-ahead log: checkpoint soon."""
        if self._thread is None or self._pid != os.getpid():  # a forked process has no thread of its own yet
            with self._start:
                if (self._thread is None or self._pid != os.getpid()) and not self._stop.is_set():
                    self._pid = os.getpid()
                    self._thread = threading.Thread(target=self._run, name="sqlite-checkpointer", daemon=True)
                    self._thread.start()
        self._due.set()

    def close(self) -> None:
        self._stop.set()
        self._due.set()
        with self._start:
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=10)

    def _run(self) -> None:
        connection = sqlite3.connect(self.path, uri=True, timeout=self.timeout, isolation_level=None,
                                     check_same_thread=False)
        try:
            while True:
                self._due.wait()
                if self._stop.is_set():
                    return
                self._due.clear()
                try:
                    connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    self.checkpoints += 1
                except sqlite3.Error:  # the next commit's turn, or the backstop, checkpoints instead
                    logger.exception("the write-ahead log could not be checkpointed")
                if self._stop.wait(CHECKPOINT_PAUSE):
                    return
        finally:
            connection.close()
