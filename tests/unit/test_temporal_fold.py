"""The temporal fold: a record's log read with corrections, folded along valid time into segments."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

from events import CATALOGUE, ValidTime
from events.temporal import BEFORE_ALL, Knowledge, read_log, segments

AGREEMENT = "ru-eu-readmission-agreement"
READMISSION = {"title": "Agreement on Readmission", "short_title": "Readmission Agreement",
               "agreement_type": "agreement", "parties": ["RU", "eu"], "parent": None}
SCOPE = "nationals of third countries and stateless persons"

Envelope = dict[str, Any]
State = dict[str, Any]


def registered(data: dict[str, Any], kind: str = "agreement", record: str = AGREEMENT) -> Envelope:
    return {"id": "registered", "position": 1, "record": record, "kind": kind, "version": 1,
            "type": "registered", "valid": None, "data": data}


def event(event_id: str, position: int, type_name: str, valid: str | None, kind: str = "agreement",
          **data: Any) -> Envelope:
    return {"id": event_id, "position": position, "record": AGREEMENT, "kind": kind, "version": position,
            "type": type_name, "valid": valid, "data": data}


def correction(event_id: str, position: int, target: str, **changes: Any) -> Envelope:
    return event(event_id, position, "corrected", None, target=target, changes=changes, reason="a better source")


def retraction(event_id: str, position: int, target: str) -> Envelope:
    return event(event_id, position, "retracted", None, target=target, reason="no source supports it")


def view_at(segs: list[tuple[int, State]], day: dt.date) -> State:
    """The state of the last segment starting on or before `day`."""
    return [state for first, state in segs if first <= day.toordinal()][-1]


def fold_log(*envelopes: Envelope) -> list[tuple[int, State]]:
    return segments(read_log(envelopes))


def day(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


# Valid order, not recording order.


def test_a_signature_recorded_after_entry_into_force_still_folds_first() -> None:
    # Step 1: the registry learns of the entry into force first, then of the signature in Sochi.
    segs = fold_log(
        registered(READMISSION),
        event("in-force", 2, "entered_into_force", "2007-06-01"),
        event("signed", 3, "signed", "2006-05-25", place="Sochi"),
    )
    # Step 2: each day shows what had happened by then, in the order it happened.
    assert view_at(segs, day("2006-05-24"))["view"]["status"] is None
    assert view_at(segs, day("2006-05-25"))["view"]["status"] == "signed"
    later = view_at(segs, day("2008-01-01"))["view"]
    assert (later["status"], later["signed"], later["entered_into_force"]) == ("in_force", "2006-05-25", "2007-06-01")


def test_the_registration_alone_is_one_segment_without_world() -> None:
    segs = fold_log(registered(READMISSION))
    assert segs == [(BEFORE_ALL, {"view": {"status": None, **CATALOGUE.kinds["agreement"].initial(READMISSION)},
                                  "uncertain": [], "has_world": False})]


# Reduced precision is uncertainty.


def test_a_signature_in_2006_is_uncertain_during_2006() -> None:
    segs = fold_log(registered(READMISSION), event("signed", 2, "signed", "2006"))
    # Step 1: before 2006 nothing has happened in the world.
    before = view_at(segs, day("2005-12-31"))
    assert (before["has_world"], before["uncertain"], before["view"]["status"]) == (False, [], None)
    # Step 2: during 2006 the signature may have happened: listed, not folded.
    during = view_at(segs, day("2006-12-30"))
    assert (during["has_world"], during["uncertain"], during["view"]["status"]) == (True, ["signed"], None)
    # Step 3: from the last day of 2006 it has certainly happened.
    after = view_at(segs, day("2006-12-31"))
    assert (after["uncertain"], after["view"]["status"], after["view"]["signed"]) == ([], "signed", "2006")
    assert [first for first, _ in segs] == [BEFORE_ALL, day("2006-01-01").toordinal(), day("2006-12-31").toordinal()]


def test_a_year_fact_that_becomes_certain_late_is_refolded_before_earlier_certain_facts() -> None:
    # Signed "in 2006" (certain only on 31 December) and in force from a known day inside 2006.
    segs = fold_log(
        registered(READMISSION),
        event("signed", 2, "signed", "2006"),
        event("in-force", 3, "entered_into_force", "2006-06-01"),
    )
    mid_year = view_at(segs, day("2006-07-01"))
    assert (mid_year["view"]["status"], mid_year["uncertain"]) == ("in_force", ["signed"])
    # Once both are certain the signature (lower bound 1 January) folds first.
    year_end = view_at(segs, day("2006-12-31"))
    assert (year_end["view"]["status"], year_end["view"]["signed"], year_end["uncertain"]) == ("in_force", "2006", [])


def test_the_by_compilation_set_makes_a_fact_uncertain_from_the_first_day() -> None:
    # The seed's protocols: signed on some day up to 29 November 2026.
    segs = fold_log(registered(READMISSION), event("signed", 2, "signed", "[..2026-11-29]"))
    assert view_at(segs, day("0001-01-01"))["has_world"] is True
    assert view_at(segs, day("2010-01-01"))["uncertain"] == ["signed"]
    assert view_at(segs, day("2026-11-29"))["view"]["status"] == "signed"
    assert segs[0][1]["has_world"] is False


# Order among certain facts: lower bound, then upper bound, then position.


def test_equal_lower_bounds_fold_the_narrower_fact_first() -> None:
    # Both start on 1 January 2022; the lifting (January) is narrower than the suspension (the year).
    segs = fold_log(
        registered(READMISSION),
        event("in-force", 2, "entered_into_force", "2007-06-01"),
        event("suspended", 3, "suspended", "2022", extent="whole"),
        event("lifted", 4, "suspension_lifted", "2022-01"),
    )
    assert view_at(segs, day("2022-02-01"))["view"]["status"] == "in_force"
    assert view_at(segs, day("2023-01-01"))["view"]["status"] == "suspended"


def test_equal_valid_times_fold_in_position_order() -> None:
    def latest_for_denmark(first: str, second: str) -> str:
        segs = fold_log(
            registered(READMISSION),
            event("a", 2, "territorial_application_changed", "2007-06-01", party="DK", change=first),
            event("b", 3, "territorial_application_changed", "2007-06-01", party="DK", change=second),
        )
        [change] = view_at(segs, day("2007-06-01"))["view"]["applies_to_changes"]
        return change["change"]

    assert latest_for_denmark("not_bound", "opted_in") == "opted_in"
    assert latest_for_denmark("opted_in", "not_bound") == "not_bound"


# Corrections and retractions.


def test_corrections_are_cumulative_and_the_latest_wins_per_field() -> None:
    log = [
        registered(READMISSION),
        event("denmark", 2, "territorial_application_changed", "2007-06-01", party="DK", change="not_bound"),
        correction("fix-change", 3, "denmark", change="opted_in"),
        correction("fix-party", 4, "denmark", party="IE"),
        correction("fix-change-again", 5, "denmark", change="not_bound"),
    ]
    knowledge = read_log(log)
    assert knowledge.effective["denmark"]["data"] == {"party": "IE", "change": "not_bound"}
    assert knowledge.states["denmark"] == "corrected"
    assert knowledge.corrections["denmark"] == ["fix-change", "fix-party", "fix-change-again"]
    # The log is read by position, whatever order it is given in.
    assert read_log(reversed(log)).effective == knowledge.effective
    [change] = view_at(segments(knowledge), day("2008-01-01"))["view"]["applies_to_changes"]
    assert change == {"party": "IE", "change": "not_bound", "valid": "2007-06-01"}


def test_a_correction_of_valid_time_moves_the_fact() -> None:
    segs = fold_log(
        registered(READMISSION),
        event("in-force", 2, "entered_into_force", "2007-07-01"),
        correction("fix-date", 3, "in-force", valid="2007-06-01"),
    )
    assert view_at(segs, day("2007-05-31"))["view"]["status"] is None
    assert view_at(segs, day("2007-06-01"))["view"]["entered_into_force"] == "2007-06-01"
    assert day("2007-07-01").toordinal() not in [first for first, _ in segs]


def test_a_retracted_fact_is_gone_and_later_corrections_of_it_are_ignored() -> None:
    knowledge = read_log([
        registered(READMISSION),
        event("signed", 2, "signed", "2006"),
        event("in-force", 3, "entered_into_force", "2007-06-01"),
        retraction("drop-signed", 4, "signed"),
        correction("too-late", 5, "signed", valid="2006-05-25"),
    ])
    assert [fact.id for fact in knowledge.facts] == ["in-force"]
    assert (knowledge.states["signed"], knowledge.retracted_by["signed"]) == ("retracted", "drop-signed")
    assert "signed" not in knowledge.corrections
    segs = segments(knowledge)
    view = view_at(segs, day("2008-01-01"))["view"]
    assert (view["signed"], view["status"]) == (None, "in_force")
    assert view_at(segs, day("2006-06-01"))["uncertain"] == []


def test_a_correction_of_the_registration_changes_every_segment() -> None:
    segs = fold_log(
        registered(READMISSION),
        event("in-force", 2, "entered_into_force", "2007-06-01"),
        correction("fix-title", 3, "registered", title="Agreement between the Russian Federation and the "
                                                       "European Community on readmission", parties=["RU", "eu"]),
    )
    titles = {state["view"]["title"] for _, state in segs}
    assert titles == {"Agreement between the Russian Federation and the European Community on readmission"}
    assert view_at(segs, day("2008-01-01"))["view"]["short_title"] == "Readmission Agreement"


# Facts recorded before they happen.


def test_a_scope_extension_known_in_advance_shows_only_from_2010() -> None:
    # Step 1: the extension to third-country nationals is recorded first, years ahead of its day.
    segs = fold_log(
        registered(READMISSION),
        event("scope", 2, "scope_extended", "2010-06-01", scope=SCOPE),
        event("signed", 3, "signed", "2006"),
        event("in-force", 4, "entered_into_force", "2007-06-01"),
    )
    # Step 2: the views before 1 June 2010 know nothing of it.
    before = view_at(segs, day("2010-05-31"))["view"]
    assert (before["status"], before["scope"]) == ("in_force", [])
    # Step 3: from that day on, the scope is extended and the agreement still in force.
    after = view_at(segs, day("2010-06-01"))["view"]
    assert after["status"] == "in_force"
    assert after["scope"] == [{"scope": SCOPE, "articles": [], "valid": "2010-06-01"}]


def test_has_world_is_false_before_the_earliest_lower_bound() -> None:
    segs = fold_log(
        registered(READMISSION),
        event("in-force", 2, "entered_into_force", "2007-06-01"),
        event("signed", 3, "signed", "2006"),
    )
    assert view_at(segs, day("2005-12-31"))["has_world"] is False
    assert view_at(segs, day("2006-01-01"))["has_world"] is True
    assert view_at(segs, day("2006-01-01"))["view"]["status"] is None


# The segments agree with folding each day from scratch.


def reference_state(knowledge: Knowledge, on: dt.date) -> State:
    """The view as of one day, by SPEC section 3, without segments."""
    view: dict[str, Any] = {"status": None, **CATALOGUE.kinds[knowledge.kind].initial(knowledge.registered)}
    certain = sorted((f for f in knowledge.facts if f.valid.certainty(on) == "certain"), key=lambda f: f.order)
    for fact in certain:
        CATALOGUE.event_type(knowledge.kind, fact.type).apply(view, fact)
    uncertain = sorted(f.id for f in knowledge.facts if f.valid.certainty(on) == "uncertain")
    return {"view": view, "uncertain": uncertain, "has_world": any(f.valid.lower <= on for f in knowledge.facts)}


def test_segments_match_a_day_by_day_fold_of_a_shuffled_membership_history() -> None:
    rng = random.Random(2006)
    valids = ["2004", "2004-05", "2004-05-01", "2007-01-01", "2007", "2013-07-01", "2013-41", "2020-01-31",
              "2020", "2020-02-01/2020-12-31"]
    parties = ["CY", "CZ", "EE", "HR", "GB", "BG", "RO"]
    for _ in range(25):
        log = [registered({"name": "European Union", "acronym": "EU"}, kind="organisation", record="eu")]
        for position in range(2, 12):
            type_name = rng.choice(["member_joined", "member_left"])
            log.append(event(f"e{position}", position, type_name, rng.choice(valids), kind="organisation",
                             party=rng.choice(parties)))
        rng.shuffle(log)
        knowledge = read_log(log)
        segs = segments(knowledge)
        days = sorted({d for f in knowledge.facts for d in (f.valid.lower, f.valid.certain_from)})
        for on in [dt.date(2003, 1, 1), *days, *(d + dt.timedelta(days=1) for d in days)]:
            assert view_at(segs, on) == reference_state(knowledge, on), on
        assert all(ValidTime.parse(f.valid.text) == f.valid for f in knowledge.facts)
