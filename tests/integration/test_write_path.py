"""The one write path: a commit stores the event, its log entry and hash, the idempotency key and
(on SQLite) the views in one transaction, or nothing at all."""

from __future__ import annotations

import datetime as dt
import hashlib
import signal
import threading
import time
import uuid

import pytest
from eventsourcing.persistence import IntegrityError

from registry.bootstrap import bootstrap
from registry.log import merkle, writer
from registry.log import reader as log
from registry.log.store import Record, record_uuid
from registry.log.writer import Commit, IdempotencyRecord, LogWriter, ViewsFailed, _Waiting
from registry.seed import seed
from registry.service import Registry, _entry
from registry.settings import Settings

AGREEMENT = "ru-eu-readmission-agreement"
EDITOR = "registry-editor"


def counts(registry: Registry) -> tuple[int, int, int]:
    """(events in the library's table, log entries, idempotency keys)."""
    table = registry.store.recorder.events_table_name  # type: ignore[attr-defined]
    if registry.config.engine == "postgres":
        table = f'"{registry.config.schema}".{table}'
    with registry.database.read() as cursor:
        stored = cursor.execute(f"SELECT COUNT(*) FROM {table}").scalar()
        logged = cursor.execute("SELECT COUNT(*) FROM {event_log}").scalar()
        keys = cursor.execute("SELECT COUNT(*) FROM {idempotency}").scalar()
    return int(stored), int(logged), int(keys)


def test_a_commit_returns_the_logged_envelope_and_stores_everything_together(registry: Registry) -> None:
    seed(registry)
    before = counts(registry)
    # An editor records that the agreement was terminated, with an idempotency key.
    record: Record = registry.store.repository.get(record_uuid(AGREEMENT))
    event = record.record("terminated", "2030-01-01", {}, [], None, EDITOR)
    key = IdempotencyRecord("end-2030", EDITOR, "f" * 64, '{"event_id": "x"}')
    committed = registry.writer.commit(Commit([record], [_entry(event, "agreement", AGREEMENT)], key))

    # The envelope comes back as logged: the next position, chained to the previous head.
    envelope = committed.envelopes[0]
    assert envelope["position"] == before[1] + 1
    assert envelope == registry.reader.event(event.event_id)
    assert envelope["prev_hash"] == registry.reader.events(envelope["position"] - 2, 1)["items"][0]["hash"]
    assert counts(registry) == (before[0] + 1, before[1] + 1, before[2] + 1)
    # The views are written before the commit returns (SQLite: in the same transaction;
    # PostgreSQL: right after it): reads see the write.
    assert committed.views_applied is True
    assert registry.reader.view(AGREEMENT, dt.date(2030, 6, 1), None)["status"] == "terminated"


def test_event_ids_are_version_7_uuids_that_grow_in_the_order_events_are_written(registry: Registry) -> None:
    # New ids start with the time of writing, so the log's index of ids grows at its end
    # (a random id would land on a random page of it at every write).
    seed(registry)
    before = registry.reader.events(0, 1000)["items"]
    registry.append("agreements", AGREEMENT, {"type": "suspended", "valid": "2030", "extent": "whole"}, EDITOR)
    registry.append("agreements", AGREEMENT, {"type": "terminated", "valid": "2031"}, EDITOR)
    envelopes = registry.reader.events(len(before), 10)["items"]
    ids = [uuid.UUID(envelope["id"]) for envelope in before + envelopes]
    assert {each.version for each in ids} == {7}
    assert ids == sorted(ids, key=lambda each: each.bytes)
    assert len(set(ids)) == len(ids)


def test_a_stale_record_commits_nothing(registry: Registry) -> None:
    seed(registry)
    # Two writers load the same version of the record; the first commits.
    first: Record = registry.store.repository.get(record_uuid(AGREEMENT))
    second: Record = registry.store.repository.get(record_uuid(AGREEMENT))
    event = first.record("terminated", "2030-01-01", {}, [], None, EDITOR)
    registry.writer.commit(Commit([first], [_entry(event, "agreement", AGREEMENT)]))
    before = counts(registry)

    # The second commit, at the same version, is refused whole: no event, no log entry, no key.
    late = second.record("suspended", "2031", {"extent": "whole"}, [], None, EDITOR)
    key = IdempotencyRecord("late", EDITOR, "0" * 64, "{}")
    with pytest.raises(IntegrityError):
        registry.writer.commit(Commit([second], [_entry(late, "agreement", AGREEMENT)], key))
    assert counts(registry) == before
    assert registry.auditor.verify()["ok"] is True


def test_events_stored_under_the_store_s_old_module_name_still_load(store_url: str) -> None:
    registry = bootstrap(Settings(database=store_url))
    seed(registry)
    # Stores written before the layout move name their events `registry.store:Record.…`.
    table = registry.store.recorder.events_table_name  # type: ignore[attr-defined]
    if registry.config.engine == "postgres":
        table = f'"{registry.config.schema}".{table}'
    with registry.database.write() as cursor:
        changed = cursor.execute(
            f"UPDATE {table} SET topic = REPLACE(topic, 'registry.log.store:', 'registry.store:')").raw.rowcount
    assert changed > 0
    registry.close()

    reopened = bootstrap(Settings(database=store_url))  # a fresh process: nothing cached
    try:
        envelope = reopened.append("agreements", AGREEMENT, {"type": "terminated", "valid": "2030-01-01"}, EDITOR)
        assert envelope["version"] > 1
        assert reopened.auditor.verify()["ok"] is True
    finally:
        reopened.close()


def assert_tree_matches_log(registry: Registry) -> None:
    """The stored Merkle tree has a leaf for every logged entry, and its root is the one the
    log's hashes give (RFC 6962, computed here from the log alone)."""
    def tree_root(leaves: list[bytes]) -> bytes:
        if len(leaves) == 1:
            return leaves[0]
        split = 1 << ((len(leaves) - 1).bit_length() - 1)
        return hashlib.sha256(b"\x01" + tree_root(leaves[:split]) + tree_root(leaves[split:])).digest()

    with registry.database.read() as cursor:
        hashes = [row[0] for row in cursor.execute("SELECT hash FROM {event_log} ORDER BY position").all()]
        assert merkle.tree_size(cursor) == len(hashes)
        stored_root = merkle.root(cursor, len(hashes))
    assert stored_root == tree_root([hashlib.sha256(b"\x00" + bytes.fromhex(h)).digest() for h in hashes])


def prepared(registry: Registry, record_id: str, valid: str) -> Commit:
    """A commit that renames an organisation (as of `valid`), made against the record's current version."""
    record: Record = registry.store.repository.get(record_uuid(record_id))
    event = record.record("renamed", valid, {"name": f"Renamed as of {valid}"}, [], None, EDITOR)
    return Commit([record], [_entry(event, "organisation", record_id)])


def waiting_on(registry: Registry, commit: Commit) -> _Waiting:
    """The commit as `LogWriter.commit` queues it: with its events and entries encoded."""
    return registry.writer._prepared(commit)


def test_in_a_group_a_conflicting_commit_fails_alone(registry: Registry) -> None:
    seed(registry)
    before = counts(registry)
    # Three commits share one transaction; the second was made against the same version as the first.
    first, stale, other = (prepared(registry, "frontex", "2030-01-01"), prepared(registry, "frontex", "2031-01-01"),
                           prepared(registry, "fsb-border-guard-service", "2030-01-01"))
    group = [waiting_on(registry, first), waiting_on(registry, stale), waiting_on(registry, other)]
    registry.writer._queue.extend(group)
    registry.writer._write_group()

    assert isinstance(group[1].error, IntegrityError) and group[1].committed is None
    stored = [waiting.committed.envelopes[0] for waiting in (group[0], group[2]) if waiting.committed]
    assert [e["position"] for e in stored] == [before[1] + 1, before[1] + 2]  # gap-free, in order
    assert counts(registry)[:2] == (before[0] + 2, before[1] + 2)
    assert registry.reader.view("frontex", dt.date(2030, 6, 1), None)["name"] == "Renamed as of 2030-01-01"
    assert registry.auditor.verify()["ok"] is True
    assert_tree_matches_log(registry)


def test_a_group_is_stored_together_with_its_keys_and_written_one_by_one_when_a_key_is_taken(
        registry: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    seed(registry)
    before = counts(registry)
    one_by_one: list[Commit] = []
    write_one = registry.writer._write_one
    monkeypatch.setattr(registry.writer, "_write_one",
                        lambda cursor, waiting, *rest: one_by_one.append(waiting.commit)
                        or write_one(cursor, waiting, *rest))

    def keyed(record_id: str, valid: str, key: str) -> Commit:
        commit = prepared(registry, record_id, valid)
        return Commit(commit.records, commit.entries, IdempotencyRecord(key, EDITOR, key * 8, '{"event_id": "x"}'))

    # No conflict: the three commits go in together, each with its key.
    group = [waiting_on(registry, keyed(record, "2030-01-01", key)) for record, key in
             (("frontex", "a"), ("fsb-border-guard-service", "b"), ("eu", "c"))]
    registry.writer._queue.extend(group)
    registry.writer._write_group()
    assert [waiting.error for waiting in group] == [None, None, None]
    assert [w.committed.envelopes[0]["position"] for w in group if w.committed] == [before[1] + n for n in (1, 2, 3)]
    assert counts(registry) == (before[0] + 3, before[1] + 3, before[2] + 3)
    assert one_by_one == []  # in a statement per table

    # The second commit's key is taken: it alone is refused; the others are stored, gap-free.
    group = [waiting_on(registry, keyed(record, "2031-01-01", key)) for record, key in
             (("frontex", "d"), ("fsb-border-guard-service", "a"), ("eu", "e"))]
    registry.writer._queue.extend(group)
    registry.writer._write_group()
    assert isinstance(group[1].error, IntegrityError) and group[1].committed is None
    assert one_by_one == [waiting.commit for waiting in group]  # refused together: then each on its own
    assert [w.committed.envelopes[0]["position"] for w in group if w.committed] == [before[1] + 4, before[1] + 5]
    assert counts(registry) == (before[0] + 5, before[1] + 5, before[2] + 5)
    assert registry.auditor.verify()["ok"] is True
    assert_tree_matches_log(registry)
    assert registry.reader.view("frontex", dt.date(2031, 6, 1), None)["name"] == "Renamed as of 2031-01-01"


def test_commits_that_queue_while_another_process_writes_share_one_transaction(store_url: str) -> None:
    # Another process holds the log's write lock; appends queue here meanwhile. Once it lets
    # go, all of them go in one transaction: the group is taken after the lock, not before.
    registry, other = bootstrap(Settings(database=store_url)), bootstrap(Settings(database=store_url))
    try:
        records = [f"agency-{n}" for n in range(6)]
        for record in records:
            registry.register("organisations", {"id": record, "name": f"Agency {record}"}, EDITOR)
        holding, release = threading.Event(), threading.Event()

        def hold_the_lock() -> None:
            with other.database.write() as cursor:
                other.store.lock_log(cursor)
                holding.set()
                release.wait(10)

        holder = threading.Thread(target=hold_the_lock)
        holder.start()
        assert holding.wait(10)
        transactions = registry.writer.stats.transactions
        appends = [threading.Thread(target=registry.append, args=(
            "organisations", record, {"type": "renamed", "valid": "2031-01-01", "name": f"Name of {record}"}, EDITOR))
            for record in records]
        for thread in appends:
            thread.start()
        deadline = time.monotonic() + 10
        while len(registry.writer._queue) < len(appends) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(registry.writer._queue) == len(appends)  # all waiting, none taken before the lock
        release.set()
        for thread in [holder, *appends]:
            thread.join(10)

        assert registry.writer.stats.transactions - transactions == 1
        assert registry.writer.stats.commits >= len(appends)
        assert [registry.reader.view(record, dt.date(2031, 1, 1), None)["name"] for record in records] == [
            f"Name of {record}" for record in records]
        assert registry.auditor.verify()["ok"] is True
    finally:
        other.close()
        registry.close()


def test_commits_that_arrive_while_one_is_written_share_the_next_transaction(registry: Registry) -> None:
    records = [f"agency-{n}" for n in range(7)]
    for record in records:
        registry.register("organisations", {"id": record, "name": f"Agency {record}"}, EDITOR)
    writing, release = threading.Event(), threading.Event()
    apply_views = registry.writer.apply_views
    catch_up = registry.writer.catch_up_views

    def slow_first(*args: object) -> object:  # the first transaction waits until the others queued
        writing.set()
        release.wait(10)
        return apply_views(*args) if apply_views else catch_up(*args)  # type: ignore[misc]

    if apply_views is not None:
        registry.writer.apply_views = slow_first  # type: ignore[assignment]
    else:
        registry.writer.catch_up_views = slow_first
    stats = registry.writer.stats
    transactions = stats.transactions
    first = threading.Thread(target=registry.append, args=(
        "organisations", records[0], {"type": "renamed", "valid": "2030-01-01", "name": "First"}, EDITOR))
    first.start()
    assert writing.wait(10)
    registry.writer.apply_views, registry.writer.catch_up_views = apply_views, catch_up
    # Meanwhile a rename of each other organisation arrives.
    others = [threading.Thread(target=registry.append, args=(
        "organisations", record, {"type": "renamed", "valid": "2031-01-01", "name": f"Name of {record}"}, EDITOR))
        for record in records[1:]]
    for thread in others:
        thread.start()
    deadline = time.monotonic() + 10
    while len(registry.writer._queue) < len(others) and time.monotonic() < deadline:
        time.sleep(0.01)
    release.set()
    for thread in [first, *others]:
        thread.join(10)

    # Two transactions: the first commit alone, then every commit that queued behind it.
    assert stats.transactions - transactions == 2
    assert registry.auditor.verify()["ok"] is True
    assert_tree_matches_log(registry)
    assert registry.reader.view(records[-1], dt.date(2031, 1, 1), None)["name"] == f"Name of {records[-1]}"



def test_commits_beyond_a_group_s_limit_go_in_the_groups_after_it_each_caller_with_its_own_outcome(
        registry: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(writer, "GROUP_LIMIT", 2)
    records = [f"agency-{n}" for n in range(8)]
    for record in records:
        registry.register("organisations", {"id": record, "name": f"Agency {record}"}, EDITOR)
    writing, release = threading.Event(), threading.Event()
    apply_views, catch_up = registry.writer.apply_views, registry.writer.catch_up_views

    def slow_first(*args: object) -> object:  # the first transaction waits until the others queued
        writing.set()
        release.wait(10)
        return apply_views(*args) if apply_views else catch_up(*args)  # type: ignore[misc]

    if apply_views is not None:
        registry.writer.apply_views = slow_first  # type: ignore[assignment]
    else:
        registry.writer.catch_up_views = slow_first
    transactions = registry.writer.stats.transactions
    answers: dict[str, dict[str, object]] = {}

    def rename(record: str) -> None:
        answers[record] = registry.append("organisations", record, {
            "type": "renamed", "valid": "2031-01-01", "name": f"Name of {record}"}, EDITOR)

    first = threading.Thread(target=rename, args=(records[0],))
    first.start()
    assert writing.wait(10)
    registry.writer.apply_views, registry.writer.catch_up_views = apply_views, catch_up
    others = [threading.Thread(target=rename, args=(record,)) for record in records[1:]]
    for thread in others:
        thread.start()
    deadline = time.monotonic() + 10
    while len(registry.writer._queue) < len(others) and time.monotonic() < deadline:
        time.sleep(0.01)
    release.set()
    for thread in [first, *others]:
        thread.join(10)

    # The first commit alone, then the seven that queued, two a transaction: four more.
    assert registry.writer.stats.transactions - transactions == 5
    assert sorted(answers) == records
    assert all(answer["record"] == record and answer["data"] == {"name": f"Name of {record}"}
               for record, answer in answers.items())
    positions = sorted(int(answer["position"]) for answer in answers.values())  # type: ignore[call-overload]
    assert positions == list(range(positions[0], positions[0] + len(records)))
    assert not registry.writer._queue and not registry.writer._writing  # the turn to write was handed back
    assert registry.auditor.verify()["ok"] is True

def test_views_that_fail_to_be_written_leave_the_log_whole_and_catch_up_with_the_next_commit(
        registry: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    # A statement of the views' writes fails. SQLite writes them in the events' transaction: the
    # append fails and nothing is stored. PostgreSQL writes them right after (its few writes sent
    # together in one round trip): the event stays stored, and the next commit brings the views
    # up to the log, on the same connections.
    from registry.views import projection

    registry.register("organisations", {"id": "frontex", "name": "Frontex"}, EDITOR)
    before = counts(registry)
    insert_timeline = projection.insert_timeline

    def failing(cursor: object, rows: object) -> None:
        insert_timeline(cursor, rows)  # type: ignore[arg-type]
        cursor.execute(  # type: ignore[attr-defined]  # a second row under a name that has one
            "INSERT INTO {projection_position} (name, position) SELECT name, position FROM {projection_position}")

    monkeypatch.setattr(projection, "insert_timeline", failing)
    renamed = {"type": "renamed", "valid": "2016-10-06", "name": "European Border and Coast Guard Agency"}
    if registry.config.engine == "sqlite":
        with pytest.raises(ViewsFailed, match="the views could not be written"):  # a fault, not a conflict
            registry.append("organisations", "frontex", renamed, EDITOR)
        assert counts(registry) == before
        monkeypatch.setattr(projection, "insert_timeline", insert_timeline)
        registry.append("organisations", "frontex", renamed, EDITOR)
    else:
        stored = registry.append("organisations", "frontex", renamed, EDITOR)
        assert stored["version"] == 2 and counts(registry)[1] == before[1] + 1
        assert registry.reader.lag() == (before[1] + 1, before[1])  # the views missed it
        monkeypatch.setattr(projection, "insert_timeline", insert_timeline)
        for party in ("LV", "LT", "EE", "PL", "FI", "RO", "BG"):  # more commits than the pool has connections
            registry.append("organisations", "frontex", {"type": "member_joined", "valid": "2017", "party": party},
                            EDITOR)
    head = registry.reader.head()["position"]
    assert registry.reader.lag() == (head, head)
    view = registry.reader.view("frontex", None, None)
    assert view["name"] == "European Border and Coast Guard Agency"
    assert view["version"] == (2 if registry.config.engine == "sqlite" else 9)


def test_record_kinds_and_versions_of_no_records_of_repeated_ids_and_of_missing_ones(registry: Registry) -> None:
    seed(registry)
    with registry.database.read() as cursor:
        assert log.record_kinds_and_versions(cursor, []) == {}
        found = log.record_kinds_and_versions(cursor, [AGREEMENT, AGREEMENT, "no-such-record"])
    assert found == {AGREEMENT: ("agreement", found[AGREEMENT][1])} and found[AGREEMENT][1] >= 1
    kinds, versions = registry.reader.record_kinds_and_versions([AGREEMENT, "no-such-record", AGREEMENT])
    assert kinds == {AGREEMENT: "agreement", "no-such-record": None} and list(versions) == [AGREEMENT]


def renaming(registry: Registry, record: str) -> Commit:
    loaded: Record = registry.store.repository.get(record_uuid(record))
    event = loaded.record("renamed", "2031-01-01", {"name": f"Name of {record}"}, [], None, EDITOR)
    return Commit([loaded], [_entry(event, "organisation", record)])


class Interrupted(BaseException):
    """What a signal handler or a callee may raise in any thread (KeyboardInterrupt, SystemExit)."""


def queued(registry: Registry, count: int) -> None:
    deadline = time.monotonic() + 10
    while len(registry.writer._queue) < count and time.monotonic() < deadline:
        time.sleep(0.001)


def blocked_first_group(registry: Registry) -> tuple[threading.Event, threading.Event]:
    """The next group's transaction waits (SQLite: in apply_views; PostgreSQL: in catch_up) until released."""
    writing, release = threading.Event(), threading.Event()
    w = registry.writer
    apply_views, catch_up = w.apply_views, w.catch_up_views

    def slow(*args: object) -> object:
        w.apply_views, w.catch_up_views = apply_views, catch_up
        writing.set()
        release.wait(10)
        return apply_views(*args) if apply_views else catch_up(*args)  # type: ignore[misc]

    if apply_views is not None:
        w.apply_views = slow  # type: ignore[assignment]
    else:
        w.catch_up_views = slow
    return writing, release


def test_a_caller_that_leaves_while_queued_does_not_keep_the_turn_to_write(registry: Registry) -> None:
    # A caller waiting for its turn is interrupted (Ctrl-C in the main thread of a CLI, say):
    # the turn must not be handed to its abandoned entry, or every later commit waits forever.
    records = [f"agency-{n}" for n in range(3)]
    for record in records:
        registry.register("organisations", {"id": record, "name": record}, EDITOR)
    commits = [renaming(registry, record) for record in records]
    writing, release = blocked_first_group(registry)
    first = threading.Thread(target=registry.writer.commit, args=(commits[0],), daemon=True)
    first.start()
    assert writing.wait(10)

    def interrupt(*_: object) -> None:
        raise Interrupted

    previous = signal.signal(signal.SIGUSR1, interrupt)
    try:
        threading.Timer(0.3, signal.pthread_kill, (threading.main_thread().ident, signal.SIGUSR1)).start()
        with pytest.raises(Interrupted):
            registry.writer.commit(commits[1])  # queued behind the first; interrupted while it waits
    finally:
        signal.signal(signal.SIGUSR1, previous)
    release.set()
    first.join(10)

    late = threading.Thread(target=registry.writer.commit, args=(commits[2],), daemon=True)
    late.start()
    late.join(5)
    stuck = late.is_alive()
    if stuck:  # let the daemon thread go: write what is queued
        registry.writer._queue[0].wake.set()
        late.join(10)
    assert not stuck, "a later commit waits forever: the turn went to the abandoned caller"


def test_a_base_exception_after_the_transaction_leaves_no_caller_of_the_group_waiting(
        registry: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    records = [f"agency-{n}" for n in range(3)]
    for record in records:
        registry.register("organisations", {"id": record, "name": record}, EDITOR)
    commits = [renaming(registry, record) for record in records]
    writing, release = blocked_first_group(registry)
    remember = registry.store.remember

    def remember_or_stop(records_: object) -> None:
        if commits[1].records[0] in records_:  # type: ignore[operator]
            raise Interrupted  # e.g. SystemExit from a callee, KeyboardInterrupt
        remember(records_)  # type: ignore[arg-type]

    monkeypatch.setattr(registry.store, "remember", remember_or_stop)
    groups: list[list[object]] = []
    take = LogWriter._take_group
    monkeypatch.setattr(registry.writer, "_take_group", lambda: groups.append(take(registry.writer)) or groups[-1])
    errors: dict[int, BaseException] = {}

    def run(index: int) -> None:
        try:
            registry.writer.commit(commits[index])
        except BaseException as error:  # noqa: BLE001
            errors[index] = error

    threads = [threading.Thread(target=run, args=(index,), daemon=True) for index in range(3)]
    threads[0].start()
    assert writing.wait(10)
    threads[1].start()
    queued(registry, 1)
    threads[2].start()
    queued(registry, 2)
    release.set()  # the first alone; then [1, 2] together, and remembering 1's record raises
    for thread in threads:
        thread.join(5)
    stuck = [index for index, thread in enumerate(threads) if thread.is_alive()]
    for group in groups:  # let the daemon threads go
        for waiting in group:
            if not waiting.done:  # type: ignore[attr-defined]
                waiting.error = RuntimeError("abandoned")  # type: ignore[attr-defined]
                waiting.finish()  # type: ignore[attr-defined]
    assert isinstance(errors.get(1), Interrupted)
    assert stuck == [], f"callers {stuck} wait forever for a group whose writer raised"


def test_an_append_uses_this_process_s_copy_of_a_record_only_while_the_store_has_nothing_newer(
        store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # Two registries on one store stand for two server processes.
    here = bootstrap(Settings(database=store_url))
    there = bootstrap(Settings(database=store_url))
    seed(here)
    record = "ru-eu-readmission-joint-committee"
    repository_reads: list[object] = []
    original = here.store.repository.get
    monkeypatch.setattr(here.store.repository, "get", lambda *a, **kw: repository_reads.append(a) or original(*a, **kw))

    def recommend(registry: Registry, subject: str, if_match: int | None = None) -> dict[str, object]:
        return registry.append("bodies", record, {"type": "recommendation_adopted", "valid": "2017-10-04",
                                                  "subject": subject}, "editor", if_match=if_match)

    first = recommend(here, "exchange of contact points")  # this process now holds the record at its version
    repository_reads.clear()
    second = recommend(here, "statistics on readmission applications", if_match=first["version"])
    assert second["version"] == first["version"] + 1
    if here.config.engine == "postgres":  # one read of kind and version, none of the record's events
        assert repository_reads == []

    # Another process appends: this one's copy is behind, so it reads the newer event before emitting.
    third = recommend(there, "exchange of liaison officers")
    fourth = recommend(here, "a joint working group", if_match=third["version"])
    assert fourth["version"] == third["version"] + 1 == second["version"] + 2
    assert repository_reads
    assert [e["version"] for e in here.reader.events(0, 1000, record=record)["items"]][-4:] == \
        [first["version"], second["version"], third["version"], fourth["version"]]
    here.close()
    there.close()
