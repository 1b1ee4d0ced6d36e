"""text_problems: what is wrong with a JSON value's strings, by path; nothing when all is well."""

from __future__ import annotations

import random
import unicodedata
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from events.text import MAX_DEPTH, MAX_TEXT, _problems, folded, text_problems


def walked(value: Any, path: str = "body", depth: int = 0) -> dict[str, list[str]]:
    """The full walk, with every node's path, that text_problems must agree with (it checks first without paths)."""
    return _problems(value, path, depth)


def nested(levels: int, inner: Any = "x") -> Any:
    """`inner` in `levels` containers, a list outermost: `[{"a": [{"a": ...}]}]`."""
    value = inner
    for level in range(levels):
        value = [value] if (levels - level) % 2 else {"a": value}
    return value


CLEAN = [
    {},
    {"title": "Readmission Agreement", "ordinal": 19, "ok": True, "none": None, "share": 0.5},
    {"note": "two\nlines\tand a tab\r\n", "title": "Соглашение — «реадмиссия» 🇪🇺", "nbsp": "a\u00a0b"},
    {"zero-width": "a\u200bb", "line separator": "a\u2028b", "private use": "\ue000"},
    {"sources": [{"title": "OJ L 129", "url": "https://eur-lex.europa.eu/", "quote": None}], "tuple": ("\x01",)},
    {"long": "x" * MAX_TEXT, "deep": nested(MAX_DEPTH - 1), "empty at the bottom": nested(MAX_DEPTH - 1, {})},
    {1: "a key that is no string", "list": [[], {}, [[]]]},
]

PROBLEMS = [
    ({"note": "bad \x01"}, {"body.note": ["holds a control character"]}),
    ({"title": "\ud800"}, {"body.title": ["is not valid Unicode (a lone surrogate)"]}),
    ({"note": "\x7f\ud800"}, {"body.note": ["holds a control character"]}),
    ({"long": "x" * (MAX_TEXT + 1)}, {"body.long": [f"is longer than {MAX_TEXT} characters"]}),
    ({"bad\x00key": "fine"}, {"body.bad\x00key": ["holds a control character"]}),
    # Nested problems are named by their whole path.
    ({"sources": [{"title": "ok"}, {"title": "OJ", "quote": "a\x1fb"}]},
     {"body.sources[1].quote": ["holds a control character"]}),
    ({"changes": {"parties": ["eu", "ru\ud800"], "note": {"deeper": [["\x0b"]]}}},
     {"body.changes.parties[1]": ["is not valid Unicode (a lone surrogate)"],
      "body.changes.note.deeper[0][0]": ["holds a control character"]}),
    ({"a": "\x01", "b": "fine", "c": ["\x02", 3, None]},
     {"body.a": ["holds a control character"], "body.c[0]": ["holds a control character"]}),
    # The body is level 0, "deep" level 1: what lies at level 17 is too deep, string or not.
    ({"deep": nested(MAX_DEPTH)}, {"body.deep" + "[0].a" * 8: [f"nested deeper than {MAX_DEPTH} levels"]}),
    ({"deep": nested(MAX_DEPTH, 7)}, {"body.deep" + "[0].a" * 8: [f"nested deeper than {MAX_DEPTH} levels"]}),
    ({"deep": nested(MAX_DEPTH + 3)}, {"body.deep" + "[0].a" * 8: [f"nested deeper than {MAX_DEPTH} levels"]}),
    ({"deep": nested(MAX_DEPTH, {"k": 1})},
     {"body.deep" + "[0].a" * 8: [f"nested deeper than {MAX_DEPTH} levels"]}),
]


@pytest.mark.parametrize("value", CLEAN)
def test_clean_values_have_no_problems(value: Any) -> None:
    assert text_problems(value) == {} == walked(value)


@pytest.mark.parametrize(("value", "problems"), PROBLEMS)
def test_problems_are_named_by_their_path(value: Any, problems: dict[str, list[str]]) -> None:
    assert text_problems(value) == problems == walked(value)
    assert text_problems(value, "event", 3) == walked(value, "event", 3)


def test_any_value_gives_what_the_plain_walk_gives() -> None:
    pieces = ["", "x", "Brussels", "a\nb", "\t", "\x01", "\x7f", "\ud800", "é", "\u200b", "x" * (MAX_TEXT + 1),
              0, 1.5, True, None]
    chance = random.Random(20300310)

    def value(depth: int) -> Any:
        roll = chance.random()
        if roll < 0.05:  # around the deepest nesting allowed
            return nested(max(0, MAX_DEPTH - depth + chance.randrange(-2, 3)), chance.choice([*pieces, {}, []]))
        if roll < 0.3 and depth < MAX_DEPTH + 3:
            return [value(depth + 1) for _ in range(chance.randrange(3))]
        if roll < 0.6 and depth < MAX_DEPTH + 3:
            return {chance.choice(["k", "id", "\x02", "\ud801", "é"]) + str(i): value(depth + 1)
                    for i in range(chance.randrange(3))}
        return chance.choice(pieces)

    found, deep = 0, 0
    for _ in range(3000):
        given = {"body": value(0)}
        expected = walked(given)
        assert text_problems(given) == expected, given
        found += bool(expected)
        deep += any("nested deeper" in message for messages in expected.values() for message in messages)
    assert 300 < found < 2700 and deep > 30  # both answers were tried often, depth too


@pytest.mark.parametrize("text", ["", "Joint Committee (JC)", "".join(map(chr, range(128))), "Straße", "Ĳssel",
                                  "Conseil de l'Union européenne", "Ｆｕｌｌ ｗｉｄｔｈ", "ﬁnal", "Совет ЕС",
                                  "Crème brûlée – ǅ ½ ế 한국어", "a\u0301\u0328b\u20dd"])
def test_folded_text_is_lower_case_without_accents(text: str) -> None:
    decomposed = unicodedata.normalize("NFKD", text)
    assert folded(text) == "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


@settings(max_examples=500)
@given(st.text())
def test_folding_any_text_drops_exactly_the_combining_marks(text: str) -> None:
    decomposed = unicodedata.normalize("NFKD", text)
    assert folded(text) == "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
