"""Webhook subscriptions: who wants which events, where, and how far they got.

A subscription's `position` is its cursor in the global log: every event at or
below it has been delivered (acknowledged with a 2xx) or did not match its
filters. It is stored after each acknowledgement, so a restart neither loses
nor re-sends an acknowledged delivery. `registry.feeds.delivery` delivers.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import uuid
from collections.abc import Mapping
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate

from events import CATALOGUE
from events.ids import RECORD_ID_PATTERN, is_event_id
from events.text import text_problems
from registry.clock import utc_now
from registry.errors import Invalid, NotFound
from registry.feeds.targets import check_target
from registry.log.chain import canonical
from registry.log.database import Database
from registry.log.reader import EventFilter, last_position
from registry.tokens import Principal

PUBLIC_FIELDS = ("id", "url", "types", "kinds", "records", "status", "position", "failures", "delivered",
                 "last_error", "last_error_at", "last_delivered_at", "next_attempt_at", "created_at",
                 "created_by", "ended_at")


class SubscriptionBody(Schema):
    class Meta:
        unknown = RAISE

    url = fields.String(required=True, validate=validate.Length(min=1, max=2000))
    types = fields.List(fields.String(validate=validate.OneOf(sorted(CATALOGUE.all_type_names()))))
    kinds = fields.List(fields.String(validate=validate.OneOf(sorted(CATALOGUE.kinds))))
    records = fields.List(fields.String(validate=validate.Regexp(RECORD_ID_PATTERN, error="not a record id")))
    after = fields.Integer(strict=True, validate=validate.Range(min=0, max=2**63 - 1))


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


class Webhooks:
    """The subscriptions table: subscribe, show, list, end."""

    def __init__(self, database: Database, allow_private: bool = False) -> None:
        self.database = database
        self.allow_private = allow_private  # REGISTRY_WEBHOOK_ALLOW_PRIVATE

    def create_tables(self) -> None:
        big = "BIGINT" if self.database.engine == "postgres" else "INTEGER"
        with self.database.write() as cursor:
            cursor.execute(f"""CREATE TABLE IF NOT EXISTS {{webhook_subscriptions}} (
                id TEXT PRIMARY KEY, url TEXT NOT NULL, secret TEXT NOT NULL, source TEXT NOT NULL,
                filters TEXT NOT NULL, position {big} NOT NULL, status TEXT NOT NULL,
                failures INTEGER NOT NULL, delivered {big} NOT NULL, last_error TEXT, last_error_at TEXT,
                last_delivered_at TEXT, next_attempt_at TEXT NOT NULL, lease_owner TEXT, lease_until TEXT,
                created_at TEXT NOT NULL, created_by TEXT NOT NULL, ended_at TEXT)""")
            cursor.execute("CREATE INDEX IF NOT EXISTS webhook_subscriptions_status"
                           " ON {webhook_subscriptions} (status, next_attempt_at)")

    def subscribe(self, body: Any, actor: str, source: str, idempotency_key: str | None = None,
                  allow_private: bool | None = None) -> dict[str, Any]:
        """A new subscription, with its secret (shown only here). Raises Invalid."""
        if not isinstance(body, Mapping):
            raise Invalid("the body must be a JSON object", {"body": ["not an object"]})
        problems = text_problems(body)
        if problems:
            raise Invalid("the subscription cannot be made as given",
                          {path.removeprefix("body."): reasons for path, reasons in problems.items()})
        fingerprint = hashlib.sha256(canonical(["subscribe", dict(body)])).hexdigest()
        if idempotency_key:
            replay = self._replay(actor, idempotency_key, fingerprint)
            if replay:
                return replay
        try:
            given = SubscriptionBody().load(body)
        except ValidationError as error:
            raise Invalid("the subscription cannot be made as given", error.normalized_messages()) from error
        allow = self.allow_private if allow_private is None else allow_private
        target = check_target(given["url"], allow)
        wanted = {"types": sorted(set(given.get("types", []))), "kinds": sorted(set(given.get("kinds", []))),
                  "records": sorted(set(given.get("records", [])))}
        subscription_id, secret, now = str(uuid.uuid4()), new_secret(), utc_now()
        try:
            self._insert(subscription_id, target.url, secret, source, wanted, given.get("after"), actor, now,
                         {"key": idempotency_key, "fingerprint": fingerprint} if idempotency_key else None)
        except Invalid:
            raise
        except Exception:
            replay = self._replay(actor, idempotency_key, fingerprint) if idempotency_key else None
            if replay is None:
                raise
            return replay  # the same request, made twice at once: the first one won
        return {**self.get(subscription_id), "secret": secret}

    def _insert(self, subscription_id: str, url: str, secret: str, source: str, wanted: dict[str, Any],
                after: int | None, actor: str, now: str, idempotency: dict[str, str] | None) -> None:
        with self.database.write(lock="webhook_subscriptions") as cursor:
            head = last_position(cursor)
            if after is None:
                after = head
            if after > head:
                raise Invalid(f"'after' is beyond the log's last position {head}", {"after": ["beyond the log"]})
            cursor.execute(
                "INSERT INTO {webhook_subscriptions} (id, url, secret, source, filters, position, status, failures,"
                " delivered, next_attempt_at, created_at, created_by) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (subscription_id, url, secret, source, json.dumps(wanted), after, "active", 0, 0, "", now, actor),
            )
            if idempotency:
                cursor.execute(
                    "INSERT INTO {idempotency} (key, actor, fingerprint, outcome, created_at) VALUES (?,?,?,?,?)",
                    (idempotency["key"], actor, idempotency["fingerprint"],
                     json.dumps({"subscription": subscription_id}), now),
                )

    def _replay(self, actor: str, key: str, fingerprint: str) -> dict[str, Any] | None:
        with self.database.read() as cursor:
            row = cursor.execute(
                "SELECT fingerprint, outcome FROM {idempotency} WHERE actor = ? AND key = ?", (actor, key)).one()
        if row is None:
            return None
        if row[0] != fingerprint:
            raise Invalid("this Idempotency-Key was used with another request",
                          {"Idempotency-Key": ["reused with a different body"]})
        subscription_id = json.loads(row[1])["subscription"]
        return {**self.get(subscription_id), "secret": self.row(subscription_id)["secret"]}

    def row(self, subscription_id: str) -> dict[str, Any]:
        """The stored row, secret included. Raises NotFound."""
        if not is_event_id(subscription_id):  # subscription ids are UUIDs too
            raise NotFound(f"no subscription {subscription_id!r}")
        with self.database.read() as cursor:
            row = cursor.execute("SELECT * FROM {webhook_subscriptions} WHERE id = ?", (subscription_id,)).one()
        if row is None:
            raise NotFound(f"no subscription {subscription_id!r}")
        return dict(zip(row.keys(), row, strict=True))

    def get(self, subscription_id: str, viewer: Principal | None = None) -> dict[str, Any]:
        """What a subscriber may see of a subscription (not its secret). Raises NotFound, also when
        `viewer` is given and is neither its creator nor an admin."""
        row = self.row(subscription_id)
        if viewer is not None and not may_see(viewer, row):
            raise NotFound(f"no subscription {subscription_id!r}")
        return public(row)

    def list(self, viewer: Principal | None = None) -> list[dict[str, Any]]:
        """Every subscription, or those `viewer` may see: its own, or all for an admin."""
        with self.database.read() as cursor:
            if viewer is None or viewer.role == "admin":
                rows = cursor.execute("SELECT * FROM {webhook_subscriptions} ORDER BY created_at, id").all()
            else:
                rows = cursor.execute("SELECT * FROM {webhook_subscriptions} WHERE created_by = ?"
                                      " ORDER BY created_at, id", (viewer.name,)).all()
        return [public(dict(zip(row.keys(), row, strict=True))) for row in rows]

    def end(self, subscription_id: str, viewer: Principal | None = None) -> dict[str, Any]:
        """End a subscription: nothing more is delivered. Ending it twice is harmless. Raises NotFound."""
        self.get(subscription_id, viewer)
        with self.database.write() as cursor:
            cursor.execute(
                "UPDATE {webhook_subscriptions} SET status = 'ended', ended_at = ? WHERE id = ? AND status != 'ended'",
                (utc_now(), subscription_id),
            )
        return self.get(subscription_id)


def may_see(viewer: Principal, row: Mapping[str, Any]) -> bool:
    return viewer.role == "admin" or row["created_by"] == viewer.name


def public(row: Mapping[str, Any]) -> dict[str, Any]:
    wanted = json.loads(row["filters"])
    shown = {**row, **wanted, "position": int(row["position"]), "delivered": int(row["delivered"]),
             "failures": int(row["failures"]), "next_attempt_at": row["next_attempt_at"] or None}
    return {key: shown[key] for key in PUBLIC_FIELDS}


def event_filter(row: Mapping[str, Any]) -> EventFilter:
    wanted = json.loads(row["filters"])
    return EventFilter.of(wanted["types"], wanted["kinds"], wanted["records"])
