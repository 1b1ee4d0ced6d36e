"""Review of the writer's hand-over and the batch's record lookups."""

from __future__ import annotations

import signal
import threading

import pytest

from registry.log import reader as log
from registry.log.store import Record, record_uuid
from registry.log.writer import Commit, LogWriter
from registry.seed import seed
from registry.service import Registry, _entry

EDITOR = "registry-editor"
AGREEMENT = "ru-eu-readmission-agreement"


def test_record_kinds_and_versions_with_duplicates_and_none(registry: Registry) -> None:
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
    pass


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
    while len(registry.writer._queue) < 1:
        pass
    threads[2].start()
    while len(registry.writer._queue) < 2:
        pass
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
