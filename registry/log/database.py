"""One way to run SQL on either engine, sharing the event store's connection pool, and the
one place that opens connections of its own (PostgreSQL: setup lock, schema, LISTEN)."""

from __future__ import annotations

import fcntl
import functools
import itertools
import os
import re
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from eventsourcing.persistence import InfrastructureFactory, IntegrityError, OperationalError
from eventsourcing.utils import Environment

from registry.log.sqlite import Checkpointer
from registry.settings import StoreConfig

PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")  # {table}: a table of the registry's, schema-qualified
# The view projection's tables exist once per projection version: {records} is records_v<N>.
VERSIONED = frozenset({"records", "heads", "head_days", "view_segments", "timeline", "series_members",
                       "record_facets", "evidence", "search", "search_texts", "search_hits"})
OPEN_END = 99_999_999  # the day ordinal that sorts an open interval's missing end last
STATEMENTS_KEPT = 4096  # SQL texts rewritten for the engine, remembered
COPY_FROM = 50  # rows: fewer go in one INSERT round trip, more by COPY
ROWS_A_STATEMENT = 100  # SQLite: rows an INSERT of many takes at most
SQLITE_VARIABLES = 32766  # SQLite (3.32 and later): parameters a statement takes at most
LAYOUT = 6  # the projection tables' layout; a version of another layout is rebuilt


class Row(tuple):  # type: ignore[type-arg]
    """A row readable by position and by column name, like `sqlite3.Row`."""

    names: dict[str, int]

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return tuple.__getitem__(self, self.names[key])
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return list(self.names)


@functools.lru_cache(maxsize=1024)
def _row_class(columns: tuple[str, ...]) -> type[Row]:
    return type("Row", (Row,), {"names": {name: i for i, name in enumerate(columns)}})


def _row_factory(cursor: Any) -> Any:
    """The row class of a psycopg result, by its column names as the server sent them (read
    from the result itself: `cursor.description` would build a Column object for each)."""
    result = cursor.pgresult
    if result is None:
        return _row_class(())
    return _row_class(tuple((result.fname(i) or b"").decode() for i in range(result.nfields)))


class Cursor:
    """A cursor that takes `?` placeholders and `{table}` names on both engines."""

    def __init__(self, raw: Any, database: Database, version: int | None = None) -> None:
        self.raw = raw
        self.database = database
        self.version = version
        self.projected: int | None = None  # the position the version's views have applied, when read
        if database.engine == "postgres":
            raw.row_factory = _row_factory

    def versioned(self, version: int) -> Cursor:
        """The same transaction, with the projection tables of `version`."""
        return Cursor(self.raw, self.database, version)

    def execute(self, statement: str, params: Sequence[Any] = ()) -> Cursor:
        self.raw.execute(self.database.sql(statement, self.version), tuple(params))
        return self

    def executemany(self, statement: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            self.raw.executemany(self.database.sql(statement, self.version), rows)

    def insert_rows(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """Insert rows into a registry table (`table` is its bare name), many of them the
        fastest way the engine has: COPY on PostgreSQL for many (outside a pipeline, which cannot
        COPY), else INSERTs of many rows each."""
        if not rows:
            return
        name = self.database.sql(f"{{{table}}}", self.version)
        copying = self.database.engine == "postgres" and len(rows) >= COPY_FROM
        if copying and not self.raw.connection.pgconn.pipeline_status:
            with self.raw.copy(f"COPY {name} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            return
        if len(rows) > 1:
            self._insert_many_a_statement(name, columns, rows)
            return
        self.executemany(f"INSERT INTO {name} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})", rows)

    def _insert_many_a_statement(self, name: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """Up to ROWS_A_STATEMENT rows in each INSERT, so that each row does not cost a statement of
        its own: on SQLite a step (which releases the GIL and takes SQLite's mutexes), on
        PostgreSQL a statement the server parses and runs, and psycopg's work for each."""
        width = len(columns)
        size = max(1, min(ROWS_A_STATEMENT, SQLITE_VARIABLES // width))
        mark = "?" if self.database.engine == "sqlite" else "%s"
        one = f"({', '.join([mark] * width)})"
        start = 0
        while start < len(rows):
            # Full statements, then the rest in halves (64, 32, … rows): a few statement texts
            # a table, which SQLite's statement cache and psycopg keep prepared.
            left = len(rows) - start
            count = size if left >= size else 1 << (left.bit_length() - 1)
            part = rows[start:start + count]
            self.raw.execute(f"INSERT INTO {name} ({', '.join(columns)}) VALUES {', '.join([one] * count)}",
                             list(itertools.chain.from_iterable(part)))
            start += count

    def one(self) -> Any:
        return self.raw.fetchone()

    def all(self) -> list[Any]:
        return list(self.raw.fetchall())

    def scalar(self) -> Any:
        row = self.raw.fetchone()
        return None if row is None else row[0]


class WriterQueue:
    """SQLite writers of every process take turns here, on a lock file beside the store.

    SQLite lets a writer that finds the store locked sleep and retry, in steps of up to
    100 ms: with writers in several processes that is most of their latency. Waiting on
    an exclusive `flock` instead wakes the next writer as soon as the last one commits
    (and, meanwhile, lets more of its process's commits join its group).
    """

    def __init__(self, sqlite_path: str) -> None:
        self.path = f"{sqlite_path}.writers" if sqlite_path and os.path.sep in os.path.abspath(sqlite_path) \
            and not sqlite_path.startswith(("file:", ":memory:")) else ""
        self._threads = threading.Lock()
        self._fd: int | None = None

    @contextmanager
    def turn(self) -> Iterator[None]:
        if not self.path:
            yield
            return
        with self._threads:
            if self._fd is None:
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)


class Database:
    """SQL for the registry's own tables, beside the event store's, in one database."""

    def __init__(self, datastore: Any, config: StoreConfig) -> None:
        self.datastore = datastore
        self.config = config
        self._writers = WriterQueue(config.sqlite_path if config.engine == "sqlite" else "")
        # On a store file (not in memory, which keeps no write-ahead log), beside the writers' lock.
        self.checkpointer = Checkpointer(datastore.pool.db_name, datastore.pool.lock_timeout or 5.0) \
            if self._writers.path else None
        self.engine = config.engine
        self.schema = config.schema
        self._sql: dict[tuple[str, int | None], str] = {}

    @classmethod
    def open(cls, config: StoreConfig, name: str) -> Database:
        """The store's database for a process that only reads it, such as a rebuild's worker
        (no tables are made); `name` is the event store's application name."""
        env = Environment(name, config.library_env())
        return cls(InfrastructureFactory.construct(env).datastore, config)  # type: ignore[attr-defined]

    def close(self) -> None:
        """Stop the checkpointer (SQLite); the connections are the event store's to close."""
        if self.checkpointer is not None:
            self.checkpointer.close()

    def table(self, name: str) -> str:
        return f'"{self.schema}".{name}' if self.engine == "postgres" else name

    def sql(self, statement: str, version: int | None = None) -> str:
        cached = self._sql.get((statement, version))
        if cached is None:
            cached = PLACEHOLDER.sub(lambda m: self.table(self._name(m.group(1), version)), statement)
            if self.engine == "postgres":
                cached = cached.replace("?", "%s")
            if len(self._sql) >= STATEMENTS_KEPT:
                self._sql.clear()
            self._sql[(statement, version)] = cached
        return cached

    @staticmethod
    def _name(name: str, version: int | None) -> str:
        if name not in VERSIONED:
            return name
        if version is None:
            raise ValueError(f"{{{name}}} needs a projection version")
        return f"{name}_v{version}"

    @contextmanager
    def read(self) -> Iterator[Cursor]:
        """Reads. On PostgreSQL, statements on an autocommit connection: each sees what is
        committed (as in a READ COMMITTED transaction) without BEGIN and ROLLBACK round trips."""
        if self.engine == "postgres":
            with self.datastore.get_connection() as conn, conn.cursor() as raw:
                yield Cursor(raw, self)
            return
        with self.datastore.transaction(commit=False) as raw:
            yield Cursor(raw, self)

    @contextmanager
    def write(self, lock: str | None = None, durable: bool = True) -> Iterator[Cursor]:
        """A write transaction; `lock` names a lock held until commit (one writer per name).

        `durable=False` is for what can be rebuilt from the log (projections): its
        commit does not wait for the disk; a crash can only lose such transactions
        whole, never corrupt them, and the next catch-up redoes them.
        """
        if self.engine == "sqlite":
            with self._writers.turn(), self.datastore.get_connection(commit=True) as conn:
                raw_conn = conn._sqlite_conn
                raw = raw_conn.cursor()
                raw.execute("PRAGMA secure_delete = OFF")  # views are rebuildable: freed pages need no zeroing
                if not durable:
                    raw.execute("PRAGMA synchronous = NORMAL")
                try:
                    raw.execute("BEGIN IMMEDIATE")
                    try:
                        yield Cursor(raw, self)
                    except BaseException:
                        raw_conn.rollback()
                        raise
                    raw_conn.commit()
                    if self.checkpointer is not None:
                        self.checkpointer.committed()
                except sqlite3.IntegrityError as error:
                    raise IntegrityError(error) from error
                except sqlite3.OperationalError as error:
                    raise OperationalError(error) from error
                finally:
                    if not durable:
                        raw.execute("PRAGMA synchronous = FULL")
            return
        with self.datastore.transaction(commit=True) as raw:
            cursor = Cursor(raw, self)
            # Not durable: the commit does not wait for the WAL flush; a crash loses it whole or not at all.
            if not durable and lock:  # both in one round trip
                cursor.execute("SELECT set_config('synchronous_commit', 'off', true),"
                               " pg_advisory_xact_lock(hashtext(?))", (self._lock_key(lock),))
            elif not durable:
                cursor.execute("SET LOCAL synchronous_commit TO OFF")
            elif lock:
                self.lock(cursor, lock)
            yield cursor

    @contextmanager
    def pipeline(self, cursor: Cursor) -> Iterator[None]:
        """PostgreSQL: the statements run here are sent together and answered in one round trip
        (psycopg's pipeline mode); a failure is raised by a later statement or when the block
        ends, within the transaction either way. SQLite: no change."""
        if self.engine != "postgres":
            yield
            return
        with cursor.raw.connection.pipeline():
            yield

    def lock(self, cursor: Cursor, name: str) -> None:
        """Hold a named lock until the transaction ends (SQLite's write lock covers everything)."""
        if self.engine == "postgres":
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext(?))", (self._lock_key(name),))

    def _lock_key(self, name: str) -> str:
        return f"{self.schema}.{name}"

    def create_tables(self) -> None:
        big = "BIGINT" if self.engine == "postgres" else "INTEGER"
        statements = [
            f"""CREATE TABLE IF NOT EXISTS {{event_log}} (
                position {big} PRIMARY KEY, event_id TEXT NOT NULL UNIQUE,
                record TEXT NOT NULL, kind TEXT NOT NULL, type TEXT NOT NULL,
                version {big} NOT NULL, target TEXT, recorded_at TEXT NOT NULL,
                hash TEXT NOT NULL, envelope TEXT NOT NULL, UNIQUE (record, version))""",
            "CREATE INDEX IF NOT EXISTS event_log_record ON {event_log} (record, position)",
            "CREATE INDEX IF NOT EXISTS event_log_type ON {event_log} (type, position)",
            "CREATE INDEX IF NOT EXISTS event_log_kind ON {event_log} (kind, position)",
            "CREATE INDEX IF NOT EXISTS event_log_recorded ON {event_log} (recorded_at, position)",
            "CREATE INDEX IF NOT EXISTS event_log_target ON {event_log} (target)",
            """CREATE TABLE IF NOT EXISTS {idempotency} (
                key TEXT NOT NULL, actor TEXT NOT NULL, fingerprint TEXT NOT NULL,
                outcome TEXT NOT NULL, created_at TEXT NOT NULL, PRIMARY KEY (actor, key))""",
            """CREATE TABLE IF NOT EXISTS {tokens} (
                name TEXT PRIMARY KEY, role TEXT NOT NULL, token_hash TEXT NOT NULL UNIQUE,
                created_at TEXT NOT NULL, revoked_at TEXT)""",
            f"""CREATE TABLE IF NOT EXISTS {{projection_position}} (
                name TEXT PRIMARY KEY, position {big} NOT NULL)""",
            """CREATE TABLE IF NOT EXISTS {projection_versions} (
                name TEXT PRIMARY KEY, version INTEGER NOT NULL)""",
            # Each projection version's table layout, and how far a bulk load of it has got:
            # every record up to `loaded_through`, from the log up to `load_until`.
            f"""CREATE TABLE IF NOT EXISTS {{projection_tables}} (
                version INTEGER PRIMARY KEY, layout INTEGER NOT NULL,
                load_until {big}, loaded_through TEXT)""",
            # The Merkle tree over the log (registry.log.merkle): perfect subtree hashes by (level, index).
            f"""CREATE TABLE IF NOT EXISTS {{merkle_nodes}} (
                id {big} PRIMARY KEY, hash {"BYTEA" if self.engine == "postgres" else "BLOB"} NOT NULL)""",
        ]
        with self.write() as cursor:
            for statement in statements:
                cursor.execute(statement)

    def create_projection_tables(self, version: int, load_until: int | None = None) -> None:
        """The tables of projection `version`. With `load_until`, they are made for a bulk
        load of the log up to that position: without the secondary indexes, which the load
        makes once it has written the rows."""
        big = "BIGINT" if self.engine == "postgres" else "INTEGER"
        keyed = " WITHOUT ROWID" if self.engine == "sqlite" else ""  # text keys: the key is the table
        statements = [
            f"""CREATE TABLE IF NOT EXISTS {{records}} (
                id TEXT PRIMARY KEY, kind TEXT NOT NULL, registered_position {big} NOT NULL){keyed}""",
            # The projection's working state per record (reads never touch it).
            f"""CREATE TABLE IF NOT EXISTS {{heads}} (
                record TEXT PRIMARY KEY, kind TEXT NOT NULL, head TEXT NOT NULL){keyed}""",
            # Each record's last valid day as known after each of its events: bounds view lookups.
            f"""CREATE TABLE IF NOT EXISTS {{head_days}} (
                record TEXT NOT NULL, sys_from {big} NOT NULL, last_day {big} NOT NULL,
                PRIMARY KEY (record, sys_from)){keyed}""",
            # Every series a meeting was ever filed under, so past knowledge finds it too.
            f"""CREATE TABLE IF NOT EXISTS {{series_members}} (
                series TEXT NOT NULL, meeting TEXT NOT NULL, PRIMARY KEY (series, meeting)){keyed}""",
            f"""CREATE TABLE IF NOT EXISTS {{view_segments}} (
                record TEXT NOT NULL, valid_from {big} NOT NULL,
                sys_from {big} NOT NULL, sys_to {big} NOT NULL, state TEXT NOT NULL)""",
            # Every status and party a record's view ever had, by kind: lists filter on them first.
            f"""CREATE TABLE IF NOT EXISTS {{record_facets}} (
                kind TEXT NOT NULL, facet TEXT NOT NULL, value TEXT NOT NULL, record TEXT NOT NULL,
                PRIMARY KEY (kind, facet, value, record)){keyed}""",
            # World events as currently known; the envelope is the log's (joined by position).
            f"""CREATE TABLE IF NOT EXISTS {{timeline}} (
                record TEXT NOT NULL, position {big} NOT NULL, valid_lower {big} NOT NULL,
                valid_upper {big}, state TEXT NOT NULL, effective TEXT, PRIMARY KEY (record, position)){keyed}""",
            # The certain world events behind a view, on both axes: {event, type, valid, sources}.
            f"""CREATE TABLE IF NOT EXISTS {{evidence}} (
                record TEXT NOT NULL, position {big} NOT NULL, certain_day {big} NOT NULL,
                valid_lower {big} NOT NULL, valid_upper {big}, sys_from {big} NOT NULL, sys_to {big} NOT NULL,
                item TEXT NOT NULL)""",
            *self._search_tables(),
        ]
        with self.write() as cursor:
            versioned = cursor.versioned(version)
            for statement in statements:
                versioned.execute(statement)
            versioned.execute(
                "INSERT INTO {projection_tables} (version, layout, load_until, loaded_through) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (version) DO NOTHING",
                (version, LAYOUT, load_until, None if load_until is None else ""))
            if load_until is None:
                self.create_projection_indexes(versioned)

    def create_projection_indexes(self, cursor: Cursor) -> None:
        """The secondary indexes of the cursor's projection version."""
        v = f"_v{cursor.version}"
        for statement in (
            f"CREATE INDEX IF NOT EXISTS records{v}_kind ON {{records}} (kind, id)",
            f"""CREATE INDEX IF NOT EXISTS view_segments{v}_lookup
                ON {{view_segments}} (record, valid_from, sys_from, sys_to)""",
            f"CREATE INDEX IF NOT EXISTS view_segments{v}_alive ON {{view_segments}} (record, sys_to)",
            f"""CREATE INDEX IF NOT EXISTS timeline{v}_order
                ON {{timeline}} (valid_lower, COALESCE(valid_upper, {OPEN_END}), position)""",
            f"CREATE INDEX IF NOT EXISTS evidence{v}_lookup ON {{evidence}} (record, sys_to, position)",
            f"""CREATE INDEX IF NOT EXISTS evidence{v}_order
                ON {{evidence}} (record, valid_lower, COALESCE(valid_upper, {OPEN_END}), position)""",
            *self._search_indexes(v),
        ):
            cursor.execute(statement)

    def _search_tables(self) -> tuple[str, ...]:
        """Texts a search matches: titles and names a record has had, and its events' notes and
        sources. Each distinct text is kept and indexed once, by its digest; `search_hits` says
        where it occurs. `folded` (PostgreSQL) is the text without accents, in lower case."""
        hits = """CREATE TABLE IF NOT EXISTS {search_hits} (
            digest %s NOT NULL, record TEXT NOT NULL, kind TEXT NOT NULL, matched TEXT NOT NULL,
            position %s NOT NULL)"""
        if self.engine == "sqlite":
            return (
                "CREATE TABLE IF NOT EXISTS {search_texts} (id INTEGER PRIMARY KEY, digest BLOB NOT NULL UNIQUE,"
                " text TEXT NOT NULL)",
                # The words of each text, indexed from {search_texts} (external content, filled in by rowid).
                "CREATE VIRTUAL TABLE IF NOT EXISTS {search} USING fts5(text, content = '{search_texts}',"
                " content_rowid = 'id', tokenize = 'porter unicode61 remove_diacritics 2')",
                hits % ("BLOB", "INTEGER"),
            )
        return (
            """CREATE TABLE IF NOT EXISTS {search_texts} (
                digest BYTEA PRIMARY KEY, text TEXT NOT NULL, folded TEXT NOT NULL,
                document tsvector GENERATED ALWAYS AS (to_tsvector('english'::regconfig, folded)) STORED)""",
            hits % ("BYTEA", "BIGINT"),
        )

    def _search_indexes(self, v: str) -> tuple[str, ...]:
        hits = f"CREATE INDEX IF NOT EXISTS search_hits{v}_digest ON {{search_hits}} (digest, position)"
        if self.engine == "sqlite":
            return (hits,)
        return (f"CREATE INDEX IF NOT EXISTS search_texts{v}_document ON {{search_texts}} USING GIN (document)", hits)

    def drop_projection_tables(self, version: int) -> None:
        with self.write() as cursor:
            versioned = cursor.versioned(version)
            for name in sorted(VERSIONED):
                versioned.execute(f"DROP TABLE IF EXISTS {{{name}}}")
            cursor.execute("DELETE FROM {projection_tables} WHERE version = ?", (version,))


def connect(config: StoreConfig) -> Any:
    """A PostgreSQL connection of its own (autocommit), outside the store's pool."""
    import psycopg

    pg = dict(config.pg)
    return psycopg.connect(
        dbname=pg["POSTGRES_DBNAME"], host=pg["POSTGRES_HOST"], port=pg["POSTGRES_PORT"],
        user=pg["POSTGRES_USER"], password=pg["POSTGRES_PASSWORD"], autocommit=True, connect_timeout=5,
    )


@contextmanager
def setup_lock(config: StoreConfig) -> Iterator[None]:
    """Hold while creating tables: on PostgreSQL, processes starting at once (gunicorn
    workers, a projector) would otherwise race on the same DDL and fail."""
    if config.engine != "postgres":
        yield
        return
    with connect(config) as conn:
        key = f"registry-setup:{config.schema}"
        conn.execute("SELECT pg_advisory_lock(hashtext(%s))", (key,))
        try:
            yield
        finally:
            conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (key,))


def ensure_schema(config: StoreConfig) -> None:
    with connect(config) as conn:
        conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{config.schema}"')
