"""The temporal fold: a record's events, corrections applied, folded along valid time.

A record's view on the valid axis is piecewise constant: it changes only on the
days an event may first have happened (its lower bound) and the days it has
certainly happened (`certain_from`). `segments()` gives the state that holds from
each such day on; the projection stores them so that a view as of any day is
one lookup, whatever the length of the history.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from events import CATALOGUE, Fact, ValidTime

BEFORE_ALL = 0  # the first segment starts before any day


@dataclass
class Knowledge:
    """What a record's log says at one system position, corrections and retractions applied."""

    kind: str
    registered: dict[str, Any]
    facts: list[Fact] = field(default_factory=list)
    states: dict[str, str] = field(default_factory=dict)  # event id -> current|corrected|retracted
    corrections: dict[str, list[str]] = field(default_factory=dict)  # target -> correcting ids
    retracted_by: dict[str, str] = field(default_factory=dict)
    envelopes: dict[str, dict[str, Any]] = field(default_factory=dict)
    effective: dict[str, dict[str, Any]] = field(default_factory=dict)  # event id -> {valid, data}


def read_log(envelopes: Iterable[Mapping[str, Any]]) -> Knowledge:
    """Apply corrections (cumulatively, latest by position wins) and retractions."""
    ordered = sorted(envelopes, key=lambda e: e["position"])
    registered = ordered[0]
    knowledge = Knowledge(kind=registered["kind"], registered=dict(registered["data"]))
    knowledge.states[registered["id"]] = "current"
    knowledge.envelopes[registered["id"]] = dict(registered)
    for envelope in ordered[1:]:
        event_id, kind = envelope["id"], envelope["type"]
        if kind == "corrected":
            target = envelope["data"]["target"]
            if knowledge.states.get(target) == "retracted":
                continue
            knowledge.states[target] = "corrected"
            knowledge.corrections.setdefault(target, []).append(event_id)
            if target == registered["id"]:
                knowledge.registered.update(envelope["data"]["changes"])
            else:
                effective = knowledge.effective[target]
                changes = dict(envelope["data"]["changes"])
                if "valid" in changes:
                    effective["valid"] = changes.pop("valid")
                effective["data"] = {**effective["data"], **changes}
        elif kind == "retracted":
            target = envelope["data"]["target"]
            knowledge.states[target] = "retracted"
            knowledge.retracted_by[target] = event_id
        else:
            knowledge.states[event_id] = "current"
            knowledge.envelopes[event_id] = dict(envelope)
            knowledge.effective[event_id] = {"valid": envelope["valid"], "data": dict(envelope["data"])}
    for event_id, effective in knowledge.effective.items():
        if knowledge.states[event_id] != "retracted":
            knowledge.facts.append(
                Fact(
                    id=event_id,
                    type=knowledge.envelopes[event_id]["type"],
                    valid=ValidTime.stored(effective["valid"]),
                    data=effective["data"],
                    position=knowledge.envelopes[event_id]["position"],
                )
            )
    knowledge.facts.sort(key=lambda f: f.order)
    return knowledge


def initial_state(kind: str, registered: Mapping[str, Any]) -> dict[str, Any]:
    view = {"status": None, **CATALOGUE.kinds[kind].initial(registered)}
    return {"view": view, "uncertain": [], "has_world": False}


def fold(kind: str, view: dict[str, Any], facts: Iterable[Fact]) -> dict[str, Any]:
    """A new view: `view` with `facts` applied in the order given.

    Effects set the view's top-level values and never edit a list in place, so a
    shallow copy keeps `view` untouched.
    """
    view = dict(view)
    for fact in facts:
        CATALOGUE.event_type(kind, fact.type).apply(view, fact)
    return view


def breakpoints(fact: Fact) -> tuple[int, int]:
    return fact.valid.ordinals[0], fact.valid.ordinals[2]


def segments(knowledge: Knowledge) -> list[tuple[int, dict[str, Any]]]:
    """(first day as an ordinal, state) for every stretch of valid time where the view is constant."""
    kind, facts = knowledge.kind, knowledge.facts
    start = initial_state(kind, knowledge.registered)
    days = sorted({BEFORE_ALL, *(d for f in facts for d in breakpoints(f))})
    becoming_certain: dict[int, list[Fact]] = {}
    for fact in facts:  # facts are in valid order, so each day's list is too
        becoming_certain.setdefault(fact.valid.ordinals[2], []).append(fact)
    by_lower = sorted(facts, key=lambda f: f.valid.lower)
    result: list[tuple[int, dict[str, Any]]] = []
    certain: list[Fact] = []
    pending: set[str] = set()
    entered = 0
    view = start["view"]
    for day in days:
        while entered < len(by_lower) and by_lower[entered].valid.ordinals[0] <= day:
            pending.add(by_lower[entered].id)
            entered += 1
        newly = becoming_certain.get(day, [])
        if newly:
            pending.difference_update(f.id for f in newly)
            if certain and newly[0].order < certain[-1].order:
                certain = sorted([*certain, *newly], key=lambda f: f.order)
                view = fold(kind, start["view"], certain)
            else:
                certain.extend(newly)
                view = fold(kind, view, newly)
        result.append((day, {"view": view, "uncertain": sorted(pending), "has_world": entered > 0}))
    return result


def dump_state(state: Mapping[str, Any]) -> str:
    """The state as stored: the same text for the same state, however it was built."""
    return orjson.dumps(state, option=orjson.OPT_SORT_KEYS).decode()
