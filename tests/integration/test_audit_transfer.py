"""Export the log as CloudEvents lines and import it elsewhere: the copy is the same log.

The original holds the seed timeline, then later knowledge: the readmission
agreement's signature corrected to 25 May 2006 in Sochi, and a wrongly recorded
16th Joint Committee meeting retracted. Bad files and conflicting stores are
refused before anything is written.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from registry.audit.transfer import export_lines, import_lines
from registry.bootstrap import bootstrap
from registry.errors import Conflict, Invalid
from registry.log.chain import GENESIS, envelope_hash
from registry.seed import seed
from registry.service import Registry
from registry.settings import Settings

AGREEMENT = "ru-eu-readmission-agreement"
MEETING_16 = "ru-eu-readmission-joint-committee-16"
EDITOR = "registry-editor"
DAYS = [dt.date(2006, 6, 1), dt.date(2007, 6, 1), dt.date(2010, 6, 1), dt.date(2017, 10, 4), dt.date(2030, 1, 1)]


@pytest.fixture
def original(registry: Registry) -> Registry:
    seed(registry)
    signed = registry.reader.events(0, 100, record=AGREEMENT, type="signed")["items"][0]
    registry.correct(signed["id"], {"changes": {"valid": "2006-05-25", "place": "Sochi"}, "reason": "summit"}, EDITOR)
    registry.register("meetings", {"id": MEETING_16, "title": "16th meeting of the Joint Committee",
                                   "series": "ru-eu-readmission-joint-committee", "ordinal": 16}, EDITOR)
    held = registry.append("meetings", MEETING_16, {"type": "held", "valid": "2016~", "place": "Moscow"}, EDITOR)
    registry.retract(held["id"], {"reason": "no source gives this meeting"}, EDITOR)
    assert registry.reader.head()["position"] == 24
    return registry


@pytest.fixture
def copy(store_url: str, tmp_path: Path) -> Iterator[Registry]:
    """An empty store beside the original, on the same engine."""
    base, _, schema = store_url.partition("?schema=")
    url = f"{base}?schema={schema}_copy" if schema else str(tmp_path / "copy.sqlite")
    registry = bootstrap(Settings(database=url))
    yield registry
    registry.close()
    if schema:
        import psycopg

        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}_copy" CASCADE')


def export(registry: Registry, after: int = 0) -> list[str]:
    return list(export_lines(registry.database, after))


def load(registry: Registry, lines: list[str]) -> dict[str, int]:
    """Import `lines`, then bring the views up to date as `registry import` does (rebuilding
    them when ten events or more, and more than they hold, are new to them)."""
    result = import_lines(registry.store, lambda: iter(lines))
    registry.projection.refresh(rebuild_from=10)
    return result


def log_rows(registry: Registry) -> list[tuple[Any, ...]]:
    with registry.database.read() as cursor:
        rows = cursor.execute(
            "SELECT position, event_id, recorded_at, hash, envelope FROM {event_log} ORDER BY position").all()
    return [(*tuple(row)[:4], json.loads(row[4])) for row in rows]


def stored_events(registry: Registry) -> int:
    """How many events the eventsourcing library's own table holds."""
    name = registry.store.recorder.events_table_name  # type: ignore[attr-defined]
    table = f'"{registry.database.schema}".{name}' if registry.database.engine == "postgres" else name
    with registry.database.read() as cursor:
        return int(cursor.execute(f"SELECT COUNT(*) FROM {table}").scalar())


def views(registry: Registry) -> dict[str, Any]:
    """What readers see, at several valid days, as known at the head's instant."""
    reader = registry.reader
    known_at = dt.datetime.fromisoformat(reader.head()["recorded_at"])
    seen: dict[str, Any] = {"timeline": reader.timeline(None, None)}
    for day in DAYS:
        seen[f"snapshot {day}"] = reader.snapshot(day, known_at)
    for envelope in reader.events(0, 1000, type="registered")["items"]:
        seen[f"history {envelope['record']}"] = reader.history(envelope["record"], DAYS[-1], known_at)
    return seen


def rechained(lines: list[str], change: Callable[[dict[str, Any]], object]) -> list[str]:
    """The lines with `change` applied to every envelope and the hash chain recomputed (a forger's file)."""
    out, prev_hash = [], GENESIS
    for line in lines:
        item = json.loads(line)
        change(item["data"])
        item["data"]["prev_hash"] = prev_hash
        item["data"]["hash"] = prev_hash = envelope_hash(item["data"])
        item["id"] = item["data"]["id"]
        out.append(json.dumps(item) + "\n")
    return out


# Export

def test_export_streams_cloud_events_with_the_envelopes(original: Registry) -> None:
    lines = export(original)

    assert len(lines) == 24 and all(line.endswith("\n") and line.count("\n") == 1 for line in lines)
    events = [json.loads(line) for line in lines]
    for event, (position, event_id, recorded_at, row_hash, envelope) in zip(events, log_rows(original), strict=True):
        assert event["specversion"] == "1.0"
        assert event["id"] == event_id and event["source"] == "urn:cooperation-registry"
        assert event["type"] == f"registry.{envelope['kind']}.{envelope['type']}"
        assert event["subject"] == envelope["record"]
        assert event["time"] == recorded_at
        assert event["datacontenttype"] == "application/json"
        assert event["data"] == envelope and envelope["position"] == position and envelope["hash"] == row_hash
    assert [e["type"] for e in events[4:8]] == ["registry.agreement.registered", "registry.agreement.signed",
                                                "registry.agreement.entered_into_force",
                                                "registry.agreement.scope_extended"]
    assert {e["type"] for e in events[-4:]} >= {"registry.agreement.corrected", "registry.meeting.retracted"}
    # `after` resumes an export; past the head there is nothing.
    assert [json.loads(line)["data"]["position"] for line in export(original, after=20)] == [21, 22, 23, 24]
    assert export(original, after=24) == []


# Import

def test_import_into_an_empty_store_reproduces_the_log(original: Registry, copy: Registry) -> None:
    result = load(copy, export(original))

    assert result == {"read": 24, "written": 24, "skipped": 0}
    assert copy.projection.active_version() == 2  # the whole log was new to the views: rebuilt beside them
    # The same positions, times of recording, hashes and envelopes: the copy verifies against the original's head.
    assert log_rows(copy) == log_rows(original)
    assert copy.reader.head() == original.reader.head()
    assert stored_events(copy) == 24
    report = copy.auditor.verify()
    assert (report["ok"], report["projections"]) == (True, "verified")
    assert copy.auditor.verify(start=24, head_hash=original.reader.head()["hash"])["ok"] is True
    # Readers see the same registry, including the correction and the retraction.
    assert views(copy) == views(original)
    # And the copy carries on from the original's head.
    appended = copy.append("agreements", AGREEMENT, {"type": "suspended", "valid": "2022-03", "extent": "partial",
                                                     "provisions": ["Article 3"]}, EDITOR)
    assert (appended["position"], appended["prev_hash"]) == (25, original.reader.head()["hash"])
    assert copy.auditor.verify()["ok"] is True


def test_importing_twice_is_idempotent(original: Registry, copy: Registry) -> None:
    lines = export(original)
    load(copy, lines)

    assert load(copy, lines) == {"read": 24, "written": 0, "skipped": 24}
    assert log_rows(copy) == log_rows(original)
    assert stored_events(copy) == 24
    # The original itself holds every event of its own export.
    assert load(original, lines)["written"] == 0


@pytest.mark.parametrize("rest", ["the whole file", "the rest only"])
def test_import_completes_a_partly_filled_store(original: Registry, copy: Registry, rest: str) -> None:
    # An earlier import stopped after the agreement's scope extension (position 8).
    load(copy, export(original)[:8])
    assert copy.reader.head() == last_position(original, 8)
    assert copy.projection.active_version() == 1  # eight events: caught up one by one

    lines = export(original) if rest == "the whole file" else export(original, after=8)
    result = load(copy, lines)

    assert result["written"] == 16 and result["skipped"] == len(lines) - 16
    assert log_rows(copy) == log_rows(original)
    assert copy.auditor.verify()["ok"] is True
    assert views(copy) == views(original)


def last_position(registry: Registry, position: int) -> dict[str, Any]:
    row = next(r for r in log_rows(registry) if r[0] == position)
    return {"position": position, "recorded_at": row[2], "hash": row[3]}


# Bad files: refused, nothing written

def corrupt_line(lines: list[str]) -> list[str]:
    return [*lines[:5], lines[5].replace('"data": {', '"data": {{', 1), *lines[6:]]


def truncated_mid_line(lines: list[str]) -> list[str]:
    return [*lines[:-1], lines[-1][: len(lines[-1]) // 2]]


def edited_event(lines: list[str]) -> list[str]:
    # The agreement signed in 2005, not 2006; the hash is left as it was.
    return [*lines[:5], lines[5].replace('"valid": "2006"', '"valid": "2005"'), *lines[6:]]


def edited_and_rehashed(lines: list[str]) -> list[str]:
    item = json.loads(lines[5])
    item["data"]["valid"] = "2005"
    item["data"]["hash"] = envelope_hash(item["data"])
    return [*lines[:5], json.dumps(item) + "\n", *lines[6:]]


def line_removed(lines: list[str]) -> list[str]:
    return [*lines[:6], *lines[7:]]


def lines_swapped(lines: list[str]) -> list[str]:
    return [*lines[:4], lines[5], lines[4], *lines[6:]]


def no_envelope(lines: list[str]) -> list[str]:
    return [*lines[:3], json.dumps({"specversion": "1.0", "id": "x", "data": {"note": "hello"}}) + "\n", *lines[4:]]


def empty(lines: list[str]) -> list[str]:
    return ["\n"]


DAMAGES = [corrupt_line, truncated_mid_line, edited_event, edited_and_rehashed, line_removed, lines_swapped,
           no_envelope, empty]


@pytest.mark.parametrize("damage", DAMAGES, ids=[d.__name__ for d in DAMAGES])
@pytest.mark.parametrize("filled", [0, 3])
def test_a_bad_file_is_refused_and_nothing_is_written(original: Registry, copy: Registry,
                                                      damage: Callable[[list[str]], list[str]], filled: int) -> None:
    lines = export(original)
    assert edited_event(lines) != lines
    if filled:
        load(copy, lines[:filled])
    before = copy.reader.head()
    bad = damage(lines)

    with pytest.raises(Invalid) as refused:
        import_lines(copy.store, lambda: iter(bad))

    assert "line" in str(refused.value) or "no events" in str(refused.value)
    assert copy.reader.head() == before
    assert stored_events(copy) == filled


def test_a_store_with_other_events_is_refused(original: Registry, copy: Registry) -> None:
    # The copy was used on its own: it registered the EU itself, so its position 1 is another event.
    copy.register("organisations", {"id": "eu", "name": "European Union", "acronym": "EU"}, EDITOR)
    before = copy.reader.head()

    with pytest.raises(Conflict, match="position 1"):
        import_lines(copy.store, lambda: iter(export(original)))

    assert copy.reader.head() == before and stored_events(copy) == 1


def test_a_rewritten_history_is_refused_by_the_store_that_holds_the_real_one(original: Registry) -> None:
    # A file whose own chain verifies, but which says the agreement was signed in 2005.
    forged = rechained(export(original), lambda e: e.update(valid="2005") if e["position"] == 6 else None)
    before = original.reader.head()

    with pytest.raises(Conflict, match="position 6"):
        import_lines(original.store, lambda: iter(forged))

    assert original.reader.head() == before and stored_events(original) == 24


def test_a_file_that_does_not_continue_the_store_is_refused(original: Registry, copy: Registry) -> None:
    # Events 11..24 cannot start an empty store, nor continue one that ends at 8.
    with pytest.raises(Conflict, match="ends at 0"):
        import_lines(copy.store, lambda: iter(export(original, after=10)))
    load(copy, export(original)[:8])
    with pytest.raises(Conflict, match="ends at 8"):
        import_lines(copy.store, lambda: iter(export(original, after=10)))
    assert copy.reader.head()["position"] == 8 and stored_events(copy) == 8


# Files whose chain verifies but whose events break the log's rules

def version_skipped(envelope: dict[str, Any]) -> None:
    if envelope["position"] == 8:  # the scope extension claims version 9 of the agreement, not 4
        envelope["version"] = 9


def time_goes_back(envelope: dict[str, Any]) -> None:
    if envelope["position"] == 11:
        envelope["recorded_at"] = "2001-01-01T00:00:00.000000Z"


def unknown_type(envelope: dict[str, Any]) -> None:
    if envelope["position"] == 8:
        envelope["type"] = "exploded"


def unreadable_valid_time(envelope: dict[str, Any]) -> None:
    if envelope["position"] == 8:
        envelope["valid"] = "June 2010"


RULES = [(version_skipped, 8), (time_goes_back, 11), (unknown_type, 8), (unreadable_valid_time, 8)]


@pytest.mark.parametrize(("breach", "line"), RULES, ids=[r.__name__ for r, _ in RULES])
def test_a_file_breaking_the_logs_rules_is_refused(original: Registry, copy: Registry,
                                                   breach: Callable[[dict[str, Any]], None], line: int) -> None:
    forged = rechained(export(original), breach)

    with pytest.raises(Invalid, match=rf"^line {line}\b"):
        import_lines(copy.store, lambda: iter(forged))

    assert copy.reader.head()["position"] == 0 and stored_events(copy) == 0


def meetings(lines: list[str], count: int) -> list[str]:
    """The Joint Committee's 18th, 19th... meetings, registered and held a week apart (a long file)."""
    registered, held = (json.loads(line) for line in lines[12:14])
    assert held["data"]["record"] == "ru-eu-readmission-joint-committee-17"
    recorded_at, items = json.loads(lines[-1])["data"]["recorded_at"], []
    for number in range(count):
        record, ordinal = f"ru-eu-readmission-joint-committee-{18 + number}", 18 + number
        day = (dt.date(2018, 1, 1) + dt.timedelta(weeks=number)).isoformat()
        for template, data in ((registered, {**registered["data"]["data"], "ordinal": ordinal,
                                             "title": f"{ordinal}th meeting of the Joint Committee"}),
                               (held, {**held["data"]["data"]})):
            envelope = {**template["data"], "id": f"00000000-0000-4000-8000-{len(items):012d}", "record": record,
                        "position": len(lines) + len(items) + 1, "recorded_at": recorded_at, "data": data}
            if template is held:
                envelope.update(valid=day, valid_lower=day, valid_upper=day)
            items.append(json.dumps({**template, "id": envelope["id"], "subject": record,
                                     "time": envelope["recorded_at"], "data": envelope}) + "\n")
    return rechained([*lines, *items], lambda e: None)


def test_a_long_file_imports_in_batches(original: Registry, copy: Registry) -> None:
    lines = meetings(export(original), 600)

    assert load(copy, lines) == {"read": 1224, "written": 1224, "skipped": 0}
    assert copy.auditor.verify()["ok"] is True
    # The Joint Committee has held its 17th meeting and the 600 that followed, the last on 2029-06-25.
    committee = copy.reader.view("ru-eu-readmission-joint-committee", DAYS[-1], None)
    assert committee["meetings"]["held"] == 601
    assert committee["meetings"]["last"]["valid"] == "2029-06-25"


def test_a_long_file_refused_late_writes_nothing(original: Registry, copy: Registry) -> None:
    # Refused in its second batch of a thousand events: line 1100 reuses the event id of FRONTEX's
    # registration (line 3), with the chain recomputed.
    lines = meetings(export(original), 600)
    item = json.loads(lines[1099])
    item["data"]["id"] = item["id"] = json.loads(lines[2])["data"]["id"]
    lines = rechained([*lines[:1099], json.dumps(item) + "\n", *lines[1100:]], lambda e: None)

    with pytest.raises(Conflict):
        import_lines(copy.store, lambda: iter(lines))

    assert copy.reader.head()["position"] == 0 and stored_events(copy) == 0
