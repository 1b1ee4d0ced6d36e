"""Bodies, dialogues and channels: standing formats and the events they share."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from marshmallow import ValidationError, fields, validate, validates_schema

from events.catalogue import CATALOGUE, EventData, Fact, Ref, View
from events.parties import party_list
from events.text import NOT_BLANK

TITLE = [NOT_BLANK, validate.Length(max=500)]


def _body(data: Mapping[str, Any]) -> View:
    return {
        "title": data["title"],
        "parties": list(data.get("parties", [])),
        "established_by": data.get("established_by"),
        "established": None,
        "recommendations": [],
    }


def _dialogue(data: Mapping[str, Any]) -> View:
    return {
        "title": data["title"],
        "parties": list(data.get("parties", [])),
        "themes": list(data.get("themes", [])),
        "launched": None,
        "place": None,
    }


def _channel(data: Mapping[str, Any]) -> View:
    return {
        "title": data["title"],
        "parties": list(data["parties"]),
        "contacts_established": None,
        "arrangements": [],
    }


@CATALOGUE.kind("body", "bodies", statuses=("active", "suspended", "dissolved"), initial=_body)
class BodyRegistered(EventData):
    title = fields.String(required=True, validate=TITLE)
    parties = party_list(load_default=list)
    established_by = Ref("agreement", allow_none=True)


@CATALOGUE.kind("dialogue", "dialogues", statuses=("active", "suspended", "ended"), initial=_dialogue)
class DialogueRegistered(EventData):
    title = fields.String(required=True, validate=TITLE)
    parties = party_list(load_default=list)
    themes = fields.List(fields.String(), load_default=list)


@CATALOGUE.kind("channel", "channels", statuses=("active", "suspended", "ended"), initial=_channel)
class ChannelRegistered(EventData):
    title = fields.String(required=True, validate=TITLE)
    parties = fields.List(Ref("organisation"), required=True, validate=validate.Length(min=2))

    @validates_schema
    def distinct_parties(self, data: Mapping[str, Any], **_: Any) -> None:
        if len(set(data.get("parties", []))) < 2:
            raise ValidationError("a channel joins at least two distinct organisations", "parties")


@CATALOGUE.event("established", "body")
class BodyEstablished(EventData):
    @staticmethod
    def apply(view: View, fact: Fact) -> None:
        view["status"] = "active"
        view["established"] = fact.valid.text


@CATALOGUE.event("recommendation_adopted", "body")
class RecommendationAdopted(EventData):
    subject = fields.String(required=True, validate=NOT_BLANK)
    meeting = Ref("meeting", allow_none=True)

    @staticmethod
    def apply(view: View, fact: Fact) -> None:
        view["recommendations"] = [
            *view["recommendations"],
            {"subject": fact.data["subject"], "meeting": fact.data.get("meeting"), "valid": fact.valid.text},
        ]


@CATALOGUE.event("dissolved", "body")
class BodyDissolved(EventData):
    @staticmethod
    def apply(view: View, fact: Fact) -> None:
        view["status"] = "dissolved"


@CATALOGUE.event("launched", "dialogue")
class Launched(EventData):
    place = fields.String()
    themes = fields.List(fields.String())

    @staticmethod
    def apply(view: View, fact: Fact) -> None:
        view["status"] = "active"
        view["launched"] = fact.valid.text
        view["place"] = fact.data.get("place", view["place"])
        if fact.data.get("themes"):
            view["themes"] = list(fact.data["themes"])


@CATALOGUE.event("suspended", "body", "dialogue", "channel")
class Suspended(EventData):
    @staticmethod
    def apply(view: View, fact: Fact) -> None:
        view["status"] = "suspended"


@CATALOGUE.event("resumed", "body", "dialogue", "channel")
class Resumed(EventData):
    @staticmethod
    def apply(view: View, fact: Fact) -> None:
        view["status"] = "active"


@CATALOGUE.event("ended", "dialogue", "channel")
class Ended(EventData):
    @staticmethod
    def apply(view: View, fact: Fact) -> None:
        view["status"] = "ended"


@CATALOGUE.event("contacts_established", "channel")
class ContactsEstablished(EventData):
    @staticmethod
    def apply(view: View, fact: Fact) -> None:
        view["status"] = "active"
        view["contacts_established"] = fact.valid.text


@CATALOGUE.event("arrangement_signed", "channel")
class ArrangementSigned(EventData):
    title = fields.String(required=True, validate=TITLE)

    @staticmethod
    def apply(view: View, fact: Fact) -> None:
        view["arrangements"] = [*view["arrangements"], {"title": fact.data["title"], "valid": fact.valid.text}]
