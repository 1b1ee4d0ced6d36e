"""Writers at once: conditional appends race fairly, unconditional ones all land, processes share a store."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from typing import Any

from registry.bootstrap import bootstrap
from registry.errors import PreconditionFailed, RegistryError
from registry.service import Registry
from registry.settings import Settings

FRONTEX = "frontex"
EDITOR = "registry-editor"


def at_once(count: int, work: Callable[[int], Any]) -> list[Any]:
    """Run `work(i)` in `count` threads released together; returns each result or the error raised."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = work(i)
        except Exception as error:  # kept for the assertions
            results[i] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def register_frontex(registry: Registry) -> None:
    registry.register("organisations", {"id": FRONTEX, "name": "European Border and Coast Guard Agency",
                                        "acronym": "FRONTEX"}, EDITOR)


def assert_log_intact(registry: Registry) -> list[dict[str, Any]]:
    envelopes = registry.reader.events(0, 1000)["items"]
    assert [e["position"] for e in envelopes] == list(range(1, len(envelopes) + 1))
    for previous, envelope in zip(envelopes, envelopes[1:], strict=False):
        assert envelope["prev_hash"] == previous["hash"]
    assert registry.reader.lag() == (len(envelopes), len(envelopes))
    return envelopes  # type: ignore[no-any-return]


def test_conditional_appends_race_and_exactly_one_wins(registry: Registry) -> None:
    register_frontex(registry)
    version = registry.reader.view(FRONTEX, None, None)["version"]
    head = registry.reader.head()["position"]
    editors = ["lv", "lt", "ee", "pl", "fi", "ro"]

    # Six editors read version 1 and each records its country's renaming at the same moment.
    results = at_once(len(editors), lambda i: registry.append(
        "organisations", FRONTEX, {"type": "renamed", "valid": "2016-10-06",
                                   "name": f"European Border and Coast Guard Agency ({editors[i]})"},
        editors[i], if_match=version))

    won = [r for r in results if isinstance(r, dict)]
    lost = [r for r in results if not isinstance(r, dict)]
    assert len(won) == 1
    assert all(isinstance(r, PreconditionFailed) for r in lost), lost
    assert won[0]["version"] == version + 1
    envelopes = assert_log_intact(registry)
    assert len(envelopes) == head + 1
    assert envelopes[-1]["id"] == won[0]["id"]
    assert registry.reader.view(FRONTEX, None, None)["name"] == won[0]["data"]["name"]


def test_unconditional_appends_from_threads_all_land(registry: Registry) -> None:
    register_frontex(registry)
    # Eight states join in the same instant. Without If-Match, no append may fail because others wrote first;
    # each gets its own version and its own log position.
    states = ["BG", "RO", "HR", "CY", "MT", "SI", "SK", "EE"]
    results = at_once(len(states), lambda i: registry.append(
        "organisations", FRONTEX, {"type": "member_joined", "valid": "2016-10-06", "party": states[i]}, EDITOR))

    refused = [r for r in results if isinstance(r, RegistryError)]
    assert refused == [], [f"{type(r).__name__}: {r}" for r in refused]
    assert sorted(r["version"] for r in results) == list(range(2, 2 + len(states)))
    assert sorted(r["position"] for r in results) == list(range(2, 2 + len(states)))
    assert_log_intact(registry)
    assert registry.reader.view(FRONTEX, None, None)["members"] == sorted(states)


def test_a_retry_racing_its_original_writes_once(registry: Registry) -> None:
    register_frontex(registry)
    head = registry.reader.head()["position"]
    # A client times out and retries while its first request is still in flight: same key, same body.
    body = {"type": "member_joined", "valid": "2016-10-06", "party": "BG"}
    results = at_once(4, lambda i: registry.append("organisations", FRONTEX, body, EDITOR,
                                                   idempotency_key="bulgaria-joins"))

    assert all(isinstance(r, dict) for r in results), results
    assert all(r == results[0] for r in results)
    assert registry.reader.head()["position"] == head + 1
    assert registry.reader.view(FRONTEX, None, None)["members"] == ["BG"]


def test_racing_registrations_of_one_id(registry: Registry) -> None:
    # Two editors register the EU at the same moment: one wins, the other is told it exists.
    names = ["European Union", "EU"]
    results = at_once(2, lambda i: registry.register("organisations", {"id": "eu", "name": names[i]}, EDITOR))

    won = [r for r in results if isinstance(r, dict)]
    assert len(won) == 1
    assert [type(r).__name__ for r in results if not isinstance(r, dict)] == ["Conflict"]
    assert len(assert_log_intact(registry)) == 1
    assert registry.reader.view("eu", None, None)["name"] == won[0]["name"]


def test_two_processes_share_one_store(store_url: str) -> None:
    # Two registry instances on one database, as two API processes would be.
    first = bootstrap(Settings(database=store_url))
    second = bootstrap(Settings(database=store_url))
    try:
        register_frontex(first)
        second.register("organisations", {"id": "eu", "name": "European Union", "acronym": "EU"}, EDITOR)

        # Each process appends to its own record while the other does the same.
        joins = ["BG", "RO", "HR", "CY", "MT", "SI"]
        members = ["AT", "FI", "SE", "CY", "MT", "SI"]

        def work(i: int) -> list[dict[str, Any]]:
            if i == 0:
                return [first.append("organisations", FRONTEX, {"type": "member_joined", "valid": "2007",
                                                               "party": p}, EDITOR) for p in joins]
            return [second.append("organisations", "eu", {"type": "member_joined", "valid": "2004",
                                                          "party": p}, EDITOR) for p in members]

        results = at_once(2, work)
        assert all(isinstance(r, list) for r in results), results

        # Then three writers in each process append to the same record at once.
        late = ["HR", "LV", "LT", "EE", "PL", "CZ"]
        contended = at_once(len(late), lambda i: (first, second)[i % 2].append(
            "organisations", "eu", {"type": "member_joined", "valid": "2013-07-01", "party": late[i]}, EDITOR))
        assert all(isinstance(r, dict) for r in contended), contended

        # One gap-free log, and each process sees the other's writes.
        for registry in (first, second):
            envelopes = assert_log_intact(registry)
            assert len(envelopes) == 2 + len(joins) + len(members) + len(late)
            assert registry.reader.view(FRONTEX, None, None)["members"] == sorted(joins)
            assert registry.reader.view("eu", None, None)["members"] == sorted({*members, *late})
            assert registry.reader.view("eu", None, None)["version"] == 1 + len(members) + len(late)
        known_at = dt.datetime.fromisoformat(first.reader.head()["recorded_at"])
        assert first.reader.snapshot(None, known_at) == second.reader.snapshot(None, known_at)
    finally:
        first.close()
        second.close()


def joined(party: str, valid: str = "2016-10-06", if_match: int | None = None) -> dict[str, Any]:
    write = {"op": "append", "collection": "organisations", "id": FRONTEX,
             "body": {"type": "member_joined", "valid": valid, "party": party}}
    return write if if_match is None else {**write, "if_match": if_match}


def test_batches_from_two_processes_see_each_others_versions(store_url: str) -> None:
    # A batch takes a record from its process's cache when the log shows it at the cached version:
    # a record the other process moved on is read again, never written from a stale copy.
    first = bootstrap(Settings(database=store_url))
    second = bootstrap(Settings(database=store_url))
    try:
        register_frontex(first)  # the first process caches the record at version 1
        assert first.batch({"writes": [joined("BG")]}, EDITOR)["items"][0]["version"] == 2
        done = second.batch({"writes": [joined("RO"), joined("HR")]}, EDITOR)["items"]
        assert [item["version"] for item in done] == [3, 4]
        # The first process's copy is at version 2; the record is at 4.
        assert first.batch({"writes": [joined("CY", if_match=4)]}, EDITOR)["items"][0]["version"] == 5
        assert second.batch({"writes": [joined("MT"), joined("SI")]}, EDITOR)["items"][1]["version"] == 7
        try:
            first.batch({"writes": [joined("SK", if_match=5)]}, EDITOR)
            raise AssertionError("a batch appended to a record that moved on since the version it named")
        except PreconditionFailed as refused:
            assert refused.errors == {"writes": {"0": {"detail": ["'frontex' is at version 7, not 5"]}}}
        done = first.batch({"writes": [joined("SK", if_match=7), joined("EE")]}, EDITOR)["items"]
        assert [item["version"] for item in done] == [8, 9]
        for registry in (first, second):
            assert len(assert_log_intact(registry)) == 9
            assert registry.reader.view(FRONTEX, None, None)["version"] == 9
    finally:
        first.close()
        second.close()


def test_an_append_reads_what_another_process_appended_before_it_writes(
        store_url: str, monkeypatch: Any) -> None:
    # Each process caches the records it writes. A single append brings its copy up to the store
    # first (one query), so a record another process moved on costs no refused attempt; If-Match
    # is checked on the record as stored.
    first = bootstrap(Settings(database=store_url))
    second = bootstrap(Settings(database=store_url))
    try:
        register_frontex(first)
        assert first.append("organisations", FRONTEX, joined("BG")["body"], EDITOR)["version"] == 2
        assert second.append("organisations", FRONTEX, joined("RO")["body"], EDITOR)["version"] == 3

        commits: list[int] = []
        commit = first._commit
        monkeypatch.setattr(first, "_commit", lambda *args: commits.append(1) or commit(*args))
        assert first.append("organisations", FRONTEX, joined("HR")["body"], EDITOR)["version"] == 4
        assert len(commits) == 1  # its copy was at 2: brought to 3 before the write

        # The first process's copy is at 4; the second moves the record to 5.
        assert second.append("organisations", FRONTEX, joined("MT")["body"], EDITOR, if_match=4)["version"] == 5
        assert first.append("organisations", FRONTEX, joined("SI")["body"], EDITOR, if_match=5)["version"] == 6
        try:
            second.append("organisations", FRONTEX, joined("SK")["body"], EDITOR, if_match=5)
            raise AssertionError("an append was made on a record that moved on since the version it named")
        except PreconditionFailed as refused:
            assert "version 6, not 5" in str(refused)
        for registry in (first, second):
            assert len(assert_log_intact(registry)) == 6
            assert registry.reader.view(FRONTEX, None, None)["members"] == ["BG", "HR", "MT", "RO", "SI"]
    finally:
        first.close()
        second.close()


def test_batches_from_threads_to_one_record_all_land(registry: Registry) -> None:
    register_frontex(registry)
    states = ["BG", "RO", "HR", "CY", "MT", "SI", "SK", "EE"]
    results = at_once(4, lambda i: registry.batch({"writes": [joined(states[2 * i]), joined(states[2 * i + 1])]},
                                                  EDITOR))
    refused = [r for r in results if isinstance(r, RegistryError)]
    assert refused == [], [f"{type(r).__name__}: {r}" for r in refused]
    versions = sorted(item["version"] for result in results for item in result["items"])
    assert versions == list(range(2, 2 + len(states)))
    assert_log_intact(registry)
    assert registry.reader.view(FRONTEX, None, None)["members"] == sorted(states)


def test_a_batch_that_lost_a_race_is_checked_again_on_the_records_as_they_are_now(
        store_url: str, monkeypatch: Any) -> None:
    """Another process appends between a batch's checks and its commit: the batch is checked again.
    A conditional write whose record moved on is refused by its own index; one whose record did not
    lands, with the rest of the batch."""
    first = bootstrap(Settings(database=store_url))
    second = bootstrap(Settings(database=store_url))
    try:
        register_frontex(first)
        first.register("organisations", {"id": "easo", "name": "European Asylum Support Office"}, EDITOR)
        easo = {"op": "append", "collection": "organisations", "id": "easo",
                "body": {"type": "renamed", "valid": "2022-01-19", "name": "European Union Agency for Asylum"}}
        commit = first._commit

        def racing(moved: str) -> Callable[..., Any]:
            raced: list[bool] = []

            def commit_after_another(*args: Any) -> Any:
                if not raced:  # the other process gets in first, once
                    raced.append(True)
                    second.append("organisations", moved, joined("LV")["body"] if moved == FRONTEX else
                                  {"type": "renamed", "valid": "2021-01-01", "name": "EASO"}, EDITOR)
                return commit(*args)

            return commit_after_another

        # The conditional write's record moved on: a 412 naming it (write 1), and nothing of the batch stored.
        monkeypatch.setattr(first, "_commit", racing(FRONTEX))
        try:
            first.batch({"writes": [easo, joined("BG", if_match=1)]}, EDITOR)
            raise AssertionError("a batch appended to a record that moved on since the version it named")
        except PreconditionFailed as refused:
            assert list(refused.errors["writes"]) == ["1"]
        assert first.reader.view("easo", None, None)["version"] == 1
        # Only the unconditional write's record moved on: checked again, the whole batch lands.
        monkeypatch.setattr(first, "_commit", racing("easo"))
        done = first.batch({"writes": [easo, joined("BG", if_match=2)]}, EDITOR)["items"]
        assert [item["version"] for item in done] == [3, 3]
        assert len(assert_log_intact(first)) == 6
    finally:
        first.close()
        second.close()
