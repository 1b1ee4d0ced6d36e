"""Quick checks of plain input: exactly what the marshmallow schema loads, or nothing (the schema then answers)."""

from __future__ import annotations

from typing import Any

import pytest
from marshmallow import ValidationError

from events import BatchInput, EnvelopeInput
from events.catalogue import BATCH_LIMIT
from registry.service import _batch_shape, _plain_envelope

REGISTER = {"op": "register", "collection": "meetings", "body": {"id": "m-1", "title": "1st meeting"}}
APPEND = {"op": "append", "collection": "meetings", "id": "m-1", "body": {"type": "held", "valid": "2030"}}
CORRECT = {"op": "correct", "event": "e-1", "body": {"changes": {"place": "Brussels"}, "reason": "typo"}}
RETRACT = {"op": "retract", "event": "e-1", "body": {"reason": "never happened"}}

PLAIN = [
    [REGISTER],
    [REGISTER, APPEND, {**APPEND, "if_match": 2}, CORRECT, RETRACT],
    [{**APPEND, "if_match": 1}, {**APPEND, "if_match": 2**62}, {**APPEND, "body": {}}],
    [{"body": {"x": [1]}, "id": "m-1", "collection": "meetings", "op": "append"}],  # keys in any order
    [REGISTER] * BATCH_LIMIT,
]


def without(write: dict[str, Any], name: str) -> dict[str, Any]:
    return {k: v for k, v in write.items() if k != name}


NOT_PLAIN = [
    ({}, "writes"),
    ({"items": [REGISTER]}, "items"),
    ({"writes": [REGISTER], "items": []}, "items"),
    ({"writes": []}, "writes"),
    ({"writes": [REGISTER] * (BATCH_LIMIT + 1)}, "writes"),
    ({"writes": None}, "writes"),
    ({"writes": "register"}, "writes"),
    ({"writes": {"0": REGISTER}}, "writes"),
    ({"writes": [REGISTER, "register"]}, "1"),
    ({"writes": [REGISTER, None]}, "1"),
    ({"writes": [without(REGISTER, "op")]}, "op"),
    ({"writes": [{**REGISTER, "op": "delete"}]}, "op"),
    ({"writes": [{**REGISTER, "op": ["register"]}]}, "op"),
    ({"writes": [{**REGISTER, "op": None}]}, "op"),
    ({"writes": [without(REGISTER, "collection")]}, "collection"),
    ({"writes": [without(APPEND, "id")]}, "id"),
    ({"writes": [without(CORRECT, "event")]}, "event"),
    ({"writes": [{**APPEND, "id": 7}]}, "id"),
    ({"writes": [{**APPEND, "collection": None}]}, "collection"),
    ({"writes": [{**RETRACT, "event": ["e-1"]}]}, "event"),
    ({"writes": [{**REGISTER, "id": "m-1"}]}, "id"),
    ({"writes": [{**APPEND, "event": "e-1"}]}, "event"),
    ({"writes": [{**CORRECT, "collection": "meetings"}]}, "collection"),
    ({"writes": [{**REGISTER, "if_match": 1}]}, "if_match"),
    ({"writes": [{**RETRACT, "if_match": 1}]}, "if_match"),
    ({"writes": [{**APPEND, "colour": "red"}]}, "colour"),
    ({"writes": [without(APPEND, "body")]}, "body"),
    ({"writes": [{**APPEND, "body": None}]}, "body"),
    ({"writes": [{**APPEND, "body": ["held"]}]}, "body"),
    ({"writes": [{**APPEND, "body": "held"}]}, "body"),
    ({"writes": [{**APPEND, "if_match": True}]}, "if_match"),
    ({"writes": [{**APPEND, "if_match": 0}]}, "if_match"),
    ({"writes": [{**APPEND, "if_match": -1}]}, "if_match"),
    ({"writes": [{**APPEND, "if_match": 2**62 + 1}]}, "if_match"),
    ({"writes": [{**APPEND, "if_match": 2.0}]}, "if_match"),
    ({"writes": [{**APPEND, "if_match": "2"}]}, "if_match"),
    ({"writes": [{**APPEND, "if_match": None}]}, "if_match"),
]


def loaded(body: dict[str, Any]) -> dict[str, Any] | None:
    try:
        return BatchInput().load(body)  # type: ignore[no-any-return]
    except ValidationError:
        return None


@pytest.mark.parametrize("writes", PLAIN, ids=range(len(PLAIN)))
def test_a_plain_batch_loads_as_batch_input_loads_it(writes: list[dict[str, Any]]) -> None:
    body = {"writes": writes}
    quick, slow = _batch_shape(body), loaded(body)
    assert quick is not None and quick == slow
    for mine, theirs, given in zip(quick["writes"], slow["writes"], writes, strict=True):
        assert list(mine) == list(theirs)  # in the schema's order of fields
        assert mine["body"] == given["body"] and mine["body"] is not given["body"]  # a copy, as fields.Dict's


@pytest.mark.parametrize(("body", "field"), NOT_PLAIN, ids=[f"{i}-{f}" for i, (_, f) in enumerate(NOT_PLAIN)])
def test_anything_else_is_left_to_batch_input_which_refuses_it(body: dict[str, Any], field: str) -> None:
    assert _batch_shape(body) is None
    with pytest.raises(ValidationError) as refused:
        BatchInput().load(body)
    assert field in str(refused.value.normalized_messages())


PLAIN_ENVELOPES = [
    {"type": "held", "valid": "2030-03-10"},
    {"type": "held", "valid": " 2030-03-10 ", "place": "Brussels"},
    {"type": "renamed", "valid": "2018-04-04/2018-04-05", "note": "from the Official Journal", "name": "x"},
    {"type": "", "valid": "2020-07/..", "note": None},
    {"type": "no-such-type", "valid": "2011-05?", "colour": "red"},
]
OTHER_ENVELOPES = [
    {"valid": "2030"},
    {"type": "held"},
    {"type": None, "valid": "2030"},
    {"type": 7, "valid": "2030"},
    {"type": "held", "valid": 2030},
    {"type": "held", "valid": None},
    {"type": "held", "valid": "  "},
    {"type": "held", "valid": "30th March"},
    {"type": "held", "valid": "2030", "note": 7},
    {"type": "held", "valid": "2030", "note": ["a"]},
    {"type": "held", "valid": "2030", "sources": []},
    {"type": "held", "valid": "2030", "sources": [{"title": "OJ L 129"}]},
]


def envelope_loaded(body: dict[str, Any]) -> dict[str, Any] | None:
    try:
        return EnvelopeInput().load({k: body[k] for k in ("type", "valid", "sources", "note") if k in body})  # type: ignore[no-any-return]
    except ValidationError:
        return None


@pytest.mark.parametrize("body", PLAIN_ENVELOPES, ids=range(len(PLAIN_ENVELOPES)))
def test_a_plain_envelope_loads_as_envelope_input_loads_it(body: dict[str, Any]) -> None:
    quick = _plain_envelope(body)
    assert quick is not None and quick == envelope_loaded(body)
    assert list(quick) == ["type", "valid", "sources", "note"]


@pytest.mark.parametrize("body", OTHER_ENVELOPES, ids=range(len(OTHER_ENVELOPES)))
def test_any_other_envelope_is_left_to_envelope_input(body: dict[str, Any]) -> None:
    assert _plain_envelope(body) is None
    # EnvelopeInput refuses all of these but those with sources, which it loads itself.
    assert (envelope_loaded(body) is None) == ("sources" not in body)
