"""What any text the registry stores must be: printable Unicode, in JSON of sane depth."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from typing import Any

from marshmallow import validate

CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # C0 controls but tab and newlines, and DEL
NON_ASCII = re.compile(r"[^\x00-\x7f]")
MAX_DEPTH = 16
MAX_TEXT = 10_000  # characters of one text field
NOT_BLANK = validate.Regexp(r"\S", error="must not be blank")


def text_problems(value: Any, path: str = "body", depth: int = 0) -> dict[str, list[str]]:
    """Problems of the strings in a JSON value, by field path; empty when all is well."""
    if _clean(value, depth):
        return {}
    return _problems(value, path, depth)


def _clean_text(text: str) -> bool:
    """Whether `_problems` finds nothing wrong with the string."""
    if len(text) > MAX_TEXT:
        return False
    if text.isprintable():  # no controls and no surrogates (both are unprintable): the common case
        return True
    if CONTROL.search(text):
        return False
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _clean(value: Any, depth: int) -> bool:
    """Whether `_problems` finds nothing, without making a path for every node."""
    if depth > MAX_DEPTH:
        return False
    if isinstance(value, str):
        return _clean_text(value)
    if isinstance(value, dict):
        if value and depth >= MAX_DEPTH:  # its keys and items are nested too deep
            return False
        keys = (key for key in value if isinstance(key, str))
        return _clean_items(keys, depth + 1) and _clean_items(value.values(), depth + 1)
    if isinstance(value, list):
        if value and depth >= MAX_DEPTH:
            return False
        return _clean_items(value, depth + 1)
    return True


def _clean_items(items: Iterable[Any], depth: int) -> bool:
    """Whether every item is clean at `depth`; strings checked here (most are printable), not by a call each."""
    for item in items:
        if isinstance(item, str):
            if not (item.isprintable() and len(item) <= MAX_TEXT) and not _clean_text(item):
                return False
        elif isinstance(item, (dict, list)) and not _clean(item, depth):
            return False
    return True


def _problems(value: Any, path: str, depth: int) -> dict[str, list[str]]:
    """The full walk, with every node's path: run once something is wrong."""
    if depth > MAX_DEPTH:
        return {path: [f"nested deeper than {MAX_DEPTH} levels"]}
    problems: dict[str, list[str]] = {}
    if isinstance(value, str):
        if len(value) > MAX_TEXT:
            problems[path] = [f"is longer than {MAX_TEXT} characters"]
        elif CONTROL.search(value):
            problems[path] = ["holds a control character"]
        else:
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                problems[path] = ["is not valid Unicode (a lone surrogate)"]
    elif isinstance(value, dict):
        for key, item in value.items():
            problems.update(_problems(key, f"{path}.{key}", depth + 1) if isinstance(key, str) else {})
            problems.update(_problems(item, f"{path}.{key}", depth + 1))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            problems.update(_problems(item, f"{path}[{index}]", depth + 1))
    return problems


def folded(text: str) -> str:
    """The text in lower case without accents, as searches compare it."""
    if text.isascii():  # ASCII decomposes to itself and holds no combining marks
        return text.casefold()
    decomposed = unicodedata.normalize("NFKD", text)
    return NON_ASCII.sub(_without_marks, decomposed).casefold()


def _without_marks(match: re.Match[str]) -> str:
    return "" if unicodedata.combining(match.group()) else match.group()
