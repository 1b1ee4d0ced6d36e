"""The projection keeps views incrementally; whatever order facts arrive in, it must match a full fold."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import pytest

from events import ValidTime, meeting_status
from events.temporal import read_log, segments
from registry.service import Registry

EDITOR = "registry-editor"
AGREEMENT = "ru-eu-readmission-agreement"
MEETING = "ru-eu-readmission-joint-committee-18"

# The readmission agreement's life, with the precisions the sources give (some hypothetical after 2010).
AGREEMENT_FACTS: list[dict[str, Any]] = [
    {"type": "signed", "valid": "2006", "place": "Sochi"},
    {"type": "concluded", "valid": "2007-04-26~", "party": "eu", "act": "Council Decision 2007/341/EC"},
    {"type": "concluded", "valid": "2007-05", "party": "RU", "act": "Federal Law"},
    {"type": "entered_into_force", "valid": "2007-06-01"},
    {"type": "territorial_application_changed", "valid": "2007-06-01", "party": "DK", "change": "not_bound"},
    {"type": "scope_extended", "valid": "2010-06-01", "scope": "nationals of third countries and stateless persons"},
    {"type": "suspended", "valid": "2022-03/2022-06", "extent": "partial", "provisions": ["Article 3"]},
    {"type": "suspension_lifted", "valid": "2023"},
]

# A hypothetical 18th Joint Committee meeting: planned, moved, then held over two days.
MEETING_FACTS: list[dict[str, Any]] = [
    {"type": "scheduled", "valid": "2017-10-04", "planned": "2018", "place": "Moscow"},
    {"type": "rescheduled", "valid": "2018-11", "planned": "2019-03", "place": "Brussels"},
    {"type": "held", "valid": "2019-03-12/2019-03-13", "place": "Brussels", "topics": ["returns"]},
]


def days_around(facts: list[dict[str, Any]]) -> list[dt.date]:
    """Every day where a view may change, and the day before it."""
    days = {dt.date(2000, 1, 1), dt.date(2030, 1, 1)}
    for fact in facts:
        valid = ValidTime.parse(fact["valid"])
        for day in (valid.lower, valid.certain_from, valid.upper):
            if day is not None:
                days.update({day, day - dt.timedelta(days=1), day + dt.timedelta(days=1)})
    return sorted(days)


def check_against_fold(registry: Registry, record_id: str, days: list[dt.date], known_at: dt.datetime) -> None:
    stamp = known_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    envelopes = [e for e in registry.reader.events(0, 1000, record=record_id)["items"] if e["recorded_at"] <= stamp]
    folded = segments(read_log(envelopes))
    for day in days:
        expected = [state for start, state in folded if start <= day.toordinal()][-1]
        view = registry.reader.view(record_id, day, known_at)
        fields = dict(expected["view"])
        status = fields.pop("status")
        if view["kind"] == "meeting":
            status = meeting_status({**fields, "status": status}, day)
        assert view["status"] == status, (record_id, day)
        assert view["uncertain"] == expected["uncertain"], (record_id, day)
        assert {k: view[k] for k in fields} == fields, (record_id, day)


@pytest.mark.parametrize("order", [0, 1, 2, 3])
def test_views_match_a_full_fold_whatever_the_arrival_order(registry: Registry, order: int) -> None:
    registry.register("organisations", {"id": "eu", "name": "European Union", "acronym": "EU"}, EDITOR)
    registry.register("agreements", {"id": AGREEMENT, "title": "Agreement on Readmission",
                                     "parties": ["RU", "eu"]}, EDITOR)
    registry.register("bodies", {"id": "ru-eu-readmission-joint-committee",
                                 "title": "Russia-EU Joint Committee on readmission"}, EDITOR)
    registry.register("meetings", {"id": MEETING, "title": "18th meeting of the Joint Committee",
                                   "series": "ru-eu-readmission-joint-committee", "ordinal": 18}, EDITOR)

    # The facts arrive in an order of their own (order 0: valid order; others shuffled, reproducibly).
    arrivals = [("agreements", AGREEMENT, f) for f in AGREEMENT_FACTS] + [
        ("meetings", MEETING, f) for f in MEETING_FACTS]
    if order:
        random.Random(order).shuffle(arrivals)

    instants = []
    for collection, record_id, fact in arrivals:
        registry.append(collection, record_id, fact, EDITOR)
        instants.append((record_id, dt.datetime.fromisoformat(registry.reader.head()["recorded_at"])))

    # At every instant, each record's views on every telling day are those of a full fold.
    agreement_days, meeting_days = days_around(AGREEMENT_FACTS), days_around(MEETING_FACTS)
    for record_id, known_at in instants:
        days = agreement_days if record_id == AGREEMENT else meeting_days
        check_against_fold(registry, record_id, days, known_at)

    # And the end state reads as the sources tell it.
    assert registry.reader.view(AGREEMENT, dt.date(2009, 1, 1), None)["status"] == "in_force"
    assert registry.reader.view(AGREEMENT, dt.date(2022, 4, 1), None)["suspensions"] == [
        {"provisions": ["Article 3"], "valid": "2022-03/2022-06"}]
    assert registry.reader.view(AGREEMENT, dt.date(2024, 1, 1), None)["suspensions"] == []
    assert registry.reader.view(MEETING, dt.date(2018, 6, 1), None)["status"] == "scheduled"
    assert registry.reader.view(MEETING, dt.date(2019, 1, 1), None)["status"] == "scheduled"
    assert registry.reader.view(MEETING, dt.date(2019, 3, 12), None)["status"] == "in_progress"
    assert registry.reader.view(MEETING, dt.date(2019, 3, 14), None)["status"] == "held"
