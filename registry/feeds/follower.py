"""Live feeds: one follower of the global log per process, fanned out in memory.

The follower is the only reader of new events in its process. It keeps the
latest events in a buffer and wakes every waiting subscriber (SSE streams, the
webhook delivery) when the log grows. A subscriber holds a cursor, the last
position it has seen; what it missed beyond the buffer it reads from the store
in pages, then it follows live.

It reads the events themselves only while a stream follows; otherwise only the
log's last position, which is all the webhook delivery needs to be woken.

It learns about new events from:
- PostgreSQL: LISTEN on the event store's channel (the recorder NOTIFYs in the
  transaction that stores events), with a timed wait, so a lost notification
  delays an event by at most REGISTRY_FEED_WAIT seconds;
- SQLite: a poll every REGISTRY_FEED_POLL seconds, and `wake()` from a write in
  this process (the API calls it after every successful write).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from registry.errors import StoreBusy
from registry.log.database import Database, connect
from registry.log.reader import PAGE, EventFilter, last_position, read_committed, read_range
from registry.settings import StoreConfig

__all__ = ["EventFilter", "LogFollower", "Subscription", "TooManyStreams", "last_position"]
log = logging.getLogger(__name__)


class TooManyStreams(StoreBusy):
    title = "Too many streams"


class LogFollower:
    """Follows the global log in one thread and fans new events out to subscribers in memory."""

    def __init__(self, database: Database, config: StoreConfig, channel: str | None = None, *,
                 buffer: int = 4096, poll: float = 0.02, wait: float = 1.0) -> None:
        self.database = database
        self.config = config
        self.channel = channel
        self.poll = poll  # SQLite: every 20 ms by default; one poll costs ~20 µs
        self.wait = wait
        self.buffer_size = buffer
        self._cond = threading.Condition()
        self._events: list[dict[str, Any]] = []  # contiguous positions, newest last
        self._head = 0
        self._wake = threading.Event()
        self._closed = False
        self._thread: threading.Thread | None = None
        self._listeners: list[Callable[[], None]] = []
        self.streams = 0

    # Life

    def start(self) -> LogFollower:
        """Start following (once; later calls do nothing)."""
        with self._cond:
            if self._thread is not None or self._closed:
                return self
            with self.database.read() as cursor:
                self._head = last_position(cursor)
            self._thread = threading.Thread(target=self._run, name="log-follower", daemon=True)
            self._thread.start()
        return self

    def close(self, wait: bool = True) -> None:
        """Stop following and (when `wait`) wait for the thread to let go of the store; `next()` returns None.

        A signal handler must not wait: it may have interrupted a join or a thread start of its own thread.
        """
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._wake.set()
        thread = self._thread
        if wait and thread is not None and thread is not threading.current_thread():
            self._interrupt_listening()
            thread.join(self.wait + 10)

    def _interrupt_listening(self) -> None:
        """Wake a thread waiting for a notification now, not at the end of its `wait` (other listeners read once)."""
        if self.config.engine != "postgres" or not self.channel or self._thread is None:
            return
        try:
            with self.database.read() as cursor:
                cursor.execute("SELECT pg_notify(?, '')", (self.channel,))
        except Exception:
            log.debug("could not wake the LISTEN connection", exc_info=True)

    @property
    def closed(self) -> bool:
        return self._closed

    def wake(self) -> None:
        """Read the log now: this process has just written to it."""
        self._wake.set()

    def on_new_events(self, callback: Callable[[], None]) -> None:
        """Call `callback` (from the follower's thread) whenever new events arrive."""
        self._listeners.append(callback)

    @property
    def head(self) -> int:
        return self._head

    # Subscribers

    def subscribe(self, after: int, wanted: EventFilter, limit: int | None = None) -> Subscription:
        """A subscriber whose next events are those after `after`. Raises TooManyStreams."""
        self.start()
        with self._cond:
            if limit is not None and self.streams >= limit:
                raise TooManyStreams(f"this process serves {self.streams} streams, its limit; try again later")
            self.streams += 1
        return Subscription(self, after, wanted)

    def _release(self) -> None:
        with self._cond:
            self.streams -= 1

    def read_after(self, after: int, wanted: EventFilter, limit: int = PAGE) -> tuple[list[dict[str, Any]], int]:
        """Matching events after `after` known to this follower, and the position read up to."""
        with self._cond:
            head = self._head
            if after >= head:
                return [], after
            if self._events and after >= self._events[0]["position"] - 1:
                start = after - self._events[0]["position"] + 1
                chunk = self._events[start:start + limit]
                return [e for e in chunk if wanted.matches(e)], chunk[-1]["position"]
        with self.database.read() as cursor:  # older than the buffer: a catch-up page from the store
            return read_committed(cursor, after, head, wanted, limit)

    def wait_beyond(self, position: int, timeout: float) -> None:
        with self._cond:
            self._cond.wait_for(lambda: self._closed or self._head > position, timeout)

    # The follower's thread

    def _run(self) -> None:
        listener: Any = None
        while not self._closed:
            try:
                if self.config.engine == "postgres" and self.channel and listener is None:
                    listener = self._listen()
                self._read_new()
                if listener is not None:
                    for _ in listener.notifies(timeout=self.wait, stop_after=1):
                        pass
                else:
                    self._wake.wait(self.poll)
                    self._wake.clear()
            except Exception:
                log.exception("the log follower failed; retrying")
                if listener is not None:
                    _close_quietly(listener)
                    listener = None
                self._wake.wait(self.wait)
                self._wake.clear()
        if listener is not None:
            _close_quietly(listener)

    def _listen(self) -> Any:
        from psycopg import sql

        conn = connect(self.config)
        conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(str(self.channel))))
        return conn

    def _read_new(self) -> None:
        """Read what the log gained: the events themselves while a stream follows, else only
        how far it reaches (webhook delivery reads its own pages; a later stream reads from
        the store what is older than the buffer)."""
        if not self.streams:
            with self.database.read() as cursor:
                head = last_position(cursor)
            if head > self._head:
                with self._cond:
                    self._events = []
                    self._head = head
                    self._cond.notify_all()
                for callback in self._listeners:
                    callback()
            if not self.streams:
                return
        while True:
            with self.database.read() as cursor:
                events = read_range(cursor, self._head, limit=PAGE)
            if not events:
                return
            with self._cond:
                if self._events and self._events[-1]["position"] + 1 != events[0]["position"]:
                    self._events = []
                self._events.extend(events)
                del self._events[:-self.buffer_size]
                self._head = events[-1]["position"]
                self._cond.notify_all()
            for callback in self._listeners:
                callback()
            if len(events) < PAGE:
                return


class Subscription:
    """One subscriber's place in the log. Not shared between threads."""

    def __init__(self, follower: LogFollower, after: int, wanted: EventFilter) -> None:
        self.follower = follower
        self.cursor = after
        self.wanted = wanted
        self._open = True

    def next(self, timeout: float) -> list[dict[str, Any]] | None:
        """The next matching events in position order; [] after `timeout` without any; None once closed."""
        deadline = time.monotonic() + timeout
        while not self.follower.closed:
            items, read_to = self.follower.read_after(self.cursor, self.wanted)
            self.cursor = max(self.cursor, read_to)
            if items:
                return items
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return []
            self.follower.wait_beyond(self.cursor, remaining)
        return None

    def close(self) -> None:
        if self._open:
            self._open = False
            self.follower._release()


def _close_quietly(conn: Any) -> None:
    try:
        conn.close()
    except Exception:
        log.debug("closing the LISTEN connection failed", exc_info=True)
