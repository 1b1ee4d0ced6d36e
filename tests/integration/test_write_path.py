"""The one write path: a commit stores the event, its log entry and hash, the idempotency key and
(on SQLite) the views in one transaction, or nothing at all."""

from __future__ import annotations

import pytest
from eventsourcing.persistence import IntegrityError

from registry.bootstrap import bootstrap
from registry.log.store import Record, record_uuid
from registry.log.writer import Commit, IdempotencyRecord
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
    committed = registry.writer.commit(Commit([record], [_entry(record, event, "agreement", AGREEMENT)], key))

    # The envelope comes back as logged: the next position, chained to the previous head.
    envelope = committed.envelopes[0]
    assert envelope["position"] == before[1] + 1
    assert envelope == registry.reader.event(event.event_id)
    assert envelope["prev_hash"] == registry.reader.events(envelope["position"] - 2, 1)["items"][0]["hash"]
    assert counts(registry) == (before[0] + 1, before[1] + 1, before[2] + 1)
    # SQLite writes the views in the same transaction; PostgreSQL right after it.
    assert committed.views_applied is (registry.config.engine == "sqlite")


def test_a_stale_record_commits_nothing(registry: Registry) -> None:
    seed(registry)
    # Two writers load the same version of the record; the first commits.
    first: Record = registry.store.repository.get(record_uuid(AGREEMENT))
    second: Record = registry.store.repository.get(record_uuid(AGREEMENT))
    event = first.record("terminated", "2030-01-01", {}, [], None, EDITOR)
    registry.writer.commit(Commit([first], [_entry(first, event, "agreement", AGREEMENT)]))
    before = counts(registry)

    # The second commit, at the same version, is refused whole: no event, no log entry, no key.
    late = second.record("suspended", "2031", {"extent": "whole"}, [], None, EDITOR)
    key = IdempotencyRecord("late", EDITOR, "0" * 64, "{}")
    with pytest.raises(IntegrityError):
        registry.writer.commit(Commit([second], [_entry(second, late, "agreement", AGREEMENT)], key))
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
