"""Rebuilding the views from the log: beside the live ones, switched atomically, resumable.

The store holds the seed timeline and later knowledge (a conclusion learnt late,
a corrected signature, a retracted meeting, a suspension), so that a rebuild has
refolds, corrections and retractions to replay.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest

from api import create_app
from registry.bootstrap import StoreOutdated, bootstrap, upgrade
from registry.errors import NotFound
from registry.seed import seed
from registry.service import Registry
from registry.settings import Settings

AGREEMENT = "ru-eu-readmission-agreement"
COMMITTEE = "ru-eu-readmission-joint-committee"
EDITOR = "registry-editor"
DAYS = [dt.date(2005, 1, 1), dt.date(2006, 6, 1), dt.date(2007, 6, 1), dt.date(2010, 6, 1), dt.date(2017, 10, 4),
        dt.date(2019, 1, 1), dt.date(2030, 1, 1)]


class Interrupted(Exception):
    """The rebuilding process is stopped (Ctrl-C, a crash) after a batch has committed."""


def known_now(registry: Registry) -> dt.datetime:
    return dt.datetime.fromisoformat(registry.reader.head()["recorded_at"])


@pytest.fixture
def instants(registry: Registry) -> list[dt.datetime]:
    """The seed, then later knowledge; returns instants to ask at."""
    seed(registry)
    instants = [known_now(registry)]
    registry.append("agreements", AGREEMENT, {"type": "concluded", "valid": "2007-05", "party": "RU"}, EDITOR)
    registry.register("meetings", {"id": f"{COMMITTEE}-16", "title": "16th meeting", "series": COMMITTEE,
                                   "ordinal": 16}, EDITOR)
    held = registry.append("meetings", f"{COMMITTEE}-16", {"type": "held", "valid": "2016~", "place": "Moscow"},
                           EDITOR)
    instants.append(known_now(registry))
    signed = registry.reader.events(0, 100, record=AGREEMENT, type="signed")["items"][0]
    registry.correct(signed["id"], {"changes": {"valid": "2006-05-25", "place": "Sochi"}, "reason": "summit"}, EDITOR)
    registry.retract(held["id"], {"reason": "no source gives this meeting"}, EDITOR)
    registry.append("agreements", AGREEMENT, {"type": "suspended", "valid": "2022-03", "extent": "partial",
                                              "provisions": ["Article 3"]}, EDITOR)
    instants.append(known_now(registry))
    assert registry.reader.head()["position"] == 28
    return instants


def views(registry: Registry, instants: list[dt.datetime]) -> dict[str, Any]:
    """Every read the projection serves, at several points on both time axes."""
    reader = registry.reader
    records = [e["record"] for e in reader.events(0, 1000, type="registered")["items"]]
    seen: dict[str, Any] = {"timeline": reader.timeline(None, None),
                            "timeline 2006-2010": reader.timeline(dt.date(2006, 1, 1), dt.date(2010, 12, 31))}
    for known_at in instants:
        for day in DAYS:
            seen[f"snapshot {day} {known_at}"] = reader.snapshot(day, known_at)
            seen[f"meetings {day} {known_at}"] = reader.list("meetings", day, known_at)
            for record_id in records:
                try:
                    seen[f"view {record_id} {day} {known_at}"] = reader.view(record_id, day, known_at)
                    seen[f"history {record_id} {day} {known_at}"] = reader.history(record_id, day, known_at)
                except NotFound:
                    seen[f"view {record_id} {day} {known_at}"] = "not known then"
    return seen


def projection_tables(registry: Registry) -> set[str]:
    database = registry.database
    with database.read() as cursor:
        if database.engine == "sqlite":
            rows = cursor.execute("SELECT name FROM sqlite_master WHERE type = 'table'").all()
        else:
            rows = cursor.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = ?",
                                  (database.schema,)).all()
    return {row[0] for row in rows if "_v" in row[0]}


def building(registry: Registry) -> int | None:
    with registry.database.read() as cursor:
        return cursor.execute("SELECT version FROM {projection_versions} WHERE name = 'building'").scalar()


def built(registry: Registry, version: int) -> int | None:
    """The position a projection version has applied."""
    with registry.database.read() as cursor:
        return cursor.execute("SELECT position FROM {projection_position} WHERE name = ?",
                              (f"views_v{version}",)).scalar()


def test_rebuild_switches_to_a_new_version_with_the_same_views(registry: Registry,
                                                                instants: list[dt.datetime]) -> None:
    before = views(registry, instants)
    assert registry.projection.active_version() == 1
    assert {"records_v1", "view_segments_v1", "timeline_v1"} <= projection_tables(registry)

    assert registry.projection.rebuild() == (2, 28)

    # Version 2 is live, version 1's tables and tracking are gone, and every read is the same.
    assert registry.projection.active_version() == 2 and building(registry) is None
    assert {"records_v2", "view_segments_v2", "timeline_v2"} <= projection_tables(registry)
    assert not any(name.endswith("_v1") for name in projection_tables(registry))
    with registry.database.read() as cursor:
        tracked = cursor.execute("SELECT name, position FROM {projection_position} WHERE name LIKE ?",
                                 ("views_v%",)).all()
    assert [tuple(row) for row in tracked] == [("views_v2", 28)]
    assert views(registry, instants) == before
    assert registry.auditor.verify()["ok"] is True
    # And again: version 3.
    assert registry.projection.rebuild() == (3, 28)
    assert views(registry, instants) == before


def interrupt_after(batches: int, done: list[int]) -> Callable[[int], None]:
    """A progress callback that stops the process once `batches` batches have committed."""

    def progress(count: int) -> None:
        done.append(count)
        if len(done) == batches:
            raise Interrupted

    return progress


def loaded(registry: Registry, version: int) -> tuple[str | None, int]:
    """How far a bulk load of `version` has got: its last record, and the events it has applied."""
    with registry.database.read() as cursor:
        through = cursor.execute("SELECT loaded_through FROM {projection_tables} WHERE version = ?",
                                 (version,)).scalar()
        events = cursor.versioned(version).execute("SELECT COUNT(*) FROM {head_days}").scalar()
    return through, int(events)


def test_an_interrupted_rebuild_resumes_where_it_stopped(registry: Registry, instants: list[dt.datetime]) -> None:
    before = views(registry, instants)

    # The rebuild is stopped after two batches of five events or more (a batch ends with a record).
    done: list[int] = []
    with pytest.raises(Interrupted):
        registry.projection.rebuild(batch=5, progress=interrupt_after(2, done))

    # The live views are untouched; version 2 holds the records loaded so far, every event of each.
    assert registry.projection.active_version() == 1 and building(registry) == 2
    assert views(registry, instants) == before
    through, events = loaded(registry, 2)
    assert 10 <= events == sum(done) < 28
    assert built(registry, 2) is None
    with registry.database.read() as cursor:
        records = [r[0] for r in cursor.versioned(2).execute("SELECT id FROM {records} ORDER BY id").all()]
        logged = cursor.execute("SELECT COUNT(*) FROM {event_log} WHERE record <= ?", (through,)).scalar()
    assert records[-1] == through and logged == events

    # Run again, it goes on with version 2 after the last record it loaded.
    resumed: list[int] = []
    assert registry.projection.rebuild(batch=5, progress=resumed.append) == (2, 28)
    assert sum(resumed) == 28 - events
    assert registry.projection.active_version() == 2 and building(registry) is None
    assert views(registry, instants) == before
    assert registry.auditor.verify()["ok"] is True


def test_a_build_stopped_at_a_position_is_completed_by_rebuild(registry: Registry,
                                                                instants: list[dt.datetime]) -> None:
    before = views(registry, instants)
    # As `rebuild` starts: version 2 is marked as being built, and built up to the scope extension (position 8).
    with registry.database.write() as cursor:
        cursor.execute("INSERT INTO {projection_versions} (name, version) VALUES ('building', 2)")
    assert registry.projection.build(2, batch=3, until=8) == 8
    assert views(registry, instants) == before

    resumed: list[int] = []
    assert registry.projection.rebuild(progress=resumed.append) == (2, 28)

    assert sum(resumed) == 20
    assert views(registry, instants) == before
    assert registry.auditor.verify()["ok"] is True


@pytest.mark.parametrize("when", ["after the first batch", "as the build finishes"])
def test_appends_made_during_a_rebuild_appear_after_the_switch(registry: Registry, instants: list[dt.datetime],
                                                               when: str) -> None:
    calls: list[int] = []

    def progress(count: int) -> None:
        # An editor records the Joint Committee's 18th meeting, in Moscow, while version 2 is being built.
        calls.append(count)
        if (when == "after the first batch" and len(calls) == 1) or (when == "as the build finishes"
                                                                     and sum(calls) == 28):
            registry.register("meetings", {"id": f"{COMMITTEE}-18", "title": "18th meeting", "series": COMMITTEE,
                                           "ordinal": 18}, EDITOR)
            registry.append("meetings", f"{COMMITTEE}-18", {"type": "held", "valid": "2019-04-18",
                                                            "place": "Moscow"}, EDITOR)

    assert registry.projection.rebuild(batch=6, progress=progress) == (2, 30)

    assert sum(calls) == 30
    meeting = registry.reader.view(f"{COMMITTEE}-18", None, None)
    assert (meeting["status"], meeting["place"]) == ("held", "Moscow")
    assert registry.reader.view(COMMITTEE, None, None)["meetings"]["last"]["id"] == f"{COMMITTEE}-18"
    assert registry.auditor.verify()["ok"] is True


def test_a_rebuild_sends_no_webhook_again(registry: Registry, instants: list[dt.datetime]) -> None:
    # A subscriber has been sent every event so far: its cursor is at the head of the log.
    subscription = registry.webhooks.subscribe({"url": "http://127.0.0.1:9/hooks/registry"}, "admin",
                                               "urn:cooperation-registry", allow_private=True)
    before = registry.webhooks.row(subscription["id"])
    assert before["position"] == 28

    registry.projection.rebuild()

    # Deliveries follow the log, not the views: nothing is due again.
    after = registry.webhooks.row(subscription["id"])
    assert {k: after[k] for k in ("position", "delivered", "next_attempt_at", "status")} == \
        {k: before[k] for k in ("position", "delivered", "next_attempt_at", "status")}


def test_views_stored_in_an_earlier_layout_are_rebuilt_by_the_upgrade_step(
        store_url: str, registry: Registry, instants: list[dt.datetime]) -> None:
    before = views(registry, instants)
    # As an earlier registry left them: no layout recorded, a timeline holding its own copy of each envelope.
    with registry.database.write() as cursor:
        cursor.execute("DELETE FROM {projection_tables}")
        active = registry.projection.active(cursor)
        active.execute("DROP TABLE {timeline}")
        active.execute("CREATE TABLE {timeline} (event_id TEXT PRIMARY KEY, record TEXT NOT NULL, kind TEXT NOT NULL,"
                       " type TEXT NOT NULL, position BIGINT NOT NULL, valid_lower BIGINT NOT NULL, valid_upper BIGINT,"
                       " state TEXT NOT NULL, effective TEXT, envelope TEXT NOT NULL)")
    registry.close()

    # Opened again, the registry knows its views are outdated: the API refuses to serve them
    # until the explicit upgrade (which `serve` and `project` run) builds version 2 in today's layout.
    reopened = bootstrap(Settings(database=store_url))
    try:
        assert reopened.views_current is False
        with pytest.raises(StoreOutdated):
            create_app({"DATABASE": store_url, "FOLLOW_LOG": False})
        upgrade(reopened)
        assert reopened.projection.active_version() == 2
        assert {"records_v2", "timeline_v2"} <= projection_tables(reopened)
        assert not any(name.endswith("_v1") for name in projection_tables(reopened))
        assert views(reopened, instants) == before
        assert reopened.auditor.verify()["ok"] is True
        # And it appends as before.
        reopened.append("agreements", AGREEMENT, {"type": "terminated", "valid": "2030-01-01"}, EDITOR)
        assert reopened.reader.view(AGREEMENT, dt.date(2030, 6, 1), None)["status"] == "terminated"
    finally:
        reopened.close()


@pytest.mark.parametrize("old_tables", ["dropped", "kept"])
def test_a_process_that_read_before_a_rebuild_elsewhere_reads_the_new_version(
        store_url: str, registry: Registry, instants: list[dt.datetime], monkeypatch: pytest.MonkeyPatch,
        old_tables: str) -> None:
    """Another process rebuilds: this one's next view reads the version now active, whether the old
    one's tables are gone or (in the moment between the switch and their drop) still there."""
    reader = registry.reader
    assert reader.view(AGREEMENT, dt.date(2030, 1, 1), None)["status"] != "terminated"
    other = bootstrap(Settings(database=store_url))
    try:
        if old_tables == "kept":
            monkeypatch.setattr(other.projection, "drop", lambda version: None)
        assert other.projection.rebuild()[0] == 2
        other.append("agreements", AGREEMENT, {"type": "terminated", "valid": "2029-01-01"}, EDITOR)
    finally:
        other.close()
    assert ("records_v1" in projection_tables(registry)) is (old_tables == "kept")
    view = reader.view(AGREEMENT, dt.date(2030, 1, 1), None)
    assert view["status"] == "terminated"
    assert view["evidence"][-1]["type"] == "terminated"
    assert reader.view(AGREEMENT, dt.date(2030, 1, 1), instants[-1])["status"] != "terminated"
