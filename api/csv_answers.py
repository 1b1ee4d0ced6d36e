"""List-shaped answers as CSV, for `Accept: text/csv` or `format=csv`.

One header row (the items' keys, in the order they first appear), UTF-8, one row per
item; lists are joined with `; `, objects and lists of objects are written as JSON,
null as an empty cell. A cell that a spreadsheet would read as a formula (CSV injection:
text starting with `=`, `+`, `-`, `@`, tab or carriage return) is made text by a leading
`'`, as OWASP recommends; numbers are written as they are.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping
from typing import Any

from flask import Response, request

from api.common import respond

SEPARATOR = "; "
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def wants_csv(format: str | None) -> bool:
    """True when the request asks for CSV: `format=csv`, or an Accept header preferring text/csv."""
    if format is not None:
        return format == "csv"
    return request.accept_mimetypes.best_match(["application/json", "text/csv"]) == "text/csv"


def cell(value: Any) -> str:
    """The CSV cell of a value, never one a spreadsheet would take for a formula."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)  # a number, even a negative one, is no formula
    return inert(_text(value))


def inert(text: str) -> str:
    """`text`, with a leading `'` if a spreadsheet would read it as a formula (OWASP, CSV injection)."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return SEPARATOR.join(_text(item) if not isinstance(item, Mapping | list) else _json(item)
                              for item in value)
    if isinstance(value, Mapping):
        return _json(value)
    return str(value)


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


def csv_text(items: Iterable[Mapping[str, Any]]) -> str:
    rows = list(items)
    columns: dict[str, None] = {}
    for row in rows:
        columns.update(dict.fromkeys(row))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([inert(name) for name in columns])
    for row in rows:
        writer.writerow([cell(row.get(name)) for name in columns])
    return out.getvalue()


def answer(page: dict[str, Any], name: str, format: str | None, headers: dict[str, str] | None = None,
           rows: Iterable[Mapping[str, Any]] | None = None) -> Response:
    """The page as JSON, or its items (or `rows`) as a CSV attachment `name`.csv."""
    if not wants_csv(format):
        return respond(page, headers=headers)
    response = Response(csv_text(page["items"] if rows is None else rows), mimetype="text/csv")
    response.headers["Content-Type"] = "text/csv; charset=utf-8"
    response.headers["Content-Disposition"] = f'attachment; filename="{name}.csv"'
    for key, value in (headers or {}).items():
        response.headers[key] = value
    response.headers["Vary"] = "Accept"
    return response
