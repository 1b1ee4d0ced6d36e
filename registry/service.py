"""The registry's commands: register, append, correct, retract.

Each command validates against the catalogue, loads the record, emits one event
and saves it together with its log entry (and idempotency key) in one
transaction, then brings the views up to that position (read your writes).
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import random
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError, OperationalError
from marshmallow import ValidationError

from events import (
    CATALOGUE,
    BatchInput,
    CorrectionInput,
    EnvelopeInput,
    InvalidValidTime,
    RetractionInput,
    UnknownEventType,
    ValidTime,
    parse_instant,
    references,
)
from events.catalogue import BATCH_FIELDS, BATCH_LIMIT
from events.ids import RECORD_ID_PATTERN, is_record_id
from events.temporal import read_log
from events.text import text_problems
from registry.audit.verify import Auditor
from registry.errors import Conflict, Invalid, NotFound, PreconditionFailed, RegistryError, StoreBusy
from registry.feeds.follower import LogFollower
from registry.feeds.webhooks import Webhooks
from registry.log.chain import canonical
from registry.log.store import Record, RegistryStore, record_uuid
from registry.log.writer import Commit, Committed, IdempotencyRecord, LogEntry, LogWriter
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
        # SQLite runs one writer at a time anyway: the views are written in the events' own
        # transaction. PostgreSQL keeps its event-table lock short and projects right after.
        inline = self.projection.project_inline if self.config.engine == "sqlite" else None
        self.writer = LogWriter(self.store, apply_views=inline,
                                catch_up_views=lambda logged: self.projection.catch_up(logged=logged))
        self._record_locks = [threading.Lock() for _ in range(STRIPES)]
        # Feeds: this process's follower of the log (started on first use).
        self.feed = LogFollower(self.database, self.config, getattr(self.store.recorder, "channel_name", None),
                                poll=settings.feed_poll, wait=settings.feed_wait)

    def close(self) -> None:
        self.feed.close()  # its thread reads the store: stop it first
        self.store.close()

    # Commands: validate, then one commit

    def register(self, collection: str, body: Mapping[str, Any], actor: str,
                 idempotency_key: str | None = None) -> dict[str, Any]:
        """Register a record; returns its view. Raises NotFound, Invalid, Conflict."""
        kind = self._kind(collection)
        body = _object(body)
        key = self._idempotency(actor, idempotency_key, ["register", collection, body])
        if key and key.get("replay"):
            return self._registered_view(key["replay"]["record"])

        def run() -> dict[str, Any]:
            write = self._registration(kind, body, actor, Staged())
            try:
                self._save(write, key)
            except IntegrityError as error:
                replay = self._replayed(actor, key)
                if replay:
                    return self._registered_view(replay["record"])
                raise Conflict(f"a record with id {write.record.record_id!r} exists") from error
            return self._registered_view(write.record.record_id)

        return self._unless_replayed(key, run, lambda replay: self._registered_view(replay["record"]))

    def append(self, collection: str, record_id: str, body: Mapping[str, Any], actor: str,
               if_match: int | None = None, idempotency_key: str | None = None) -> dict[str, Any]:
        """Append a world event; returns its envelope. Raises NotFound, Invalid, PreconditionFailed."""
        kind = self._kind(collection)
        body = _object(body)
        staged = self._read_record(record_id)
        self._require_record(record_id, kind, staged)
        key = self._idempotency(actor, idempotency_key, ["append", record_id, body])
        if key and key.get("replay"):
            return self.reader.event(key["replay"]["event_id"])
        emit = self._world_event(kind, record_id, body, actor, staged)
        return self._unless_replayed(key, lambda: self._command(record_id, emit, if_match, key, staged.versions),
                                     lambda replay: self.reader.event(replay["event_id"]))

    def correct(self, event_id: str, body: Mapping[str, Any], actor: str,
                idempotency_key: str | None = None) -> dict[str, Any]:
        """Correct an event's fields or valid time; returns the `corrected` envelope."""
        body = _object(body)
        key = self._idempotency(actor, idempotency_key, ["correct", event_id, body])
        if key and key.get("replay"):
            return self.reader.event(key["replay"]["event_id"])
        return self._unless_replayed(
            key, lambda: self._command(*self._correction(event_id, body, actor, Staged()), None, key),
            lambda replay: self.reader.event(replay["event_id"]))

    def retract(self, event_id: str, body: Mapping[str, Any], actor: str,
                idempotency_key: str | None = None) -> dict[str, Any]:
        """Retract an event from the registry's knowledge; returns the `retracted` envelope."""
        body = _object(body)
        key = self._idempotency(actor, idempotency_key, ["retract", event_id, body])
        if key and key.get("replay"):
            return self.reader.event(key["replay"]["event_id"])
        return self._unless_replayed(
            key, lambda: self._command(*self._retraction(event_id, body, actor), None, key),
            lambda replay: self.reader.event(replay["event_id"]))

    def batch(self, body: Any, actor: str, idempotency_key: str | None = None) -> dict[str, Any]:
        """Every write of the batch, in order, in one transaction at consecutive positions, or none.

        Returns `{items}`: each write's result as the single call gives it. A write that
        fails raises what the single call would raise, its errors under `writes` keyed by
        its index; nothing is written then.
        """
        body = _object(body)
        errors: dict[str, Any] = {}
        given = _batch_shape(body) or _load(BatchInput, body, errors)
        if errors:
            raise Invalid("the batch cannot be written as given", errors)
        key = self._idempotency(actor, idempotency_key, ["batch", body])
        if key and key.get("replay"):
            return {"items": [self._result(outcome) for outcome in key["replay"]["items"]]}
        for attempt in range(ATTEMPTS):
            if attempt:
                time.sleep(random.uniform(0, 0.002 * min(attempt, 10)))
            kinds, versions = self.reader.record_kinds_and_versions(_batch_records(given["writes"]))
            staged = Staged(kinds=kinds, versions=versions)
            try:
                writes = [self._batch_write(index, write, actor, staged) for index, write in enumerate(given["writes"])]
            except (Conflict, PreconditionFailed, Invalid):  # as in `_unless_replayed`
                replay = self._replayed(actor, key)
                if replay:
                    return {"items": [self._result(item) for item in replay["items"]]}
                raise
            outcome = {"items": [write.outcome for write in writes]}
            records = list({id(write.record): write.record for write in writes}.values())
            try:
                committed = self._commit(Commit(records, [write.entry for write in writes], _remembered(key, outcome)))
            except IntegrityError:
                replay = self._replayed(actor, key)
                if replay:
                    return {"items": [self._result(item) for item in replay["items"]]}
                continue  # checked again on the records as they are now: a stale If-Match is a 412 then, by its index
            return {"items": [self._result(write.outcome, envelope)
                              for write, envelope in zip(writes, committed.envelopes, strict=True)]}
        raise Conflict("the batch's records kept changing while it was written; try again")

    # Steps shared by the commands

    def _kind(self, collection: str) -> str:
        kind = CATALOGUE.by_collection(collection)
        if kind is None:
            raise NotFound(f"no collection {collection!r}")
        return kind.name

    def _record_kind(self, record_id: str, staged: Staged) -> str | None:
        # A record's kind never changes, but on PostgreSQL it is read from the store, not the
        # cache of records: this read also fails at once (a 503) when the store is down, before
        # the library's reads, which retry for seconds. The embedded store is never down.
        record = staged.records.get(record_id) or (self._cached(record_id) if self.config.engine == "sqlite" else None)
        if record is not None:
            return record.kind
        if record_id not in staged.kinds:
            staged.kinds[record_id] = self.reader.record_kind(record_id)
        return staged.kinds[record_id]

    def _cached(self, record_id: str) -> Record | None:
        """The record as this process last saved or read it (it may have moved on since), or None."""
        cache = self.store.repository.cache
        try:
            cached = cache.get(record_uuid(record_id)) if cache is not None else None
        except KeyError:
            return None
        return cached if isinstance(cached, Record) else None

    def _read_record(self, record_id: str) -> Staged:
        """PostgreSQL: the record's kind and version in one round trip; when this process's copy
        of the record is at that version, the append reads nothing more before its commit (the
        repository would ask the store for newer events). SQLite: nothing read yet (in process,
        the kind comes from the cache and the repository's read costs microseconds)."""
        if self.config.engine != "postgres":
            return Staged()
        kinds, versions = self.reader.record_kinds_and_versions([record_id])
        return Staged(kinds=kinds, versions=versions)

    def _require_record(self, record_id: str, kind: str, staged: Staged) -> None:
        if self._record_kind(record_id, staged) != kind:
            raise NotFound(f"no {kind} {record_id!r}")

    def _registration(self, kind: str, body: Mapping[str, Any], actor: str, staged: Staged) -> Write:
        """A checked registration. Raises Invalid, Conflict."""
        record_id = str(body.get("id"))
        errors: dict[str, Any] = {}
        if not is_record_id(body.get("id")):
            errors["id"] = [f"must match {RECORD_ID_PATTERN}"]
        fields = {k: v for k, v in body.items() if k not in ("id", *COMMON)}
        data = _load(CATALOGUE.kinds[kind].registered, fields, errors)
        common = _load(EnvelopeInput, {k: body[k] for k in COMMON if k in body}, errors,
                       partial=("type", "valid"))
        if data is not None:
            self._check_references(CATALOGUE.kinds[kind].registered, data, errors, record_id, staged)
        if errors:
            raise Invalid(f"the {kind} cannot be registered as given", errors)
        if self._record_kind(record_id, staged) is not None:
            raise Conflict(f"a record with id {record_id!r} exists")
        record = Record.register(kind, record_id, data, common["sources"], common["note"], actor)
        staged.records[record_id] = record
        return Write(record, _entry(record.pending_events[0], kind, record_id), {"record": record_id})

    def _world_event(self, kind: str, record_id: str, body: Mapping[str, Any], actor: str,
                     staged: Staged) -> Emit:
        """The checked world event, as a function that emits it on the record. Raises Invalid."""
        errors: dict[str, Any] = {}
        common = _plain_envelope(body) or _load(
            EnvelopeInput, {k: body[k] for k in ("type", "valid", *COMMON) if k in body}, errors)
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
                self._check_references(schema, data, errors, record_id, staged)
        if errors:
            raise Invalid(f"the event cannot be appended to {record_id!r} as given", errors)

        def emit(record: Record) -> Any:
            return record.record(str(type_name), common["valid"], data, common["sources"], common["note"], actor)

        return emit

    def _correction(self, event_id: str, body: Mapping[str, Any], actor: str, staged: Staged) -> tuple[str, Emit]:
        """(the target's record, the checked `corrected` event). Raises NotFound, Invalid."""
        target = self._target(event_id)
        errors: dict[str, Any] = {}
        given = _load(CorrectionInput, body, errors)
        changes = self._check_changes(target, given["changes"], errors, staged) if given is not None else {}
        if errors:
            raise Invalid("the correction cannot be recorded as given", errors)
        data = {"target": event_id, "changes": changes, "reason": given["reason"]}

        def emit(record: Record) -> Any:
            _not_retracted(record, event_id)
            return record.record("corrected", None, data, given["sources"], given["note"], actor)

        return target["record"], emit

    def _retraction(self, event_id: str, body: Mapping[str, Any], actor: str) -> tuple[str, Emit]:
        """(the target's record, the checked `retracted` event). Raises NotFound, Invalid."""
        target = self._target(event_id)
        errors: dict[str, Any] = {}
        given = _load(RetractionInput, body, errors)
        if target["type"] == "registered":
            errors["target"] = ["a record's registration cannot be retracted"]
        if errors:
            raise Invalid("the retraction cannot be recorded as given", errors)
        data = {"target": event_id, "reason": given["reason"]}

        def emit(record: Record) -> Any:
            _not_retracted(record, event_id)
            return record.record("retracted", None, data, given["sources"], given["note"], actor)

        return target["record"], emit

    def _batch_write(self, index: int, write: Mapping[str, Any], actor: str, staged: Staged) -> Write:
        """One checked write of a batch, staged so that later writes see it."""
        try:
            body = write["body"]  # its text was checked with the whole batch's
            if write["op"] == "register":
                return self._registration(self._kind(write["collection"]), body, actor, staged)
            if write["op"] == "append":
                kind = self._kind(write["collection"])
                self._require_record(write["id"], kind, staged)
                emit = self._world_event(kind, write["id"], body, actor, staged)
                return self._emitted(write["id"], emit, write.get("if_match"), staged)
            record_id, emit = (self._correction(write["event"], body, actor, staged) if write["op"] == "correct"
                               else self._retraction(write["event"], body, actor))
            return self._emitted(record_id, emit, None, staged)
        except RegistryError as error:
            raise _in_batch(error, index) from None

    def _emitted(self, record_id: str, emit: Emit, if_match: int | None, staged: Staged) -> Write:
        """The event `emit` makes on the record as it stands (in the store, or staged). Raises
        NotFound, PreconditionFailed."""
        record = staged.records.get(record_id) or self._cached_record(record_id, staged)
        if record is None:
            try:
                record = self.store.repository.get(record_uuid(record_id))
            except AggregateNotFoundError:
                raise NotFound(f"no record {record_id!r}") from None
            staged.records[record_id] = record
        if if_match is not None and record.version != if_match:
            raise PreconditionFailed(f"{record_id!r} is at version {record.version}, not {if_match}")
        event = emit(record)
        return Write(record, _entry(event, record.kind, record_id), {"event_id": event.event_id})

    def _cached_record(self, record_id: str, staged: Staged) -> Record | None:
        """A copy of the record from the store's cache, when it is at the version the batch read
        for it; else None. The repository would read the record's newer events (none then) in a
        query of its own: a batch reads every record's version in one. A record that moves on
        after that read fails the commit, which is tried again with versions read again."""
        version = staged.versions.get(record_id)
        cached = self._cached(record_id) if version is not None else None
        if cached is None or cached.version != version:
            return None
        record = copy.deepcopy(cached)  # as the repository copies it (Record.__deepcopy__)
        staged.records[record_id] = record
        return record

    def _command(self, record_id: str, emit: Emit, if_match: int | None,
                 key: dict[str, Any] | None, versions: Mapping[str, int] | None = None) -> dict[str, Any]:
        """Emit on the record and commit; again on a fresh copy while another process moves it on.
        `versions`: the record's version as just read, so that a cached copy at it is used as is."""
        with self._record_locks[zlib.crc32(record_id.encode()) % STRIPES]:
            for attempt in range(ATTEMPTS):
                if attempt:
                    time.sleep(random.uniform(0, 0.002 * min(attempt, 10)))
                read = dict(versions or {}) if not attempt else {}  # a retry reads the record again
                write = self._emitted(record_id, emit, if_match, Staged(versions=read))
                try:
                    return self._save(write, key)
                except IntegrityError:
                    replay = self._replayed(key["actor"], key) if key else None
                    if replay:
                        return self.reader.event(replay["event_id"])
                    if if_match is not None:
                        raise PreconditionFailed(f"{record_id!r} changed since version {if_match}") from None
        raise Conflict(f"{record_id!r} kept changing while appending; try again")

    def _save(self, write: Write, key: dict[str, Any] | None) -> dict[str, Any]:
        """Commit one write with its idempotency key; returns the logged envelope."""
        return self._commit(Commit([write.record], [write.entry], _remembered(key, write.outcome))).envelopes[0]

    def _commit(self, commit: Commit) -> Committed:
        """The one write: events, log entries and hashes, the idempotency key and (SQLite) the
        views in one transaction, shared with concurrent commits; then (PostgreSQL) the views."""
        try:
            return self.writer.commit(commit)
        except OperationalError as error:
            raise StoreBusy(f"the store is busy: {error}") from error

    def _result(self, outcome: Mapping[str, Any], envelope: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """What the single call answers: a registration's view, or an event's envelope."""
        if "record" in outcome:
            return self._registered_view(outcome["record"])
        return dict(envelope) if envelope is not None else self.reader.event(outcome["event_id"])

    def _registered_view(self, record_id: str) -> dict[str, Any]:
        """The record as the registry knew it when it was registered: the same answer on every retry."""
        registered = self.reader.events(0, 1, record=record_id)["items"][0]
        known_at = parse_instant(registered["recorded_at"])
        return self.reader.view(record_id, known_at.date(), known_at)

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

    def _unless_replayed(self, key: dict[str, Any] | None, run: Callable[[], Any],
                         answer: Callable[[dict[str, Any]], Any]) -> Any:
        """Run the command. When it is refused on the store as it is now (409, 412, 422) and a
        request with the same Idempotency-Key and body was written since this one read the keys
        (a retry racing its first attempt), answer what that request answered instead."""
        try:
            return run()
        except (Conflict, PreconditionFailed, Invalid):
            replay = self._replayed(key["actor"], key) if key else None
            if replay:
                return answer(replay)
            raise

    def _check_references(self, schema: Any, data: Mapping[str, Any], errors: dict[str, Any], own_id: str,
                          staged: Staged) -> None:
        for field, record_id, kinds in references(schema, data):
            if record_id == own_id:
                errors.setdefault(field, []).append("a record cannot refer to itself")
                continue
            kind = self._record_kind(record_id, staged)
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
                       errors: dict[str, Any], staged: Staged) -> dict[str, Any]:
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
            self._check_references(schema, loaded, errors, target["record"], staged)
        normalised = {k: loaded.get(k) for k in changes if k not in ("valid", "id")}
        if valid is not None:
            normalised["valid"] = valid
        return normalised


def _not_retracted(record: Record, event_id: str) -> None:
    """Checked again on the record as it stands when the event is emitted: a retraction earlier
    in the same batch, or one committed by a concurrent request since `_target` read the store."""
    if event_id in record.retracted:
        raise Invalid("the event is retracted", {"target": ["already retracted"]})


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


def _plain_envelope(body: Mapping[str, Any]) -> dict[str, Any] | None:
    """What `EnvelopeInput` loads from an event whose type and valid time are strings, without
    sources, its note a string or null; None for anything else, which `EnvelopeInput` then loads
    (or refuses with its own errors)."""
    type_name, valid, note = body.get("type"), body.get("valid"), body.get("note")
    if type(type_name) is not str or type(valid) is not str or "sources" in body or not (
            note is None or type(note) is str):
        return None
    try:
        text = ValidTime.parse(valid).text  # as ValidField loads it
    except InvalidValidTime:
        return None
    return {"type": type_name, "valid": text, "sources": [], "note": note}


def _entry(event: Any, kind: str, record_id: str) -> LogEntry:
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


Emit = Callable[[Record], Any]


@dataclass
class Staged:
    """The records a batch has registered or changed so far, by id: later writes of the batch
    see them as they will be once it is stored."""

    records: dict[str, Record] = dataclasses.field(default_factory=dict)
    kinds: dict[str, str | None] = dataclasses.field(default_factory=dict)  # looked up in the store
    versions: dict[str, int] = dataclasses.field(default_factory=dict)  # the records' versions in the store


@dataclass(frozen=True)
class Write:
    """A checked write: the record with its new event pending, the event's log entry, and what
    the idempotency key keeps of it."""

    record: Record
    entry: LogEntry
    outcome: dict[str, Any]


def _remembered(key: Mapping[str, Any] | None, outcome: Mapping[str, Any]) -> IdempotencyRecord | None:
    if not key:
        return None
    return IdempotencyRecord(key["key"], key["actor"], key["fingerprint"], json.dumps(outcome))


BATCH_KEYS = {op: frozenset(("op", *needed, "body", *(("if_match",) if op == "append" else ())))
              for op, needed in BATCH_FIELDS.items()}
IF_MATCH_MAX = 2**62


def _batch_shape(body: Mapping[str, Any]) -> dict[str, Any] | None:
    """What `BatchInput` loads from a batch of the plain shape, without marshmallow's cost per
    write; None for anything else, which `BatchInput` then loads or refuses with its own errors.

    Plain: `{"writes": [...]}` with 1 to BATCH_LIMIT writes, each a dict of its op's fields as
    `str` (no other), `body` a dict and, on an append, maybe `if_match` an int in 1..2**62.
    """
    writes = body.get("writes")
    if len(body) != 1 or type(writes) is not list or not 1 <= len(writes) <= BATCH_LIMIT:
        return None
    loaded = []
    for write in writes:
        if type(write) is not dict:
            return None
        op = write.get("op")
        if type(op) is not str or op not in BATCH_KEYS or not write.keys() <= BATCH_KEYS[op]:
            return None
        given: dict[str, Any] = {"op": op}
        for name in BATCH_FIELDS[op]:
            value = write.get(name)
            if type(value) is not str:
                return None
            given[name] = value
        text = write.get("body")
        if type(text) is not dict:
            return None
        given["body"] = dict(text)  # as fields.Dict loads it: a copy
        if "if_match" in write:
            version = write["if_match"]
            if type(version) is not int or not 1 <= version <= IF_MATCH_MAX:
                return None
            given["if_match"] = version
        loaded.append(given)
    return {"writes": loaded}


def _batch_records(writes: list[Mapping[str, Any]]) -> Iterator[str]:
    """The records a batch registers or appends to, looked up all at once before its writes are checked."""
    for write in writes:
        if write["op"] == "append":
            yield write["id"]
        elif write["op"] == "register" and isinstance(write["body"].get("id"), str):
            yield write["body"]["id"]


def _in_batch(error: RegistryError, index: int) -> RegistryError:
    """The error of a batch's write, as the single call's, its errors keyed by the write's index."""
    errors = error.errors or {"detail": [error.detail]}
    return type(error)(f"write {index}: {error.detail}", {"writes": {str(index): errors}})
