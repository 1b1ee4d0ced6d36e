"""What one event does to a record's stored view rows, wherever the rows are kept.

The live catch-up (rows in the database) and the bulk load (one record's rows in
memory) apply the same rules, so both store exactly the same rows:

- a registration starts the record: one segment from before all days;
- a world event that lands after every known day of its record adds one or two
  segments (`appended`), ending the alive one it re-states;
- any other event (an earlier fact, a correction, a retraction) refolds the
  record from its log (`refold`), ending and adding only the rows that changed.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from events import Fact, ValidTime
from events.temporal import BEFORE_ALL, dump_state, fold, initial_state, read_log, segments
from registry.views.tables import ALIVE as ALIVE  # the projection and the bulk load take it from here

Head = dict[str, Any]  # {kind, last_day, last_order, last_state}: what the fast path needs of a record


def registered_head(envelope: Mapping[str, Any]) -> Head:
    state = initial_state(envelope["kind"], envelope["data"])
    return {"last_day": BEFORE_ALL, "last_order": None, "last_state": state, "kind": envelope["kind"]}


def world_fact(envelope: Mapping[str, Any]) -> Fact | None:
    """The envelope as a fact, or None for a registration, correction or retraction."""
    if envelope["type"] in ("registered", "corrected", "retracted"):
        return None
    return Fact(envelope["id"], envelope["type"], ValidTime.stored(envelope["valid"]), envelope["data"],
                envelope["position"])


def appends_after(head: Head, fact: Fact) -> bool:
    """True when the fact falls after every day and every fact the record already has."""
    if fact.valid.ordinals[0] < head["last_day"]:
        return False
    return head["last_order"] is None or list(fact.order) > head["last_order"]


def appended(head: Head, fact: Fact) -> tuple[list[tuple[int, dict[str, Any]]], Head]:
    """The segments a fact adds when it `appends_after` the head, and the head after it.

    When the first of them starts on the head's last day, it replaces that day's alive row.
    """
    last = head["last_state"]
    lower, _, certain = fact.valid.ordinals
    after = {"view": fold(head["kind"], last["view"], [fact]), "uncertain": [], "has_world": True}
    rows = [(certain, after)]
    if lower < certain:
        rows.insert(0, (lower, {**last, "uncertain": [fact.id], "has_world": True}))
    return rows, {**head, "last_day": certain, "last_order": list(fact.order), "last_state": after}


Facet = tuple[str, str, str, str]  # (kind, "status" or "party", value, record)


def facets(kind: str, record: str, state: Mapping[str, Any]) -> list[Facet]:
    """What lists filter a view by: its status and each of its parties (or members)."""
    view = state["view"]
    found = [(kind, "status", view["status"], record)] if view.get("status") is not None else []
    found += [(kind, "party", party, record) for party in view.get("parties") or view.get("members") or []]
    return found


def text_facets(kind: str, record: str, states: Iterable[str]) -> list[Facet]:
    return [facet for text in states for facet in facets(kind, record, orjson.loads(text))]
Evidence = tuple[int, int, int | None, str]  # (certain day, valid lower, valid upper, item text)


def evidence_entry(fact: Fact, sources: list[Any]) -> Evidence:
    """How a certain world event shows in the views that fold it: {event, type, valid, sources}."""
    lower, upper, certain = fact.valid.ordinals
    item = {"event": fact.id, "type": fact.type, "valid": fact.valid.text, "sources": sources}
    return (certain, lower, upper, orjson.dumps(item).decode())


def title_of(state: Mapping[str, Any]) -> str | None:
    """The words a search finds a record by, as of a state: its title, or its name and acronym."""
    view = state["view"]
    title = view.get("title") or view.get("name")
    return f"{title} ({view['acronym']})" if title and view.get("acronym") else title


def search_row(envelope: Mapping[str, Any], matched: str, text: str) -> tuple[Any, ...]:
    """(digest, text, record, kind, matched, position): where a text occurs (SEARCH_COLUMNS)."""
    return (text_digest(text), text, envelope["record"], envelope["kind"], matched, envelope["position"])


@functools.lru_cache(maxsize=1024)  # sources are quoted again and again
def text_digest(text: str) -> bytes:
    return hashlib.blake2b(text.encode(), digest_size=16).digest()


def text_rows(envelope: Mapping[str, Any]) -> list[tuple[Any, ...]]:
    """The search rows of an event's own words: its note, its sources' titles and quotes."""
    rows = []
    if envelope.get("note"):
        rows.append(search_row(envelope, "note", envelope["note"]))
    for source in envelope.get("sources") or ():
        words = " — ".join(part for part in (source.get("title"), source.get("quote")) if part)
        if words:
            rows.append(search_row(envelope, "source", words))
    return rows


def new_titles(envelope: Mapping[str, Any], before: Iterable[str | None],
               after: Iterable[str | None]) -> list[tuple[Any, ...]]:
    """Search rows for the titles an event gave the record that it did not have just before."""
    known = set(before)
    return [search_row(envelope, "title", title) for title in sorted({t for t in after if t} - known)]


def timeline_row(record: str, fact: Fact, state: str = "current", effective: str | None = None) -> tuple[Any, ...]:
    lower, upper, _ = fact.valid.ordinals
    return (record, fact.position, lower, upper, state, effective)


@dataclass(frozen=True)
class Refold:
    """A record refolded from its log: its segments now, its head, series and timeline rows."""

    segments: list[tuple[int, str]]  # (first day, state text) in day order
    head: Head
    series: str | None
    timeline: list[tuple[Any, ...]]
    evidence: dict[int, Evidence]  # event position -> how it shows once certain

    def titles(self) -> set[str | None]:
        return {title_of(orjson.loads(state)) for _, state in self.segments}

    def changes(self, alive: Mapping[int, str]) -> tuple[list[int], list[tuple[int, str]]]:
        """Against the alive rows (day -> state text): the days whose row ends, and the rows to add."""
        wanted = dict(self.segments)
        ended = [day for day, state in alive.items() if wanted.get(day) != state]
        added = [(day, state) for day, state in self.segments if alive.get(day) != state]
        return ended, added

    def evidence_changes(self, alive: Mapping[int, Evidence]) -> tuple[list[int], list[tuple[int, Evidence]]]:
        """Against the alive evidence (event position -> entry): the positions whose row ends, and the rows to add."""
        ended = [position for position, entry in alive.items() if self.evidence.get(position) != entry]
        added = [(position, entry) for position, entry in sorted(self.evidence.items())
                 if alive.get(position) != entry]
        return ended, added


def refold(record: str, envelopes: Iterable[Mapping[str, Any]]) -> Refold:
    envelopes = list(envelopes)
    knowledge = read_log(envelopes)
    fresh = [(day, dump_state(state)) for day, state in segments(knowledge)]
    last_day, last_state = fresh[-1]
    # The fast path needs every fact certain by the last day; a refold keeps that true.
    head = {
        "last_day": last_day,
        "last_order": list(knowledge.facts[-1].order) if knowledge.facts else None,
        "last_state": orjson.loads(last_state),
        "kind": knowledge.kind,
    }
    timeline = []
    for fact in knowledge.facts:
        state = knowledge.states[fact.id]
        effective = None
        if state == "corrected":
            effective = json.dumps({"valid": fact.valid.text, **fact.valid.bounds(), "data": fact.data},
                                   ensure_ascii=False)
        timeline.append(timeline_row(record, fact, state, effective))
    sources = {e["id"]: list(e.get("sources") or ()) for e in envelopes}
    evidence = {
        fact.position: evidence_entry(fact, [
            *sources[fact.id], *(s for c in knowledge.corrections.get(fact.id, ()) for s in sources[c])])
        for fact in knowledge.facts
    }
    return Refold(fresh, head, knowledge.registered.get("series"), timeline, evidence)


def dump_head(head: Mapping[str, Any]) -> str:
    return orjson.dumps({k: v for k, v in head.items() if k != "kind"}).decode()

