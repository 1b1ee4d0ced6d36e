"""Query parameters, request bodies as the OpenAPI document shows them, and the shapes of answers.

Request bodies have no schema of their own here: the document shows the very
schemas that validate them (the catalogue in events/, the subscription body in
registry/), composed per kind and per event type by `registration()` and
`event_types()`. Answers, which nothing validates, have their shapes here."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from apispec.ext.marshmallow import resolver
from marshmallow import INCLUDE, RAISE, Schema, ValidationError, fields, validate

from events import (
    CATALOGUE,
    META_TYPES,
    EnvelopeInput,
    EventData,
    Kind,
    parse_day,
    parse_instant,
)
from events.catalogue import SourceSchema
from events.ids import RECORD_ID_PATTERN, is_record_id


class Day(fields.String):
    """A calendar day, `YYYY-MM-DD`."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.metadata = {"format": "date", **self.metadata}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        try:
            return parse_day(value)
        except ValueError as error:
            raise ValidationError(str(error)) from error


class Instant(fields.String):
    """An RFC 3339 instant with a time zone."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.metadata = {"format": "date-time", **self.metadata}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        try:
            return parse_instant(value)
        except ValueError as error:
            raise ValidationError(str(error)) from error


class Cursor(fields.String):
    """An opaque page cursor."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        try:
            record_id = base64.urlsafe_b64decode(value.encode() + b"==").decode()
        except (binascii.Error, UnicodeDecodeError, AttributeError, ValueError) as error:
            raise ValidationError("not a cursor this API gave out") from error
        if not is_record_id(record_id):
            raise ValidationError("not a cursor this API gave out")
        return record_id


def encode_cursor(record_id: str) -> str:
    return base64.urlsafe_b64encode(record_id.encode()).decode().rstrip("=")


class SearchCursor(fields.String):
    """An opaque page cursor of a search: the (group, id) of the last item given."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        try:
            group, _, record_id = base64.urlsafe_b64decode(value.encode() + b"==").decode().partition(":")
        except (binascii.Error, UnicodeDecodeError, AttributeError, ValueError) as error:
            raise ValidationError("not a cursor this API gave out") from error
        if group not in ("0", "1") or not is_record_id(record_id):
            raise ValidationError("not a cursor this API gave out")
        return (int(group), record_id)


def encode_search_cursor(key: tuple[int, str]) -> str:
    return encode_cursor(f"{key[0]}:{key[1]}")


class Query(Schema):
    class Meta:
        unknown = RAISE


class PointQuery(Query):
    as_of = Day(metadata={"description": "valid time: a day YYYY-MM-DD (default today, UTC)"})
    known_at = Instant(metadata={"description": "system time: an RFC 3339 instant (default now)"})


def format_field() -> fields.String:
    return fields.String(validate=validate.OneOf(["json", "csv"]),
                         metadata={"description": "csv: the items as CSV (as with Accept: text/csv)"})


class ListQuery(PointQuery):
    format = format_field()
    status = fields.String(validate=validate.Length(max=50))
    party = fields.String(validate=validate.Length(max=80),
                          metadata={"description": "ISO 3166-1 alpha-2 code (any case) or organisation id"})
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=1000))
    cursor = Cursor()


MAX_POSITION = 2**63 - 1
TYPES = sorted(CATALOGUE.all_type_names())
KINDS = sorted(CATALOGUE.kinds)
SLUG = validate.Regexp(RECORD_ID_PATTERN, error="not a record id")


class ChangesQuery(PointQuery):
    as_of = Day(metadata={"description": "the day two instants are compared as of (default today); not with from/to"})
    known_at = Instant(metadata={"description": "the instant two days are compared as known at (default now);"
                                                " not with known_from/known_to"})
    from_ = Day(data_key="from", metadata={"description": "first day (with to)"})
    to = Day(metadata={"description": "second day (with from)"})
    known_from = Instant(metadata={"description": "first instant (with known_to)"})
    known_to = Instant(metadata={"description": "second instant (with known_from)"})
    kind = fields.String(validate=validate.OneOf(sorted(CATALOGUE.kinds)))
    party = fields.String(validate=validate.Length(max=80),
                          metadata={"description": "ISO 3166-1 alpha-2 code (any case) or organisation id"})
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=1000))
    cursor = Cursor()
    format = format_field()


class SearchQuery(PointQuery):
    q = fields.String(required=True, validate=validate.Length(max=500), metadata={"description": "the words"})
    kind = fields.String(validate=validate.OneOf(sorted(CATALOGUE.kinds)))
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=1000))
    cursor = SearchCursor()
    format = format_field()


class LogQuery(Query):
    after = fields.Integer(load_default=0, validate=validate.Range(min=0, max=MAX_POSITION),
                           metadata={"description": "the last position you have; 0 for the start"})
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=1000))
    type = fields.String(validate=validate.OneOf(TYPES))
    kind = fields.String(validate=validate.OneOf(KINDS))
    record = fields.String(validate=SLUG)
    format = format_field()


class TimelineCursor(fields.String):
    """An opaque timeline cursor: where the last page ended in valid order."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        try:
            parts = base64.urlsafe_b64decode(value.encode() + b"==").decode().split(".")
            lower, upper, position = (int(part) for part in parts)
        except (binascii.Error, UnicodeDecodeError, AttributeError, ValueError) as error:
            raise ValidationError("not a cursor this API gave out") from error
        if not all(0 <= number <= MAX_POSITION for number in (lower, upper, position)):
            raise ValidationError("not a cursor this API gave out")
        return lower, upper, position


def encode_timeline_cursor(after: tuple[int, int, int]) -> str:
    return base64.urlsafe_b64encode(".".join(str(n) for n in after).encode()).decode().rstrip("=")


class TimelineQuery(Query):
    from_ = Day(data_key="from")
    to = Day()
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=1000))
    cursor = TimelineCursor()
    type = fields.String(validate=validate.OneOf(TYPES))
    kind = fields.String(validate=validate.OneOf(KINDS))
    record = fields.String(validate=SLUG)
    format = format_field()


# Request bodies: the validating schemas, composed

COMMON = {name: EnvelopeInput._declared_fields[name] for name in ("sources", "note")}


def registration(kind: Kind) -> type[Schema]:
    """A `POST /v1/{collection}` body: `id`, the kind's registered fields, `sources`, `note`."""
    record_id = fields.String(required=True, validate=SLUG, metadata={"description": "the new record's id, a slug"})
    name = f"{kind.name.title()}Registration"
    return type(name, (kind.registered,), {"id": record_id, **COMMON, "__doc__": kind.registered.__doc__})


def world_event(name: str, schema: type[EventData]) -> type[Schema]:
    """An appended event of one type: `type`, `valid`, the type's fields, `sources`, `note`."""
    declared = {
        "type": fields.String(required=True, validate=validate.OneOf([name])),
        "valid": EnvelopeInput._declared_fields["valid"],
        **COMMON,
    }
    return type(f"{schema.__name__}Event", (schema,), {**declared, "__doc__": f"A `{name}` event."})


REGISTRATIONS: dict[str, type[Schema]] = {kind.name: registration(kind) for kind in CATALOGUE}
_EVENT_SCHEMAS: dict[type[EventData], type[Schema]] = {}
for _kind in CATALOGUE:
    for _type in _kind.events.values():
        if _type.schema not in _EVENT_SCHEMAS:
            _EVENT_SCHEMAS[_type.schema] = world_event(_type.name, _type.schema)
WORLD_EVENTS: dict[str, dict[str, type[Schema]]] = {
    kind.name: {t.name: _EVENT_SCHEMAS[t.schema] for t in kind.events.values()} for kind in CATALOGUE
}


def event_types(kind: str) -> dict[str, Any]:
    """The body of an append to a record of `kind`: one schema per event type, chosen by `type`."""
    members = WORLD_EVENTS[kind]
    return {
        "oneOf": list(members.values()),
        "discriminator": {
            "propertyName": "type",
            "mapping": {name: f"#/components/schemas/{resolver(schema)}" for name, schema in members.items()},
        },
    }


def body(schema: Any) -> dict[str, Any]:
    """A required JSON request body."""
    return {"required": True, "content": {"application/json": {"schema": schema}}}


# Answers

class Answer(Schema):
    class Meta:
        unknown = RAISE


class Problem(Answer):
    """An RFC 9457 problem: every error the API gives."""

    type = fields.String(required=True)
    title = fields.String(required=True)
    status = fields.Integer(required=True)
    detail = fields.String(required=True)
    errors = fields.Dict(metadata={"description": "the offending fields (or headers, parameters), by name"})


class Envelope(Answer):
    """One stored event."""

    id = fields.UUID(required=True)
    position = fields.Integer(required=True, metadata={"description": "its place in the global log"})
    record = fields.String(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(KINDS))
    version = fields.Integer(required=True, metadata={"description": "its number within its record"})
    type = fields.String(required=True, validate=validate.OneOf(TYPES))
    valid = fields.String(required=True, allow_none=True, metadata={"description": "EDTF; null for "
                                                                    + ", ".join(META_TYPES)})
    valid_lower = fields.String(required=True, allow_none=True)
    valid_upper = fields.String(required=True, allow_none=True)
    recorded_at = fields.String(required=True)
    data = fields.Dict(required=True)
    sources = fields.List(fields.Nested(SourceSchema), required=True)
    note = fields.String(required=True, allow_none=True)
    actor = fields.String(required=True)
    hash = fields.String(required=True)
    prev_hash = fields.String(required=True)


STATES = ("current", "corrected", "retracted")


class HistoryEntry(Envelope):
    state = fields.String(required=True, validate=validate.OneOf(STATES))
    certainty = fields.String(required=True, allow_none=True,
                              validate=validate.OneOf(("certain", "uncertain", "not_yet")))
    corrections = fields.List(fields.UUID(), metadata={"description": "the ids of the corrections"})
    retracted_by = fields.UUID()
    effective = fields.Dict(metadata={"description": "valid time and data with the corrections applied"})


class TimelineEntry(Envelope):
    state = fields.String(required=True, validate=validate.OneOf(STATES))
    effective = fields.Dict(metadata={"description": "valid time and data with the corrections applied"})


class RecordView(Schema):
    """A record as of a day, as known at an instant; the other fields are its kind's."""

    class Meta:
        unknown = INCLUDE

    id = fields.String(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(KINDS))
    status = fields.String(required=True, allow_none=True)
    version = fields.Integer(required=True)
    as_of = fields.String(required=True)
    known_at = fields.String(required=True)
    uncertain = fields.List(fields.String(), required=True, metadata={"description": "ids of uncertain events"})


class RecordPage(Answer):
    items = fields.List(fields.Nested(RecordView), required=True)
    next = fields.String(required=True, allow_none=True, metadata={"description": "the next page's cursor"})
    as_of = fields.String(required=True)
    known_at = fields.String(required=True)


class History(Answer):
    items = fields.List(fields.Nested(HistoryEntry), required=True)
    as_of = fields.String(required=True)
    known_at = fields.String(required=True)


class Snapshot(Answer):
    as_of = fields.String(required=True)
    known_at = fields.String(required=True)
    position = fields.Integer(required=True)
    records = fields.Dict(keys=fields.String(validate=validate.OneOf([k.collection for k in CATALOGUE])),
                          values=fields.List(fields.Nested(RecordView)), required=True)


class Timeline(Answer):
    items = fields.List(fields.Nested(TimelineEntry), required=True)
    next = fields.String(required=True, allow_none=True, metadata={"description": "the next page's cursor"})


class Change(Answer):
    id = fields.String(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(KINDS))
    before = fields.Nested(RecordView, required=True, allow_none=True)
    after = fields.Nested(RecordView, required=True, allow_none=True)
    changed = fields.List(fields.String(), required=True, metadata={"description": "names of changed fields"})
    events = fields.List(fields.String(), required=True, metadata={"description": "ids of the events behind it"})


class Changes(Answer):
    class Meta:
        unknown = INCLUDE  # the points compared

    items = fields.List(fields.Nested(Change), required=True)
    next = fields.String(required=True, allow_none=True, metadata={"description": "the next page's cursor"})


class SearchHit(Answer):
    id = fields.String(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(KINDS))
    title = fields.String(required=True, allow_none=True)
    status = fields.String(required=True, allow_none=True)
    matched = fields.List(fields.String(), required=True, metadata={"description": "title, note, source"})
    snippet = fields.String(required=True)


class SearchPage(Answer):
    class Meta:
        unknown = INCLUDE

    items = fields.List(fields.Nested(SearchHit), required=True)
    next = fields.String(required=True, allow_none=True, metadata={"description": "the next page's cursor"})


class BatchResult(Answer):
    items = fields.List(fields.Dict(), required=True,
                        metadata={"description": "each write's result as its single call gives it: a record's "
                                                 "view for a registration, the event's envelope otherwise"})


class EventPage(Answer):
    items = fields.List(fields.Nested(Envelope), required=True)
    next = fields.Integer(required=True, metadata={"description": "pass it back as `after`"})
    last_position = fields.Integer(required=True)


class Head(Answer):
    position = fields.Integer(required=True)
    hash = fields.String(required=True)
    recorded_at = fields.String(required=True, allow_none=True)


class Subscription(Answer):
    """A webhook subscription as its owner sees it."""

    id = fields.UUID(required=True)
    url = fields.String(required=True)
    types = fields.List(fields.String(), required=True)
    kinds = fields.List(fields.String(), required=True)
    records = fields.List(fields.String(), required=True)
    status = fields.String(required=True)
    position = fields.Integer(required=True)
    failures = fields.Integer(required=True)
    delivered = fields.Integer(required=True)
    last_error = fields.String(required=True, allow_none=True)
    last_error_at = fields.String(required=True, allow_none=True)
    last_delivered_at = fields.String(required=True, allow_none=True)
    next_attempt_at = fields.String(required=True, allow_none=True)
    created_at = fields.String(required=True)
    created_by = fields.String(required=True)
    ended_at = fields.String(required=True, allow_none=True)


class NewSubscription(Subscription):
    secret = fields.String(required=True, metadata={"description": "the signing secret, shown only here"})


class Subscriptions(Answer):
    items = fields.List(fields.Nested(Subscription), required=True)


class BadPosition(Answer):
    position = fields.Integer(required=True)
    reason = fields.String(required=True)


class Verification(Answer):
    ok = fields.Boolean(required=True)
    checked = fields.Integer(required=True, metadata={"description": "how many events were checked"})
    head = fields.Nested(Head, required=True)
    first_bad = fields.Nested(BadPosition, required=True, allow_none=True)
    projections = fields.String(required=True, validate=validate.OneOf(("verified", "skipped")),
                                metadata={"description": "whether replaying the log reproduced the views"})


class Health(Answer):
    status = fields.String(required=True, validate=validate.OneOf(("ok",)))


class Readiness(Answer):
    status = fields.String(required=True, validate=validate.OneOf(("ready",)))
    log_position = fields.Integer(required=True)
    projected_position = fields.Integer(required=True)
    lag = fields.Integer(required=True)
