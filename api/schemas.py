"""Query parameters and documented shapes of the API."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate

from events import CATALOGUE, parse_day, parse_instant
from events.ids import RECORD_ID_PATTERN, is_record_id


class Day(fields.Field):
    """A calendar day, `YYYY-MM-DD`."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        try:
            return parse_day(value)
        except ValueError as error:
            raise ValidationError(str(error)) from error


class Instant(fields.Field):
    """An RFC 3339 instant with a time zone."""

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


class TimelineQuery(Query):
    from_ = Day(data_key="from")
    to = Day()
    type = fields.String(validate=validate.OneOf(TYPES))
    kind = fields.String(validate=validate.OneOf(KINDS))
    record = fields.String(validate=SLUG)
    format = format_field()


class Source(Schema):
    title = fields.String(required=True)
    url = fields.Url()
    quote = fields.String()


class Envelope(Schema):
    """One stored event."""

    id = fields.UUID()
    position = fields.Integer()
    record = fields.String()
    kind = fields.String(validate=validate.OneOf(KINDS))
    version = fields.Integer()
    type = fields.String(validate=validate.OneOf(TYPES))
    valid = fields.String(allow_none=True, metadata={"description": "EDTF"})
    valid_lower = fields.String(allow_none=True)
    valid_upper = fields.String(allow_none=True)
    recorded_at = fields.String()
    data = fields.Dict()
    sources = fields.List(fields.Nested(Source))
    note = fields.String(allow_none=True)
    actor = fields.String()
    hash = fields.String()
    prev_hash = fields.String()


class EventInput(Schema):
    """A world event: `type`, `valid` (EDTF), the type's fields, `sources`, `note`."""

    type = fields.String(required=True, validate=validate.OneOf(TYPES))
    valid = fields.String(required=True, metadata={"description": "EDTF, e.g. 2006, 2011-05, 2018-04-04/2018-04-05"})
    sources = fields.List(fields.Nested(Source))
    note = fields.String()


class CorrectionBody(Schema):
    changes = fields.Dict(required=True)
    reason = fields.String(required=True)
    sources = fields.List(fields.Nested(Source))


class RetractionBody(Schema):
    reason = fields.String(required=True)
    sources = fields.List(fields.Nested(Source))


class Problem(Schema):
    type = fields.String()
    title = fields.String()
    status = fields.Integer()
    detail = fields.String()
    errors = fields.Dict()
