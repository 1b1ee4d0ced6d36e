"""A rebuild loads the views record by record; it must store exactly the rows the live views hold.

The live views are kept event by event as the log grows. A rebuild loads a new
version from the whole log, a chunk of records at a time, in this process or in
worker processes. Both follow the same rules, so for any history every row must
agree: the segments on both time axes, the view bounds, the record index, the
timeline, series membership and the projection's own heads.

The histories start from the seed timeline and go on with facts a registry
editor could record: late and early knowledge, every precision EDTF allows,
corrections of dates, data and registrations (a meeting moved to another
series), and retractions.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import random
import signal
import time
from typing import Any

import orjson
import pytest

from registry.errors import Invalid
from registry.seed import seed
from registry.service import Registry
from registry.views import bulk_load

EDITOR = "registry-editor"
AGREEMENT = "ru-eu-readmission-agreement"
COMMITTEE = "ru-eu-readmission-joint-committee"
DIALOGUE = "ru-eu-migration-dialogue"
VALID_TIMES = ["2006", "2006-05", "2006-05-25", "2007-06-01", "2007-04-26~", "2007?", "2010-21", "2010-06-01",
               "2017-10-04", "2018-04-04/2018-04-05", "2019-03", "2020-07/..", "2022-03/2022-06", "2023",
               "[..2017-10-04]", "2016-01-01", "2005-12-31"]
TABLES = {
    "view_segments": "record, valid_from, sys_from, sys_to, state",
    "head_days": "record, sys_from, last_day",
    "records": "id, kind, registered_position",
    "timeline": "record, position, valid_lower, valid_upper, state, effective",
    "series_members": "series, meeting",
    "evidence": "record, position, certain_day, valid_lower, valid_upper, sys_from, sys_to, item",
    "search_hits": "record, position, matched, kind, digest",
    "search_texts": "digest, text",
}
INDEXED_WORDS = ("readmission", "migration", "committee", "frontex")


def stored(registry: Registry) -> dict[str, Any]:
    """Every row of the active projection version, in key order."""
    with registry.database.read() as cursor:
        active = registry.projection.active(cursor)
        rows = {table: [tuple(r) for r in active.execute(f"SELECT {columns} FROM {{{table}}} ORDER BY {columns}").all()]
                for table, columns in TABLES.items()}
        rows["heads"] = sorted((r[0], r[1], orjson.loads(r[2])) for r in active.execute(
            "SELECT record, kind, head FROM {heads}").all())
        rows["indexed"] = {word: indexed(active, word) for word in INDEXED_WORDS}
    return rows


def indexed(cursor: Any, word: str) -> list[bytes]:
    """The digests of the texts the search index finds `word` in (checked for consistency first)."""
    if cursor.database.engine == "sqlite":
        cursor.execute("INSERT INTO {search} ({search}, rank) VALUES ('integrity-check', 1)")
        found = cursor.execute("SELECT t.digest FROM {search} JOIN {search_texts} t ON t.id = {search}.rowid"
                               " WHERE {search} MATCH ? ORDER BY t.digest", (word,)).all()
    else:
        found = cursor.execute("SELECT digest FROM {search_texts} WHERE document @@ plainto_tsquery('english', ?)"
                               " ORDER BY digest", (word,)).all()
    assert found, f"the seed's texts hold {word!r}"
    return [bytes(row[0]) for row in found]


def a_history(registry: Registry, seed_number: int, events: int) -> None:
    """The seed, then `events` more writes drawn at random (reproducibly)."""
    chance = random.Random(seed_number)
    seed(registry)
    meetings = ["ru-eu-readmission-joint-committee-17"]
    for number in range(1, 6):  # meetings of the committee, some filed under the dialogue
        meeting = f"{COMMITTEE}-{17 + number}"
        registry.register("meetings", {"id": meeting, "title": f"Meeting {17 + number}",
                                       "series": chance.choice([COMMITTEE, DIALOGUE]), "ordinal": 17 + number},
                          EDITOR)
        meetings.append(meeting)
    writes = [
        lambda: registry.append("agreements", AGREEMENT, chance.choice([
            {"type": "concluded", "valid": chance.choice(VALID_TIMES), "party": chance.choice(["RU", "eu", "DE"])},
            {"type": "suspended", "valid": chance.choice(VALID_TIMES), "extent": chance.choice(["partial", "whole"]),
             "provisions": ["Article 3"]},
            {"type": "suspension_lifted", "valid": chance.choice(VALID_TIMES)},
            {"type": "scope_extended", "valid": chance.choice(VALID_TIMES), "scope": "stateless persons"},
            {"type": "territorial_application_changed", "valid": chance.choice(VALID_TIMES), "party": "DK",
             "change": chance.choice(["not_bound", "opted_in"])},
        ]), EDITOR),
        lambda: registry.append("meetings", chance.choice(meetings), chance.choice([
            {"type": "scheduled", "valid": chance.choice(VALID_TIMES), "planned": chance.choice(VALID_TIMES),
             "place": "Moscow"},
            {"type": "held", "valid": chance.choice(VALID_TIMES), "place": chance.choice(["Brussels", "Sofia"])},
            {"type": "cancelled", "valid": chance.choice(VALID_TIMES)},
        ]), EDITOR),
        lambda: registry.append("organisations", "frontex", chance.choice([
            {"type": "renamed", "valid": chance.choice(VALID_TIMES), "name": f"Agency {chance.randint(1, 9)}"},
            {"type": "member_joined", "valid": chance.choice(VALID_TIMES), "party": chance.choice(["DE", "FR"])},
        ]), EDITOR),
        lambda: correct(registry, chance, meetings),
        lambda: retract(registry, chance),
    ]
    for _ in range(events):
        with contextlib.suppress(Invalid):  # e.g. a retracted event chosen again: refused, nothing written
            chance.choices(writes, weights=[5, 4, 2, 2, 1])[0]()


def world_events(registry: Registry) -> list[dict[str, Any]]:
    return [e for e in registry.reader.events(0, 1000)["items"]
            if e["type"] not in ("registered", "corrected", "retracted")]


def correct(registry: Registry, chance: random.Random, meetings: list[str]) -> None:
    if chance.random() < 0.3:  # a meeting's registration: filed under the other series
        meeting = chance.choice(meetings)
        registered = registry.reader.events(0, 1, record=meeting)["items"][0]
        registry.correct(registered["id"], {"changes": {"series": chance.choice([COMMITTEE, DIALOGUE])},
                                            "reason": "the minutes name the other format"}, EDITOR)
        return
    target = chance.choice(world_events(registry))
    changes: dict[str, Any] = {"valid": chance.choice(VALID_TIMES)}
    if target["type"] == "held":
        changes["place"] = "Vienna"
    registry.correct(target["id"], {"changes": changes, "reason": "a better source"}, EDITOR)


def retract(registry: Registry, chance: random.Random) -> None:
    target = chance.choice(world_events(registry))
    registry.retract(target["id"], {"reason": "no source gives it"}, EDITOR)


@pytest.mark.parametrize("history", [1, 2, 3])
def test_a_rebuild_stores_the_rows_the_live_views_hold(registry: Registry, history: int) -> None:
    a_history(registry, history, 120)
    live = stored(registry)
    assert len(live["view_segments"]) > 150 and any(r[4] == "corrected" for r in live["timeline"])

    # Loaded in this process, in chunks of a record or two, and in one chunk: the same rows.
    registry.projection.rebuild(batch=3, workers=0)
    assert stored(registry) == live
    registry.projection.rebuild(batch=100_000, workers=0)
    assert stored(registry) == live
    assert registry.auditor.verify()["ok"] is True


def test_worker_processes_load_the_same_rows(registry: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    a_history(registry, 4, 120)
    live = stored(registry)
    folded_here: list[int] = []
    fold_chunk = bulk_load.fold_chunk

    def counted(database: Any, chunk: bulk_load.Chunk) -> bulk_load.Rows:
        rows = fold_chunk(database, chunk)
        folded_here.append(rows.events)
        time.sleep(0.2)  # slower than the workers, so that they take chunks once they have started
        return rows

    monkeypatch.setattr(bulk_load, "fold_chunk", counted)  # in this process only, not in the workers

    # This process and two worker processes take chunks in turn as each becomes free, and
    # each writes the rows it worked out, in chunk order.
    done: list[int] = []
    assert registry.projection.rebuild(batch=3, workers=2, progress=done.append)[1] == len(
        registry.reader.events(0, 1000)["items"])
    assert len(done) > 10 and sum(done) == registry.reader.head()["position"]
    assert 0 < len(folded_here) < len(done)
    assert stored(registry) == live
    assert registry.auditor.verify()["ok"] is True


class Interrupted(Exception):
    """The rebuilding process is stopped after some chunks have committed."""


def test_an_interrupted_load_with_workers_resumes_after_the_last_record_it_wrote(
        registry: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    a_history(registry, 5, 60)
    live = stored(registry)
    head = registry.reader.head()["position"]
    fold_chunk = bulk_load.fold_chunk

    def slowly(database: Any, chunk: bulk_load.Chunk) -> bulk_load.Rows:
        time.sleep(0.3)  # so that the workers, once started, write chunks this process has not reported yet
        return fold_chunk(database, chunk)

    monkeypatch.setattr(bulk_load, "fold_chunk", slowly)
    done: list[int] = []

    def stop_after_three(count: int) -> None:
        done.append(count)
        if len(done) == 3:
            raise Interrupted

    with pytest.raises(Interrupted):
        registry.projection.rebuild(batch=4, workers=2, progress=stop_after_three)
    assert registry.projection.active_version() == 1 and stored(registry) == live  # the live views untouched
    with registry.database.read() as cursor:  # the events of the records written, through the last one
        through = cursor.execute("SELECT loaded_through FROM {projection_tables} WHERE version = 2").scalar()
        written = cursor.execute("SELECT COUNT(*) FROM {event_log} WHERE record <= ?", (through,)).scalar()
    assert sum(done) <= written < head

    resumed: list[int] = []
    registry.projection.rebuild(batch=4, workers=2, progress=resumed.append)
    assert sum(resumed) == head - written  # each event loaded once: the rest, after the last record written
    assert registry.projection.active_version() == 2 and stored(registry) == live


def test_a_load_whose_worker_dies_while_it_waits_for_its_turn_stops_and_resumes_later(
        registry: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    a_history(registry, 6, 60)
    live = stored(registry)
    fold_chunk = bulk_load.fold_chunk
    killed: list[int] = []

    def slowly(database: Any, chunk: bulk_load.Chunk) -> bulk_load.Rows:
        time.sleep(0.3)
        if not killed:  # the workers start and take the following chunks, which wait behind this one
            time.sleep(1.5)
            killed.append(multiprocessing.active_children()[0].pid or 0)
            os.kill(killed[0], signal.SIGKILL)
        return fold_chunk(database, chunk)

    monkeypatch.setattr(bulk_load, "fold_chunk", slowly)
    with pytest.raises(bulk_load.LoadStopped, match="a worker process of the rebuild stopped"):
        registry.projection.rebuild(batch=4, workers=2)
    assert killed and registry.projection.active_version() == 1 and stored(registry) == live
    assert not multiprocessing.active_children()  # the other worker stopped too

    monkeypatch.undo()
    registry.projection.rebuild(batch=4, workers=2)
    assert registry.projection.active_version() == 2 and stored(registry) == live


def test_workers_ignore_ctrl_c_which_the_rebuilding_process_handles(
        registry: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    a_history(registry, 4, 120)
    live = stored(registry)
    fold_chunk = bulk_load.fold_chunk
    folded_here: list[int] = []

    def slowly(database: Any, chunk: bulk_load.Chunk) -> bulk_load.Rows:
        folded_here.append(1)
        time.sleep(0.2)
        return fold_chunk(database, chunk)

    monkeypatch.setattr(bulk_load, "fold_chunk", slowly)
    done: list[int] = []
    interrupted_at: list[int] = []

    def interrupt_the_workers(count: int) -> None:  # as Ctrl-C reaches every process of the terminal's group
        done.append(count)
        if not interrupted_at and len(done) - len(folded_here) >= 2:  # the workers are up and loading
            interrupted_at.append(len(done))
            for worker in multiprocessing.active_children():
                os.kill(worker.pid or 0, signal.SIGINT)

    registry.projection.rebuild(batch=3, workers=2, progress=interrupt_the_workers)
    assert interrupted_at and len(done) > interrupted_at[0]
    assert sum(done) == registry.reader.head()["position"] and stored(registry) == live
