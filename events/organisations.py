"""Organisations: agencies, ministries, unions of states."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from marshmallow import fields, validate

from events.catalogue import CATALOGUE, EventData, Fact, Ref, View
from events.parties import Party
from events.text import NOT_BLANK


def _initial(data: Mapping[str, Any]) -> View:
    return {"name": data["name"], "acronym": data.get("acronym"), "members": [], "successor": None}


@CATALOGUE.kind(
    "organisation",
    "organisations",
    statuses=("active", "succeeded", "dissolved"),
    initial=_initial,
)
class OrganisationRegistered(EventData):
    name = fields.String(required=True, validate=[NOT_BLANK, validate.Length(max=500)])
    acronym = fields.String(allow_none=True, validate=validate.Length(max=50))


@CATALOGUE.event("established", "organisation")
class OrganisationEstablished(EventData):
    @staticmethod
    def apply(view: View, fact: Fact) -> None:
        view["status"] = "active"


@CATALOGUE.event("renamed", "organisation")
class Renamed(EventData):
    name = fields.String(required=True, validate=[NOT_BLANK, validate.Length(max=500)])
    acronym = fields.String(allow_none=True, validate=validate.Length(max=50))

    @staticmethod
    def apply(view: View, fact: Fact) -> None:
        view["name"] = fact.data["name"]
        if "acronym" in fact.data:
            view["acronym"] = fact.data["acronym"]


@CATALOGUE.event("member_joined", "organisation")
class MemberJoined(EventData):
    party = Party(required=True)

    @staticmethod
    def apply(view: View, fact: Fact) -> None:
        if fact.data["party"] not in view["members"]:
            view["members"] = sorted([*view["members"], fact.data["party"]])


@CATALOGUE.event("member_left", "organisation")
class MemberLeft(EventData):
    party = Party(required=True)

    @staticmethod
    def apply(view: View, fact: Fact) -> None:
        view["members"] = [m for m in view["members"] if m != fact.data["party"]]


@CATALOGUE.event("succeeded", "organisation")
class Succeeded(EventData):
    successor = Ref("organisation", required=True)

    @staticmethod
    def apply(view: View, fact: Fact) -> None:
        view["status"] = "succeeded"
        view["successor"] = fact.data["successor"]


@CATALOGUE.event("dissolved", "organisation")
class OrganisationDissolved(EventData):
    @staticmethod
    def apply(view: View, fact: Fact) -> None:
        view["status"] = "dissolved"
