"""The global log (positions, hash chain, paging) and the view projection that follows it."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from events.temporal import read_log, segments
from registry.errors import NotFound
from registry.log import reader as reader_module
from registry.log.chain import envelope_hash
from registry.log.reader import read_range
from registry.seed import seed
from registry.service import Registry

AGREEMENT = "ru-eu-readmission-agreement"
EDITOR = "registry-editor"
GENESIS = "0" * 64
ENVELOPE_KEYS = {"id", "position", "record", "kind", "version", "type", "valid", "valid_lower", "valid_upper",
                 "recorded_at", "data", "sources", "note", "actor", "hash", "prev_hash"}
DAYS = [dt.date(2005, 1, 1), dt.date(2006, 6, 1), dt.date(2007, 6, 1), dt.date(2009, 1, 1), dt.date(2010, 6, 1),
        dt.date(2017, 10, 4), dt.date(2018, 4, 5), dt.date(2019, 1, 1), dt.date(2030, 1, 1)]


class Crash(Exception):
    """The projector process dies right after a batch has committed."""


def instant(registry: Registry) -> dt.datetime:
    return dt.datetime.fromisoformat(registry.reader.head()["recorded_at"])


def log(registry: Registry) -> list[dict[str, Any]]:
    return registry.reader.events(0, 1000)["items"]  # type: ignore[no-any-return]


def event_of(registry: Registry, record_id: str, type_name: str) -> dict[str, Any]:
    return registry.reader.events(0, 1000, record=record_id, type=type_name)["items"][0]  # type: ignore[no-any-return]


@pytest.fixture
def history(registry: Registry) -> list[dt.datetime]:
    """The seed, then later knowledge: earlier facts, corrections and a retraction. Returns instants to ask at."""
    seed(registry)
    instants = [instant(registry)]
    # A conclusion in 2007, learnt after the 2010 extension was on record: the record is refolded.
    registry.append("agreements", AGREEMENT, {"type": "concluded", "valid": "2007-05", "party": "RU"}, EDITOR)
    registry.register("meetings", {"id": "ru-eu-readmission-joint-committee-16", "title": "16th meeting",
                                   "series": "ru-eu-readmission-joint-committee", "ordinal": 16}, EDITOR)
    registry.append("meetings", "ru-eu-readmission-joint-committee-16",
                    {"type": "held", "valid": "2016~", "place": "Moscow"}, EDITOR)
    instants.append(instant(registry))
    signed = event_of(registry, AGREEMENT, "signed")
    registry.correct(signed["id"], {"changes": {"valid": "2006-05-25", "place": "Sochi"}, "reason": "summit"}, EDITOR)
    registry.retract(event_of(registry, "ru-eu-readmission-joint-committee-16", "held")["id"],
                     {"reason": "no source"}, EDITOR)
    registry.append("agreements", AGREEMENT, {"type": "suspended", "valid": "2022-03", "extent": "partial",
                                              "provisions": ["Article 3"]}, EDITOR)
    instants.append(instant(registry))
    return instants


def everything(registry: Registry, instants: list[dt.datetime]) -> dict[str, Any]:
    """Every read the projection serves, at several points on both axes."""
    reader = registry.reader
    records = [e["record"] for e in reader.events(0, 1000, type="registered")["items"]]
    state: dict[str, Any] = {"timeline": reader.timeline(None, None)}
    for known_at in instants:
        for day in DAYS:
            state[f"snapshot {day} {known_at}"] = reader.snapshot(day, known_at)
            state[f"meetings {day} {known_at}"] = reader.list("meetings", day, known_at, limit=1)
            for record_id in records:
                try:
                    state[f"view {record_id} {day} {known_at}"] = reader.view(record_id, day, known_at)
                except NotFound:
                    state[f"view {record_id} {day} {known_at}"] = "not known then"
    return state


def test_log_is_gap_free_and_hash_chained(registry: Registry, history: list[dt.datetime]) -> None:
    envelopes = log(registry)
    assert [e["position"] for e in envelopes] == list(range(1, len(envelopes) + 1))
    assert envelopes[0]["prev_hash"] == GENESIS
    for previous, envelope in zip(envelopes, envelopes[1:], strict=False):
        assert envelope["prev_hash"] == previous["hash"]
        assert envelope["recorded_at"] >= previous["recorded_at"]
    for envelope in envelopes:
        assert set(envelope) == ENVELOPE_KEYS
        assert envelope_hash(envelope) == envelope["hash"]
        # Any change to what the hash covers is visible.
        assert envelope_hash({**envelope, "note": "edited"}) != envelope["hash"]
        assert registry.reader.event(envelope["id"]) == envelope
    head = registry.reader.head()
    assert head == {k: envelopes[-1][k] for k in ("position", "hash", "recorded_at")}


def test_versions_count_each_records_events(registry: Registry, history: list[dt.datetime]) -> None:
    by_record: dict[str, list[int]] = {}
    for envelope in log(registry):
        by_record.setdefault(envelope["record"], []).append(envelope["version"])
    for record_id, versions in by_record.items():
        assert versions == list(range(1, len(versions) + 1)), record_id
        assert registry.reader.view(record_id, None, None)["version"] == len(versions)


def test_events_pages_and_filters(registry: Registry, history: list[dt.datetime]) -> None:
    everything_logged = log(registry)
    last = len(everything_logged)

    # Paging four at a time walks the whole log in position order.
    walked: list[dict[str, Any]] = []
    after = 0
    while True:
        page = registry.reader.events(after, 4)
        assert page["last_position"] == last
        walked.extend(page["items"])
        if not page["items"]:
            assert page["next"] == after
            break
        assert page["full"] == (len(page["items"]) == 4)
        after = page["next"]
        assert after == page["items"][-1]["position"]
    assert walked == everything_logged

    # Filters, each in position order.
    held = registry.reader.events(0, 100, type="held")["items"]
    assert [e["record"] for e in held] == [
        "ru-eu-readmission-joint-committee-17", "ru-eu-migration-dialogue-sofia-2018",
        "ru-eu-readmission-joint-committee-16"]
    agreements = registry.reader.events(0, 100, kind="agreement")["items"]
    assert {e["kind"] for e in agreements} == {"agreement"}
    assert [e["type"] for e in agreements if e["record"] == AGREEMENT] == [
        "registered", "signed", "entered_into_force", "scope_extended", "concluded", "corrected", "suspended"]
    positions = [e["position"] for e in agreements]
    assert positions == sorted(positions)
    frontex = registry.reader.events(0, 100, record="frontex")["items"]
    assert [e["type"] for e in frontex] == ["registered", "renamed"]
    assert registry.reader.events(0, 100, type="held", kind="agreement")["items"] == []

    # A filtered walk, one at a time, after a given position.
    first = held[0]["position"]
    rest = registry.reader.events(first, 1, type="held")
    assert [e["position"] for e in rest["items"]] == [held[1]["position"]]
    assert rest["next"] == held[1]["position"]
    assert registry.reader.events(last, 10)["items"] == []


def test_rebuild_from_zero_reproduces_every_view(registry: Registry, history: list[dt.datetime]) -> None:
    before = everything(registry, history)
    last = registry.reader.head()["position"]

    registry.projection.reset()
    assert registry.reader.lag() == (last, 0)
    assert registry.projection.catch_up() == last

    assert everything(registry, history) == before


def test_catch_up_resumes_after_a_crash_and_applies_each_event_once(
        registry: Registry, history: list[dt.datetime]) -> None:
    before = everything(registry, history)
    last = registry.reader.head()["position"]
    registry.projection.reset()

    # The projector applies three events per batch and dies after every batch.
    batches: list[int] = []
    positions: list[int] = []

    def die(count: int) -> None:
        batches.append(count)
        raise Crash

    for _ in range(last):
        try:
            final = registry.projection.catch_up(batch=3, progress=die)
        except Crash:
            positions.append(registry.projection.position())
            continue
        break
    else:
        pytest.fail("the catch-up never finished")

    # Each restart went on where the last one stopped.
    assert sum(batches) == last
    assert all(count == 3 for count in batches[:-1])
    assert positions == [min(3 * n, last) for n in range(1, len(positions) + 1)]
    assert final == last
    assert everything(registry, history) == before

    # Caught up: another catch-up applies nothing.
    assert registry.projection.catch_up(batch=3, progress=die) == last
    assert registry.reader.lag() == (last, last)
    assert everything(registry, history) == before


def test_a_catch_up_given_the_events_just_logged_applies_first_what_the_views_missed(
        registry: Registry, history: list[dt.datetime], monkeypatch: pytest.MonkeyPatch) -> None:
    # After a commit the writer hands the catch-up the events it logged. They are applied as
    # given only when the views are right behind them; else the catch-up reads the log.
    before = everything(registry, history)
    last = registry.reader.head()["position"]
    with registry.database.read() as cursor:
        newest = read_range(cursor, last - 1)
    assert [envelope["position"] for envelope in newest] == [last]

    registry.projection.reset()
    assert registry.projection.catch_up(logged=newest) == last  # the views were at 0
    assert registry.reader.lag() == (last, last)
    assert everything(registry, history) == before

    registry.projection.reset()
    with pytest.raises(Crash):
        registry.projection.catch_up(batch=last - 1, progress=crash)
    assert registry.reader.lag() == (last, last - 1)
    with monkeypatch.context() as patched:  # right behind: applied as given, the log not read
        patched.setattr(reader_module, "read_range", unread)
        assert registry.projection.catch_up(logged=newest) == last
    assert everything(registry, history) == before


def crash(count: int) -> None:
    raise Crash


def unread(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("the log was read")


def test_rebuild_beside_the_live_views_resumes_and_switches(registry: Registry, history: list[dt.datetime]) -> None:
    before = everything(registry, history)
    last = registry.reader.head()["position"]
    active = registry.projection.active_version()

    # A rebuild dies half-way: the live views go on answering as before.
    def die(count: int) -> None:
        raise Crash

    with pytest.raises(Crash):
        registry.projection.rebuild(batch=5, progress=die)
    assert registry.projection.active_version() == active
    assert everything(registry, history) == before

    # Restarted, it finishes the same version and switches to it.
    assert registry.projection.rebuild(batch=5) == (active + 1, last)
    assert registry.projection.active_version() == active + 1
    assert everything(registry, history) == before


def test_views_agree_with_a_full_fold_of_the_log(registry: Registry, history: list[dt.datetime]) -> None:
    # The projection's incremental path must give what folding each record's whole log gives.
    envelopes = log(registry)
    known = {t: max(e["position"] for e in envelopes if dt.datetime.fromisoformat(e["recorded_at"]) <= t)
             for t in history}
    for known_at, position in known.items():
        by_record: dict[str, list[dict[str, Any]]] = {}
        for envelope in envelopes:
            if envelope["position"] <= position:
                by_record.setdefault(envelope["record"], []).append(envelope)
        for record_id, own in by_record.items():
            folded = segments(read_log(own))
            for day in DAYS:
                expected = [state for start, state in folded if start <= day.toordinal()][-1]
                view = registry.reader.view(record_id, day, known_at)
                assert view["uncertain"] == expected["uncertain"], (record_id, day, position)
                for field, value in expected["view"].items():
                    if field != "status" or view["kind"] != "meeting":
                        assert view[field] == value, (record_id, day, position, field)
