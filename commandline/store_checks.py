"""Before a command touches a store: does it exist, is the port free, and what a failure means in one line."""

from __future__ import annotations

import os
import socket
import sqlite3

from registry.settings import StoreConfig

LIBRARY_TABLE = "registry_events"  # the event store's table (the Application's pinned name + _events)


class UnusableStore(Exception):
    """The store cannot be used as named: printed as one line, exit status 2."""


def require_existing(store: StoreConfig) -> None:
    """Raises UnusableStore when the store does not exist (nothing is created) or cannot be reached."""
    if store.engine == "sqlite":
        path = store.sqlite_path
        if not os.path.isfile(path):
            raise UnusableStore(f"no store at {path!r} (serve, seed, import and token create one)")
        return
    import psycopg

    pg = dict(store.pg)
    try:
        with psycopg.connect(dbname=pg["POSTGRES_DBNAME"], host=pg["POSTGRES_HOST"], port=pg["POSTGRES_PORT"],
                             user=pg["POSTGRES_USER"], password=pg["POSTGRES_PASSWORD"], connect_timeout=5) as conn:
            found = conn.execute("SELECT to_regclass(%s)", (f'"{store.schema}".{LIBRARY_TABLE}',)).fetchone()
    except psycopg.Error as error:
        raise UnusableStore(describe(error) or str(error)) from error
    if not found or found[0] is None:
        raise UnusableStore(f"no store in schema {store.schema!r} of database {pg['POSTGRES_DBNAME']!r} at "
                            f"{pg['POSTGRES_HOST']}:{pg['POSTGRES_PORT']} (serve, seed, import and token create one)")


def describe(error: BaseException) -> str | None:
    """One line for an error that means the store is unusable (unreachable, unreadable, not a store), or None."""
    import psycopg

    if isinstance(error, psycopg.OperationalError):
        first = (str(error).strip().splitlines() or [""])[0]
        return f"PostgreSQL cannot be used: {first or type(error).__name__}"
    if isinstance(error, psycopg.Error):
        return f"PostgreSQL refused: {(str(error).strip().splitlines() or [''])[0]}"
    if isinstance(error, sqlite3.DatabaseError):
        return f"the SQLite store cannot be used: {error}"
    if isinstance(error, OSError):
        where = f" {error.filename!r}" if error.filename else ""
        return f"file{where}: {error.strerror or error}"
    return None


def require_free_port(host: str, port: int) -> None:
    """Raises PortBusy unless `host:port` can be bound (checked before anything is printed)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as error:
        raise PortBusy(f"cannot serve on {host}:{port}: {error}") from error
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as error:
            raise PortBusy(f"cannot serve on {host}:{port}: {error.strerror or error}") from error


class PortBusy(Exception):
    """The address to serve on is taken or not ours: one line, exit status 2."""
