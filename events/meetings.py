"""Meetings and sessions of bodies and dialogues."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from marshmallow import fields, validate

from events.catalogue import CATALOGUE, EventData, Fact, Ref, ValidField, View
from events.text import NOT_BLANK
from events.valid_time import ValidTime


def _initial(data: Mapping[str, Any]) -> View:
    return {
        "title": data["title"],
        "series": data["series"],
        "ordinal": data.get("ordinal"),
        "format": data.get("format"),
        "planned": None,
        "held": None,
        "place": None,
        "topics": [],
    }


@CATALOGUE.kind(
    "meeting",
    "meetings",
    statuses=("scheduled", "overdue", "in_progress", "held", "cancelled"),
    initial=_initial,
)
class MeetingRegistered(EventData):
    title = fields.String(required=True, validate=[NOT_BLANK, validate.Length(max=500)])
    series = Ref("body", "dialogue", required=True)
    ordinal = fields.Integer(strict=True, allow_none=True, validate=validate.Range(min=1, max=1_000_000))
    format = fields.String(allow_none=True)


@CATALOGUE.event("scheduled", "meeting")
class Scheduled(EventData):
    planned = ValidField(required=True)
    place = fields.String()

    @staticmethod
    def apply(view: View, fact: Fact) -> None:
        view["status"] = "scheduled"
        view["planned"] = fact.data["planned"]
        view["place"] = fact.data.get("place", view["place"])


@CATALOGUE.event("rescheduled", "meeting")
class Rescheduled(EventData):
    planned = ValidField(required=True)
    place = fields.String()

    @staticmethod
    def apply(view: View, fact: Fact) -> None:
        view["planned"] = fact.data["planned"]
        view["place"] = fact.data.get("place", view["place"])


@CATALOGUE.event("held", "meeting")
class Held(EventData):
    place = fields.String()
    topics = fields.List(fields.String())

    @staticmethod
    def apply(view: View, fact: Fact) -> None:
        view["status"] = "held"
        view["held"] = fact.valid.text
        view["place"] = fact.data.get("place", view["place"])
        view["topics"] = list(fact.data.get("topics", view["topics"]))


@CATALOGUE.event("cancelled", "meeting")
class Cancelled(EventData):
    reason = fields.String()

    @staticmethod
    def apply(view: View, fact: Fact) -> None:
        view["status"] = "cancelled"


def meeting_status(view: View, as_of: dt.date) -> str | None:
    """The status as of a day: `in_progress` inside a held interval, `overdue` past a plan."""
    status = view.get("status")
    if status == "held" and view.get("held"):
        held = ValidTime.stored(view["held"])
        if held.is_interval and (held.upper is None or as_of <= held.upper):
            return "in_progress"
    if status == "scheduled" and view.get("planned"):
        planned = ValidTime.stored(view["planned"])
        if planned.upper is not None and planned.upper < as_of:
            return "overdue"
    return status
