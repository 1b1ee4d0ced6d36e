"""Agreements, implementing protocols and working arrangements."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from marshmallow import fields, validate

from events.catalogue import CATALOGUE, EventData, Fact, Ref, View
from events.parties import Party, party_list
from events.text import NOT_BLANK

AGREEMENT_TYPES = ("agreement", "implementing_protocol", "working_arrangement", "memorandum", "other")


def _initial(data: Mapping[str, Any]) -> View:
    return {
        "title": data["title"],
        "short_title": data.get("short_title"),
        "agreement_type": data.get("agreement_type", "agreement"),
        "parties": list(data.get("parties", [])),
        "parent": data.get("parent"),
        "signed": None,
        "entered_into_force": None,
        "scope": [],
        "conclusions": [],
        "suspensions": [],
        "applies_to_changes": [],
    }


@CATALOGUE.kind(
    "agreement",
    "agreements",
    statuses=("signed", "in_force", "suspended", "terminated"),
    initial=_initial,
)
class AgreementRegistered(EventData):
    title = fields.String(required=True, validate=[NOT_BLANK, validate.Length(max=500)])
    short_title = fields.String(allow_none=True, validate=validate.Length(max=200))
    agreement_type = fields.String(load_default="agreement", validate=validate.OneOf(AGREEMENT_TYPES))
    parties = party_list(load_default=list)
    parent = Ref("agreement", allow_none=True)


@CATALOGUE.event("signed", "agreement")
class Signed(EventData):
    place = fields.String()
    signatories = fields.List(fields.String())

    @staticmethod
    def apply(view: View, fact: Fact) -> None:
        view["status"] = "signed"
        view["signed"] = fact.valid.text


@CATALOGUE.event("concluded", "agreement")
class Concluded(EventData):
    party = Party(required=True)
    act = fields.String()

    @staticmethod
    def apply(view: View, fact: Fact) -> None:
        view["conclusions"] = [
            *view["conclusions"], {"party": fact.data["party"], "act": fact.data.get("act"), "valid": fact.valid.text}
        ]


@CATALOGUE.event("entered_into_force", "agreement")
class EnteredIntoForce(EventData):
    @staticmethod
    def apply(view: View, fact: Fact) -> None:
        view["status"] = "in_force"
        view["entered_into_force"] = fact.valid.text


@CATALOGUE.event("scope_extended", "agreement")
class ScopeExtended(EventData):
    scope = fields.String(required=True, validate=NOT_BLANK)
    articles = fields.List(fields.String())

    @staticmethod
    def apply(view: View, fact: Fact) -> None:
        view["scope"] = [
            *view["scope"],
            {"scope": fact.data["scope"], "articles": fact.data.get("articles", []), "valid": fact.valid.text},
        ]


@CATALOGUE.event("territorial_application_changed", "agreement")
class TerritorialApplicationChanged(EventData):
    party = Party(required=True)
    change = fields.String(required=True, validate=validate.OneOf(("joined", "left", "opted_in", "not_bound")))

    @staticmethod
    def apply(view: View, fact: Fact) -> None:
        party = fact.data["party"]
        changes = [c for c in view["applies_to_changes"] if c["party"] != party]
        changes.append({"party": party, "change": fact.data["change"], "valid": fact.valid.text})
        view["applies_to_changes"] = changes


@CATALOGUE.event("suspended", "agreement")
class AgreementSuspended(EventData):
    extent = fields.String(required=True, validate=validate.OneOf(("whole", "partial")))
    provisions = fields.List(fields.String())

    @staticmethod
    def apply(view: View, fact: Fact) -> None:
        if fact.data["extent"] == "whole":
            view["status"] = "suspended"
        else:
            view["suspensions"] = [
                *view["suspensions"], {"provisions": fact.data.get("provisions", []), "valid": fact.valid.text}
            ]


@CATALOGUE.event("suspension_lifted", "agreement")
class SuspensionLifted(EventData):
    @staticmethod
    def apply(view: View, fact: Fact) -> None:
        view["suspensions"] = []
        view["status"] = "in_force"


@CATALOGUE.event("terminated", "agreement")
class Terminated(EventData):
    @staticmethod
    def apply(view: View, fact: Fact) -> None:
        view["status"] = "terminated"
