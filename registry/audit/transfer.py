"""Export and import the log as NDJSON: one CloudEvents-compatible object per event.

An export line is `{specversion, id, source, type, subject, time, datacontenttype,
data}` with the event's envelope as `data`. Import checks the whole file's hash
chain before writing anything, then continues the store's log with the file's
events exactly as they were (positions, `recorded_at`, hashes), so the copy
verifies against the original's head. It is idempotent by event id: events the
store already holds must be the same events, and are skipped.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from eventsourcing.persistence import IntegrityError
from eventsourcing.utils import get_topic
from marshmallow import ValidationError

from events import CATALOGUE, META_TYPES, ValidTime
from events.ids import is_event_id
from events.text import text_problems
from registry.errors import Conflict, Invalid
from registry.log import reader as log
from registry.log.chain import GENESIS, ChainBroken, VersionSkipped, envelope_hash
from registry.log.cloudevents import cloud_event
from registry.log.database import Database
from registry.log.store import Record, RegistryStore, record_uuid
from registry.log.writer import LogWriter

BATCH = 1000


def export_lines(database: Database, after: int = 0, source: str = "urn:cooperation-registry",
                 progress: Callable[[int], object] | None = None) -> Iterator[str]:
    """NDJSON lines of every event after `after`, read a batch at a time (constant memory)."""
    while True:
        with database.read() as cursor:
            envelopes = log.read_range(cursor, after, limit=BATCH)
        if not envelopes:
            return
        for envelope in envelopes:
            yield json.dumps(cloud_event(envelope, source), ensure_ascii=False) + "\n"
        after = envelopes[-1]["position"]
        if progress:
            progress(len(envelopes))


def read_envelopes(lines: Iterable[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, envelope) for every line; raises Invalid for a line that is not an export line."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError:
            raise Invalid(f"line {number} is not JSON (a corrupt or truncated file?)", {"line": [number]}) from None
        envelope = item.get("data") if isinstance(item, dict) and "specversion" in item else item
        if not isinstance(envelope, dict) or not {"position", "hash", "prev_hash", "id"} <= set(envelope):
            raise Invalid(f"line {number} holds no event envelope", {"line": [number]})
        if envelope is not item and any(item.get(k) != v for k, v in cloud_event(envelope, "").items()
                                        if k in ("id", "type", "subject", "time")):
            raise Invalid(f"line {number}: the CloudEvents fields disagree with the event", {"line": [number]})
        yield number, envelope


def check_file(lines: Iterable[str]) -> tuple[int, int, str]:
    """Verify a file on its own: its hash chain, and that each event keeps the log's rules
    (positions and versions run on, time never goes back, the catalogue can read it).
    Returns (first position, last position, first prev_hash). Raises Invalid."""
    first, last, first_prev, prev_hash, recorded_at = 0, 0, GENESIS, None, ""
    for number, envelope in read_envelopes(lines):
        position = envelope["position"]
        if prev_hash is None:
            first, first_prev = position, envelope["prev_hash"]
        elif position != last + 1:
            raise Invalid(f"line {number}: position {position} does not follow {last}", {"line": [number]})
        elif envelope["prev_hash"] != prev_hash:
            raise Invalid(f"line {number}: prev_hash does not link to position {last}", {"line": [number]})
        if envelope_hash(envelope) != envelope["hash"]:
            raise Invalid(f"line {number}: the hash does not match the event (position {position})",
                          {"line": [number]})
        problem = _rule_broken(envelope, recorded_at)
        if problem:
            raise Invalid(f"line {number} (position {position}): {problem}", {"line": [number]})
        last, prev_hash, recorded_at = position, envelope["hash"], envelope["recorded_at"]
    if prev_hash is None:
        raise Invalid("the file holds no events", {"file": ["empty"]})
    if first == 1 and first_prev != GENESIS:
        raise Invalid("line 1: the first event must chain from 64 zeros", {"line": [1]})
    return first, last, first_prev


def _rule_broken(envelope: dict[str, Any], recorded_at: str) -> str | None:
    """What breaks the log's rules in one event (versions following each other is checked on writing)."""
    problems = text_problems(envelope, "event")
    if problems:
        return "; ".join(f"{path} {', '.join(found)}" for path, found in problems.items())
    kind, type_name = envelope.get("kind"), envelope.get("type")
    if kind not in CATALOGUE.kinds:
        return f"unknown kind {kind!r}"
    if type_name not in META_TYPES and type_name not in CATALOGUE.kinds[kind].events:
        return f"{type_name!r} is not an event type of the {kind} kind"
    if not isinstance(envelope.get("recorded_at"), str) or envelope["recorded_at"] < recorded_at:
        return "recorded_at is earlier than the previous event's"
    version = envelope.get("version")
    if not isinstance(version, int) or version < 1:
        return "version must be a whole number from 1"
    if (type_name == "registered") != (version == 1):
        return "a record's first event, and only it, is its registration"
    if type_name in META_TYPES:
        if envelope.get("valid") is not None:
            return "only world events have a valid time"
    else:
        try:
            ValidTime.parse(envelope.get("valid"))
        except ValueError as error:
            return f"valid: {error}"
    return _data_broken(kind, type_name, envelope.get("data"))


def _data_broken(kind: str, type_name: str, data: Any) -> str | None:
    """What the catalogue finds wrong with an event's data (references to other records aside)."""
    if not isinstance(data, dict):
        return "data is not an object"
    if type_name in ("corrected", "retracted"):
        if not is_event_id(data.get("target")) or not isinstance(data.get("reason"), str):
            return f"a {type_name} event needs a target event id and a reason"
        if type_name == "corrected" and not isinstance(data.get("changes"), dict):
            return "a corrected event needs its changes"
        return None
    schema = CATALOGUE.kinds[kind].registered if type_name == "registered" else CATALOGUE.event_type(
        kind, type_name).schema
    try:
        schema().load(data)
    except ValidationError as error:
        return f"data: {error.messages}"
    return None


def import_lines(store: RegistryStore, read: Callable[[], Iterable[str]],
                 progress: Callable[[int], object] | None = None) -> dict[str, int]:
    """Import an export file; `read()` gives its lines afresh (it is read twice).

    Raises Invalid for a file whose chain does not verify and Conflict when the
    store's log disagrees with it; in both cases nothing is written.
    """
    first, last, first_prev = check_file(read())
    database = store.database
    with database.read() as cursor:
        head_position = log.last_position(cursor)
        if first > head_position + 1:
            raise Conflict(f"the file starts at position {first} but the store's log ends at {head_position}")
        anchor = log.entry(cursor, first - 1) if first > 1 else None
        if first > 1 and (anchor is None or anchor["hash"] != first_prev):
            raise Conflict(f"the file's position {first} does not continue the store's position {first - 1}")
    for _, envelope in read_envelopes(read()):
        if envelope["position"] > head_position:
            break
        with database.read() as cursor:
            stored = log.entry(cursor, envelope["position"])
        if stored is None or (stored["event_id"], stored["hash"]) != (envelope["id"], envelope["hash"]):
            raise Conflict(f"the store's log conflicts with the file at position {envelope['position']}")
    written = 0
    try:
        with LogWriter(store).importing() as write:  # one transaction: all of the file's new events, or none
            batch: list[dict[str, Any]] = []
            for _, envelope in read_envelopes(read()):
                if envelope["position"] <= head_position:
                    continue
                batch.append(envelope)
                if len(batch) == BATCH:
                    write([_domain_event(e) for e in batch], batch)
                    written += len(batch)
                    if progress:
                        progress(len(batch))
                    batch = []
            if batch:
                write([_domain_event(e) for e in batch], batch)
                written += len(batch)
                if progress:
                    progress(len(batch))
    except VersionSkipped as error:
        line = error.position - first + 1
        raise Invalid(f"line {line} (position {error.position}): {error}; nothing was imported",
                      {"line": [line]}) from error
    except (IntegrityError, ChainBroken) as error:
        raise Conflict(f"the file cannot continue the store's log (nothing was imported): {error}") from error
    return {"read": last - first + 1, "written": written, "skipped": last - first + 1 - written}


def _domain_event(envelope: dict[str, Any]) -> Any:
    common = {
        "originator_id": record_uuid(envelope["record"]),
        "originator_version": envelope["version"],
        "timestamp": dt.datetime.fromisoformat(envelope["recorded_at"].replace("Z", "+00:00")),
        "event_id": envelope["id"],
        "data": envelope["data"],
        "sources": envelope["sources"],
        "note": envelope["note"],
        "actor": envelope["actor"],
    }
    if envelope["type"] == "registered":
        return Record.Registered(  # type: ignore[call-arg]
            originator_topic=get_topic(Record), kind=envelope["kind"], record_id=envelope["record"], **common)
    return Record.Recorded(type=envelope["type"], valid=envelope["valid"], **common)  # type: ignore[call-arg]
