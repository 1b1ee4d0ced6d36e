"""The meetings calendar tells a meeting still to come from one whose date has passed."""

from __future__ import annotations

import datetime as dt
import re

from registry.feeds.calendar import meetings_calendar
from registry.seed import seed
from registry.service import Registry

COMMITTEE = "ru-eu-readmission-joint-committee"


def statuses(registry: Registry) -> dict[str, str]:
    text = meetings_calendar(registry.reader, "http://registry.test").decode().replace("\r\n ", "")
    events = text.split("BEGIN:VEVENT")[1:]
    return {re.search(r"SUMMARY:(.*)\r", e).group(1): re.search(r"Status: (\w+)", e).group(1)  # type: ignore[union-attr]
            for e in events}


def test_a_future_plan_is_scheduled_and_a_past_one_overdue(registry: Registry) -> None:
    seed(registry)
    today = dt.datetime.now(dt.UTC).date()
    # The 18th meeting is planned for next year; the 19th was planned for last year and never held.
    registry.register("meetings", {"id": "jc-18", "title": "18th meeting", "series": COMMITTEE, "ordinal": 18}, "ed")
    registry.append("meetings", "jc-18", {"type": "scheduled", "valid": (today - dt.timedelta(days=30)).isoformat(),
                                          "planned": str(today.year + 1)}, "ed")
    registry.register("meetings", {"id": "jc-19", "title": "19th meeting", "series": COMMITTEE, "ordinal": 19}, "ed")
    registry.append("meetings", "jc-19", {"type": "scheduled", "valid": str(today.year - 2),
                                          "planned": str(today.year - 1)}, "ed")

    found = statuses(registry)

    assert found["18th meeting"] == "scheduled"
    assert found["19th meeting"] == "overdue"
    assert found["17th meeting of the Russia-EU Joint Committee on readmission"] == "held"
