"""An auditor proves the log intact, and finds every kind of tampering by position.

Each story seeds the migration timeline (22 events: the EU, FRONTEX, the 2006
readmission agreement, its Joint Committee, the Dialogue on Migration...), then
edits the database directly, as someone with write access to it could, and
checks that `verify` names the first tampered position and does not crash.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

import pytest
from flask.testing import FlaskClient

from registry.bootstrap import bootstrap
from registry.errors import BadQuery
from registry.log.chain import envelope_hash
from registry.log.store import record_uuid
from registry.seed import seed
from registry.service import Registry
from registry.settings import Settings

AGREEMENT = "ru-eu-readmission-agreement"
CHANNEL = "fsb-border-guard-service-frontex"
SIGNED = 6  # the agreement's 'signed' event, valid 2006 (position 5 is its registration)
EDITOR = "registry-editor"


# The store, seen as someone with direct database access sees it

def envelope_at(registry: Registry, position: int) -> dict[str, Any]:
    with registry.database.read() as cursor:
        return json.loads(cursor.execute("SELECT envelope FROM {event_log} WHERE position = ?", (position,)).scalar())


def rewrite(registry: Registry, rows: dict[int, dict[str, Any]]) -> None:
    """Store each envelope at its position as it is (its own `hash` included), columns and JSON alike."""
    with registry.database.write() as cursor:
        for position in rows:  # event ids are unique: make way for ids that move
            cursor.execute("UPDATE {event_log} SET event_id = ? WHERE position = ?", (f"moving-{position}", position))
        for position, envelope in rows.items():
            cursor.execute("UPDATE {event_log} SET event_id = ?, hash = ?, envelope = ? WHERE position = ?",
                           (envelope["id"], envelope["hash"], json.dumps(envelope, ensure_ascii=False), position))


def rechain(envelope: dict[str, Any], prev_hash: str) -> dict[str, Any]:
    """What a careful forger does: link to the previous hash and recompute this one."""
    forged = {**envelope, "prev_hash": prev_hash}
    forged["hash"] = envelope_hash(forged)
    return forged


def library_table(registry: Registry) -> str:
    """The eventsourcing library's own table of stored events."""
    name = registry.store.recorder.events_table_name  # type: ignore[attr-defined]
    return f'"{registry.database.schema}".{name}' if registry.database.engine == "postgres" else str(name)


def library_key(registry: Registry, position: int) -> tuple[Any, int]:
    """(originator_id, originator_version) of the library's copy of the event logged at `position`."""
    envelope = envelope_at(registry, position)
    originator = record_uuid(envelope["record"])
    return (originator.hex if registry.database.engine == "sqlite" else originator), envelope["version"]


def library_state(registry: Registry, position: int) -> bytes:
    with registry.database.read() as cursor:
        state = cursor.execute(f"SELECT state FROM {library_table(registry)}"
                               " WHERE originator_id = ? AND originator_version = ?",
                               library_key(registry, position)).scalar()
    return bytes(state)


def set_library_state(registry: Registry, position: int, state: bytes) -> None:
    key = library_key(registry, position)
    with registry.database.write() as cursor:
        cursor.execute(f"UPDATE {library_table(registry)} SET state = ?"
                       " WHERE originator_id = ? AND originator_version = ?", (state, *key))


def delete_from_library(registry: Registry, position: int) -> None:
    key = library_key(registry, position)
    with registry.database.write() as cursor:
        cursor.execute(f"DELETE FROM {library_table(registry)} WHERE originator_id = ? AND originator_version = ?",
                       key)


def verify_finds(registry: Registry, position: int, *words: str, **options: Any) -> str:
    """Verify, expecting the first bad position to be `position`; returns the reason."""
    report = registry.auditor.verify(**options)
    assert report["ok"] is False, report
    assert report["first_bad"]["position"] == position, report["first_bad"]
    for word in words:
        assert word in report["first_bad"]["reason"]
    return str(report["first_bad"]["reason"])


@pytest.fixture
def seeded(registry: Registry) -> Registry:
    seed(registry)
    assert registry.reader.head()["position"] == 22
    return registry


# An intact store

def test_an_intact_store_verifies_with_its_projections(seeded: Registry) -> None:
    # The seed timeline, then a later correction: the agreement was signed on 25 May 2006, in Sochi.
    signed = envelope_at(seeded, SIGNED)
    seeded.correct(signed["id"], {"changes": {"valid": "2006-05-25", "place": "Sochi"}, "reason": "summit"}, EDITOR)
    head = seeded.reader.head()

    report = seeded.auditor.verify()

    assert report == {"ok": True, "checked": 23, "head": head, "first_bad": None, "projections": "verified"}
    # A range checks only its events, and replays the views only over the whole log.
    part = seeded.auditor.verify(start=5, end=8)
    assert (part["ok"], part["checked"], part["projections"]) == (True, 4, "skipped")
    assert seeded.auditor.verify(projections=False)["projections"] == "skipped"


def test_an_empty_store_verifies(registry: Registry) -> None:
    report = registry.auditor.verify()

    assert (report["ok"], report["checked"], report["head"]["position"]) == (True, 0, 0)


def test_from_beyond_the_head_is_a_bad_query(seeded: Registry) -> None:
    with pytest.raises(BadQuery, match="beyond the head"):
        seeded.auditor.verify(start=23)
    with pytest.raises(BadQuery):
        seeded.auditor.verify(start=5, end=23)
    with pytest.raises(BadQuery):
        seeded.auditor.verify(start=0)


def test_to_before_from_is_a_bad_query_with_or_without_a_kept_hash(
        client: tuple[FlaskClient, dict[str, str]]) -> None:
    http, _ = client
    registry: Registry = http.application.extensions["registry"]
    with pytest.raises(BadQuery, match="before"):
        registry.auditor.verify(start=5, end=4)
    with pytest.raises(BadQuery, match="before"):
        registry.auditor.verify(start=1, end=0)
    hash_5 = registry.reader.events(4, 1)["items"][0]["hash"]
    for query in ({"from": 1, "to": 0}, {"from": 5, "to": 4}, {"from": 5, "to": 3},
                  {"from": 5, "to": 4, "hash": hash_5}, {"to": 0}):
        refused = http.get("/v1/audit/verify", query_string=query)
        assert refused.status_code == 400 and refused.mimetype == "application/problem+json", query
        assert list(refused.get_json()["errors"]) == ["to"], query
    # One position is a range: from = to.
    one = http.get("/v1/audit/verify", query_string={"from": 5, "to": 5, "hash": hash_5}).get_json()
    assert (one["ok"], one["checked"]) == (True, 5)


def test_a_kept_hash_without_its_position_is_a_bad_query(client: tuple[FlaskClient, dict[str, str]]) -> None:
    """As on the command line (`verify --hash` without `--from`): a receipt is a hash *and* its position."""
    http, _ = client
    registry: Registry = http.application.extensions["registry"]
    kept = registry.reader.head()
    with pytest.raises(BadQuery, match="from"):
        registry.auditor.verify(head_hash=kept["hash"])
    refused = http.get("/v1/audit/verify", query_string={"hash": kept["hash"]})
    assert refused.status_code == 400 and refused.mimetype == "application/problem+json"
    assert list(refused.get_json()["errors"]) == ["from"]
    head = http.get("/v1/audit/head").get_json()
    checked = http.get("/v1/audit/verify", query_string={"from": head["position"], "hash": head["hash"]})
    assert checked.status_code == 200 and checked.get_json()["ok"] is True


# Edited bytes

def test_an_edited_envelope_is_found_by_its_hash(seeded: Registry) -> None:
    # Someone moves the signature of the readmission agreement from 2006 to 2005 in the log's JSON.
    with seeded.database.write() as cursor:
        text = cursor.execute("SELECT envelope FROM {event_log} WHERE position = ?", (SIGNED,)).scalar()
        assert re.search(r'"valid": ?"2006"', text)
        cursor.execute("UPDATE {event_log} SET envelope = ? WHERE position = ?",
                       (re.sub(r'"valid": ?"2006"', '"valid":"2005"', text), SIGNED))

    verify_finds(seeded, SIGNED, "hash does not match")


def test_an_edit_with_a_recomputed_chain_is_found_in_the_event_store(seeded: Registry) -> None:
    # A careful forger edits the date and recomputes every hash from there to the head.
    kept = seeded.reader.head()
    prev_hash = envelope_at(seeded, SIGNED - 1)["hash"]
    for position in range(SIGNED, 23):
        envelope = envelope_at(seeded, position)
        if position == SIGNED:
            envelope["valid"] = "2005"
        forged = rechain(envelope, prev_hash)
        rewrite(seeded, {position: forged})
        prev_hash = forged["hash"]

    # The library's own copy of the event still says 2006.
    verify_finds(seeded, SIGNED, "event store's event differs")
    # And an auditor checking yesterday's receipt has the whole history up to it checked: the forged event is named.
    verify_finds(seeded, SIGNED, "event store's event differs",
                 start=kept["position"], head_hash=kept["hash"], projections=False)


def test_an_edited_event_in_the_library_table_is_found(seeded: Registry) -> None:
    state = library_state(seeded, SIGNED)
    assert b'"valid":"2006"' in state
    set_library_state(seeded, SIGNED, state.replace(b'"valid":"2006"', b'"valid":"2005"'))

    verify_finds(seeded, SIGNED, "differs from the log's envelope")


def test_an_undecodable_library_event_is_a_finding(seeded: Registry) -> None:
    set_library_state(seeded, SIGNED, b"\x00\xff not an event")

    verify_finds(seeded, SIGNED, "does not decode")


def test_an_edited_hash_column_is_found(seeded: Registry) -> None:
    with seeded.database.write() as cursor:
        cursor.execute("UPDATE {event_log} SET hash = ? WHERE position = ?", ("f" * 64, SIGNED))

    verify_finds(seeded, SIGNED, "hash column disagrees")


@pytest.mark.parametrize("garbage", ['{"position": 9, "id": ', "[9, 10]", "null", ""])
def test_an_undecodable_row_is_a_finding_not_a_crash(seeded: Registry, garbage: str) -> None:
    with seeded.database.write() as cursor:
        cursor.execute("UPDATE {event_log} SET envelope = ? WHERE position = 9", (garbage,))

    verify_finds(seeded, 9, "envelope")


def test_an_envelope_missing_its_fields_is_a_finding(seeded: Registry) -> None:
    envelope = envelope_at(seeded, 9)
    rewrite(seeded, {9: {k: envelope[k] for k in ("id", "position", "hash")}})

    verify_finds(seeded, 9, "lacks")


# Deleted and reordered rows

def test_a_row_deleted_from_the_log_is_found(seeded: Registry) -> None:
    # The entry into force (position 7) disappears from the log.
    with seeded.database.write() as cursor:
        cursor.execute("DELETE FROM {event_log} WHERE position = 7")

    verify_finds(seeded, 7, "missing")


def test_the_log_head_deleted_is_found_against_the_event_store(seeded: Registry) -> None:
    with seeded.database.write() as cursor:
        cursor.execute("DELETE FROM {event_log} WHERE position = 22")

    verify_finds(seeded, 22, "past the log's head")


@pytest.mark.parametrize("position", [7, 22])
def test_a_row_deleted_from_the_library_table_is_found(seeded: Registry, position: int) -> None:
    delete_from_library(seeded, position)

    verify_finds(seeded, position, "event store")


def test_two_swapped_envelopes_are_found(seeded: Registry) -> None:
    # The agreement's registration (5) and its signature (6) change places in the log's JSON.
    five, six = envelope_at(seeded, 5), envelope_at(seeded, 6)
    with seeded.database.write() as cursor:
        for position, envelope in ((5, six), (6, five)):
            cursor.execute("UPDATE {event_log} SET envelope = ? WHERE position = ?", (json.dumps(envelope), position))

    verify_finds(seeded, 5, "disagrees")


def test_two_swapped_rows_are_found(seeded: Registry) -> None:
    # The same, with the rows' columns moved along.
    five, six = envelope_at(seeded, 5), envelope_at(seeded, 6)
    rewrite(seeded, {5: six, 6: five})

    verify_finds(seeded, 5, "disagrees")


def test_two_rows_reordered_in_the_library_table_are_found(seeded: Registry) -> None:
    # In the library's table the agreement's registration and signature trade places.
    originator, _ = library_key(seeded, 5)
    with seeded.database.write() as cursor:
        for old, new in ((1, -1), (2, 1), (-1, 2)):
            cursor.execute(f"UPDATE {library_table(seeded)} SET originator_version = ?"
                           " WHERE originator_id = ? AND originator_version = ?", (new, originator, old))

    verify_finds(seeded, 5, "another one")


def test_two_swapped_rows_with_a_recomputed_chain_are_found(seeded: Registry) -> None:
    # The forger renumbers the swapped events and rechains the log from there.
    five, six = envelope_at(seeded, 5), envelope_at(seeded, 6)
    prev_hash, forged = envelope_at(seeded, 4)["hash"], {}
    for position in range(5, 23):
        envelope = {5: six, 6: five}.get(position) or envelope_at(seeded, position)
        forged[position] = rechain({**envelope, "position": position}, prev_hash)
        prev_hash = forged[position]["hash"]
    rewrite(seeded, forged)

    # The sealed envelopes no longer match the columns readers select by (type, version) at position 5.
    verify_finds(seeded, 5, "disagrees")


# A truncated and forged tail

def test_a_forged_tail_is_found_against_the_library_and_a_kept_head(seeded: Registry) -> None:
    # An auditor keeps the heads at 18 and 20.
    kept_18, kept_20 = envelope_at(seeded, 18), envelope_at(seeded, 20)
    # The forger truncates the log after 18 and appends two events that chain correctly:
    # the FSB-FRONTEX contacts, now established in 2008 instead of 2006.
    registered, established = envelope_at(seeded, 19), envelope_at(seeded, 20)
    with seeded.database.write() as cursor:
        cursor.execute("DELETE FROM {event_log} WHERE position > 18")
    prev_hash = kept_18["hash"]
    for envelope in (registered, {**established, "valid": "2008", "valid_lower": "2008-01-01",
                                  "valid_upper": "2008-12-31"}):
        forged = rechain(envelope, prev_hash)
        with seeded.database.write() as cursor:
            cursor.execute("INSERT INTO {event_log} (position, event_id, record, kind, type, version, recorded_at,"
                           " hash, envelope) VALUES (?,?,?,?,?,?,?,?,?)",
                           (forged["position"], forged["id"], forged["record"], forged["kind"], forged["type"],
                            forged["version"], forged["recorded_at"], forged["hash"], json.dumps(forged)))
        prev_hash = forged["hash"]

    # The library's copy of the events differs from position 20 on.
    verify_finds(seeded, 20, "differs")
    # The kept head at 20 is not extended; the one at 18 is, up to 19.
    verify_finds(seeded, 20, "does not extend the given head", start=20, head_hash=kept_20["hash"])
    assert seeded.auditor.verify(start=18, end=19, head_hash=kept_18["hash"])["ok"] is True


def test_a_forgery_through_both_tables_is_found_only_against_a_kept_head(seeded: Registry,
                                                                          store_url: str) -> None:

    kept = seeded.reader.head()
    # The forger removes the last event from the log, the library and the Merkle tree (which the
    # next append rebuilds from the log), rebuilds the views, and records the FSB Border Guard
    # Service's establishment again, through the registry itself, in 2008.
    delete_from_library(seeded, 22)
    with seeded.database.write() as cursor:
        cursor.execute("DELETE FROM {event_log} WHERE position = 22")
        cursor.execute("DELETE FROM {merkle_nodes}")
    seeded.projection.reset()
    forger = bootstrap(Settings(database=store_url))
    try:
        forger.projection.catch_up()
        forger.append("organisations", "fsb-border-guard-service", {"type": "established", "valid": "2008"}, "seed")
    finally:
        forger.close()
    assert seeded.reader.head()["position"] == kept["position"]

    # Every table agrees with every other: the store alone cannot tell.
    assert seeded.auditor.verify()["ok"] is True
    # The head the auditor kept can.
    verify_finds(seeded, 22, "does not extend the given head", start=22, head_hash=kept["hash"])


# The stored views

def segment(registry: Registry, record: str) -> tuple[int, int, int]:
    """(valid_from, sys_from, sys_to) of the record's latest live view segment."""
    with registry.database.read() as cursor:
        active = registry.projection.active(cursor)
        return tuple(active.execute(  # type: ignore[no-any-return]
            "SELECT valid_from, sys_from, sys_to FROM {view_segments} WHERE record = ?"
            " ORDER BY valid_from DESC, sys_from DESC LIMIT 1", (record,)).one())


def test_a_tampered_view_is_found_by_replaying_the_log(seeded: Registry) -> None:
    # The stored view says the agreement was terminated; the log never said so.
    valid_from, sys_from, sys_to = segment(seeded, AGREEMENT)
    with seeded.database.write() as cursor:
        active = seeded.projection.active(cursor)
        state = json.loads(active.execute(
            "SELECT state FROM {view_segments} WHERE record = ? AND valid_from = ? AND sys_from = ?",
            (AGREEMENT, valid_from, sys_from)).scalar())
        state["view"]["status"] = "terminated"
        active.execute("UPDATE {view_segments} SET state = ? WHERE record = ? AND valid_from = ? AND sys_from = ?",
                       (json.dumps(state), AGREEMENT, valid_from, sys_from))

    reason = verify_finds(seeded, sys_from, AGREEMENT)
    assert "view" in reason
    # Without the replay the log itself is intact.
    assert seeded.auditor.verify(projections=False)["ok"] is True


def test_a_tampered_timeline_item_is_found_by_replaying_the_log(seeded: Registry) -> None:
    # The 17th Joint Committee meeting is shown as retracted in the stored timeline (the log says no such thing).
    held = seeded.reader.events(0, 100, record="ru-eu-readmission-joint-committee-17", type="held")["items"][0]
    with seeded.database.write() as cursor:
        active = seeded.projection.active(cursor)
        assert active.execute("SELECT state FROM {timeline} WHERE position = ?", (held["position"],)).scalar() \
            == "current"
        active.execute("UPDATE {timeline} SET state = 'retracted' WHERE position = ?", (held["position"],))
    assert seeded.reader.timeline(None, None, record=held["record"])["items"][0]["state"] == "retracted"

    verify_finds(seeded, held["position"], "timeline")


# Columns that readers query, beside the hashed envelope

@pytest.mark.parametrize(("column", "value", "query"), [
    ("record", "eu", {"record": AGREEMENT}),
    ("kind", "body", {"kind": "agreement"}),
    ("type", "terminated", {"type": "scope_extended"}),
    ("version", 9, None),
    ("recorded_at", "2099-01-01T00:00:00.000000Z", None),
])
def test_an_edited_log_column_is_found(seeded: Registry, column: str, value: object,
                                       query: dict[str, str] | None) -> None:
    # The scope extension of 2010 (position 8) is filed under another record, kind or type, or moved in time.
    def listed() -> bool:
        return 8 in [e["position"] for e in seeded.reader.events(0, 100, **(query or {}))["items"]]

    assert listed()
    with seeded.database.write() as cursor:
        cursor.execute(f"UPDATE {{event_log}} SET {column} = ? WHERE position = 8", (value,))
    assert listed() is (query is None)  # readers see the edit: the log, filtered, has lost the extension

    verify_finds(seeded, 8)


def test_a_timeline_moved_in_valid_time_is_found(seeded: Registry) -> None:
    # The 17th meeting (4 October 2017, Brussels) is moved out of 2017 in the stored timeline's index.
    held = seeded.reader.events(0, 100, record="ru-eu-readmission-joint-committee-17", type="held")["items"][0]
    in_2017 = seeded.reader.timeline(dt.date(2017, 1, 1), dt.date(2017, 12, 31))["items"]
    assert held["id"] in [item["id"] for item in in_2017]
    with seeded.database.write() as cursor:
        seeded.projection.active(cursor).execute(
            "UPDATE {timeline} SET valid_lower = ?, valid_upper = ? WHERE position = ?",
            (dt.date(1990, 1, 1).toordinal(), dt.date(1990, 1, 1).toordinal(), held["position"]))
    in_2017 = seeded.reader.timeline(dt.date(2017, 1, 1), dt.date(2017, 12, 31))["items"]
    assert held["id"] not in [item["id"] for item in in_2017]

    verify_finds(seeded, held["position"], "timeline")


def test_a_meeting_removed_from_its_series_is_found(seeded: Registry) -> None:
    committee = "ru-eu-readmission-joint-committee"
    assert seeded.reader.view(committee, None, None)["meetings"]["held"] == 1
    with seeded.database.write() as cursor:
        seeded.projection.active(cursor).execute("DELETE FROM {series_members} WHERE series = ?", (committee,))
    assert seeded.reader.view(committee, None, None)["meetings"]["held"] == 0

    verify_finds(seeded, 13)
