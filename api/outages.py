"""Store outages as answers: a full disk is 507, an unreachable or failing database 503, each
with Retry-After and without the driver's text (it goes to the log), never a 500."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator

import psycopg
import psycopg_pool
from eventsourcing import persistence
from flask import Response

log = logging.getLogger(__name__)
UNAVAILABLE = (psycopg.OperationalError, psycopg.InterfaceError, psycopg_pool.PoolTimeout,
               psycopg_pool.PoolClosed, persistence.OperationalError, persistence.InterfaceError,
               persistence.ConnectionPoolClosedError, sqlite3.OperationalError, ConnectionError)
FULL = ("disk is full", "no space left", "database or disk is full")


def causes(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def disk_full(error: BaseException) -> bool:
    return any(any(words in str(cause).lower() for words in FULL) for cause in causes(error))


def outage(error: BaseException) -> Response | None:
    """The answer for an error that means the store is full or unavailable; None for any other."""
    from api.errors import problem

    if disk_full(error):
        log.error("the store's disk is full", exc_info=error)
        return problem(507, "Insufficient Storage", "the store has no room left; nothing was written",
                       headers={"Retry-After": "60"})
    if any(isinstance(cause, UNAVAILABLE) for cause in causes(error)):
        log.warning("the store is unavailable", exc_info=error)
        return problem(503, "Service Unavailable", "the store does not answer; try again shortly",
                       headers={"Retry-After": "2"})
    return None
