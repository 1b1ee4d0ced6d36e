"""The registry's vocabulary: kinds, event types, valid time and party codes."""

from events import agreements, meetings, organisations, standing  # noqa: F401  (declarations)
from events.catalogue import (
    CATALOGUE,
    META_TYPES,
    BatchInput,
    CorrectionInput,
    EnvelopeInput,
    EventData,
    EventType,
    Fact,
    Kind,
    RetractionInput,
    UnknownEventType,
    View,
    references,
)
from events.meetings import meeting_status
from events.parties import normalise_party
from events.valid_time import InvalidValidTime, ValidTime, parse_day, parse_instant

__all__ = [
    "CATALOGUE",
    "META_TYPES",
    "BatchInput",
    "CorrectionInput",
    "EnvelopeInput",
    "EventData",
    "EventType",
    "Fact",
    "InvalidValidTime",
    "Kind",
    "RetractionInput",
    "UnknownEventType",
    "ValidTime",
    "View",
    "meeting_status",
    "normalise_party",
    "parse_day",
    "parse_instant",
    "references",
]
