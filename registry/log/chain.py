"""The global log's hash chain: canonical envelopes, SHA-256 linked by `prev_hash`."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from registry.log.database import Cursor
from registry.log.merkle import add_leaves

GENESIS = "0" * 64


def canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def envelope_hash(envelope: Mapping[str, Any]) -> str:
    """SHA-256 over the canonical JSON of the envelope without `hash`."""
    return hashlib.sha256(canonical({k: v for k, v in envelope.items() if k != "hash"})).hexdigest()


def utc_now() -> str:
    return format_instant(dt.datetime.now(dt.UTC))


def format_instant(value: dt.datetime) -> str:
    """Fixed-width RFC 3339 in UTC, so text order is time order."""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def log_head(cursor: Cursor) -> dict[str, Any]:
    """`{position, hash, recorded_at}` of the newest event (position 0 and 64 zeros when empty)."""
    row = cursor.execute(
        "SELECT position, hash, recorded_at FROM {event_log} ORDER BY position DESC LIMIT 1").one()
    if row is None:
        return {"position": 0, "hash": GENESIS, "recorded_at": None}
    return {"position": int(row[0]), "hash": row[1], "recorded_at": row[2]}


def append_to_log(
    cursor: Cursor,
    entries: Sequence[dict[str, Any]],
    idempotency: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """Give entries their positions, `recorded_at` and hashes, and store them.

    Runs inside the transaction that stores the events, after the store's write
    lock is held, so positions are gap-free and in commit order.
    """
    head = log_head(cursor)
    position, prev_hash = head["position"], head["hash"]
    recorded_at = max(utc_now(), head["recorded_at"] or "")
    stored = []
    for entry in entries:
        position += 1
        envelope = {**entry, "position": position, "recorded_at": recorded_at, "prev_hash": prev_hash}
        envelope["hash"] = prev_hash = envelope_hash(envelope)
        stored.append(envelope)
    _insert(cursor, stored)
    add_leaves(cursor, stored)
    if idempotency:
        cursor.execute(
            "INSERT INTO {idempotency} (key, actor, fingerprint, outcome, created_at) VALUES (?,?,?,?,?)",
            (idempotency["key"], idempotency["actor"], idempotency["fingerprint"],
             idempotency["outcome"], recorded_at),
        )
    return stored


class ChainBroken(Exception):
    """Imported envelopes do not continue the log from its head."""


class VersionSkipped(ChainBroken):
    """An imported event is not the next version of its record."""

    def __init__(self, position: int, message: str) -> None:
        super().__init__(message)
        self.position = position


def append_imported(cursor: Cursor, envelopes: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Store envelopes exported by a registry as they are: same positions, times and hashes.

    They must continue the log: the next position, linked to the head's hash.
    """
    head = log_head(cursor)
    position, last_hash = head["position"], head["hash"]
    for envelope in envelopes:
        if envelope["position"] != position + 1 or envelope["prev_hash"] != last_hash:
            raise ChainBroken(f"position {envelope['position']} does not continue the log at position {position}")
        position, last_hash = envelope["position"], envelope["hash"]
    _insert(cursor, envelopes)
    add_leaves(cursor, envelopes)
    skipped = cursor.execute(  # each record's version N > 1 follows its version N - 1, logged earlier
        "SELECT e.position, e.record, e.version FROM {event_log} e"
        " LEFT JOIN {event_log} p ON p.record = e.record AND p.version = e.version - 1"
        " WHERE e.position >= ? AND e.position <= ? AND e.version > 1"
        " AND (p.position IS NULL OR p.position >= e.position) ORDER BY e.position LIMIT 1",
        (envelopes[0]["position"], position)).one()
    if skipped is not None:
        raise VersionSkipped(int(skipped[0]), f"version {skipped[2]} of {skipped[1]!r} "
                                              f"does not follow version {skipped[2] - 1}")
    return list(envelopes)


def record_in_log(cursor: Cursor, kwargs: Mapping[str, Any]) -> None:
    """What a recorder adds to the transaction that stores events: their log entries."""
    if kwargs.get("log_entries"):
        stored = append_to_log(cursor, kwargs["log_entries"], kwargs.get("idempotency"))
        kwargs["stored"].extend(stored)
        if kwargs.get("project"):
            kwargs["projected"].append(kwargs["project"](cursor, stored))
    elif kwargs.get("imported"):
        kwargs["stored"].extend(append_imported(cursor, kwargs["imported"]))


def _insert(cursor: Cursor, envelopes: Sequence[Mapping[str, Any]]) -> None:
    cursor.executemany(
        "INSERT INTO {event_log} (position, event_id, record, kind, type, version, target,"
        " recorded_at, hash, envelope) VALUES (?,?,?,?,?,?,?,?,?,?)",
        [
            (
                e["position"], e["id"], e["record"], e["kind"], e["type"], e["version"],
                e["data"].get("target") if e["type"] in ("corrected", "retracted") else None,
                e["recorded_at"], e["hash"], json.dumps(e, ensure_ascii=False),
            )
            for e in envelopes
        ],
    )
