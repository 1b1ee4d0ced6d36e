"""The catalogue: every kind and event type, declared once with its fields and effect.

A kind declares its collection, the fields of its `registered` event and the
view those fields start. A world event type declares its data fields (a
marshmallow schema) and `apply(view, fact)`, its effect on the record's view.
Adding an event type is one decorated class in the kind's module.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from events.parties import Party
from events.text import NOT_BLANK
from events.valid_time import InvalidValidTime, ValidTime

View = dict[str, Any]


class Fact(NamedTuple):
    """A world event as the fold reads it: corrections applied, valid time parsed (immutable)."""

    id: str
    type: str
    valid: ValidTime
    data: Mapping[str, Any]
    position: int

    @property
    def order(self) -> tuple[Any, ...]:
        """Valid order: lower bound, then upper bound, then position."""
        lower, upper, _ = self.valid.ordinals
        return (lower, 10**7 if upper is None else upper, self.position)


class EventData(Schema):
    """Base schema of an event's data; unknown fields are errors."""

    class Meta:
        unknown = RAISE

    @staticmethod
    def apply(view: View, fact: Fact) -> None:
        """The event's effect on the record's view (registrations have none).

        Set top-level values only: to add to a list, set a new list. The view it is given
        is a shallow copy of the previous one, whose lists and items it must leave as they are.
        """


class Ref(fields.String):
    """The id of another record, of one of `kinds`; existence is the registry's check."""

    def __init__(self, *kinds: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.kinds = kinds
        self.metadata = {"description": f"the id of a registered {' or '.join(kinds)}", **self.metadata}


@dataclass(frozen=True)
class EventType:
    name: str
    kind: str
    schema: type[EventData]

    def apply(self, view: View, fact: Fact) -> None:
        self.schema.apply(view, fact)


@dataclass(frozen=True)
class Kind:
    name: str
    collection: str
    registered: type[EventData]
    initial: Callable[[Mapping[str, Any]], View]
    statuses: tuple[str, ...]
    events: dict[str, EventType] = field(default_factory=dict)


class UnknownEventType(LookupError):
    pass


META_TYPES = ("registered", "corrected", "retracted")


class Catalogue:
    def __init__(self) -> None:
        self.kinds: dict[str, Kind] = {}

    def kind(
        self,
        name: str,
        collection: str,
        statuses: tuple[str, ...],
        initial: Callable[[Mapping[str, Any]], View],
    ) -> Callable[[type[EventData]], type[EventData]]:
        """Declare a kind by decorating the schema of its `registered` event."""

        def declare(schema: type[EventData]) -> type[EventData]:
            self.kinds[name] = Kind(name, collection, schema, initial, statuses)
            return schema

        return declare

    def event(self, name: str, *kinds: str) -> Callable[[type[EventData]], type[EventData]]:
        """Declare a world event type for one or more kinds."""

        def declare(schema: type[EventData]) -> type[EventData]:
            for kind in kinds:
                self.kinds[kind].events[name] = EventType(name, kind, schema)
            return schema

        return declare

    def by_collection(self, collection: str) -> Kind | None:
        return next((k for k in self.kinds.values() if k.collection == collection), None)

    def event_type(self, kind: str, name: str) -> EventType:
        try:
            return self.kinds[kind].events[name]
        except KeyError:
            allowed = ", ".join(sorted(self.kinds[kind].events)) if kind in self.kinds else ""
            raise UnknownEventType(
                f"{name!r} is not an event type of the {kind} kind; allowed: {allowed}"
            ) from None

    def all_type_names(self) -> set[str]:
        names = set(META_TYPES)
        for kind in self.kinds.values():
            names.update(kind.events)
        return names

    def __iter__(self) -> Iterator[Kind]:
        return iter(self.kinds.values())


CATALOGUE = Catalogue()


class ValidField(fields.String):
    """An EDTF valid time; deserialises to its normalised text."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.metadata = {"description": "EDTF (levels 0 and 1), e.g. 2006, 2011-05, 2018-04-04/2018-04-05, 2020-07/..",
                         "example": "2019-10", **self.metadata}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        try:
            return ValidTime.parse(value).text
        except InvalidValidTime as error:
            raise ValidationError(str(error)) from error


class SourceSchema(Schema):
    class Meta:
        unknown = RAISE

    title = fields.String(required=True, validate=NOT_BLANK)
    url = fields.Url(load_default=None, allow_none=True)
    quote = fields.String(load_default=None, allow_none=True)


class EnvelopeInput(Schema):
    """The common part of every appended event: type, valid time, sources, note."""

    class Meta:
        unknown = RAISE

    type = fields.String(required=True)
    valid = ValidField(required=True)
    sources = fields.List(fields.Nested(SourceSchema), load_default=list)
    note = fields.String(load_default=None, allow_none=True)


class CorrectionInput(Schema):
    class Meta:
        unknown = RAISE

    changes = fields.Dict(keys=fields.String(), required=True)
    reason = fields.String(required=True, validate=NOT_BLANK)
    sources = fields.List(fields.Nested(SourceSchema), load_default=list)
    note = fields.String(load_default=None, allow_none=True)

    @validates_schema
    def changes_not_empty(self, data: Mapping[str, Any], **_: Any) -> None:
        if not data.get("changes"):
            raise ValidationError("a correction must change at least one field", "changes")


class RetractionInput(Schema):
    class Meta:
        unknown = RAISE

    reason = fields.String(required=True, validate=NOT_BLANK)
    sources = fields.List(fields.Nested(SourceSchema), load_default=list)
    note = fields.String(load_default=None, allow_none=True)


BATCH_LIMIT = 1000
BATCH_FIELDS = {"register": ("collection",), "append": ("collection", "id"), "correct": ("event",),
                "retract": ("event",)}


class BatchWrite(Schema):
    """One write of a batch: `body` is what the single call would take."""

    class Meta:
        unknown = RAISE

    op = fields.String(required=True, validate=validate.OneOf(sorted(BATCH_FIELDS)))
    collection = fields.String(metadata={"description": "register, append: the collection"})
    id = fields.String(metadata={"description": "append: the record's id"})
    event = fields.String(metadata={"description": "correct, retract: the target event's id"})
    body = fields.Dict(required=True)
    if_match = fields.Integer(strict=True, validate=validate.Range(min=1, max=2**62),
                              metadata={"description": "append: the record's version, as If-Match"})

    @validates_schema
    def fields_of_op(self, data: Mapping[str, Any], **_: Any) -> None:
        needed = BATCH_FIELDS.get(data.get("op", ""), ())
        missing = {name: ["required by this op"] for name in needed if name not in data}
        extra = {name: ["not taken by this op"] for name in ("collection", "id", "event", "if_match")
                 if name in data and name not in needed and not (name == "if_match" and data["op"] == "append")}
        if missing or extra:
            raise ValidationError({**missing, **extra})


class BatchInput(Schema):
    """`POST /v1/batch`: writes stored all together, in order, or not at all."""

    class Meta:
        unknown = RAISE

    writes = fields.List(fields.Nested(BatchWrite), required=True,
                         validate=validate.Length(min=1, max=BATCH_LIMIT))


def references(schema: type[EventData], data: Mapping[str, Any]) -> Iterator[tuple[str, str, tuple[str, ...]]]:
    """(field, record id, allowed kinds) for every record id the data refers to."""
    for name, declared in schema._declared_fields.items():
        value = data.get(name)
        if value is None:
            continue
        inner = declared.inner if isinstance(declared, fields.List) else declared
        values = value if isinstance(declared, fields.List) else [value]
        for item in values:
            if isinstance(inner, Ref):
                yield name, item, inner.kinds
            elif isinstance(inner, Party) and not (len(item) == 2 and item.isupper()):
                yield name, item, ("organisation",)
