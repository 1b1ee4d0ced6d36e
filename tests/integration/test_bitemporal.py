"""Both time axes: what was true on a day (as_of), as the registry knew it at an instant (known_at)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from registry.errors import NotFound
from registry.seed import seed
from registry.service import Registry

AGREEMENT = "ru-eu-readmission-agreement"
COMMITTEE = "ru-eu-readmission-joint-committee"
MEETING_17 = "ru-eu-readmission-joint-committee-17"
NEW_YEAR_2009 = dt.date(2009, 1, 1)
EDITOR = "registry-editor"


def now_known(registry: Registry) -> dt.datetime:
    """The instant of the newest write: a known_at that includes it and nothing after."""
    return dt.datetime.fromisoformat(registry.reader.head()["recorded_at"])


def in_force_2009(registry: Registry, known_at: dt.datetime | None) -> dict[str, Any]:
    return registry.reader.view(AGREEMENT, NEW_YEAR_2009, known_at)


def ids(page: dict[str, Any]) -> list[str]:
    return [item["id"] for item in page["items"]]


def test_what_was_in_force_on_1_january_2009_has_one_answer_per_instant(registry: Registry) -> None:
    # The EU is registered first; the agreement a moment later.
    registry.register("organisations", {"id": "eu", "name": "European Union", "acronym": "EU"}, EDITOR)
    before_agreement = now_known(registry)
    registry.register("agreements", {"id": AGREEMENT, "title": "Agreement on Readmission",
                                      "parties": ["RU", "eu"]}, EDITOR)
    registered = now_known(registry)

    # Asked as the registry stood before the agreement was registered, there is no such record.
    with pytest.raises(NotFound):
        registry.reader.view(AGREEMENT, NEW_YEAR_2009, before_agreement)
    with pytest.raises(NotFound):
        registry.reader.history(AGREEMENT, NEW_YEAR_2009, before_agreement)
    assert registry.reader.view("eu", NEW_YEAR_2009, before_agreement)["name"] == "European Union"

    # Registered but with no world event yet: a view with no status, and absent from lists.
    assert in_force_2009(registry, registered)["status"] is None
    assert ids(registry.reader.list("agreements", NEW_YEAR_2009, registered)) == []

    # Signed in 2006.
    registry.append("agreements", AGREEMENT, {"type": "signed", "valid": "2006"}, EDITOR)
    signed = now_known(registry)

    # Entry into force first entered with a typo: 2009-06-01 instead of 2007-06-01.
    typo = registry.append("agreements", AGREEMENT, {"type": "entered_into_force", "valid": "2009-06-01"}, EDITOR)
    mistyped = now_known(registry)

    # The typo is corrected.
    registry.correct(typo["id"], {"changes": {"valid": "2007-06-01"}, "reason": "the text says 1 June 2007"},
                     EDITOR)
    corrected = now_known(registry)

    # A suspension is recorded by mistake, then retracted.
    mistake = registry.append("agreements", AGREEMENT,
                              {"type": "suspended", "valid": "2008-07", "extent": "whole"}, EDITOR)
    suspended = now_known(registry)
    registry.retract(mistake["id"], {"reason": "entered on the wrong record"}, EDITOR)
    retracted = now_known(registry)
    instants = [before_agreement, registered, signed, mistyped, corrected, suspended, retracted]
    assert instants == sorted(set(instants)), "each write has its own instant"

    # Every instant keeps its own answer, however much was learnt later.
    answers = {t: in_force_2009(registry, t) for t in instants[1:]}
    assert [(a["status"], a["entered_into_force"], a["version"]) for a in answers.values()] == [
        (None, None, 1),
        ("signed", None, 2),
        ("signed", None, 3),
        ("in_force", "2007-06-01", 4),
        ("suspended", "2007-06-01", 5),
        ("in_force", "2007-06-01", 6),
    ]
    assert all(a["known_at"] == t.strftime("%Y-%m-%dT%H:%M:%S.%fZ") for t, a in answers.items())

    # Asking again gives the very same answers, and "now" agrees with the last instant.
    assert {t: in_force_2009(registry, t) for t in instants[1:]} == answers
    latest = in_force_2009(registry, None)
    assert {**latest, "known_at": None} == {**answers[retracted], "known_at": None}

    # The list, filtered by status, follows the same instants.
    assert ids(registry.reader.list("agreements", NEW_YEAR_2009, mistyped, status="signed")) == [AGREEMENT]
    assert ids(registry.reader.list("agreements", NEW_YEAR_2009, mistyped, status="in_force")) == []
    assert ids(registry.reader.list("agreements", NEW_YEAR_2009, suspended, status="suspended")) == [AGREEMENT]
    assert ids(registry.reader.list("agreements", NEW_YEAR_2009, retracted, status="in_force")) == [AGREEMENT]

    # The snapshot does too, and names the log position it stands on.
    old = registry.reader.snapshot(NEW_YEAR_2009, mistyped)
    assert old["position"] == 4
    assert [a["status"] for a in old["records"]["agreements"]] == ["signed"]
    new = registry.reader.snapshot(NEW_YEAR_2009, retracted)
    assert new["position"] == 7
    assert [a["status"] for a in new["records"]["agreements"]] == ["in_force"]


def test_history_shows_corrections_and_retractions_as_they_were_known(registry: Registry) -> None:
    registry.register("agreements", {"id": AGREEMENT, "title": "Agreement on Readmission"}, EDITOR)
    typo = registry.append("agreements", AGREEMENT, {"type": "entered_into_force", "valid": "2009-06-01"}, EDITOR)
    mistake = registry.append("agreements", AGREEMENT,
                              {"type": "suspended", "valid": "2008-07", "extent": "whole"}, EDITOR)
    before_fixes = now_known(registry)
    fix = registry.correct(typo["id"], {"changes": {"valid": "2007-06-01"}, "reason": "typo"}, EDITOR)
    withdrawal = registry.retract(mistake["id"], {"reason": "wrong record"}, EDITOR)

    # Before the fixes both events stand as entered, in valid order (July 2008 before June 2009).
    old = registry.reader.history(AGREEMENT, NEW_YEAR_2009, before_fixes)["items"]
    assert [(i["type"], i["state"], i["certainty"]) for i in old] == [
        ("registered", "current", None),
        ("suspended", "current", "certain"),
        ("entered_into_force", "current", "not_yet"),
    ]

    # Now the entry into force reads 2007-06-01 and the suspension is marked retracted.
    items = registry.reader.history(AGREEMENT, NEW_YEAR_2009, None)["items"]
    by_type = {i["type"]: i for i in items}
    assert by_type["entered_into_force"]["state"] == "corrected"
    assert by_type["entered_into_force"]["corrections"] == [fix["id"]]
    assert by_type["entered_into_force"]["effective"]["valid"] == "2007-06-01"
    assert by_type["entered_into_force"]["valid"] == "2009-06-01", "the envelope itself is never rewritten"
    assert by_type["entered_into_force"]["certainty"] == "certain"
    assert by_type["suspended"]["state"] == "retracted"
    assert by_type["suspended"]["retracted_by"] == withdrawal["id"]
    assert [i["type"] for i in items] == ["registered", "entered_into_force", "suspended"]


def test_correcting_a_registration_keeps_the_old_title_reproducible(registry: Registry) -> None:
    registry.register("agreements", {"id": AGREEMENT, "title": "Agreement on Readmision"}, EDITOR)
    registration = registry.reader.events(0, 10, record=AGREEMENT)["items"][0]
    registry.append("agreements", AGREEMENT, {"type": "signed", "valid": "2006"}, EDITOR)
    misspelt = now_known(registry)

    registry.correct(registration["id"], {"changes": {"title": "Agreement on Readmission"}, "reason": "spelling"},
                     EDITOR)

    assert registry.reader.view(AGREEMENT, NEW_YEAR_2009, misspelt)["title"] == "Agreement on Readmision"
    assert registry.reader.view(AGREEMENT, NEW_YEAR_2009, None)["title"] == "Agreement on Readmission"


def test_a_2017_meeting_recorded_late(registry: Registry) -> None:
    # The committee is on record; its 17th meeting is not yet.
    registry.register("agreements", {"id": AGREEMENT, "title": "Agreement on Readmission"}, EDITOR)
    registry.register("bodies", {"id": COMMITTEE, "title": "Russia-EU Joint Committee on readmission",
                                 "parties": ["RU"], "established_by": AGREEMENT}, EDITOR)
    registry.append("bodies", COMMITTEE, {"type": "established", "valid": "[..2017-10-04]"}, EDITOR)
    before = now_known(registry)

    # Later, the meeting of 4 October 2017 is entered.
    registry.register("meetings", {"id": MEETING_17, "title": "17th meeting of the Joint Committee",
                                   "series": COMMITTEE, "ordinal": 17}, EDITOR)
    registry.append("meetings", MEETING_17, {"type": "held", "valid": "2017-10-04", "place": "Brussels"}, EDITOR)
    after = now_known(registry)
    as_of = dt.date(2018, 1, 1)

    # As known before: no meeting anywhere.
    with pytest.raises(NotFound):
        registry.reader.view(MEETING_17, as_of, before)
    assert registry.reader.view(COMMITTEE, as_of, before)["meetings"]["held"] == 0
    assert ids(registry.reader.list("meetings", as_of, before)) == []
    assert registry.reader.snapshot(as_of, before)["records"]["meetings"] == []

    # As known after: held in Brussels, counted by the committee.
    assert registry.reader.view(MEETING_17, as_of, after)["status"] == "held"
    summary = registry.reader.view(COMMITTEE, as_of, after)["meetings"]
    assert (summary["held"], summary["last_ordinal"], summary["last"]["place"]) == (1, 17, "Brussels")
    assert ids(registry.reader.list("meetings", as_of, after)) == [MEETING_17]

    # Valid time still rules: as of the day before the meeting, it has not happened.
    assert registry.reader.view(MEETING_17, dt.date(2017, 10, 3), after)["status"] is None
    assert ids(registry.reader.list("meetings", dt.date(2017, 10, 3), after)) == []


def test_a_meeting_moved_to_its_right_series_keeps_the_old_summary(registry: Registry) -> None:
    seed(registry)
    dialogue = "ru-eu-migration-dialogue"
    as_of = dt.date(2018, 1, 1)

    # The 16th Joint Committee meeting is first entered under the Dialogue on Migration by mistake.
    registry.register("meetings", {"id": "ru-eu-readmission-joint-committee-16", "title": "16th meeting",
                                   "series": dialogue, "ordinal": 16}, EDITOR)
    registry.append("meetings", "ru-eu-readmission-joint-committee-16",
                    {"type": "held", "valid": "2016-06-01", "place": "Moscow"}, EDITOR)
    misfiled = now_known(registry)
    assert registry.reader.view(dialogue, as_of, misfiled)["meetings"]["held"] == 1

    # The registration is corrected: the meeting belongs to the Joint Committee.
    registration = registry.reader.events(0, 10, record="ru-eu-readmission-joint-committee-16")["items"][0]
    registry.correct(registration["id"], {"changes": {"series": COMMITTEE}, "reason": "wrong series"}, EDITOR)

    # Now the committee counts it and the dialogue does not.
    assert registry.reader.view(COMMITTEE, as_of, None)["meetings"]["held"] == 2
    assert registry.reader.view(dialogue, as_of, None)["meetings"]["held"] == 0
    # As the registry stated it before the correction, the dialogue still counts it, the committee not.
    assert registry.reader.view(COMMITTEE, as_of, misfiled)["meetings"]["held"] == 1
    assert registry.reader.view(dialogue, as_of, misfiled)["meetings"] == {
        "held": 1,
        "last_ordinal": 16,
        "last": {"id": "ru-eu-readmission-joint-committee-16", "ordinal": 16, "valid": "2016-06-01",
                 "place": "Moscow"},
        "next": None,
    }


@pytest.fixture
def seeded(registry: Registry) -> Registry:
    seed(registry)
    # The EU-Russia visa facilitation agreement: signed 25 May 2006 in Sochi, in force 1 June 2007.
    registry.register("agreements", {"id": "ru-eu-visa-facilitation-agreement",
                                     "title": "Agreement on the facilitation of the issuance of visas",
                                     "parties": ["RU", "eu"]}, EDITOR)
    registry.append("agreements", "ru-eu-visa-facilitation-agreement",
                    {"type": "signed", "valid": "2006-05-25", "place": "Sochi"}, EDITOR)
    registry.append("agreements", "ru-eu-visa-facilitation-agreement",
                    {"type": "entered_into_force", "valid": "2007-06-01"}, EDITOR)
    # A hypothetical 18th meeting, planned at the 17th for some time in 2018 and never held.
    registry.register("meetings", {"id": "ru-eu-readmission-joint-committee-18",
                                   "title": "18th meeting of the Joint Committee",
                                   "series": COMMITTEE, "ordinal": 18}, EDITOR)
    registry.append("meetings", "ru-eu-readmission-joint-committee-18",
                    {"type": "scheduled", "valid": "2017-10-04", "planned": "2018", "place": "Moscow"}, EDITOR)
    return registry


def test_lists_hold_records_with_a_world_event_by_the_day(seeded: Registry) -> None:
    reader = seeded.reader
    # Before 2006 only the protocols (signed on an unknown day up to 2026) may have happened.
    assert ids(reader.list("agreements", dt.date(2005, 12, 31), None)) == ["ru-eu-readmission-implementing-protocols"]
    # From 1 January 2006 the readmission agreement's signing is uncertain, and it is listed.
    early_2006 = reader.list("agreements", dt.date(2006, 1, 1), None)
    assert ids(early_2006) == [AGREEMENT, "ru-eu-readmission-implementing-protocols"]
    assert early_2006["items"][0]["status"] is None and early_2006["items"][0]["uncertain"]
    # The visa agreement joins on its signing day.
    assert "ru-eu-visa-facilitation-agreement" not in ids(reader.list("agreements", dt.date(2006, 5, 24), None))
    assert "ru-eu-visa-facilitation-agreement" in ids(reader.list("agreements", dt.date(2006, 5, 25), None))
    # Organisations are listed from their first world event (the EU from 1 November 1993; FRONTEX's
    # undated rename may have happened on any day); their views exist before it.
    assert ids(reader.list("organisations", dt.date(1993, 10, 31), None)) == ["frontex"]
    assert ids(reader.list("organisations", dt.date(1993, 11, 1), None)) == ["eu", "frontex"]
    assert ids(reader.list("organisations", None, None)) == ["eu", "frontex", "fsb-border-guard-service"]
    assert reader.view("eu", dt.date(1990, 1, 1), None)["name"] == "European Union"
    assert reader.list("agreements", NEW_YEAR_2009, None)["as_of"] == "2009-01-01"


def test_list_filters_by_status_and_party(seeded: Registry) -> None:
    reader = seeded.reader
    in_force = reader.list("agreements", NEW_YEAR_2009, None, status="in_force")
    assert ids(in_force) == [AGREEMENT, "ru-eu-visa-facilitation-agreement"]
    assert all(item["status"] == "in_force" for item in in_force["items"])
    assert ids(reader.list("agreements", NEW_YEAR_2009, None, status="terminated")) == []

    # The protocols are Russia's alone; the agreements have the EU as a party.
    assert ids(reader.list("agreements", NEW_YEAR_2009, None, party="eu")) == [
        AGREEMENT, "ru-eu-visa-facilitation-agreement"]
    assert len(ids(reader.list("agreements", NEW_YEAR_2009, None, party="RU"))) == 3
    assert ids(reader.list("agreements", NEW_YEAR_2009, None, party="FR")) == []
    assert ids(reader.list("agreements", NEW_YEAR_2009, None, status="in_force", party="RU")) == [
        AGREEMENT, "ru-eu-visa-facilitation-agreement"]

    # A meeting planned for 2018 is scheduled during 2018 and overdue once 2018 has passed.
    assert ids(reader.list("meetings", dt.date(2018, 6, 1), None, status="scheduled")) == [
        "ru-eu-readmission-joint-committee-18"]
    assert ids(reader.list("meetings", dt.date(2019, 1, 1), None, status="overdue")) == [
        "ru-eu-readmission-joint-committee-18"]
    committee = reader.view(COMMITTEE, dt.date(2018, 6, 1), None)["meetings"]
    assert committee["next"] == {"id": "ru-eu-readmission-joint-committee-18", "planned": "2018", "place": "Moscow"}
    assert reader.view(COMMITTEE, dt.date(2019, 1, 1), None)["meetings"]["next"] is None


@pytest.mark.parametrize("status", [None, "in_force"])
def test_cursor_paging_walks_a_list_one_by_one(seeded: Registry, status: str | None) -> None:
    full = ids(seeded.reader.list("agreements", NEW_YEAR_2009, None, status=status))
    walked: list[str] = []
    cursor_id = None
    for _ in range(len(full) + 1):
        page = seeded.reader.list("agreements", NEW_YEAR_2009, None, status=status, limit=1, cursor_id=cursor_id)
        walked.extend(ids(page))
        assert len(page["items"]) == 1
        cursor_id = page["next"]
        if cursor_id is None:
            break
        assert cursor_id == page["items"][0]["id"]
    assert cursor_id is None
    assert walked == full
    assert len(full) >= 2


def test_timeline_windows_and_filters(seeded: Registry) -> None:
    timeline = seeded.reader.timeline

    # 2017-2018: the 17th meeting, the Sofia session, and the undated facts that may fall in it.
    window = timeline(dt.date(2017, 1, 1), dt.date(2018, 12, 31))["items"]
    assert [(i["record"], i["type"]) for i in window] == [
        (COMMITTEE, "established"),  # [..2017-10-04]: lower bound open, ends first
        ("frontex", "renamed"),  # [..2026-11-29], logged before the protocols
        ("ru-eu-readmission-implementing-protocols", "signed"),  # [..2026-11-29]
        (MEETING_17, "held"),  # 2017-10-04, logged before the schedule of the 18th
        ("ru-eu-readmission-joint-committee-18", "scheduled"),  # 2017-10-04
        ("ru-eu-migration-dialogue-sofia-2018", "held"),  # 2018-04-04/2018-04-05
    ]
    keys = [(i["valid_lower"], i["valid_upper"] or "9999-12-31", i["position"]) for i in window]
    assert keys == sorted(keys)

    # Filters by kind, type and record.
    meetings = timeline(dt.date(2017, 1, 1), dt.date(2018, 12, 31), kind="meeting")["items"]
    assert [(i["record"], i["type"]) for i in meetings] == [
        (MEETING_17, "held"),
        ("ru-eu-readmission-joint-committee-18", "scheduled"),
        ("ru-eu-migration-dialogue-sofia-2018", "held"),
    ]
    held = timeline(None, None, type="held")["items"]
    assert [i["record"] for i in held] == [MEETING_17, "ru-eu-migration-dialogue-sofia-2018"]
    agreement = timeline(None, None, record=AGREEMENT)["items"]
    assert [i["type"] for i in agreement] == ["signed", "entered_into_force", "scope_extended"]

    # An interval meets a window that touches either of its days.
    sofia = "ru-eu-migration-dialogue-sofia-2018"
    assert [i["record"] for i in timeline(dt.date(2018, 4, 5), None, kind="meeting")["items"]] == [sofia]
    assert [i["record"] for i in timeline(dt.date(2018, 4, 6), None, kind="meeting")["items"]] == []
    assert sofia in [i["record"] for i in timeline(None, dt.date(2018, 4, 4), kind="meeting")["items"]]
    assert sofia not in [i["record"] for i in timeline(None, dt.date(2018, 4, 3), kind="meeting")["items"]]

    # Everything up to the end of 2006, in valid order: "2006" sorts before 25 May 2006 (same start, wider).
    to_2006 = [(i["record"], i["type"]) for i in timeline(None, dt.date(2006, 12, 31), kind="agreement")["items"]]
    assert to_2006 == [
        ("ru-eu-readmission-implementing-protocols", "signed"),
        (AGREEMENT, "signed"),
        ("ru-eu-visa-facilitation-agreement", "signed"),
    ]


def test_timeline_reads_corrections_and_drops_retractions(registry: Registry) -> None:
    registry.register("agreements", {"id": AGREEMENT, "title": "Agreement on Readmission"}, EDITOR)
    registry.append("agreements", AGREEMENT, {"type": "signed", "valid": "2006"}, EDITOR)
    typo = registry.append("agreements", AGREEMENT, {"type": "entered_into_force", "valid": "2005-06-01"}, EDITOR)
    mistake = registry.append("agreements", AGREEMENT,
                              {"type": "suspended", "valid": "2008-07", "extent": "whole"}, EDITOR)
    registry.correct(typo["id"], {"changes": {"valid": "2007-06-01"}, "reason": "typo"}, EDITOR)
    registry.retract(mistake["id"], {"reason": "wrong record"}, EDITOR)

    items = registry.reader.timeline(None, None, record=AGREEMENT)["items"]
    assert [(i["type"], i["state"]) for i in items] == [("signed", "current"), ("entered_into_force", "corrected")]
    assert items[1]["effective"]["valid"] == "2007-06-01"
    # The window follows the corrected date, not the mistyped one.
    assert registry.reader.timeline(dt.date(2005, 1, 1), dt.date(2005, 12, 31), record=AGREEMENT)["items"] == []
