"""The global log's hash chain: canonical envelopes, SHA-256 linked by `prev_hash`."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from registry.clock import utc_now
from registry.log import reader
from registry.log.database import Cursor
from registry.log.merkle import add_leaves
from registry.log.reader import GENESIS

__all__ = ["GENESIS", "ChainBroken", "EntryText", "VersionSkipped", "append_imported", "append_to_log", "canonical",
           "envelope_hash"]

LOGGED = ("position", "prev_hash", "recorded_at")  # what the log adds to an entry, in key order


def canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def envelope_hash(envelope: Mapping[str, Any]) -> str:
    """SHA-256 over the canonical JSON of the envelope without `hash`."""
    return hashlib.sha256(canonical({k: v for k, v in envelope.items() if k != "hash"})).hexdigest()


class EntryText:
    """An entry's canonical JSON, made before the log's write lock is taken, in the pieces that
    fall between the keys the log adds; `hash()` joins them with those keys' values, giving
    `envelope_hash` of the envelope without encoding the entry again."""

    __slots__ = ("pieces",)

    def __init__(self, entry: Mapping[str, Any]) -> None:
        pieces: list[list[str]] = [[] for _ in range(len(LOGGED) + 1)]
        for key in sorted(entry):
            if key in LOGGED or key == "hash":
                continue
            gap = sum(key > logged for logged in LOGGED)
            pieces[gap].append(_pair(key, entry[key]))
        self.pieces = [",".join(piece) for piece in pieces]

    def hash(self, position: int, prev_hash: str, recorded_at: str) -> str:
        first, *rest = self.pieces
        parts = [first] if first else []
        for key, value, piece in zip(LOGGED, (position, prev_hash, recorded_at), rest, strict=True):
            parts.append(_pair(key, value))
            if piece:
                parts.append(piece)
        return hashlib.sha256(("{" + ",".join(parts) + "}").encode()).hexdigest()


def _pair(key: str, value: Any) -> str:
    return json.dumps(key, ensure_ascii=False) + ":" + json.dumps(value, sort_keys=True, separators=(",", ":"),
                                                                  ensure_ascii=False)


def append_to_log(cursor: Cursor, entries: Sequence[Mapping[str, Any]],
                  head: Mapping[str, Any] | None = None, leaves: bool = True,
                  texts: Sequence[EntryText] | None = None) -> list[dict[str, Any]]:
    """Give entries their positions, `recorded_at` and hashes, store them, and return the envelopes.

    Runs inside the transaction that stores the events, after the store's write
    lock is held, so positions are gap-free and in commit order. `head`: the log's
    newest entry, when the caller has it at hand. `leaves=False`: the caller adds the
    envelopes to the Merkle tree itself (`merkle.add_leaves`), before the transaction ends.
    `texts`: the entries' canonical JSON, made beforehand (else here).
    """
    head = head if head is not None else reader.head(cursor)
    position, prev_hash = head["position"], head["hash"]
    recorded_at = max(utc_now(), head["recorded_at"] or "")
    stored = []
    for entry, text in zip(entries, texts if texts is not None else map(EntryText, entries), strict=True):
        position += 1
        envelope = {**entry, "position": position, "recorded_at": recorded_at, "prev_hash": prev_hash}
        envelope["hash"] = prev_hash = text.hash(position, prev_hash, recorded_at)
        stored.append(envelope)
    _insert(cursor, stored)
    if leaves:
        add_leaves(cursor, stored)
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
    head = reader.head(cursor)
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


def envelope_text(envelope: Mapping[str, Any]) -> str:
    """The envelope as the log stores it: compact JSON (readers parse it; the hash is over `canonical`)."""
    try:
        return orjson.dumps(envelope).decode()
    except orjson.JSONEncodeError:  # an integer past 64 bits, which orjson does not write
        return json.dumps(envelope, ensure_ascii=False, separators=(",", ":"))


def _insert(cursor: Cursor, envelopes: Sequence[Mapping[str, Any]]) -> None:
    cursor.insert_rows(
        "event_log", ("position", "event_id", "record", "kind", "type", "version", "target", "recorded_at", "hash",
                      "envelope"),
        [
            (
                e["position"], e["id"], e["record"], e["kind"], e["type"], e["version"],
                e["data"].get("target") if e["type"] in ("corrected", "retracted") else None,
                e["recorded_at"], e["hash"], envelope_text(e),
            )
            for e in envelopes
        ],
    )
