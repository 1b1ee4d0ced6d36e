"""The view projection: follows the global log and keeps bitemporal view segments.

Each batch runs in one transaction that also moves the tracking position, so
every event is applied exactly once, a crash resumes where it stopped, and a
rebuild is a reset followed by a catch-up.

Segment rows carry the system positions between which they were the record's
knowledge (`sys_from` <= P < `sys_to`) and the first valid day they hold for.
An event that lands after every known day of its record adds one or two rows;
any other event (an earlier fact, a correction, a retraction) refolds the
record and replaces only the rows that changed.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

from events import Fact, ValidTime
from registry.database import Cursor, Database
from registry.temporal import BEFORE_ALL, dump_state, fold, initial_state, read_log, segments

ALIVE = 2**62
NAME = "views"
log = logging.getLogger(__name__)


class ViewProjection:
    def __init__(self, database: Database) -> None:
        self.database = database

    def position(self) -> int:
        with self.database.read() as cursor:
            return _position(cursor)

    def catch_up(self, batch: int = 500, progress: Callable[[int], None] | None = None) -> int:
        """Apply every logged event not yet applied; returns the projected position."""
        while True:
            with self.database.write(lock=NAME) as cursor:
                position = _position(cursor)
                rows = cursor.execute(
                    "SELECT envelope FROM {event_log} WHERE position > ? ORDER BY position LIMIT ?",
                    (position, batch),
                ).all()
                for row in rows:
                    self.apply(cursor, json.loads(row[0]))
                if rows:
                    position += len(rows)
                    cursor.execute(
                        "INSERT INTO {projection_position} (name, position) VALUES (?, ?) "
                        "ON CONFLICT (name) DO UPDATE SET position = excluded.position",
                        (NAME, position),
                    )
            if progress and rows:
                progress(len(rows))
            if len(rows) < batch:
                return position

    def behind(self) -> bool:
        with self.database.read() as cursor:
            logged = cursor.execute("SELECT MAX(position) FROM {event_log}").scalar()
            return int(logged or 0) > _position(cursor)

    def follow(self, stop: threading.Event, interval: float = 1.0) -> None:
        """Catch up whenever the log is ahead, until `stop` is set; store errors are logged and retried."""
        while not stop.is_set():
            try:
                if self.behind():
                    self.catch_up()
            except Exception:
                log.exception("the projection could not catch up; retrying")
            stop.wait(interval)

    def reset(self) -> None:
        with self.database.write(lock=NAME) as cursor:
            for table in ("view_segments", "records", "timeline", "projection_position"):
                cursor.execute(f"DELETE FROM {{{table}}}")

    def apply(self, cursor: Cursor, envelope: Mapping[str, Any]) -> None:
        if envelope["type"] == "registered":
            self._registered(cursor, envelope)
            return
        head = json.loads(cursor.execute(
            "SELECT head FROM {records} WHERE id = ?", (envelope["record"],)).scalar())
        if envelope["type"] not in ("corrected", "retracted"):
            fact = Fact(envelope["id"], envelope["type"], ValidTime.parse(envelope["valid"]),
                        envelope["data"], envelope["position"])
            if _appends_after(head, fact):
                self._append(cursor, envelope, head, fact)
                return
        self._refold(cursor, envelope["record"], envelope["position"])

    def _registered(self, cursor: Cursor, envelope: Mapping[str, Any]) -> None:
        state = initial_state(envelope["kind"], envelope["data"])
        head = {"last_day": BEFORE_ALL, "last_order": None, "last_state": state}
        cursor.execute(
            "INSERT INTO {records} (id, kind, series, registered_position, head) VALUES (?,?,?,?,?)",
            (envelope["record"], envelope["kind"], envelope["data"].get("series"),
             envelope["position"], json.dumps(head)),
        )
        self._insert_segments(cursor, envelope["record"], envelope["position"], [(BEFORE_ALL, state)])

    def _append(self, cursor: Cursor, envelope: Mapping[str, Any], head: dict[str, Any], fact: Fact) -> None:
        record, position = envelope["record"], envelope["position"]
        last, kind = head["last_state"], envelope["kind"]
        lower, certain = fact.valid.lower.toordinal(), fact.valid.certain_from.toordinal()
        after = {"view": fold(kind, last["view"], [fact]), "uncertain": [], "has_world": True}
        rows = [(certain, after)]
        if lower < certain:
            rows.insert(0, (lower, {**last, "uncertain": [fact.id], "has_world": True}))
        if rows[0][0] == head["last_day"]:
            cursor.execute(
                "UPDATE {view_segments} SET sys_to = ? WHERE record = ? AND valid_from = ? AND sys_to = ?",
                (position, record, head["last_day"], ALIVE),
            )
        self._insert_segments(cursor, record, position, rows)
        head.update(last_day=certain, last_order=list(fact.order), last_state=after)
        cursor.execute("UPDATE {records} SET head = ? WHERE id = ?", (json.dumps(head), record))
        self._insert_timeline(cursor, [_timeline_item(envelope, "current", None)], kind)

    def _refold(self, cursor: Cursor, record: str, position: int) -> None:
        envelopes = [json.loads(r[0]) for r in cursor.execute(
            "SELECT envelope FROM {event_log} WHERE record = ? AND position <= ? ORDER BY position",
            (record, position)).all()]
        knowledge = read_log(envelopes)
        fresh = [(day, dump_state(state)) for day, state in segments(knowledge)]
        alive = {r[0]: r[1] for r in cursor.execute(
            "SELECT valid_from, state FROM {view_segments} WHERE record = ? AND sys_to = ?",
            (record, ALIVE)).all()}
        wanted = dict(fresh)
        for day, state in alive.items():
            if wanted.get(day) != state:
                cursor.execute(
                    "UPDATE {view_segments} SET sys_to = ? WHERE record = ? AND valid_from = ? AND sys_to = ?",
                    (position, record, day, ALIVE),
                )
        cursor.executemany(
            "INSERT INTO {view_segments} (record, valid_from, sys_from, sys_to, state) VALUES (?,?,?,?,?)",
            [(record, day, position, ALIVE, state) for day, state in fresh if alive.get(day) != state],
        )
        last_day, last_state = fresh[-1]
        head = {
            "last_day": last_day,
            "last_order": list(knowledge.facts[-1].order) if knowledge.facts else None,
            "last_state": json.loads(last_state),
        }
        # The fast path needs every fact certain by the last day; refolds keep that true.
        cursor.execute(
            "UPDATE {records} SET head = ?, series = ? WHERE id = ?",
            (json.dumps(head), knowledge.registered.get("series"), record),
        )
        cursor.execute("DELETE FROM {timeline} WHERE record = ?", (record,))
        items = [
            _timeline_item(knowledge.envelopes[f.id], knowledge.states[f.id], knowledge.effective[f.id])
            for f in knowledge.facts
        ]
        self._insert_timeline(cursor, items, knowledge.kind)

    def _insert_segments(self, cursor: Cursor, record: str, position: int,
                         rows: list[tuple[int, dict[str, Any]]]) -> None:
        cursor.executemany(
            "INSERT INTO {view_segments} (record, valid_from, sys_from, sys_to, state) VALUES (?,?,?,?,?)",
            [(record, day, position, ALIVE, dump_state(state)) for day, state in rows],
        )

    def _insert_timeline(self, cursor: Cursor, items: list[dict[str, Any]], kind: str) -> None:
        rows = []
        for item in items:
            valid = ValidTime.parse(item["effective"]["valid"] if "effective" in item else item["valid"])
            rows.append((
                item["id"], item["record"], kind, item["type"], item["position"],
                valid.lower.toordinal(), valid.upper.toordinal() if valid.upper else None,
                json.dumps(item, ensure_ascii=False),
            ))
        cursor.executemany(
            "INSERT INTO {timeline} (event_id, record, kind, type, position, valid_lower, valid_upper, item)"
            " VALUES (?,?,?,?,?,?,?,?)",
            rows,
        )


def _position(cursor: Cursor) -> int:
    value = cursor.execute("SELECT position FROM {projection_position} WHERE name = ?", (NAME,)).scalar()
    return int(value or 0)


def _appends_after(head: Mapping[str, Any], fact: Fact) -> bool:
    """True when the fact falls after every day and every fact the record already has."""
    if fact.valid.lower.toordinal() < head["last_day"]:
        return False
    return head["last_order"] is None or list(fact.order) > head["last_order"]


def _timeline_item(envelope: Mapping[str, Any], state: str, effective: Mapping[str, Any] | None) -> dict[str, Any]:
    item = {**envelope, "state": state}
    if state == "corrected" and effective is not None:
        valid = ValidTime.parse(effective["valid"])
        item["effective"] = {"valid": valid.text, **valid.bounds(), "data": effective["data"]}
    return item
