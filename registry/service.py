"""The registry's commands: register, append, correct, retract.

Each command validates against the catalogue, loads the record, emits one event
and saves it together with its log entry (and idempotency key) in one
transaction, then brings the views up to that position (read your writes).
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
import time
import zlib
from collections.abc import Callable, Mapping
from functools import cache
from typing import Any

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError, OperationalError
from marshmallow import ValidationError

from events import (
    CATALOGUE,
    CorrectionInput,
    EnvelopeInput,
    RetractionInput,
    UnknownEventType,
    ValidTime,
    parse_instant,
    references,
)
from events.ids import RECORD_ID_PATTERN, is_record_id
from events.temporal import read_log
from events.text import text_problems
from registry.audit.verify import Auditor
from registry.errors import Conflict, Invalid, NotFound, PreconditionFailed, StoreBusy
from registry.feeds.follower import LogFollower
from registry.feeds.webhooks import Webhooks
from registry.log.chain import canonical
from registry.log.store import Record, RegistryStore, record_uuid
from registry.log.writer import Commit, IdempotencyRecord, LogEntry, LogWriter
from registry.settings import Settings
from registry.tokens import Tokens
from registry.views.projection import ViewProjection
from registry.views.reader import Reader

COMMON = ("sources", "note")
ATTEMPTS = 50  # optimistic retries when another process appended to the same record first
STRIPES = 64  # in-process locks: threads appending to one record queue instead of colliding


class Registry:
    """The application service: the store and its log writer, the views, reads, feeds and tokens.

    Made by `registry.bootstrap.bootstrap()`; constructing one does no work on the store
    beyond opening it.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.config = settings.store
        self.store = RegistryStore(self.config)
        self.database = self.store.database
        self.projection = ViewProjection(self.database)
        self.webhooks = Webhooks(self.database, allow_private=settings.webhook_allow_private)
        self.reader = Reader(self.database, self.projection)
        self.tokens = Tokens(self.database)
        self.auditor = Auditor(self.store, self.projection)
        self.views_current = True  # False: the views are in an older layout (see registry.bootstrap.upgrade)
        # SQLite runs one writer at a time anyway: the views are written in the event's own
        # transaction. PostgreSQL keeps its event-table lock short and projects right after.
        self.writer = LogWriter(self.store, self.projection.project_inline if self.config.engine == "sqlite" else None)
        self._record_locks = [threading.Lock() for _ in range(STRIPES)]
        # Feeds: this process's follower of the log (started on first use).
        self.feed = LogFollower(self.database, self.config, getattr(self.store.recorder, "channel_name", None),
                                poll=settings.feed_poll, wait=settings.feed_wait)

    def close(self) -> None:
        self.feed.close()  # its thread reads the store: stop it first
        self.store.close()

    # Commands

    def register(self, collection: str, body: Mapping[str, Any], actor: str,
                 idempotency_key: str | None = None) -> dict[str, Any]:
        """Register a record; returns its view. Raises NotFound, Invalid, Conflict."""
        kind = self._kind(collection)
        body = _object(body)
        key = self._idempotency(actor, idempotency_key, ["register", collection, body])
        if key and key.get("replay"):
            return self._registered_view(key["replay"]["record"])
        record_id = str(body.get("id"))
        errors: dict[str, Any] = {}
        if not is_record_id(body.get("id")):
            errors["id"] = [f"must match {RECORD_ID_PATTERN}"]
        fields = {k: v for k, v in body.items() if k not in ("id", *COMMON)}
        data = _load(CATALOGUE.kinds[kind].registered, fields, errors)
        common = _load(EnvelopeInput, {k: body[k] for k in COMMON if k in body}, errors,
                       partial=("type", "valid"))
        if data is not None:
            self._check_references(CATALOGUE.kinds[kind].registered, data, errors, record_id)
        if errors:
            raise Invalid(f"the {kind} cannot be registered as given", errors)
        if self.reader.record_kind(record_id) is not None:
            raise Conflict(f"a record with id {record_id!r} exists")
        aggregate = Record.register(kind, record_id, data, common["sources"], common["note"], actor)
        entry = _entry(aggregate, aggregate.pending_events[0], kind, record_id)
        outcome = {"record": record_id}
        try:
            self._save(aggregate, entry, key, outcome)
        except IntegrityError as error:
            replay = self._replayed(actor, key)
            if replay:
                return self._registered_view(replay["record"])
            raise Conflict(f"a record with id {record_id!r} exists") from error
        return self._registered_view(record_id)

    def _registered_view(self, record_id: str) -> dict[str, Any]:
        """The record as the registry knew it when it was registered: the same answer on every retry."""
        registered = self.reader.events(0, 1, record=record_id)["items"][0]
        known_at = parse_instant(registered["recorded_at"])
        return self.reader.view(record_id, known_at.date(), known_at)

    def append(self, collection: str, record_id: str, body: Mapping[str, Any], actor: str,
               if_match: int | None = None, idempotency_key: str | None = None) -> dict[str, Any]:
        """Append a world event; returns its envelope. Raises NotFound, Invalid, PreconditionFailed."""
        kind = self._kind(collection)
        body = _object(body)
        if self.reader.record_kind(record_id) != kind:
            raise NotFound(f"no {kind} {record_id!r}")
        key = self._idempotency(actor, idempotency_key, ["append", record_id, body])
        if key and key.get("replay"):
            return self.reader.event(key["replay"]["event_id"])
        errors: dict[str, Any] = {}
        common = _load(EnvelopeInput, {k: body[k] for k in ("type", "valid", *COMMON) if k in body}, errors)
        fields = {k: v for k, v in body.items() if k not in ("type", "valid", *COMMON)}
        type_name = body.get("type")
        data: dict[str, Any] = {}
        if isinstance(type_name, str) and "type" not in errors:
            try:
                schema = CATALOGUE.event_type(kind, type_name).schema
            except UnknownEventType as error:
                errors["type"] = [str(error)]
            else:
                data = _load(schema, fields, errors) or {}
                self._check_references(schema, data, errors, record_id)
        if errors:
            raise Invalid(f"the event cannot be appended to {record_id!r} as given", errors)

        def emit(aggregate: Record) -> Any:
            return aggregate.record(str(type_name), common["valid"], data, common["sources"], common["note"], actor)

        return self._command(record_id, emit, if_match, key)

    def correct(self, event_id: str, body: Mapping[str, Any], actor: str,
                idempotency_key: str | None = None) -> dict[str, Any]:
        """Correct an event's fields or valid time; returns the `corrected` envelope."""
        body = _object(body)
        key = self._idempotency(actor, idempotency_key, ["correct", event_id, body])
        if key and key.get("replay"):
            return self.reader.event(key["replay"]["event_id"])
        target = self._target(event_id)
        errors: dict[str, Any] = {}
        given = _load(CorrectionInput, body, errors)
        changes = self._check_changes(target, given["changes"], errors) if given is not None else {}
        if errors:
            raise Invalid("the correction cannot be recorded as given", errors)
        data = {"target": event_id, "changes": changes, "reason": given["reason"]}

        def emit(aggregate: Record) -> Any:
            return aggregate.record("corrected", None, data, given["sources"], given["note"], actor)

        return self._command(target["record"], emit, None, key)

    def retract(self, event_id: str, body: Mapping[str, Any], actor: str,
                idempotency_key: str | None = None) -> dict[str, Any]:
        """Retract an event from the registry's knowledge; returns the `retracted` envelope."""
        body = _object(body)
        key = self._idempotency(actor, idempotency_key, ["retract", event_id, body])
        if key and key.get("replay"):
            return self.reader.event(key["replay"]["event_id"])
        target = self._target(event_id)
        errors: dict[str, Any] = {}
        given = _load(RetractionInput, body, errors)
        if target["type"] == "registered":
            errors["target"] = ["a record's registration cannot be retracted"]
        if errors:
            raise Invalid("the retraction cannot be recorded as given", errors)
        data = {"target": event_id, "reason": given["reason"]}

        def emit(aggregate: Record) -> Any:
            return aggregate.record("retracted", None, data, given["sources"], given["note"], actor)

        return self._command(target["record"], emit, None, key)

    # Steps shared by the commands

    def _kind(self, collection: str) -> str:
        kind = CATALOGUE.by_collection(collection)
        if kind is None:
            raise NotFound(f"no collection {collection!r}")
        return kind.name

    def _command(self, record_id: str, emit: Callable[[Record], Any], if_match: int | None,
                 key: dict[str, Any] | None) -> dict[str, Any]:
        with self._record_locks[zlib.crc32(record_id.encode()) % STRIPES]:
            return self._attempt(record_id, emit, if_match, key)

    def _attempt(self, record_id: str, emit: Callable[[Record], Any], if_match: int | None,
                 key: dict[str, Any] | None) -> dict[str, Any]:
        for attempt in range(ATTEMPTS):
            if attempt:
                time.sleep(random.uniform(0, 0.002 * min(attempt, 10)))
            try:
                aggregate: Record = self.store.repository.get(record_uuid(record_id))
            except AggregateNotFoundError:
                raise NotFound(f"no record {record_id!r}") from None
            if if_match is not None and aggregate.version != if_match:
                raise PreconditionFailed(
                    f"{record_id!r} is at version {aggregate.version}, not {if_match}")
            event = emit(aggregate)
            entry = _entry(aggregate, event, aggregate.kind, record_id)
            try:
                return self._save(aggregate, entry, key, {"event_id": event.event_id})
            except IntegrityError:
                replay = self._replayed(key["actor"], key) if key else None
                if replay:
                    return self.reader.event(replay["event_id"])
                if if_match is not None:
                    raise PreconditionFailed(f"{record_id!r} changed since version {if_match}") from None
        raise Conflict(f"{record_id!r} kept changing while appending; try again")

    def _save(self, aggregate: Record, entry: LogEntry, key: dict[str, Any] | None,
              outcome: dict[str, Any]) -> dict[str, Any]:
        """The one write: the event, its log entry and hash, the idempotency key and (SQLite) the
        views in one transaction; then (PostgreSQL) the views. Returns the logged envelope."""
        remembered = None
        if key:
            remembered = IdempotencyRecord(key["key"], key["actor"], key["fingerprint"], json.dumps(outcome))
        try:
            committed = self.writer.commit(Commit([aggregate], [entry], remembered))
        except OperationalError as error:
            raise StoreBusy(f"the store is busy: {error}") from error
        if not committed.views_applied:
            self.projection.catch_up()  # not projected with the event: bring the views up to it
        return committed.envelopes[0]

    def _idempotency(self, actor: str, key: str | None, request: Any) -> dict[str, Any] | None:
        if key is None:
            return None
        if not 1 <= len(key) <= 200:
            raise Invalid("Idempotency-Key must be 1-200 characters", {"Idempotency-Key": ["invalid"]})
        fingerprint = hashlib.sha256(canonical(request)).hexdigest()
        found = self.reader.idempotency(actor, key)
        if found is None:
            return {"key": key, "actor": actor, "fingerprint": fingerprint}
        if found[0] != fingerprint:
            raise Invalid(
                "this Idempotency-Key was used with another request",
                {"Idempotency-Key": ["reused with a different body"]},
            )
        return {"key": key, "actor": actor, "fingerprint": fingerprint, "replay": json.loads(found[1])}

    def _replayed(self, actor: str, key: dict[str, Any] | None) -> dict[str, Any] | None:
        if not key:
            return None
        found = self.reader.idempotency(actor, key["key"])
        if found is None:
            return None
        if found[0] != key["fingerprint"]:
            raise Invalid("this Idempotency-Key was used with another request",
                          {"Idempotency-Key": ["reused with a different body"]})
        return json.loads(found[1])

    def _check_references(self, schema: Any, data: Mapping[str, Any], errors: dict[str, Any], own_id: str) -> None:
        for field, record_id, kinds in references(schema, data):
            if record_id == own_id:
                errors.setdefault(field, []).append("a record cannot refer to itself")
                continue
            kind = self.reader.record_kind(record_id)
            if kind not in kinds:
                wanted = " or ".join(kinds)
                errors.setdefault(field, []).append(f"{record_id!r} is not a registered {wanted}")

    def _target(self, event_id: str) -> dict[str, Any]:
        target = self.reader.event(event_id)
        if target["type"] in ("corrected", "retracted"):
            raise Invalid(f"a {target['type']} event cannot itself be corrected or retracted",
                          {"target": ["corrections and retractions are final"]})
        if self.reader.is_retracted(event_id):
            raise Invalid("the event is retracted", {"target": ["already retracted"]})
        return target

    def _check_changes(self, target: Mapping[str, Any], changes: Mapping[str, Any],
                       errors: dict[str, Any]) -> dict[str, Any]:
        """The changes as validated (normalised) values; problems go into `errors`."""
        knowledge = read_log(self.reader.record_envelopes(target["record"]))
        if target["type"] == "registered":
            schema = CATALOGUE.kinds[target["kind"]].registered
            merged = {**knowledge.registered, **changes}
            for forbidden in ("id", "valid"):
                if forbidden in changes:
                    errors.setdefault("changes", {})[forbidden] = ["cannot be corrected on a registration"]
        else:
            schema = CATALOGUE.event_type(target["kind"], target["type"]).schema
            effective = knowledge.effective[target["id"]]
            merged = {**effective["data"], **{k: v for k, v in changes.items() if k != "valid"}}
        valid = None
        if "valid" in changes and target["type"] != "registered":
            try:
                valid = ValidTime.parse(changes["valid"]).text
            except ValueError as error:
                errors.setdefault("changes", {})["valid"] = [str(error)]
        nested: dict[str, Any] = {}
        loaded = _load(schema, merged, nested) or {}
        if nested:
            errors.setdefault("changes", {}).update(nested)
        else:
            self._check_references(schema, loaded, errors, target["record"])
        normalised = {k: loaded.get(k) for k in changes if k not in ("valid", "id")}
        if valid is not None:
            normalised["valid"] = valid
        return normalised


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, Mapping):
        raise Invalid("the body must be a JSON object", {"body": ["not an object"]})
    problems = text_problems(body)
    if problems:
        raise Invalid("the body holds text the registry cannot store", problems)
    return dict(body)


@cache
def _schema(schema_class: Any) -> Any:
    return schema_class()


def _load(schema: Any, data: Mapping[str, Any], errors: dict[str, Any], partial: Any = False) -> Any:
    try:
        return _schema(schema).load(data, partial=partial)
    except ValidationError as error:
        errors.update(error.normalized_messages() if isinstance(error.messages, dict) else {"body": error.messages})
        return None


def _entry(aggregate: Record, event: Any, kind: str, record_id: str) -> LogEntry:
    """The log entry of an event, before the log gives it a position, time and hash."""
    valid = getattr(event, "valid", None)
    bounds = ValidTime.parse(valid).bounds() if valid else {"valid_lower": None, "valid_upper": None}
    return {
        "id": event.event_id,
        "record": record_id,
        "kind": kind,
        "version": event.originator_version,
        "type": getattr(event, "type", "registered"),
        "valid": valid,
        "valid_lower": bounds["valid_lower"],
        "valid_upper": bounds["valid_upper"],
        "data": event.data,
        "sources": event.sources,
        "note": event.note,
        "actor": event.actor,
    }
