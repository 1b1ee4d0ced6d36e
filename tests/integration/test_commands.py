"""Commands on a real store: bad input is refused and writes nothing; retries are idempotent."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from registry.errors import Conflict, Invalid, NotFound, PreconditionFailed, RegistryError
from registry.seed import seed
from registry.service import Registry

AGREEMENT = "ru-eu-readmission-agreement"
EDITOR = "registry-editor"


@pytest.fixture
def seeded(registry: Registry) -> Registry:
    seed(registry)
    return registry


@contextmanager
def refused(registry: Registry, error: type[RegistryError]) -> Iterator[pytest.ExceptionInfo[Any]]:
    """The command inside raises `error`, and the log, its head and the views stay as they were."""
    head = registry.reader.head()
    lag = registry.reader.lag()
    with pytest.raises(error) as raised:
        yield raised
    assert registry.reader.head() == head
    assert registry.reader.lag() == lag


def event_of(registry: Registry, record_id: str, type_name: str) -> dict[str, Any]:
    return registry.reader.events(0, 1000, record=record_id, type=type_name)["items"][0]  # type: ignore[no-any-return]


# Registrations that break the catalogue: (collection, body, the field named in the errors)
BAD_REGISTRATIONS = [
    ("agreements", {"id": "Visa Facilitation", "title": "Agreement on visas"}, "id"),
    ("agreements", {"id": "v", "title": "Agreement on visas"}, "id"),
    ("agreements", {"title": "Agreement on visas"}, "id"),
    ("agreements", {"id": "visa-facilitation", "title": "Agreement on visas", "ratified": True}, "ratified"),
    ("agreements", {"id": "visa-facilitation", "title": 2006}, "title"),
    ("agreements", {"id": "visa-facilitation"}, "title"),
    ("agreements", {"id": "visa-facilitation", "title": "Visas", "agreement_type": "treaty"}, "agreement_type"),
    ("agreements", {"id": "visa-facilitation", "title": "Visas", "parties": "RU"}, "parties"),
    ("agreements", {"id": "visa-facilitation", "title": "Visas", "parties": ["XX", "eu"]}, "parties"),
    ("agreements", {"id": "visa-facilitation", "title": "Visas", "parties": ["Russia"]}, "parties"),
    ("agreements", {"id": "visa-facilitation", "title": "Visas", "parties": ["RU", "council-of-europe"]}, "parties"),
    ("agreements", {"id": "visa-facilitation", "title": "Visas", "parties": ["RU", "ru-eu-migration-dialogue"]},
     "parties"),
    ("agreements", {"id": "visa-facilitation", "title": "Visas", "parent": "frontex"}, "parent"),
    ("agreements", {"id": "visa-facilitation", "title": "Visas", "sources": [{"url": "https://example.org"}]},
     "sources"),
    ("meetings", {"id": "ru-eu-readmission-joint-committee-18", "title": "18th meeting",
                  "series": AGREEMENT}, "series"),
    ("meetings", {"id": "ru-eu-readmission-joint-committee-18", "title": "18th meeting",
                  "series": "ru-eu-readmission-joint-committee", "ordinal": "18"}, "ordinal"),
    ("meetings", {"id": "ru-eu-readmission-joint-committee-18", "title": "18th meeting",
                  "series": "ru-eu-readmission-joint-committee", "ordinal": 0}, "ordinal"),
    ("bodies", {"id": "ru-eu-migration-council", "title": "Council", "established_by": "ru-eu-migration-dialogue"},
     "established_by"),
    ("channels", {"id": "fsb-eu-contacts", "title": "Contacts", "parties": ["fsb-border-guard-service", "RU"]},
     "parties"),
    ("channels", {"id": "fsb-eu-contacts", "title": "Contacts",
                  "parties": ["fsb-border-guard-service", AGREEMENT]}, "parties"),
    ("channels", {"id": "fsb-eu-contacts", "title": "Contacts", "parties": ["fsb-border-guard-service"]}, "parties"),
    ("channels", {"id": "fsb-eu-contacts", "title": "Contacts",
                  "parties": ["fsb-border-guard-service", "europol"]}, "parties"),
]


@pytest.mark.parametrize(("collection", "body", "field"), BAD_REGISTRATIONS)
def test_bad_registration_writes_nothing(seeded: Registry, collection: str, body: dict[str, Any],
                                         field: str) -> None:
    with refused(seeded, Invalid) as raised:
        seeded.register(collection, body, EDITOR)
    assert field in raised.value.errors
    if isinstance(body.get("id"), str):
        with pytest.raises(NotFound):
            seeded.reader.view(body["id"], None, None)


# World events that break the catalogue, appended to the readmission agreement unless a record is named.
BAD_EVENTS = [
    ({"type": "entered_into_force"}, "valid"),
    ({"type": "entered_into_force", "valid": "1 June 2007"}, "valid"),
    ({"type": "entered_into_force", "valid": "2007-13-01"}, "valid"),
    ({"type": "entered_into_force", "valid": "2018-04-05/2018-04-04"}, "valid"),
    ({"type": "entered_into_force", "valid": 2007}, "valid"),
    ({"valid": "2007-06-01"}, "type"),
    ({"type": "launched", "valid": "2011-05"}, "type"),
    ({"type": "held", "valid": "2017-10-04"}, "type"),
    ({"type": "corrected", "valid": "2017-10-04", "target": "x", "changes": {}, "reason": "x"}, "type"),
    ({"type": "registered", "valid": "2006", "title": "Agreement on Readmission"}, "type"),
    ({"type": "entered_into_force", "valid": "2007-06-01", "place": "Brussels"}, "place"),
    ({"type": "signed", "valid": "2006", "signatories": "Putin"}, "signatories"),
    ({"type": "scope_extended", "valid": "2010-06-01"}, "scope"),
    ({"type": "concluded", "valid": "2007", "party": "ZZ"}, "party"),
    ({"type": "concluded", "valid": "2007", "party": "ru-eu-migration-dialogue"}, "party"),
    ({"type": "suspended", "valid": "2022", "extent": "most"}, "extent"),
    ({"type": "territorial_application_changed", "valid": "2020", "party": "GB", "change": "brexit"}, "change"),
    ({"type": "terminated", "valid": "2030", "note": 7}, "note"),
]


@pytest.mark.parametrize(("body", "field"), BAD_EVENTS)
def test_bad_event_writes_nothing(seeded: Registry, body: dict[str, Any], field: str) -> None:
    before = seeded.reader.view(AGREEMENT, None, None)
    with refused(seeded, Invalid) as raised:
        seeded.append("agreements", AGREEMENT, body, EDITOR)
    assert field in raised.value.errors
    assert seeded.reader.view(AGREEMENT, None, None)["version"] == before["version"]


@pytest.mark.parametrize(("collection", "record_id", "body", "field"), [
    ("meetings", "ru-eu-readmission-joint-committee-17", {"type": "scheduled", "valid": "2017", "planned": "soon"},
     "planned"),
    ("bodies", "ru-eu-readmission-joint-committee",
     {"type": "recommendation_adopted", "valid": "2017-10-04", "subject": "returns", "meeting": AGREEMENT}, "meeting"),
    ("organisations", "frontex", {"type": "succeeded", "valid": "2016-10-06", "successor": AGREEMENT}, "successor"),
    ("organisations", "frontex", {"type": "succeeded", "valid": "2016-10-06", "successor": "ebcga"}, "successor"),
    ("organisations", "eu", {"type": "member_joined", "valid": "2013-07-01", "party": "Croatia"}, "party"),
    ("channels", "fsb-border-guard-service-frontex", {"type": "renamed", "valid": "2016", "name": "x"}, "type"),
])
def test_bad_event_on_other_kinds_writes_nothing(seeded: Registry, collection: str, record_id: str,
                                                  body: dict[str, Any], field: str) -> None:
    with refused(seeded, Invalid) as raised:
        seeded.append(collection, record_id, body, EDITOR)
    assert field in raised.value.errors


def test_unknown_records_and_collections_are_not_found(seeded: Registry) -> None:
    in_force = {"type": "entered_into_force", "valid": "2007-06-01"}
    with refused(seeded, NotFound):
        seeded.append("agreements", "ru-eu-visa-facilitation-agreement", in_force, EDITOR)
    # A record exists only in its own collection.
    with refused(seeded, NotFound):
        seeded.append("agreements", "frontex", in_force, EDITOR)
    with refused(seeded, NotFound):
        seeded.append("treaties", AGREEMENT, in_force, EDITOR)
    with refused(seeded, NotFound):
        seeded.register("treaties", {"id": "visa-facilitation", "title": "Visas"}, EDITOR)
    with refused(seeded, NotFound):
        seeded.correct("00000000-0000-4000-8000-000000000000", {"changes": {"valid": "2007"}, "reason": "x"}, EDITOR)
    with refused(seeded, NotFound):
        seeded.retract("00000000-0000-4000-8000-000000000000", {"reason": "x"}, EDITOR)


def test_ids_are_unique_across_kinds(seeded: Registry) -> None:
    with refused(seeded, Conflict):
        seeded.register("agreements", {"id": AGREEMENT, "title": "Agreement on Readmission"}, EDITOR)
    with refused(seeded, Conflict):
        seeded.register("organisations", {"id": AGREEMENT, "name": "Readmission"}, EDITOR)
    assert seeded.reader.view(AGREEMENT, None, None)["kind"] == "agreement"


def test_corrections_and_retractions_are_final(seeded: Registry) -> None:
    signed = event_of(seeded, AGREEMENT, "signed")
    scope = event_of(seeded, AGREEMENT, "scope_extended")
    registration = event_of(seeded, AGREEMENT, "registered")

    # Sign in Luxembourg, then retract the scope extension for this story.
    correction = seeded.correct(signed["id"], {"changes": {"place": "Sochi"}, "reason": "signed at the summit"},
                                EDITOR)
    retraction = seeded.retract(scope["id"], {"reason": "belongs on the implementing protocols"}, EDITOR)

    # A correction can be neither corrected nor retracted; nor can a retraction.
    with refused(seeded, Invalid):
        seeded.correct(correction["id"], {"changes": {"reason": "other"}, "reason": "x"}, EDITOR)
    with refused(seeded, Invalid):
        seeded.retract(correction["id"], {"reason": "x"}, EDITOR)
    with refused(seeded, Invalid):
        seeded.retract(retraction["id"], {"reason": "x"}, EDITOR)
    # A retracted event can be neither corrected nor retracted again.
    with refused(seeded, Invalid):
        seeded.correct(scope["id"], {"changes": {"valid": "2010-07-01"}, "reason": "x"}, EDITOR)
    with refused(seeded, Invalid):
        seeded.retract(scope["id"], {"reason": "again"}, EDITOR)
    # A registration can be corrected but never retracted.
    with refused(seeded, Invalid) as raised:
        seeded.retract(registration["id"], {"reason": "the agreement never existed"}, EDITOR)
    assert "target" in raised.value.errors


@pytest.mark.parametrize(("changes", "reason"), [
    ({}, "empty changes"),
    ({"valid": "sometime in 2006"}, "bad EDTF"),
    ({"place": 2006}, "wrong type"),
    ({"colour": "blue"}, "unknown field"),
])
def test_bad_correction_writes_nothing(seeded: Registry, changes: dict[str, Any], reason: str) -> None:
    signed = event_of(seeded, AGREEMENT, "signed")
    with refused(seeded, Invalid):
        seeded.correct(signed["id"], {"changes": changes, "reason": reason}, EDITOR)


def test_bad_corrections_of_registrations_write_nothing(seeded: Registry) -> None:
    meeting = event_of(seeded, "ru-eu-readmission-joint-committee-17", "registered")
    agreement = event_of(seeded, AGREEMENT, "registered")
    with refused(seeded, Invalid):
        seeded.correct(meeting["id"], {"changes": {"series": AGREEMENT}, "reason": "x"}, EDITOR)
    with refused(seeded, Invalid):
        seeded.correct(agreement["id"], {"changes": {"id": "readmission"}, "reason": "x"}, EDITOR)
    with refused(seeded, Invalid):
        seeded.correct(agreement["id"], {"changes": {"valid": "2006"}, "reason": "x"}, EDITOR)
    with refused(seeded, Invalid):
        seeded.correct(agreement["id"], {"changes": {"parties": ["RU", "XX"]}, "reason": "x"}, EDITOR)
    with refused(seeded, Invalid):
        seeded.correct(agreement["id"], {"changes": {"title": "Readmission"}}, EDITOR)


def test_stale_if_match_is_refused(seeded: Registry) -> None:
    version = seeded.reader.view(AGREEMENT, None, None)["version"]
    conclusion = {"type": "concluded", "valid": "2007", "party": "RU", "act": "Federal Law of 3 March 2007"}

    # Two editors read version 4; the first appends, the second's write is stale.
    first = seeded.append("agreements", AGREEMENT, conclusion, EDITOR, if_match=version)
    assert first["version"] == version + 1
    with refused(seeded, PreconditionFailed):
        seeded.append("agreements", AGREEMENT, {**conclusion, "party": "eu"}, "second-editor", if_match=version)
    # A version from the future is just as stale.
    with refused(seeded, PreconditionFailed):
        seeded.append("agreements", AGREEMENT, conclusion, EDITOR, if_match=version + 5)


def appends_once(registry: Registry, command: Callable[[], dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run the command twice; the log grows by one event only."""
    start = registry.reader.head()["position"]
    first = command()
    middle = registry.reader.head()
    second = command()
    assert middle["position"] == start + 1
    assert registry.reader.head() == middle
    return first, second


def test_idempotent_append_returns_the_first_envelope(seeded: Registry) -> None:
    body = {"type": "concluded", "valid": "2007", "party": "RU", "act": "Federal Law of 3 March 2007"}
    first, second = appends_once(seeded, lambda: seeded.append(
        "agreements", AGREEMENT, body, EDITOR, idempotency_key="ratification-ru"))
    assert second == first
    assert [c["party"] for c in seeded.reader.view(AGREEMENT, None, None)["conclusions"]] == ["RU"]

    # The same key with another body is refused, as is a retry with a changed note.
    with refused(seeded, Invalid) as raised:
        seeded.append("agreements", AGREEMENT, {**body, "party": "eu"}, EDITOR, idempotency_key="ratification-ru")
    assert "Idempotency-Key" in raised.value.errors
    with refused(seeded, Invalid):
        seeded.append("agreements", AGREEMENT, {**body, "note": "retry"}, EDITOR, idempotency_key="ratification-ru")
    with refused(seeded, Invalid):
        seeded.append("agreements", AGREEMENT, {**body, "party": "eu"}, EDITOR, idempotency_key="x" * 201)

    # Keys belong to their actor: another editor's key of the same name is a new request.
    other = seeded.append("agreements", AGREEMENT, body, "second-editor", idempotency_key="ratification-ru")
    assert other["id"] != first["id"]


def test_idempotent_register_correct_and_retract(seeded: Registry) -> None:
    registration = {"id": "ru-eu-visa-facilitation-agreement", "title": "Agreement on visas", "parties": ["RU", "eu"]}
    view, again = appends_once(seeded, lambda: seeded.register(
        "agreements", registration, EDITOR, idempotency_key="visa-registration"))
    assert again == {**view, "known_at": again["known_at"]}
    with refused(seeded, Invalid):
        seeded.register("agreements", {**registration, "title": "Visas"}, EDITOR, idempotency_key="visa-registration")

    signed = event_of(seeded, AGREEMENT, "signed")
    fix = {"changes": {"place": "Sochi"}, "reason": "signed at the summit"}
    first, second = appends_once(seeded, lambda: seeded.correct(signed["id"], fix, EDITOR, idempotency_key="sochi"))
    assert second == first and first["type"] == "corrected"



def test_retrying_a_retraction_replays_it(seeded: Registry) -> None:
    # The client retracts the scope extension, loses the response, and retries with the same key.
    scope = event_of(seeded, AGREEMENT, "scope_extended")
    first, second = appends_once(seeded, lambda: seeded.retract(
        scope["id"], {"reason": "duplicate"}, EDITOR, idempotency_key="drop-scope"))
    assert second == first and first["type"] == "retracted"
