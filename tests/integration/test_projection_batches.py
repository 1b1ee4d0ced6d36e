"""The views do not depend on how the log is cut into catch-up batches."""

from __future__ import annotations

import datetime as dt
from typing import Any

from registry.seed import seed
from registry.service import Registry

EDITOR = "editor"
AGREEMENT = "ru-eu-readmission-agreement"


def stored_views(registry: Registry) -> list[tuple[Any, ...]]:
    with registry.database.read() as cursor:
        active = registry.projection.active(cursor)
        rows = active.execute(
            "SELECT record, valid_from, sys_from, sys_to, state FROM {view_segments}"
            " ORDER BY record, valid_from, sys_from").all()
        rows += active.execute(
            "SELECT record, sys_from, last_day, 0, '' FROM {head_days} ORDER BY record, sys_from").all()
    return [tuple(row) for row in rows]


def test_same_day_events_build_the_same_views_one_by_one_and_in_batches(registry: Registry) -> None:
    # The seed, then several facts landing on days the agreement already has.
    seed(registry)
    registry.append("agreements", AGREEMENT, {"type": "concluded", "valid": "2010-06-01", "party": "RU"}, EDITOR)
    registry.append("agreements", AGREEMENT, {"type": "concluded", "valid": "2010-06-01", "party": "DE"}, EDITOR)
    registry.append("agreements", AGREEMENT, {"type": "suspended", "valid": "2010-06", "extent": "partial",
                                              "provisions": ["Article 3"]}, EDITOR)
    registry.append("organisations", "frontex", {"type": "renamed", "valid": "2030-01-01", "name": "A"}, EDITOR)
    registry.append("organisations", "frontex", {"type": "renamed", "valid": "2030-01-01", "name": "B"}, EDITOR)
    live = stored_views(registry)

    # Rebuilt one event per batch, then the whole log in one batch: the same rows, as the live views.
    registry.projection.rebuild(batch=1)
    assert stored_views(registry) == live
    registry.projection.rebuild(batch=10_000)
    assert stored_views(registry) == live
    assert registry.reader.view("frontex", dt.date(2031, 1, 1), None)["name"] == "B"
    assert registry.auditor.verify()["ok"] is True
