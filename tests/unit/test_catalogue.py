"""The event catalogue: kinds, event types, their schemas and their effect on a record's view."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

import pytest
from marshmallow import ValidationError

from events import CATALOGUE, META_TYPES, Fact, UnknownEventType, ValidTime, View, meeting_status, normalise_party

SPEC_KINDS = {
    "agreement": "agreements",
    "body": "bodies",
    "dialogue": "dialogues",
    "meeting": "meetings",
    "organisation": "organisations",
    "channel": "channels",
}

SPEC_EVENT_TYPES = {
    "agreement": {"signed", "concluded", "entered_into_force", "scope_extended", "territorial_application_changed",
                  "suspended", "suspension_lifted", "terminated"},
    "body": {"established", "recommendation_adopted", "suspended", "resumed", "dissolved"},
    "dialogue": {"launched", "suspended", "resumed", "ended"},
    "meeting": {"scheduled", "rescheduled", "held", "cancelled"},
    "organisation": {"established", "renamed", "member_joined", "member_left", "succeeded", "dissolved"},
    "channel": {"contacts_established", "arrangement_signed", "suspended", "resumed", "ended"},
}

READMISSION = {"title": "Agreement on Readmission", "short_title": "Readmission Agreement", "parties": ["RU", "eu"]}
JOINT_COMMITTEE_17 = {"title": "17th meeting of the Russia-EU Joint Committee on readmission",
                      "series": "ru-eu-readmission-joint-committee", "ordinal": 17}
FRONTEX = {"name": "European Agency for the Management of Operational Cooperation at the External Borders "
                   "of the Member States of the European Union", "acronym": "FRONTEX"}


def register(kind: str, body: dict[str, Any]) -> View:
    """The view a record starts with: the registration loaded by its schema, status null."""
    registered = CATALOGUE.kinds[kind].registered().load(body)
    return {"status": None, **CATALOGUE.kinds[kind].initial(registered)}


def apply(kind: str, view: View, type_name: str, valid: str, position: int, **data: Any) -> View:
    """Load the event's data with its schema and apply its effect, as the fold does."""
    event_type = CATALOGUE.event_type(kind, type_name)
    loaded = event_type.schema().load(data)
    event_type.apply(view, Fact(f"event-{position}", type_name, ValidTime.parse(valid), loaded, position))
    return view


# The declarations.


def test_every_kind_of_the_spec_is_declared_with_its_collection() -> None:
    assert {kind.name: kind.collection for kind in CATALOGUE} == SPEC_KINDS
    assert CATALOGUE.by_collection("bodies") is CATALOGUE.kinds["body"]
    assert CATALOGUE.by_collection("treaties") is None


@pytest.mark.parametrize("kind", sorted(SPEC_EVENT_TYPES))
def test_every_event_type_of_the_spec_belongs_to_the_right_kinds(kind: str) -> None:
    assert set(CATALOGUE.kinds[kind].events) == SPEC_EVENT_TYPES[kind]


def test_all_type_names_include_the_meta_types() -> None:
    names = CATALOGUE.all_type_names()
    assert set(META_TYPES) == {"registered", "corrected", "retracted"}
    assert names == set(META_TYPES).union(*SPEC_EVENT_TYPES.values())


def test_a_meeting_cannot_be_signed() -> None:
    with pytest.raises(UnknownEventType, match="'signed'") as raised:
        CATALOGUE.event_type("meeting", "signed")
    # The message lists what a meeting allows.
    assert "cancelled, held, rescheduled, scheduled" in str(raised.value)


def test_suspension_is_shared_by_standing_formats_but_agreements_have_their_own() -> None:
    shared = {CATALOGUE.event_type(kind, "suspended").schema for kind in ("body", "dialogue", "channel")}
    assert len(shared) == 1
    assert CATALOGUE.event_type("agreement", "suspended").schema not in shared


# Registered schemas.


def test_an_agreement_registration_defaults_its_type_and_normalises_parties() -> None:
    loaded = CATALOGUE.kinds["agreement"].registered().load({"title": "Agreement on Readmission",
                                                             "parties": ["RU", "UK", "EL", "eu"]})
    assert loaded == {"title": "Agreement on Readmission", "agreement_type": "agreement",
                      "parties": ["RU", "GB", "GR", "eu"]}


@pytest.mark.parametrize(
    ("kind", "body", "field"),
    [
        ("agreement", {"short_title": "Readmission Agreement"}, "title"),
        ("body", {"parties": ["RU", "eu"]}, "title"),
        ("dialogue", {"themes": ["asylum"]}, "title"),
        ("meeting", {"title": "17th meeting"}, "series"),
        ("organisation", {"acronym": "FRONTEX"}, "name"),
        ("channel", {"title": "Contacts between the FSB Border Guard Service and FRONTEX"}, "parties"),
    ],
)
def test_registrations_require_their_bold_fields(kind: str, body: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as raised:
        CATALOGUE.kinds[kind].registered().load(body)
    assert field in raised.value.messages


def test_registrations_reject_unknown_fields() -> None:
    with pytest.raises(ValidationError) as raised:
        CATALOGUE.kinds["organisation"].registered().load({**FRONTEX, "headquarters": "Warsaw"})
    assert raised.value.messages == {"headquarters": ["Unknown field."]}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"title": "Agreement on Readmission", "agreement_type": "treaty"}, "agreement_type"),
        ({"title": "Agreement on Readmission", "parties": ["RU", "XX"]}, "parties"),
        ({"title": "Agreement on Readmission", "parties": ["RU", "Eu"]}, "parties"),
        ({"title": ""}, "title"),
    ],
)
def test_agreement_registration_rejects_bad_values(body: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as raised:
        CATALOGUE.kinds["agreement"].registered().load(body)
    assert field in raised.value.messages


def test_a_meeting_ordinal_is_a_positive_integer() -> None:
    schema = CATALOGUE.kinds["meeting"].registered()
    assert schema.load(JOINT_COMMITTEE_17)["ordinal"] == 17
    for ordinal in (0, "17", 17.5, 10**20):  # a number beyond any series (and beyond 64 bits) is refused
        with pytest.raises(ValidationError):
            schema.load({**JOINT_COMMITTEE_17, "ordinal": ordinal})


def test_a_channel_joins_at_least_two_organisations() -> None:
    schema = CATALOGUE.kinds["channel"].registered()
    title = "Contacts between the FSB Border Guard Service and FRONTEX"
    assert schema.load({"title": title, "parties": ["fsb-border-guard-service", "frontex"]})["parties"] == [
        "fsb-border-guard-service", "frontex"]
    with pytest.raises(ValidationError):
        schema.load({"title": title, "parties": ["frontex"]})


def test_event_schemas_require_fields_and_reject_unknown_ones() -> None:
    scope_extended = CATALOGUE.event_type("agreement", "scope_extended").schema
    with pytest.raises(ValidationError, match="required"):
        scope_extended().load({"articles": ["Article 3"]})
    with pytest.raises(ValidationError, match="Unknown field"):
        CATALOGUE.event_type("agreement", "entered_into_force").schema().load({"place": "Moscow"})
    scheduled = CATALOGUE.event_type("meeting", "scheduled").schema
    assert scheduled().load({"planned": " 2017-10-04 ", "place": "Brussels"}) == {"planned": "2017-10-04",
                                                                                   "place": "Brussels"}
    with pytest.raises(ValidationError, match="not valid EDTF"):
        scheduled().load({"planned": "4 October 2017"})


# Parties.


@pytest.mark.parametrize(
    ("given", "expected"),
    [("RU", "RU"), ("UK", "GB"), ("EL", "GR"), ("eu", "eu"), ("fsb-border-guard-service", "fsb-border-guard-service")],
)
def test_parties_are_country_codes_or_organisation_ids(given: str, expected: str) -> None:
    assert normalise_party(given) == expected


@pytest.mark.parametrize("given", ["XX", "EU", "Eu", "ru ", "R", "-frontex", "", None, 7])
def test_anything_else_is_not_a_party(given: object) -> None:
    with pytest.raises(ValueError):
        normalise_party(given)


def test_an_organisation_id_with_a_trailing_newline_is_not_a_party() -> None:
    with pytest.raises(ValueError):
        normalise_party("frontex\n")


# Effects on the view: agreements.


def test_the_readmission_agreement_is_signed_then_in_force_then_extended() -> None:
    view = register("agreement", READMISSION)
    assert view["status"] is None and view["scope"] == []
    # Step 1: signed in 2006.
    apply("agreement", view, "signed", "2006", 2)
    assert (view["status"], view["signed"]) == ("signed", "2006")
    # Step 2: in force on 1 June 2007.
    apply("agreement", view, "entered_into_force", "2007-06-01", 3)
    assert (view["status"], view["entered_into_force"]) == ("in_force", "2007-06-01")
    # Step 3: from 1 June 2010 it also covers third-country nationals and stateless persons.
    apply("agreement", view, "scope_extended", "2010-06-01", 4,
          scope="nationals of third countries and stateless persons")
    assert view["scope"] == [{"scope": "nationals of third countries and stateless persons", "articles": [],
                              "valid": "2010-06-01"}]
    assert view["status"] == "in_force"


def test_territorial_application_keeps_the_latest_change_per_party() -> None:
    view = register("agreement", READMISSION)
    apply("agreement", view, "territorial_application_changed", "2007-06-01", 2, party="DK", change="not_bound")
    apply("agreement", view, "territorial_application_changed", "2007-06-01", 3, party="UK", change="opted_in")
    apply("agreement", view, "territorial_application_changed", "2020-02-01", 4, party="GB", change="left")
    assert view["applies_to_changes"] == [
        {"party": "DK", "change": "not_bound", "valid": "2007-06-01"},
        {"party": "GB", "change": "left", "valid": "2020-02-01"},
    ]


def test_a_partial_suspension_is_listed_and_a_whole_one_sets_the_status() -> None:
    view = register("agreement", READMISSION)
    apply("agreement", view, "entered_into_force", "2007-06-01", 2)
    # Step 1: some provisions are suspended; the agreement stays in force.
    apply("agreement", view, "suspended", "2022-03", 3, extent="partial", provisions=["Article 7"])
    assert view["status"] == "in_force"
    assert view["suspensions"] == [{"provisions": ["Article 7"], "valid": "2022-03"}]
    # Step 2: the whole agreement is suspended.
    apply("agreement", view, "suspended", "2022-06", 4, extent="whole")
    assert view["status"] == "suspended"
    # Step 3: lifting clears every suspension and restores force.
    apply("agreement", view, "suspension_lifted", "2023", 5)
    assert (view["status"], view["suspensions"]) == ("in_force", [])


def test_suspension_needs_a_known_extent() -> None:
    schema = CATALOGUE.event_type("agreement", "suspended").schema
    with pytest.raises(ValidationError):
        schema().load({"extent": "most"})
    with pytest.raises(ValidationError):
        schema().load({"provisions": ["Article 7"]})


def test_conclusions_and_termination() -> None:
    view = register("agreement", READMISSION)
    apply("agreement", view, "concluded", "2007", 2, party="EL", act="Council Decision")
    apply("agreement", view, "terminated", "2030", 3)
    assert view["conclusions"] == [{"party": "GR", "act": "Council Decision", "valid": "2007"}]
    assert view["status"] == "terminated"


# Organisations.


def test_frontex_is_renamed_and_keeps_its_acronym() -> None:
    view = register("organisation", FRONTEX)
    apply("organisation", view, "established", "2004", 2)
    apply("organisation", view, "renamed", "[..2026-11-29]", 3, name="European Border and Coast Guard Agency")
    assert view["status"] == "active"
    assert (view["name"], view["acronym"]) == ("European Border and Coast Guard Agency", "FRONTEX")
    apply("organisation", view, "renamed", "2030", 4, name="Border Agency", acronym=None)
    assert (view["name"], view["acronym"]) == ("Border Agency", None)


def test_members_join_once_sorted_and_leave() -> None:
    view = register("organisation", {"name": "European Union", "acronym": "EU"})
    for position, party in enumerate(["FR", "DE", "UK", "DE"], start=2):
        apply("organisation", view, "member_joined", "1993-11-01", position, party=party)
    assert view["members"] == ["DE", "FR", "GB"]
    apply("organisation", view, "member_left", "2020-02-01", 9, party="UK")
    assert view["members"] == ["DE", "FR"]


def test_an_organisation_succeeded_names_its_successor() -> None:
    view = register("organisation", {"name": "Border Guard Service", "acronym": "BGS"})
    apply("organisation", view, "succeeded", "2030", 2, successor="fsb-border-guard-service")
    assert (view["status"], view["successor"]) == ("succeeded", "fsb-border-guard-service")


# Meetings.


def test_a_meeting_is_scheduled_rescheduled_and_held() -> None:
    view = register("meeting", JOINT_COMMITTEE_17)
    # Step 1: planned for autumn 2017 in Moscow.
    apply("meeting", view, "scheduled", "2017-06", 2, planned="2017-23", place="Moscow")
    assert (view["status"], view["planned"], view["place"]) == ("scheduled", "2017-23", "Moscow")
    # Step 2: moved to 4 October in Brussels; still scheduled.
    apply("meeting", view, "rescheduled", "2017-08", 3, planned="2017-10-04", place="Brussels")
    assert (view["status"], view["planned"], view["place"]) == ("scheduled", "2017-10-04", "Brussels")
    # Step 3: held; the place carries over when the event does not repeat it.
    apply("meeting", view, "held", "2017-10-04", 4, topics=["implementation of the Agreement"])
    assert (view["status"], view["held"], view["place"]) == ("held", "2017-10-04", "Brussels")
    assert view["topics"] == ["implementation of the Agreement"]


def test_a_cancelled_meeting() -> None:
    view = register("meeting", JOINT_COMMITTEE_17)
    apply("meeting", view, "scheduled", "2017-06", 2, planned="2017-10-04")
    apply("meeting", view, "cancelled", "2017-09", 3, reason="postponed without a date")
    assert view["status"] == "cancelled"
    assert meeting_status(view, dt.date(2018, 1, 1)) == "cancelled"


def test_a_two_day_session_is_in_progress_until_its_last_day() -> None:
    sofia = register("meeting", {"title": "Expert session on combating illegal migration",
                                 "series": "ru-eu-migration-dialogue", "format": "expert session"})
    apply("meeting", sofia, "held", "2018-04-04/2018-04-05", 2, place="Sofia")
    assert meeting_status(sofia, dt.date(2018, 4, 4)) == "in_progress"
    assert meeting_status(sofia, dt.date(2018, 4, 5)) == "in_progress"
    assert meeting_status(sofia, dt.date(2018, 4, 6)) == "held"


def test_a_one_day_meeting_is_never_in_progress() -> None:
    view = register("meeting", JOINT_COMMITTEE_17)
    apply("meeting", view, "held", "2017-10-04", 2, place="Brussels")
    assert meeting_status(view, dt.date(2017, 10, 4)) == "held"


def test_a_scheduled_meeting_is_overdue_once_its_plan_has_passed() -> None:
    view = register("meeting", JOINT_COMMITTEE_17)
    apply("meeting", view, "scheduled", "2017-06", 2, planned="2017-10")
    assert meeting_status(view, dt.date(2017, 10, 31)) == "scheduled"
    assert meeting_status(view, dt.date(2017, 11, 1)) == "overdue"


def test_a_meeting_without_world_events_has_no_status() -> None:
    assert meeting_status(register("meeting", JOINT_COMMITTEE_17), dt.date(2017, 10, 4)) is None


# Standing formats.


def test_the_dialogue_on_migration_is_launched_suspended_and_resumed() -> None:
    view = register("dialogue", {"title": "Russia-EU Dialogue on Migration", "parties": ["RU", "eu"],
                                 "themes": ["asylum"]})
    apply("dialogue", view, "launched", "2011-05", 2, place="Moscow")
    assert (view["status"], view["launched"], view["place"], view["themes"]) == ("active", "2011-05", "Moscow",
                                                                                 ["asylum"])
    apply("dialogue", view, "suspended", "2014", 3)
    assert view["status"] == "suspended"
    apply("dialogue", view, "resumed", "2016", 4)
    apply("dialogue", view, "ended", "2022", 5)
    assert view["status"] == "ended"


def test_the_joint_committee_adopts_a_recommendation() -> None:
    view = register("body", {"title": "Russia-EU Joint Committee on readmission", "parties": ["RU", "eu"],
                             "established_by": "ru-eu-readmission-agreement"})
    apply("body", view, "established", "[..2017-10-04]", 2)
    apply("body", view, "recommendation_adopted", "2017-10-04", 3, subject="practical implementation",
          meeting="ru-eu-readmission-joint-committee-17")
    assert (view["status"], view["established"]) == ("active", "[..2017-10-04]")
    assert view["recommendations"] == [{"subject": "practical implementation",
                                        "meeting": "ru-eu-readmission-joint-committee-17",
                                        "valid": "2017-10-04"}]


def test_the_border_guard_channel_establishes_contacts_and_signs_an_arrangement() -> None:
    view = register("channel", {"title": "Contacts between the FSB Border Guard Service and FRONTEX",
                                "parties": ["fsb-border-guard-service", "frontex"]})
    apply("channel", view, "contacts_established", "2006", 2)
    apply("channel", view, "arrangement_signed", "2008", 3, title="Terms of reference")
    assert (view["status"], view["contacts_established"]) == ("active", "2006")
    assert view["arrangements"] == [{"title": "Terms of reference", "valid": "2008"}]


# Effects leave the view they were handed a copy of as it was (the fold copies one level deep).

REGISTRATIONS: dict[str, dict[str, Any]] = {
    "agreement": READMISSION,
    "body": {"title": "Russia-EU Joint Committee on readmission", "parties": ["RU", "eu"]},
    "dialogue": {"title": "Russia-EU Dialogue on Migration", "parties": ["RU", "eu"], "themes": ["asylum"]},
    "meeting": JOINT_COMMITTEE_17,
    "organisation": {**FRONTEX, "name": "European Union"},
    "channel": {"title": "Contacts between the FSB Border Guard Service and FRONTEX",
                "parties": ["fsb-border-guard-service", "frontex"]},
}
EXAMPLES: dict[str, dict[str, Any]] = {  # data a type needs beyond its valid time
    "concluded": {"party": "RU", "act": "Federal Law"},
    "scope_extended": {"scope": "nationals of third countries and stateless persons", "articles": ["Article 3"]},
    "territorial_application_changed": {"party": "DK", "change": "not_bound"},
    "recommendation_adopted": {"subject": "practical implementation"},
    "scheduled": {"planned": "2018", "place": "Moscow"},
    "rescheduled": {"planned": "2019-03", "place": "Brussels"},
    "held": {"place": "Brussels", "topics": ["returns"]},
    "renamed": {"name": "European Border and Coast Guard Agency"},
    "member_joined": {"party": "DE"},
    "member_left": {"party": "DE"},
    "succeeded": {"successor": "frontex"},
    "arrangement_signed": {"title": "Working arrangement on operational cooperation"},
    "launched": {"place": "Moscow", "themes": ["asylum"]},
}
EVERY_TYPE = sorted((kind.name, name) for kind in CATALOGUE for name in kind.events)


def example(kind: str, name: str) -> dict[str, Any]:
    if (kind, name) == ("agreement", "suspended"):
        return {"extent": "partial", "provisions": ["Article 3"]}
    return EXAMPLES.get(name, {})


def full_view(kind: str) -> View:
    """A view after one event of each type of its kind: every list has an item."""
    view = register(kind, REGISTRATIONS[kind])
    for position, name in enumerate(sorted(CATALOGUE.kinds[kind].events), start=2):
        if name not in ("suspension_lifted", "member_left"):  # these empty a list
            view = apply(kind, dict(view), name, "2007-06-01", position, **example(kind, name))
    return view


@pytest.mark.parametrize(("kind", "type_name"), EVERY_TYPE)
def test_an_effect_leaves_the_previous_view_as_it_was(kind: str, type_name: str) -> None:
    previous = full_view(kind)
    kept = copy.deepcopy(previous)

    apply(kind, dict(previous), type_name, "2010-06-01", 99, **example(kind, type_name))

    assert previous == kept  # no list or item of the previous view was edited in place
