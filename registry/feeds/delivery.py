"""Webhook delivery: CloudEvents 1.0 bodies, signed per Standard Webhooks, at least once, in order.

A `WebhookDelivery` runs in `registry project` or in a thread of each API
process, never inside a request. Each round it leases the subscriptions that
have events to deliver and are due, and delivers each one's events in position
order on a thread of its own pool, so a slow or failing receiver holds only its
own subscription back. The lease (a row lock with an expiry) keeps two workers
from delivering one subscription at once. After every acknowledged event the
subscription's position is stored; a failure stores the error and the time of
the next attempt, with exponential backoff.
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from standardwebhooks.webhooks import Webhook

from registry.clock import format_instant
from registry.errors import Invalid
from registry.feeds.follower import LogFollower
from registry.feeds.targets import Target, check_target
from registry.feeds.webhooks import event_filter
from registry.log.cloudevents import cloud_event
from registry.log.database import Cursor, Database
from registry.log.reader import last_position, read_committed
from registry.settings import Settings

log = logging.getLogger(__name__)
CONTENT_TYPE = "application/cloudevents+json; charset=utf-8"


@dataclass(frozen=True)
class DeliverySettings:
    timeout: float = 10.0  # seconds for one POST
    backoff: float = 1.0  # first retry delay; doubles with every failure
    backoff_max: float = 3600.0
    lease: float = 60.0  # must outlast a POST
    workers: int = 8  # subscriptions delivered at once
    tick: float = 0.5  # how often due retries are looked for
    batch: int = 100
    budget: float = 20.0  # seconds one subscription may hold a worker before others get a turn
    allow_private: bool = False

    @classmethod
    def of(cls, settings: Settings) -> DeliverySettings:
        return cls(
            timeout=settings.webhook_timeout, backoff=settings.webhook_backoff,
            backoff_max=settings.webhook_backoff_max, lease=settings.webhook_lease,
            workers=settings.webhook_workers, tick=settings.webhook_tick,
            allow_private=settings.webhook_allow_private,
        )

    def delay(self, failures: int) -> float:
        """Seconds before the next attempt after `failures` failures in a row."""
        return float(min(self.backoff_max, self.backoff * 2 ** (max(failures, 1) - 1)))


class DeliveryFailed(Exception):
    """The receiver did not acknowledge: no answer, or not a 2xx."""


def signed(secret: str, envelope: Mapping[str, Any], source: str,
           now: dt.datetime | None = None) -> tuple[bytes, dict[str, str]]:
    """The body and headers of one delivery; `webhook-id` is the event id, the same on every retry."""
    now = now or dt.datetime.now(dt.UTC)
    text = json.dumps(cloud_event(envelope, source), ensure_ascii=False, separators=(",", ":"))
    headers = {
        "Content-Type": CONTENT_TYPE,
        "User-Agent": "cooperation-registry-webhooks/1",
        "webhook-id": envelope["id"],
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign(envelope["id"], now, text),
    }
    return text.encode(), headers


def post(target: Target, body: bytes, headers: Mapping[str, str], timeout: float) -> None:
    """POST to the address the target was checked at (no second DNS lookup). Raises DeliveryFailed."""
    cls = http.client.HTTPSConnection if target.scheme == "https" else http.client.HTTPConnection
    conn = cls(target.host, target.port, timeout=timeout)
    address = target.addresses[0]
    conn._create_connection = (  # type: ignore[attr-defined]
        lambda _address, timeout, source=None: socket.create_connection((address, target.port), timeout, source))
    try:
        conn.request("POST", target.path, body=body, headers=dict(headers))
        response = conn.getresponse()
        answer = response.read(2048).decode("utf-8", "replace").strip()
    except (OSError, http.client.HTTPException) as error:
        raise DeliveryFailed(f"{target.url}: {type(error).__name__}: {error or 'no answer'}") from error
    finally:
        conn.close()
    if not 200 <= response.status < 300:
        raise DeliveryFailed(f"{target.url} answered HTTP {response.status} {response.reason}"
                             + (f": {answer[:200]}" if answer else ""))


def _instant(seconds_from_now: float = 0.0) -> str:
    return format_instant(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds_from_now))


def _changed(cursor: Cursor) -> int:
    return int(cursor.raw.rowcount)


class WebhookDelivery:
    """Delivers every due subscription's events; one per process or worker, any number of them."""

    def __init__(self, database: Database, follower: LogFollower | None = None,
                 settings: DeliverySettings | None = None) -> None:
        self.database = database
        self.follower = follower
        self.settings = settings or DeliverySettings()
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._pool = ThreadPoolExecutor(self.settings.workers, thread_name_prefix="webhook")
        self._inflight: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> WebhookDelivery:
        """Deliver in a thread of this process until `stop()`."""
        if self.follower is not None:
            self.follower.on_new_events(self._wake.set)
            self.follower.start()
        self._thread = threading.Thread(target=self._run, name="webhook-delivery", daemon=True)
        self._thread.start()
        return self

    def stop(self, wait: bool = True) -> None:
        """Stop leasing; deliveries under way finish their current POST (when `wait`) and store it."""
        self._stop.set()
        self._wake.set()
        if wait and self._thread is not None:
            self._thread.join()
        self._pool.shutdown(wait=wait)

    def run_once(self) -> int:
        """One round: deliver what is due now and wait for it. Returns how many subscriptions were served."""
        futures = self._dispatch()
        wait(futures)
        return len(futures)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._dispatch()
            except Exception:
                log.exception("webhook delivery could not look for due subscriptions; retrying")
            self._wake.wait(self.settings.tick)
            self._wake.clear()

    def _dispatch(self) -> list[Future[None]]:
        now = _instant()
        with self.database.read() as cursor:
            head = last_position(cursor)
            due = [row[0] for row in cursor.execute(
                "SELECT id FROM {webhook_subscriptions} WHERE status != 'ended' AND position < ?"
                " AND next_attempt_at <= ? AND (lease_owner IS NULL OR lease_until < ?) ORDER BY next_attempt_at, id",
                (head, now, now)).all()]
        futures: list[Future[None]] = []
        for subscription_id in due:
            with self._lock:
                if len(self._inflight) >= self.settings.workers or self._stop.is_set():
                    break
                if subscription_id in self._inflight or not self._claim(subscription_id):
                    continue
                self._inflight.add(subscription_id)
            futures.append(self._pool.submit(self._deliver, subscription_id))
        return futures

    def _claim(self, subscription_id: str) -> bool:
        now = _instant()
        with self.database.write() as cursor:
            cursor.execute(
                "UPDATE {webhook_subscriptions} SET lease_owner = ?, lease_until = ? WHERE id = ?"
                " AND status != 'ended' AND (lease_owner IS NULL OR lease_until < ? OR lease_owner = ?)",
                (self.owner, _instant(self.settings.lease), subscription_id, now, self.owner),
            )
            return _changed(cursor) == 1

    def _deliver(self, subscription_id: str) -> None:
        try:
            self._deliver_leased(subscription_id)
        except Exception:
            log.exception("webhook delivery for subscription %s failed; it is retried", subscription_id)
        finally:
            try:
                with self.database.write() as cursor:
                    cursor.execute(
                        "UPDATE {webhook_subscriptions} SET lease_owner = NULL, lease_until = NULL"
                        " WHERE id = ? AND lease_owner = ?", (subscription_id, self.owner))
            finally:
                with self._lock:
                    self._inflight.discard(subscription_id)

    def _deliver_leased(self, subscription_id: str) -> None:
        with self.database.read() as cursor:
            found = cursor.execute("SELECT * FROM {webhook_subscriptions} WHERE id = ?", (subscription_id,)).one()
        row = dict(zip(found.keys(), found, strict=True))
        wanted, position = event_filter(row), int(row["position"])
        started = time.monotonic()
        while not self._stop.is_set() and time.monotonic() - started < self.settings.budget:
            with self.database.read() as cursor:
                items, read_to = read_committed(cursor, position, last_position(cursor), wanted, self.settings.batch)
            if read_to <= position:
                return
            for envelope in items:
                try:
                    target = check_target(row["url"], self.settings.allow_private)
                    body, headers = signed(row["secret"], envelope, row["source"])
                    post(target, body, headers, self.settings.timeout)
                except (DeliveryFailed, Invalid) as failure:
                    self._failed(row, envelope["position"] - 1, str(failure))
                    return
                position = row["position"] = envelope["position"]
                row["failures"] = 0
                if not self._store(subscription_id, position, delivered=True) or self._stop.is_set():
                    return
            if read_to > position:
                position = read_to
                if not self._store(subscription_id, position, delivered=False):
                    return

    def _store(self, subscription_id: str, position: int, delivered: bool) -> bool:
        """Store the position reached; False when the lease was lost or the subscription ended."""
        acknowledged = (", failures = 0, status = 'active', delivered = delivered + 1, next_attempt_at = '',"
                        " last_delivered_at = ?" if delivered else "")
        with self.database.write() as cursor:
            cursor.execute(
                f"UPDATE {{webhook_subscriptions}} SET position = ?, lease_until = ?{acknowledged}"
                " WHERE id = ? AND lease_owner = ? AND status != 'ended'",
                [position, _instant(self.settings.lease), *([_instant()] if delivered else []),
                 subscription_id, self.owner],
            )
            return _changed(cursor) == 1

    def _failed(self, row: Mapping[str, Any], position: int, error: str) -> None:
        failures = int(row["failures"]) + 1
        retry_at = _instant(self.settings.delay(failures))
        log.warning("webhook %s: attempt %d failed (%s); next attempt at %s", row["id"], failures, error, retry_at)
        with self.database.write() as cursor:
            cursor.execute(
                "UPDATE {webhook_subscriptions} SET position = ?, failures = ?, status = 'retrying',"
                " last_error = ?, last_error_at = ?, next_attempt_at = ?"
                " WHERE id = ? AND lease_owner = ? AND status != 'ended'",
                (max(position, int(row["position"])), failures, error[:1000], _instant(), retry_at,
                 row["id"], self.owner),
            )
